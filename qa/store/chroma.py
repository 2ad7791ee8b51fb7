"""The store: Chroma (embedded PersistentClient, or HttpClient for a server) behind `Store`; the store package
(client, lock, records, errors, this module) is the only code that imports chromadb. We always pass
embeddings ourselves: Chroma's default embedding function downloads a model.

Two collections per embedder: `qa-chunks-<embedder>` (one record per chunk) and `qa-reports-<embedder>`
(one record per report: metadata, clean text and the *active version*). A version belongs to one report
(qa.ingest.pipeline derives it from the report id and the content), so two reports never share a chunk. Replacing a
report writes the new chunks first, then flips the active version in one upsert, then deletes the old
chunks; searches only see chunks of active versions, so a crash leaves the old or the new version, never a
mix, and `repair` removes what a crash left behind.

One writer at a time, any number of readers. Writers (replace, remove, repair) hold the store's writer
lock: an OS file lock in the store folder for the embedded store (the kernel frees it when its process
dies), a lock collection on a Chroma server (created atomically; renewed by its holder; broken when its
renewal stops for LOCK_STALE_AFTER seconds). A waiting writer is told who holds it. Readers take no lock:
every flip or removal writes a new registry stamp, and a Store that sees a stamp it did not write
reconnects, because embedded Chroma keeps each process's vector index in memory and would otherwise fail
on the other process's chunks ("Error finding id"). A read that fails anyway is retried once after a
reconnect, then raised as a StoreError that says what to do.

A store whose database is empty (or missing beside Chroma's index data) is damaged: never opened, since Chroma
would write a new database over it. A store this process may not write to is read from a copy taken again
when the store changes (Chroma cannot open a database it cannot write); its writes are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from qa.core.config import Settings
from qa.core.errors import ConfigError, InputError
from qa.core.schemas import Chunk, ReportMeta, ReportRecord
from qa.store.client import ReadOnly, _fresh_embedded_client, _open_client, open_client, process_name
from qa.store.errors import (
    CHROMA_ERRORS,
    StoreBusy,
    StoreError,
    StoreReadError,
    StoreReadOnly,
    _reason,
    damaged,
)
from qa.store.lock import LOCK_FILE, LOCK_TIMEOUT, LockHolder, _CollectionLock, _FileLock
from qa.store.records import (
    _META_FIELDS,
    _PATH_SEP,
    CHUNKS_PREFIX,
    REPORTS_PREFIX,
    STAMP_ID,
    _chunk,
    _chunk_filter,
    _chunk_meta,
    _gaps,
    _laid_out,
    _place,
    _record,
    _stamp,
)

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402  (telemetry must be off before import)
import chromadb.errors  # noqa: E402

log = logging.getLogger(__name__)
T = TypeVar("T")


# ---- the store -------------------------------------------------------------------------------------


class Store:
    def __init__(
        self,
        client: chromadb.ClientAPI,
        embedder_name: str,
        dim: int,
        location: str = "",
        *,
        connect: Callable[[], chromadb.ClientAPI] | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
        owner: str | None = None,
        index_dir: Path | None = None,
        read_only: ReadOnly | None = None,
    ) -> None:
        self.embedder_name = embedder_name
        # a store this process may not write to: read from a snapshot (qa.store.chroma.ReadOnly), writes refused
        self.read_only = read_only
        # where the derived search index (qa.index.packs) is kept on disk for this store; None: memory only
        self.index_dir = index_dir
        self.dim = dim
        self.location = location
        self.lock_timeout = lock_timeout
        self.owner = owner or process_name()  # named to writers waiting for our lock
        # Told (once per holder) while this Store waits for another writer's lock; the CLI prints it.
        self.on_lock_wait: Callable[[str], None] | None = None
        self.reconnects = 0  # times this Store reconnected after another process wrote (for benches/tests)
        self.lock_waits: deque[float] = deque(maxlen=1000)  # seconds each lock acquisition waited
        self._connect = connect
        chroma_settings = client.get_settings()
        self._embedded = bool(chroma_settings.is_persistent and chroma_settings.persist_directory)
        self._writer = (
            _FileLock(Path(chroma_settings.persist_directory))
            if self._embedded
            else _CollectionLock(lambda: self.client)
        )
        self._thread_lock = threading.RLock()  # one writer thread of this process at a time (re-entrant)
        self._depth = 0  # nesting of writing() in the thread holding _thread_lock
        self._state = threading.Lock()  # guards the swap of client + collections and the stamps below
        self._known_stamp: str | None = None  # the stamp as this Store last saw or wrote it
        self._registry: tuple[str, list[ReportRecord]] | None = None  # (stamp, records)
        self._texts: dict[tuple[str, str], str] = {}  # (report id, version) → text (a few recent ones)
        self.client = client
        try:
            self._open(client)
        except CHROMA_ERRORS as ex:
            raise StoreError(f"cannot open the store at {location or 'Chroma'}: {_reason(ex)}") from ex
        if not self.registry_stamp() and read_only is None:  # a new store, or one written before stamps
            with self._writer_lock():
                if not self.registry_stamp():
                    self._write_stamp()

    @classmethod
    def open(
        cls,
        settings: Settings,
        embedder_name: str,
        dim: int,
        *,
        lock_timeout: float | None = None,
        owner: str | None = None,
        index_dir: Path | None = None,
    ) -> Store:
        """index_dir: where the derived search index is kept on disk (qa.index.packs.folder_for); None: in
        memory only."""
        client, location, read_only = _open_client(settings)
        connect = (lambda: open_client(settings)[0]) if settings.chroma_url else None
        return cls(client, embedder_name, dim, location, connect=connect, owner=owner,
                   lock_timeout=LOCK_TIMEOUT if lock_timeout is None else lock_timeout,
                   index_dir=index_dir,
                   read_only=read_only)  # fmt: skip

    def _open(self, client: chromadb.ClientAPI) -> None:
        """Attach to the client's collections, creating them in a new store (one writer at a time). A read-only
        store's snapshot is this process's own copy: collections it lacks are created there (empty)."""
        try:
            self._attach(client, create=False)
        except chromadb.errors.NotFoundError:
            if self.read_only is not None:
                self._attach(client, create=True)
                return
            with self._writer_lock():
                self._attach(client, create=True)

    def _attach(self, client: chromadb.ClientAPI, create: bool) -> None:
        """Point this Store at `client`'s collections (create them when `create`)."""
        get = client.get_or_create_collection if create else client.get_collection
        chunks = get(
            CHUNKS_PREFIX + self.embedder_name,
            embedding_function=None,
            **({"metadata": {"embedder": self.embedder_name, "dim": self.dim},
                "configuration": {"hnsw": {"space": "cosine"}}} if create else {}),
        )  # fmt: skip
        stored_dim = (chunks.metadata or {}).get("dim")
        if stored_dim is not None and int(stored_dim) != self.dim:
            raise ConfigError(
                f"collection {chunks.name} holds {stored_dim}-dimensional vectors but embedder "
                f"{self.embedder_name} makes {self.dim}-dimensional ones; use the embedder the store was built "
                "with or a fresh QA_DATA_DIR"
            )
        reports = get(
            REPORTS_PREFIX + self.embedder_name,
            embedding_function=None,
            **({"metadata": {"embedder": self.embedder_name}} if create else {}),
        )
        batch = max(1, min(client.get_max_batch_size(), 2000))
        with self._state:
            self.client, self.chunks, self.reports_col, self._batch = client, chunks, reports, batch

    def reload(self) -> None:
        """Reconnect and forget what is cached: after another process wrote, this process's Chroma holds a
        stale vector index in memory (its reads of the new chunks fail with 'Error finding id')."""
        try:
            if self.read_only is not None:  # a new copy: the store may have been written since the last one
                self._open(self.read_only.snapshot())
            else:
                if self._connect is not None:
                    client = self._connect()
                elif self._embedded:
                    client = _fresh_embedded_client(self.client.get_settings().persist_directory)
                else:
                    client = self.client
                self._attach(client, create=False)
        # ConfigError: open_client cannot reach the server; OSError: a read-only store's copy failed
        except (*CHROMA_ERRORS, ConfigError, OSError) as ex:
            raise StoreReadError(
                f"cannot reconnect to the store at {self.location}: {_reason(ex)}; try again in a moment"
            ) from ex
        with self._state:
            self._registry = None
            self.reconnects += 1

    # ---- reads with one retry ------------------------------------------------------------------

    def _read(self, what: str, read: Callable[[], T]) -> T:
        """A Chroma read; a failure reconnects and tries once more, then says what happened."""
        try:
            return read()
        except CHROMA_ERRORS as ex:
            log.info("reading %s failed (%s); reconnecting to the store", what, _reason(ex))
        self.reload()
        try:
            return read()
        except CHROMA_ERRORS as ex:
            raise StoreReadError(
                f"cannot read {what} from the store at {self.location}: {_reason(ex)}. Another process may be "
                "changing it: try again in a moment; if it keeps failing, check the store with `qa ls`"
            ) from ex

    def _write(self, what: str, write: Callable[[], T]) -> T:
        try:
            return write()
        except CHROMA_ERRORS as ex:
            raise StoreError(
                f"writing {what} to the store at {self.location} failed: {_reason(ex)}. What was active before "
                "is still served; run the command again"
            ) from ex

    # ---- registry ------------------------------------------------------------------------------

    def registry_stamp(self) -> str:
        """Changes in the same write as every report flip or removal, by any process (0.5 ms to read)."""
        got = self._read(
            "the registry stamp", lambda: self.reports_col.get(ids=[STAMP_ID], include=["metadatas"])
        )
        return str((got["metadatas"][0] or {}).get("stamp", "")) if got["ids"] else ""

    def _sync(self) -> str:
        """The stamp now; one this Store neither saw nor wrote means another process wrote: reconnect."""
        if self.read_only is not None and self.read_only.changed():  # written elsewhere: copy it again
            self.reload()
        stamp = self.registry_stamp()
        with self._state:
            known, self._known_stamp = self._known_stamp, stamp
        if known is not None and stamp != known and self._embedded:  # a server's index is never stale
            self.reload()
        return stamp

    def reports(self) -> list[ReportRecord]:
        """Every stored report, sorted by id. Reused until the registry stamp changes: reading the whole
        registry costs ~40 ms at 600 reports, and every search needs it."""
        stamp = self._sync()
        cached = self._registry
        if stamp and cached is not None and cached[0] == stamp:
            return list(cached[1])
        got = self._read("the report registry", lambda: self.reports_col.get(include=["metadatas"]))
        records = sorted(
            (_record(rid, meta) for rid, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
             if rid != STAMP_ID and not (meta or {}).get("deleted")),
            key=lambda r: r.report_id,
        )  # fmt: skip
        self._registry = (stamp, records) if stamp else None
        return list(records)

    def get_report(self, report_id: str) -> ReportRecord | None:
        if report_id == STAMP_ID:
            return None
        got = self._read(
            f"report {report_id!r}", lambda: self.reports_col.get(ids=[report_id], include=["metadatas"])
        )
        if not got["ids"] or (got["metadatas"][0] or {}).get("deleted"):
            return None
        return _record(got["ids"][0], got["metadatas"][0])

    def with_content(self, content_hash: str) -> list[str]:
        """The reports stored with these bytes (one indexed lookup, not a read of the whole registry)."""
        got = self._read("the report registry", lambda: self.reports_col.get(
            where={"content_hash": content_hash}, include=["metadatas"]))  # fmt: skip
        return sorted(rid for rid, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
                      if rid != STAMP_ID and not (meta or {}).get("deleted"))  # fmt: skip

    def report_text(self, report_id: str) -> str:
        """The report's clean text: its registry document, or (as written since pipeline 6) its chunks laid
        at their offsets with the whitespace between them from the record. Kept per version."""
        got = self._read(f"the text of {report_id!r}",
                         lambda: self.reports_col.get(ids=[report_id], include=["documents", "metadatas"]))  # fmt: skip
        meta = got["metadatas"][0] if got["ids"] else None
        if meta is None or report_id == STAMP_ID or meta.get("deleted"):
            raise InputError(f"no report {report_id!r} in the store; see `qa ls`", code="input.unknown_report",
                             report=report_id)  # fmt: skip
        if "text_gaps" not in meta:
            return got["documents"][0] or ""
        key = (report_id, str(meta.get("version", "")))
        if key not in self._texts:
            chunks = self.report_chunks(report_id)
            text = _laid_out(chunks, str(meta["text_gaps"]), int(meta.get("text_len", 0)))
            with self._state:
                if len(self._texts) >= 64:
                    self._texts.pop(next(iter(self._texts)))
                self._texts[key] = text
        return self._texts[key]

    def report_header(self, report_id: str) -> str:
        """The page header stripped from a report (header table, title line…), verbatim; "" if none."""
        got = self._read(f"the header of {report_id!r}",
                         lambda: self.reports_col.get(ids=[report_id], include=["metadatas"]))  # fmt: skip
        return str((got["metadatas"][0] or {}).get("header", "")) if got["ids"] else ""

    def signature(self, records: Sequence[ReportRecord] | None = None) -> str:
        """Changes whenever a report is added, replaced or removed (drives BM25 rebuilds)."""
        records = self.reports() if records is None else records
        joined = "\n".join(f"{r.report_id}\t{r.version}\t{int(r.embedded)}" for r in records)
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    def other_embedders(self) -> list[str]:
        """Embedders that have collections here besides ours (for 'wrong embedder?' hints)."""
        names = [
            getattr(c, "name", c)
            for c in self._read("the collections", lambda: self.client.list_collections())
        ]
        return sorted(
            n[len(CHUNKS_PREFIX) :] for n in names if n.startswith(CHUNKS_PREFIX) and n != self.chunks.name
        )

    # ---- the writer lock -----------------------------------------------------------------------

    def lock_holder(self) -> LockHolder | None:
        """Who holds the writer lock now (None: nobody, or not known)."""
        return self._writer.holder()

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[bool]:
        """Hold the writer lock (re-entrant in one thread); yields True on the entry that acquired it."""
        if self.read_only is not None:
            raise self.read_only.refusal()
        if not self._thread_lock.acquire(timeout=self.lock_timeout):
            raise StoreBusy(
                f"another writer in this process held the store at {self.location} for over "
                f"{self.lock_timeout:.0f}s; try again when it has finished"
            )
        try:
            first = self._depth == 0
            if first:
                self._acquire_writer_lock()
            self._depth += 1
            try:
                yield first
            finally:
                self._depth -= 1
                if first:
                    self._writer.release()
        finally:
            self._thread_lock.release()

    def _acquire_writer_lock(self) -> None:
        me = LockHolder.me(self.owner)
        started = time.monotonic()
        told: LockHolder | None = None
        wait = 0.0  # the first try does not wait: a free lock is taken at once
        while True:
            try:
                if self._writer.acquire(me, wait):
                    self.lock_waits.append(time.monotonic() - started)
                    if told is not None:
                        log.info("got the store lock after %.1fs", self.lock_waits[-1])
                    return
            except CHROMA_ERRORS as ex:
                raise StoreError(f"cannot take the store lock at {self.location}: {_reason(ex)}") from ex
            except OSError as ex:  # the lock file cannot be opened for writing (its owner, its mode)
                raise StoreReadOnly(
                    f"cannot take the store's writer lock ({LOCK_FILE} in {self.location}): {_reason(ex)}. Make "
                    "it writable by this user, or run the command as the user who owns the store"
                ) from ex
            waited = time.monotonic() - started
            holder = self._writer.holder()
            who = holder.describe() if holder else "another process"
            if waited >= self.lock_timeout:
                raise StoreBusy(
                    f"the store at {self.location} is locked by {who}, a writer, for over "
                    f"{self.lock_timeout:.0f}s; try again when it has finished"
                )
            if told is None or (holder is not None and holder != told):
                told = holder or LockHolder("another process", 0, "?", "")
                self._tell(f"waiting for the store lock held by {who} (giving up after "
                           f"{self.lock_timeout:.0f}s)…")  # fmt: skip
            wait = min(0.05, max(0.0, self.lock_timeout - waited))  # a short poll: writes hold it ~50 ms

    def _tell(self, message: str) -> None:
        if self.on_lock_wait is None:
            log.warning("%s", message)
            return
        try:
            self.on_lock_wait(message)
        except Exception as ex:  # a notice must never break the write it announces
            log.warning("lock notice failed: %s", ex)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lock for a write (or a check-then-write: ingest re-checks a report under it).
        On taking it, catch up with what other processes wrote before us."""
        with self._writer_lock() as first:
            if first:
                self._sync()
            yield

    def _check_still_locked(self, what: str) -> None:
        if self._writer.lost:
            raise StoreBusy(
                f"{what}: this writer's lock on {self.location} was broken as stale by another writer (it was "
                "not renewed for a while: the network or the Chroma server stalled); run the command again"
            )

    def _write_stamp(self, record_id: str | None = None, record: dict | None = None, text: str = "") -> None:
        """Write a new registry stamp, with a report record in the same upsert when given (the flip)."""
        stamp = _stamp()
        ids, metas, docs = [STAMP_ID], [stamp], [""]
        if record_id is not None:
            ids, metas, docs = [record_id, STAMP_ID], [record or {}, stamp], [text, ""]
        self._write("the registry", lambda: self.reports_col.upsert(
            ids=ids, embeddings=[[_place(i)] for i in ids], documents=docs, metadatas=metas))  # fmt: skip
        with self._state:
            self._known_stamp = stamp["stamp"]  # our own write: no reason to reconnect

    # ---- writes --------------------------------------------------------------------------------

    def replace_report(
        self,
        report_id: str,
        version: str,
        meta: ReportMeta,
        text: str,
        chunks: Sequence[Chunk],
        vectors: np.ndarray | None,
        source: dict[str, str | None] | None = None,
    ) -> None:
        """Store a report's new version: new chunks, then flip the active version, then drop old chunks.
        vectors None: the chunks are stored with a placeholder vector and the record says its vectors are
        pending (searchable by keywords now; `set_vectors` completes it)."""
        pending = vectors is None
        if pending:
            vectors = np.zeros((len(chunks), self.dim), dtype=np.float32)
            vectors[:, 0] = 1.0
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if any(c.report_id != report_id or c.version != version for c in chunks):
            raise ValueError("every chunk must belong to the report and version stored")
        # Chroma merges a record's metadata on upsert: every field is written, None removing one the
        # report's previous version had (a title no longer found, a pending mark, text gaps…).
        record = {
            "version": version,
            "n_chunks": len(chunks),
            "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **{k: v or None for k, v in (source or {}).items()},
            **{k: getattr(meta, k) or None for k in _META_FIELDS},
            "pending_vectors": True if pending else None,
            "year": meta.year,
            "region_path": _PATH_SEP.join(meta.region_path) or None,
            "text_gaps": None,
            "text_len": None,
        }
        with self.writing():
            for i in range(0, len(chunks), self._batch):
                part = chunks[i : i + self._batch]
                self._write(f"the chunks of {report_id!r}", lambda part=part, i=i: self.chunks.upsert(
                    ids=[c.id for c in part],
                    embeddings=np.asarray(vectors[i : i + self._batch], dtype=np.float32),
                    documents=[c.text for c in part],
                    metadatas=[_chunk_meta(c) for c in part],
                ))  # fmt: skip
            self._check_still_locked(f"storing {report_id!r}")
            # The flip: the new active version and a new registry stamp in one write.
            gaps = _gaps(text, chunks)
            if gaps is not None:  # the text is its chunks plus these gaps: not written twice
                record["text_gaps"], record["text_len"] = gaps, len(text)
            self._write_stamp(report_id, record, "" if gaps is not None else text)
            self._write(f"old chunks of {report_id!r}", lambda: self.chunks.delete(
                where={"$and": [{"report_id": report_id}, {"version": {"$ne": version}}]}))  # fmt: skip

    def set_vectors(self, report_id: str, version: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> bool:
        """Give a stored report's chunks their vectors (the background pass after a keyword-first ingest)
        and clear its pending mark, in one registry write. False when the report is gone or replaced."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        with self.writing():
            got = self._read(f"report {report_id!r}", lambda: self.reports_col.get(
                ids=[report_id], include=["metadatas", "documents"]))  # fmt: skip
            meta = dict(got["metadatas"][0] or {}) if got["ids"] else {}
            if meta.get("version") != version or meta.get("deleted"):
                return False
            for i in range(0, len(chunks), self._batch):
                part = chunks[i : i + self._batch]
                self._write(f"the vectors of {report_id!r}", lambda part=part, i=i: self.chunks.update(
                    ids=[c.id for c in part], embeddings=np.asarray(vectors[i : i + self._batch], dtype=np.float32)))  # fmt: skip
            self._check_still_locked(f"storing the vectors of {report_id!r}")
            meta["pending_vectors"] = None  # removed (Chroma merges metadata on upsert)
            self._write_stamp(report_id, meta, got["documents"][0] or "")
        return True

    def pending(self) -> list[ReportRecord]:
        """Reports stored without their vectors yet (a background pass was stopped before it finished)."""
        return [r for r in self.reports() if not r.embedded]

    def remove_report(self, report_id: str) -> bool:
        """Remove a report and all its chunks. A tombstone and a new stamp go first, in one write: the
        report is gone from search at once (in every process); its chunks and record follow."""
        with self.writing():
            if self.get_report(report_id) is None:
                return False
            self._check_still_locked(f"removing {report_id!r}")
            self._write_stamp(report_id, {"deleted": True})
            self._write(
                f"the chunks of {report_id!r}", lambda: self.chunks.delete(where={"report_id": report_id})
            )
            self._write(f"the record of {report_id!r}", lambda: self.reports_col.delete(ids=[report_id]))
        return True

    def repair(self) -> int:
        """Remove what no registry record points at — chunks of versions no report has active (a writer
        killed between its flip and its delete), tombstones and chunks of removals cut short — and return
        how many chunks went."""
        with self.writing():
            got = self._read("the report registry", lambda: self.reports_col.get(include=["metadatas"]))
            active, tombstones = set(), []
            for rid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                if rid == STAMP_ID:
                    continue
                if (meta or {}).get("deleted") or not (meta or {}).get("version"):
                    tombstones.append(rid)
                else:
                    active.add(str(meta["version"]))
            where = {"version": {"$nin": sorted(active)}} if active else None
            orphans = self._read("the chunk list", lambda: self.chunks.get(where=where, include=[]))["ids"]
            for i in range(0, len(orphans), self._batch):
                self._write("orphan chunks", lambda i=i: self.chunks.delete(ids=orphans[i : i + self._batch]))
            if tombstones:
                self._write("removed reports", lambda: self.reports_col.delete(ids=tombstones))
            if orphans or tombstones:
                self._write_stamp()  # readers reconnect: their in-memory index still holds the deleted chunks
                log.info("store repair: removed %d orphan chunks, %d unfinished removals", len(orphans),
                         len(tombstones))  # fmt: skip
            return len(orphans)

    def report_problem(self, record: ReportRecord) -> str:
        """Why a listed report is not stored as listed ("" when it is): chunks missing (another report's
        removal took them in a store written before chunks were keyed by report), or left from older
        versions. Re-ingest must then rewrite it, never call it unchanged."""
        got = self._read(f"the chunks of {record.report_id!r}", lambda: self.chunks.get(
            where={"report_id": record.report_id}, include=["metadatas"]))  # fmt: skip
        versions = Counter(str((m or {}).get("version", "")) for m in got["metadatas"] or [])
        held = versions.pop(record.version, 0)
        if held != record.n_chunks:
            return f"listed with {record.n_chunks} chunks, holding {held}"
        if versions:
            return f"{sum(versions.values())} chunks of older versions left behind"
        return ""

    # ---- reads ---------------------------------------------------------------------------------

    def query(
        self, vector: np.ndarray, k: int, versions: Sequence[str], report_ids: Sequence[str] | None = None
    ) -> list[tuple[Chunk, float]]:
        """Nearest chunks among the given report versions: (chunk, cosine distance), best first."""
        if not versions or k <= 0:
            return []
        got = self._read("the nearest chunks", lambda: self.chunks.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=_chunk_filter(versions, report_ids),
            include=["documents", "metadatas", "distances"],
        ))  # fmt: skip
        return [
            (_chunk(cid, doc, meta), float(dist))
            for cid, doc, meta, dist in zip(
                got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
            )
        ]

    def _pages(
        self, versions: Sequence[str], include: list[str], page: int, report_ids: Sequence[str] | None = None
    ) -> Iterable[dict]:
        """The chunk records of the given versions, `page` at a time (Chroma's get, paged by offset)."""
        if not versions:
            return
        offset = 0
        while True:
            got = self._read("chunks", lambda offset=offset: self.chunks.get(
                where=_chunk_filter(versions, report_ids), include=include, limit=page, offset=offset))  # fmt: skip
            yield got
            if len(got["ids"]) < page:
                return
            offset += page

    def iter_chunks(
        self, versions: Sequence[str], page: int = 5000, report_ids: Sequence[str] | None = None
    ) -> Iterable[Chunk]:
        """All chunks of the given versions (for the BM25 index and whole-report work)."""
        for got in self._pages(versions, ["documents", "metadatas"], page, report_ids):
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                yield _chunk(cid, doc, meta)

    def iter_chunk_vectors(
        self, versions: Sequence[str], page: int = 5000, report_ids: Sequence[str] | None = None
    ) -> Iterable[tuple[Chunk, np.ndarray]]:
        """All chunks of the given versions with their stored vectors (for the exact dense index)."""
        for got in self._pages(versions, ["documents", "metadatas", "embeddings"], page, report_ids):
            for cid, doc, meta, vector in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                              strict=True):  # fmt: skip
                yield _chunk(cid, doc, meta), np.asarray(vector, dtype=np.float32)

    def chunk_counts(self, versions: Sequence[str]) -> Counter[str]:
        """How many chunks the store holds per version (ids only: a chunk id starts with version[:16])."""
        wanted = {v[:16]: v for v in versions}
        counts: Counter[str] = Counter()
        if not wanted:
            return counts
        # A long $in list costs Chroma more than listing every id.
        filtered = len(wanted) <= 200
        offset, page = 0, 20000
        while True:
            got = self._read("the chunk list", lambda offset=offset: self.chunks.get(
                where=_chunk_filter(versions) if filtered else None, include=[], limit=page, offset=offset))  # fmt: skip
            counts.update(wanted[p] for p in (cid.split("-", 1)[0] for cid in got["ids"]) if p in wanted)
            if len(got["ids"]) < page:
                return counts
            offset += page

    def report_chunks(self, report_id: str) -> list[Chunk]:
        """A report's chunks in order. A report listed with chunks it does not hold is an error that says to
        re-ingest it, never a silently empty report."""
        record = None
        for _ in range(2):  # a second look when another process replaced the report while we read it
            record = self.get_report(report_id)
            if record is None:
                raise InputError(f"no report {report_id!r} in the store; see `qa ls`",
                                 code="input.unknown_report", report=report_id)  # fmt: skip
            chunks = sorted(
                self.iter_chunks([record.version], report_ids=[report_id]), key=lambda c: c.ordinal
            )
            if len(chunks) == record.n_chunks:
                return chunks
        raise damaged(record, f"listed with {record.n_chunks} chunks, holding {len(chunks)}")

    def count_chunks(self) -> int:
        return self._read("the chunk count", lambda: self.chunks.count())
