"""Connecting to Chroma: an embedded PersistentClient (checked not damaged; a read-only store read from a
snapshot) or an HttpClient for a server, with a database per workspace."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import filelock

from qa.core.config import Settings
from qa.core.errors import ConfigError
from qa.store.errors import StoreDamaged, StoreReadOnly, _reason
from qa.store.lock import LOCK_FILE, LOCK_TIMEOUT

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402  (telemetry must be off before import)
import chromadb.errors  # noqa: E402
from chromadb.api import ServerAPI  # noqa: E402
from chromadb.api.client import Client as _ChromaClient  # noqa: E402
from chromadb.config import System  # noqa: E402
from chromadb.telemetry.product import ProductTelemetryClient  # noqa: E402

log = logging.getLogger(__name__)
T = TypeVar("T")


DATABASE_FILE = "chroma.sqlite3"  # the embedded store's database, in its folder


# ---- connecting ------------------------------------------------------------------------------------


def _client_settings() -> chromadb.Settings:
    return chromadb.Settings(anonymized_telemetry=False, allow_reset=False)


def _workspace_database(workspace: str, host: str, port: int, ssl: bool) -> str:
    """A workspace on a Chroma server is a database of its own (created on first use): its collections,
    registry and writer lock are apart from every other workspace's. The default workspace is Chroma's
    default database."""
    if not workspace:
        return chromadb.DEFAULT_DATABASE
    plain = re.fullmatch(r"[A-Za-z0-9_-]{1,40}", workspace)
    name = f"qa-{workspace}" if plain else "qa-" + hashlib.sha256(workspace.encode()).hexdigest()[:20]
    admin = chromadb.AdminClient(chromadb.Settings(
        chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host=host, chroma_server_http_port=port,
        chroma_server_ssl_enabled=ssl, anonymized_telemetry=False))  # fmt: skip
    try:
        admin.get_database(name)
    except Exception:  # NotFoundError (its type varies across chromadb versions): create it
        with contextlib.suppress(chromadb.errors.UniqueConstraintError):  # another process just did
            admin.create_database(name)
    return name


def open_client(settings: Settings) -> tuple[chromadb.ClientAPI, str]:
    """Embedded client under QA_DATA_DIR, or an HTTP client when QA_CHROMA_URL is set."""
    client, location, _ = _open_client(settings)
    return client, location


def _open_client(settings: Settings) -> tuple[chromadb.ClientAPI, str, ReadOnly | None]:
    """(client, location, how the store is read when this process may not write to it)."""
    if settings.chroma_url:
        url = urlparse(
            settings.chroma_url if "://" in settings.chroma_url else "http://" + settings.chroma_url
        )
        if not url.hostname:
            raise ConfigError(
                f"QA_CHROMA_URL={settings.chroma_url!r} is not a URL like http://localhost:8000",
                code="config.bad_chroma_url", raw=settings.chroma_url,
            )  # fmt: skip
        ssl = url.scheme == "https"
        port = url.port or (443 if ssl else 8000)
        try:
            database = _workspace_database(settings.workspace, url.hostname, port, ssl)
            client = chromadb.HttpClient(host=url.hostname, port=port, ssl=ssl, settings=_client_settings(),
                                         database=database)  # fmt: skip
            client.heartbeat()
        except Exception as ex:  # chromadb raises assorted httpx/ValueError types for a dead server
            raise ConfigError(
                f"cannot reach the Chroma server at {settings.chroma_url} (QA_CHROMA_URL): "
                f"{type(ex).__name__}. Start it with `chroma run --path DIR --port {port}` "
                "or unset QA_CHROMA_URL to use the embedded store",
                code="store.unreachable", url=settings.chroma_url, port=port,
            ) from ex  # fmt: skip
        return client, settings.chroma_url, None
    path = settings.data_dir / "chroma"
    try:
        if path.is_dir():
            _check_not_damaged(path)  # before Chroma touches it: it would write over an empty database
            refused = _unwritable(path)
            if refused:
                read_only = ReadOnly(path, refused)
                return read_only.snapshot(), str(path), read_only
        path.mkdir(parents=True, exist_ok=True)
        if (path / DATABASE_FILE).exists():
            return chromadb.PersistentClient(path=str(path), settings=_client_settings()), str(path), None
        # A new store: two processes creating it at once would both run Chroma's migrations.
        with filelock.FileLock(str(path / LOCK_FILE), timeout=LOCK_TIMEOUT, thread_local=False):
            return chromadb.PersistentClient(path=str(path), settings=_client_settings()), str(path), None
    except (OSError, filelock.Timeout) as ex:
        raise ConfigError(
            f"cannot use {path} for the store ({ex}); set QA_DATA_DIR to a writable folder",
            code="store.unusable_path", path=str(path),
        ) from ex  # fmt: skip
    except chromadb.errors.ChromaError as ex:  # e.g. chroma.sqlite3 is not a database
        raise ConfigError(
            f"cannot open the store at {path}: {_reason(ex)}. If it is damaged, restore the folder from a "
            "backup, or move the folder aside and ingest the reports again (`qa ingest PATH`), or set "
            "QA_DATA_DIR to another folder",
            code="store.unreadable", path=str(path),
        ) from ex  # fmt: skip


def _check_not_damaged(path: Path) -> None:
    """Raise StoreDamaged when the store's database is empty, or missing beside Chroma's index data. An empty
    file is also what SQLite leaves for a moment while another process creates the store, so an empty one
    is looked at again under the lock its creator holds."""
    database = path / DATABASE_FILE

    def damage() -> str:
        try:
            size = database.stat().st_size
        except FileNotFoundError:
            segments = sorted(p.name for p in path.iterdir() if p.is_dir())
            if not segments:
                return ""  # a new store (or one not created yet)
            return (f"{database} is missing, while the folder holds Chroma's index data "
                    f"({len(segments)} folders, e.g. {segments[0]})")  # fmt: skip
        return f"{database} is empty (0 bytes)" if size == 0 else ""

    found = damage()
    if found.endswith("(0 bytes)"):
        creator = filelock.FileLock(str(path / LOCK_FILE), timeout=LOCK_TIMEOUT, thread_local=False)
        # a read-only store cannot be locked: what was seen is what there is
        with contextlib.suppress(OSError, filelock.Timeout), creator:
            found = damage()
    if found:
        raise StoreDamaged(
            f"the store at {path} is damaged: {found}, so its reports cannot be read. Nothing was changed. "
            f"Restore the folder from a backup, or move it aside (`mv {path} {path}.damaged`) and ingest the "
            "reports again (`qa ingest PATH`)"
        )


def _unwritable(path: Path) -> str:
    """Why this process cannot write to the embedded store at path ("" when it can): the folder (SQLite
    writes its journal beside the database) or the database file. Asked with access(2), which honours
    permissions, ACLs and a read-only mount, without opening the database (closing another descriptor of
    a file SQLite has open would drop SQLite's locks on it)."""
    effective = os.access in os.supports_effective_ids
    for where in (path, path / DATABASE_FILE):
        if where.exists() and not os.access(where, os.W_OK, effective_ids=effective):
            with contextlib.suppress(OSError, AttributeError):  # statvfs: not on every system
                if os.statvfs(where).f_flag & os.ST_RDONLY:
                    return f"{where} is on a read-only file system"
            return f"this process may not write to {where}"
    return ""


class ReadOnly:
    """An embedded store this process may read but not write (Chroma cannot open a database it cannot
    write: it writes on start). It is read from a snapshot in a temporary folder — a consistent copy of the
    database (SQLite's backup, under a read lock) and of Chroma's index folders — taken again when the
    store changes (a writer elsewhere); writes are refused with StoreReadOnly."""

    def __init__(self, source: Path, reason: str) -> None:
        self.source = source
        self.reason = reason
        self._taken: tuple[int, int] | None = None  # the database's (mtime, size) when last copied
        self._folders: list[str] = []

    def _fingerprint(self) -> tuple[int, int]:
        info = (self.source / DATABASE_FILE).stat()
        return info.st_mtime_ns, info.st_size

    def changed(self) -> bool:
        """The store was written since the last snapshot."""
        try:
            return self._fingerprint() != self._taken
        except OSError:
            return False

    def snapshot(self) -> chromadb.ClientAPI:
        """A client on a fresh copy of the store (the previous copies are deleted when the process ends)."""
        import atexit
        import shutil
        import sqlite3
        import tempfile
        from urllib.parse import quote

        folder = Path(tempfile.mkdtemp(prefix="qa-read-only-store-"))
        if not self._folders:
            atexit.register(lambda: [shutil.rmtree(f, ignore_errors=True) for f in self._folders])
        # Copies older than the one in use are deleted (a thread may still be reading the one in use).
        for old in self._folders[:-1]:
            shutil.rmtree(old, ignore_errors=True)
        self._folders = [*self._folders[-1:], str(folder)]
        taken = self._fingerprint()
        source = sqlite3.connect(f"file:{quote(str(self.source / DATABASE_FILE))}?mode=ro", uri=True)
        try:
            with sqlite3.connect(folder / DATABASE_FILE) as copy:
                source.backup(copy)
        except sqlite3.Error as ex:
            raise StoreReadOnly(
                f"the store at {self.source} is read-only ({self.reason}) and could not be read: {ex}. If a "
                "writer was stopped mid-write, run any qa command once as a user who may write there"
            ) from ex
        finally:
            source.close()
        for entry in self.source.iterdir():
            if entry.is_dir():  # Chroma's index folders (one per segment)
                shutil.copytree(entry, folder / entry.name)
        self._taken = taken
        log.info("the store at %s is read-only (%s): reading a copy in %s", self.source, self.reason, folder)
        return _fresh_embedded_client(str(folder))

    def refusal(self) -> StoreReadOnly:
        return StoreReadOnly(
            f"the store at {self.source} is read-only: {self.reason}. Its reports can be listed, searched and "
            "asked about, but not added, replaced or removed: run the command as a user who may write there, "
            "or make the folder writable"
        )


def _fresh_embedded_client(path: str) -> chromadb.ClientAPI:
    """A client on its own Chroma System. PersistentClient would hand back this process's cached System for
    the path, whose in-memory vector index is the stale one being replaced."""
    settings = _client_settings()
    settings.is_persistent = True
    settings.persist_directory = path
    system = System(settings)
    system.instance(ProductTelemetryClient)
    system.instance(ServerAPI)
    system.start()
    return _ChromaClient.from_system(system)


def process_name(argv: Sequence[str] | None = None) -> str:
    """What this process is, for the lock holder's description: `qa ingest`, `streamlit`, `pytest`…"""
    argv = list(sys.argv if argv is None else argv)
    program = Path(argv[0]).name if argv and argv[0] else "python"
    if program not in ("qa", "cli.py", "__main__.py"):
        return program
    words = argv[1:]
    for i, word in enumerate(words):  # the sub-command: the first word that is not an option's value
        if not word.startswith("-") and not (i and words[i - 1].startswith("--") and "=" not in words[i - 1]):
            return f"qa {word}"
    return "qa"
