"""Where the `qa` command writes: stdout and stderr through qa.core.redact, and its progress bars."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from qa.core.redact import redact


class _Redacted:
    """stdout or stderr written through qa.core.redact: nothing the command prints (a message, a label, an
    error a model's server sent back, JSON) can show a key or a password. `secrets`: the configured keys."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.secrets: list[str] = []

    @property
    def _stream(self) -> Any:
        # looked up on each write, as Rich does: tests swap sys.stdout, and a progress display swaps in a
        # proxy that prints through the console again (unwrapped, or each write would come back here)
        stream = getattr(sys, self.name)
        return getattr(stream, "rich_proxied_file", stream)

    def write(self, text: str) -> int:
        return self._stream.write(redact(text, self.secrets))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


out = Console(file=_Redacted("stdout"), highlight=False, soft_wrap=True)
err = Console(file=_Redacted("stderr"), highlight=False, soft_wrap=True)


def hide_secrets(secrets: list[str]) -> None:
    """From now on neither console prints these (the configured keys)."""
    for console in (out, err):
        console.file.secrets = secrets


def progress_bars(console: Console = err) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
