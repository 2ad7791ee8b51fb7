"""Files written so that a reader never sees half of one: atomic_write, with the mode a plain open() gives."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask. Linux shows it in /proc (read without changing it, so no other thread ever runs
    under umask 0); elsewhere set-and-restore it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0)
        os.umask(old)
    return old


def atomic_write(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Write via a temporary file in the same folder and rename: a reader never sees half a file. Text is
    written as UTF-8. The file gets the mode a plain open() would give it (0o666 less the umask), not the
    temporary file's 0600, unless mode says otherwise (0o600 for a file holding password hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, (0o666 & ~current_umask()) if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_folder(path: Path, create: bool = True) -> Path:
    """A folder to write a command's outputs into (--out): created when missing (create=False: left for the
    first output, a batch's folder holds only what it wrote). An InputError naming it when it is a file or
    cannot be created, before any work is done."""
    from qa.core.errors import InputError

    if path.exists() and not path.is_dir():
        raise InputError("is a file; give a folder for the outputs (it is created if missing)", str(path),
                         code="input.out_is_file")  # fmt: skip
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as ex:
        raise InputError(f"cannot create this folder ({ex.strerror}); give a folder you can write to", str(path),
                         code="input.out_unusable") from ex  # fmt: skip
    return path
