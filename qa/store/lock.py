"""One writer at a time: an OS file lock beside an embedded store, a lock collection on a Chroma server; a
waiting writer is told who holds it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import filelock

from qa.store.errors import CHROMA_ERRORS

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402  (telemetry must be off before import)
import chromadb.errors  # noqa: E402

log = logging.getLogger(__name__)
T = TypeVar("T")


LOCK_TIMEOUT = 120.0  # seconds a writer waits for another before giving up with StoreBusy
LOCK_STALE_AFTER = 60.0  # server lock: a holder that has not renewed it for this long is gone
LOCK_FILE = "qa-writer.lock"  # embedded store: in the store folder, next to chroma.sqlite3
HOLDER_FILE = "qa-writer.json"  # who holds the file lock (the lock file itself is truncated by waiters)
LOCK_COLLECTION = "qa-writer-lock"  # Chroma server: one per database, whatever the embedder


# ---- the writer lock -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LockHolder:
    """Who holds a store's writer lock."""

    owner: str  # qa ingest, the app…
    pid: int
    host: str
    since: str  # ISO 8601, UTC
    token: str = ""

    @classmethod
    def me(cls, owner: str) -> LockHolder:
        return cls(owner, os.getpid(), socket.gethostname(), datetime.now(UTC).isoformat(timespec="seconds"),
                   uuid.uuid4().hex)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict | None) -> LockHolder | None:
        try:
            return cls(str(data["owner"]), int(data["pid"]), str(data["host"]), str(data["since"]),
                       str(data.get("token", "")))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None

    def to_dict(self) -> dict[str, str | int]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """`qa ingest (pid 1234 on host x) since 12:03:05` (local time; the date too when not today)."""
        return f"{self.owner} (pid {self.pid} on host {self.host}) since {_local_time(self.since)}"


def _local_time(iso: str) -> str:
    try:
        when = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return iso
    today = datetime.now().astimezone().date()
    return when.strftime("%H:%M:%S" if when.date() == today else "%Y-%m-%d %H:%M:%S")


class _FileLock:
    """Embedded store: an OS file lock (filelock) in the store folder, freed by the kernel when its process
    dies, so it is never stale. Who holds it is written beside it."""

    def __init__(self, folder: Path) -> None:
        self._lock = filelock.FileLock(str(folder / LOCK_FILE), thread_local=False)
        self._info = folder / HOLDER_FILE
        self.lost = False  # a file lock cannot be taken away

    def acquire(self, me: LockHolder, wait: float) -> bool:
        try:
            self._lock.acquire(timeout=wait, poll_interval=0.02)
        except filelock.Timeout:
            return False
        try:  # who holds it: a nicety for waiting writers, never a reason to fail
            temporary = self._info.with_name(f".{HOLDER_FILE}.{os.getpid()}")
            temporary.write_text(json.dumps(me.to_dict()), encoding="utf-8")
            os.replace(temporary, self._info)
        except OSError as ex:
            log.warning("could not record the store lock's holder in %s: %s", self._info, ex)
        return True

    def holder(self) -> LockHolder | None:
        try:
            return LockHolder.from_dict(json.loads(self._info.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self._info.unlink()
        self._lock.release()


class _CollectionLock:
    """Chroma server: creating a collection is atomic (a second create of the name fails), so the lock is a
    collection whose metadata names its holder. The holder renews it (a counter, not a time: machines'
    clocks differ); a waiter breaks a lock whose renewal has not moved for `stale_after` seconds of its own
    clock (its holder crashed or lost the network)."""

    def __init__(self, client_of: Callable[[], chromadb.ClientAPI], stale_after: float = LOCK_STALE_AFTER):
        self._client_of = client_of
        self.stale_after = stale_after
        self._seen: tuple[tuple, float] | None = None  # (holder token + renewal, when first seen so)
        self._me: LockHolder | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False

    def _current(self) -> dict | None:
        try:
            collection = self._client_of().get_collection(LOCK_COLLECTION, embedding_function=None)
        except chromadb.errors.NotFoundError:
            return None
        return dict(collection.metadata or {})

    def acquire(self, me: LockHolder, wait: float) -> bool:
        try:
            self._client_of().create_collection(
                LOCK_COLLECTION, metadata={**me.to_dict(), "renewed": 0}, embedding_function=None
            )
        except chromadb.errors.ChromaError:  # it exists: somebody holds the lock
            self._break_if_stale()
            time.sleep(wait)
            return False
        self._me, self.lost, self._seen = me, False, None
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="qa-store-lock", daemon=True)
        self._renewer.start()
        return True

    def _break_if_stale(self) -> None:
        meta = self._current()
        if meta is None:
            self._seen = None
            return
        key, now = (meta.get("token"), meta.get("renewed")), time.monotonic()
        if self._seen is None or self._seen[0] != key:
            self._seen = (key, now)
        elif now - self._seen[1] >= self.stale_after:
            holder = LockHolder.from_dict(meta)
            log.warning("breaking the store lock of %s: not renewed for %.0fs",
                        holder.describe() if holder else "an unknown holder", now - self._seen[1])  # fmt: skip
            with contextlib.suppress(*CHROMA_ERRORS):
                self._client_of().delete_collection(LOCK_COLLECTION)
            self._seen = None

    def _renew(self) -> None:
        renewed = 0
        while not self._stop.wait(self.stale_after / 4):
            try:
                collection = self._client_of().get_collection(LOCK_COLLECTION, embedding_function=None)
                if (collection.metadata or {}).get("token") != self._me.token:
                    self.lost = True  # broken as stale by another writer: our flip must not happen
                    return
                renewed += 1
                collection.modify(metadata={**self._me.to_dict(), "renewed": renewed})
            except CHROMA_ERRORS as ex:  # the server is away for a moment: try again at the next beat
                log.warning("could not renew the store lock: %s", ex)

    def holder(self) -> LockHolder | None:
        try:
            return LockHolder.from_dict(self._current())
        except CHROMA_ERRORS:
            return None

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        try:
            meta = self._current()
            if meta is not None and self._me is not None and meta.get("token") == self._me.token:
                self._client_of().delete_collection(LOCK_COLLECTION)
        except CHROMA_ERRORS as ex:  # left behind: the next writer breaks it once it is stale
            log.warning("could not release the store lock: %s", ex)
