"""files → Document → chunks → vectors → store, one report at a time; a failing file never stops the rest."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from qa.core.config import Settings
from qa.core.errors import InputError, QAError
from qa.core.schemas import Chunk, Document, IngestResult, ReportRecord
from qa.index.packs import Pack, Piece, key
from qa.index.searcher import Index
from qa.index.shelf import Shelf
from qa.ingest import identity as metadata
from qa.ingest import loaders
from qa.ingest.chunking import chunk_document
from qa.models.embeddings import Embedder
from qa.store.chroma import Store
from qa.store.errors import damaged

# Bump when loading, metadata or chunking logic changes: every report is then re-ingested once.
# 6: versions (and so chunk ids) are keyed by report id as well as content: two reports never share chunks
# 8: metadata reads townships and streets by their organ, the page's 发布机构 as issuer, 宁县教育局-style counties
# 9: an organ that names itself without its place (司法厅坚持…, 我代表县人民政府) is named with the report's place
# 10: a 政府工作报告 is dated by the year it reviews (identity.reviewed_year)
# 11: the page's 发布日期 (ReportMeta.made_public)
# 12: an organ that speaks after the genre's 在…领导下 opening clause is the issuer (沈阳市司法局); a page's
#     来源…时间 line is when it was made public, a 收录时间 (a copying site's) is no date of the report
#     a heading line that goes on past its title is a section of its own (chunking._says_more)
PIPELINE_VERSION = "12"
COMPACT_EVERY = 64  # reports: how often a long ingest merges the derived index's small packs
# ends the reason given for a report whose pack alone was written again (the CLI shows no "from cache" then)
INDEX_REBUILT = "index rebuilt from the store"


def collect_files(paths: Iterable[Path]) -> tuple[list[Path], list[IngestResult]]:
    """Expand files and folders (recursively) into report files; bad paths become failed results."""
    files: list[Path] = []
    failed: list[IngestResult] = []
    for path in paths:
        if not path.exists():
            failed.append(
                IngestResult(_shown(path), None, "failed", "no such file or folder", code="input.not_found")
            )
        elif path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in loaders.SUPPORTED
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                failed.append(
                    IngestResult(
                        _shown(path),
                        None,
                        "failed",
                        f"folder has no reports ({', '.join(sorted(loaders.SUPPORTED))})",
                        code="input.no_reports_in_folder",
                    )  # fmt: skip
                )
            files.extend(found)
        else:
            files.append(path)
    unnamed = [path for path in files if not _utf8_name(path)]
    failed += [IngestResult(_shown(path), None, "failed", "file name is not valid UTF-8: rename the file "
                            "(reports are identified by name), then ingest it again", code="input.bad_file_name")
               for path in unnamed]  # fmt: skip
    return [path for path in files if _utf8_name(path)], failed


def _utf8_name(path: Path) -> bool:
    """A name that is not UTF-8 (bytes from another system's encoding) cannot be a report id."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: Path) -> str:
    """The path as it can be printed: bytes that are not UTF-8 written as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def load_document(path: Path, settings: Settings) -> Document:
    """Load, clean and read metadata of one file."""
    document = loaders.load(path, settings.max_file_bytes)
    return dataclasses.replace(document, meta=metadata.extract(document))


def ingest_version(content_hash: str, settings: Settings, embedder_name: str, *, report_id: str) -> str:
    """Same report + same bytes + same pipeline settings → same version → nothing to do. The report id is
    part of it: a version (and every chunk id, every derived index entry) belongs to one report, so the same
    text stored under two names never shares chunks and removing one never touches the other."""
    key = "\0".join([report_id, content_hash, PIPELINE_VERSION, str(settings.chunk_size),
                     str(settings.chunk_overlap), embedder_name])  # fmt: skip
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _settled(
    store: Store, path: Path, report_id: str, version: str, content_hash: str, check_twin: bool = True
) -> tuple[IngestResult | None, str]:
    """(the result when there is nothing to write, why the stored copy must be rewritten). Nothing to write:
    the report is stored at this version with all its chunks. Refused: another report has the same bytes."""
    existing = store.get_report(report_id)
    if existing is not None and existing.version == version:
        problem = store.report_problem(existing)  # listed with chunks it does not hold, or old ones left
        if not problem:
            return IngestResult(str(path), report_id, "unchanged", n_chunks=existing.n_chunks), ""
        return None, problem
    twins = [rid for rid in store.with_content(content_hash) if rid != report_id] if check_twin else []
    twin = twins[0] if twins else None
    if twin is not None:
        # One copy per content: two names for the same bytes would answer every question twice, and a
        # renamed file would linger under its old name. The user keeps the name they choose.
        raise InputError(
            f"same content as {twin}, already in the store (identical bytes); a report is stored once: "
            f"remove {twin} first (`qa rm {twin}`) to store it under this name",
            str(path),
            code="input.duplicate",
            twin=twin,
        )
    return None, ""


def ingest_file(
    path: Path,
    store: Store,
    embedder: Embedder,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
    report_id: str | None = None,
    vectors_later: VectorPass | None = None,
) -> IngestResult:
    """Ingest one file. Raises QAError (InputError/ProviderError/StoreError…) for the caller to report.

    The slow part (load, chunk, embed) runs without the store's writer lock; whether to write at all
    (unchanged? same content as another report?) is decided again under the lock, just before writing.
    vectors_later: chunks the embedding cache does not hold are stored at once without vectors (searchable
    by keywords) and handed to this background pass, which embeds them and completes the report."""
    report_id = report_id or path.name
    data = loaders.read_bytes(path, settings.max_file_bytes)
    content_hash = hashlib.sha256(data).hexdigest()
    version = ingest_version(content_hash, settings, embedder.name, report_id=report_id)
    # unchanged? (fast: no parsing); a twin is refused only once the file is known to be a readable report
    settled, _ = _settled(store, path, report_id, version, content_hash, check_twin=False)
    if settled is not None:
        return settled
    document = dataclasses.replace(load_document(path, settings), report_id=report_id)
    _settled(store, path, report_id, version, content_hash)  # a twin is refused before anything is embedded
    chunks = chunk_document(
        report_id, document.text, document.meta, version, settings.chunk_size, settings.chunk_overlap
    )
    if not chunks:
        raise InputError("no text to index after cleaning", str(path), code="input.no_text_after_cleaning")
    misses_before = getattr(embedder, "misses", 0)
    texts = [c.embed_text for c in chunks]
    if vectors_later is not None:  # cached vectors are stored at once; the rest follow in the background
        vectors = embedder.lookup(texts) if hasattr(embedder, "lookup") else None
    else:
        vectors = embedder.embed_passages(texts, progress)
    with store.writing():  # one writer at a time; another may have stored this file while we embedded
        settled, problem = _settled(store, path, report_id, version, content_hash)
        if settled is not None:
            return settled
        existing = store.get_report(report_id)
        store.replace_report(
            report_id,
            version,
            document.meta,
            document.text,
            chunks,
            vectors,
            source={
                "source_path": str(path),
                "content_hash": document.content_hash,
                # the page header, verbatim: 文号, 发文日期… are quoted from it
                "header": document.header[:2000],
                "format": document.format,
                "encoding": document.encoding,
            },
        )
    keep_index(store, chunks, vectors)
    if vectors is None and vectors_later is not None:
        vectors_later.add(report_id, version, chunks)
    return IngestResult(
        str(path),
        report_id,
        "updated" if existing else "ingested",
        reason=f"repaired: {problem}" if problem else "",
        n_chunks=len(chunks),
        embedded=getattr(embedder, "misses", 0) - misses_before,
        pending=len(chunks) if vectors is None else 0,
    )


def keep_index(store: Store, chunks: Sequence[Chunk], vectors: np.ndarray | None,
               shelf: Shelf | None = None) -> None:  # fmt: skip
    """Add the report version just written to the derived index on disk (qa.index.packs), so that no reader
    reads it back from the store."""
    if store.index_dir is None:
        return
    piece = Piece.of(key(chunks[0].report_id, chunks[0].version), chunks, vectors)
    (shelf or Shelf(store.index_dir)).add(Pack.build([piece], store.dim))


def unindexed(store: Store, shelf: Shelf) -> dict[str, tuple[ReportRecord, str]]:
    """Stored reports whose active version no intact pack of the derived index holds (report id → (record,
    why)): their pack was found damaged (and dropped) when the shelf loaded it, or is missing."""
    if store.index_dir is None:
        return {}
    held: dict[str, bool] = {}  # key → a pack holds it with vectors
    for pack in shelf.packs():
        for i, pack_key in enumerate(pack.keys):
            s, e = int(pack.starts[i]), int(pack.starts[i + 1])
            held[pack_key] = held.get(pack_key, False) or (e > s and bool(pack.has_vector[s]))
    damage = shelf.take_damage()
    why_of = {k: d.why for d in damage for k in d.keys}
    unnamed = [d.why for d in damage if not d.keys]  # a pack whose own list of reports was unreadable
    out = {}
    for record in store.reports():
        report_key = key(record.report_id, record.version)
        if report_key in held and (held[report_key] or not record.embedded):
            continue
        why = why_of.get(report_key) or (unnamed[0] if unnamed else "")
        out[record.report_id] = (
            record,
            f"its index pack was damaged: {why}" if why else "no index pack held it",
        )
    return out


def rebuild_index(store: Store, record: ReportRecord, shelf: Shelf) -> None:
    """Write a stored report's pack again from its chunks and vectors in the store (nothing is embedded)."""
    pairs = sorted(store.iter_chunk_vectors([record.version], report_ids=[record.report_id]),
                   key=lambda cv: cv[0].start)  # fmt: skip
    if len(pairs) != record.n_chunks:
        raise damaged(record, f"listed with {record.n_chunks} chunks, holding {len(pairs)}")
    vectors = np.vstack([v for _, v in pairs]) if record.embedded else None
    keep_index(store, [c for c, _ in pairs], vectors, shelf)


def compact_index(store: Store, shelf: Shelf | None = None) -> None:
    """Merge the small packs a run of ingests left on disk (qa.index.packs.Shelf.compact), so a reader loads
    a few packs, not one per report. A run passes its own shelf: packs it loaded are not read again."""
    if store.index_dir is None:
        return
    shelf = shelf or Shelf(store.index_dir)
    shelf.compact(Index(shelf.packs(), {key(r.report_id, r.version): r.embedded for r in store.reports()}))


class VectorPass:
    """The background pass: embeds the chunks of reports stored without vectors, one report at a time in
    the order given, and completes each in the store (qa.store.chroma.Store.set_vectors) and the derived index.
    A failure leaves the report searchable by keywords and is reported; `qa ingest` resumes it."""

    def __init__(self, store: Store, embedder: Embedder, progress: Callable[[int], None] | None = None,
                 on_queued: Callable[[int], None] | None = None) -> None:  # fmt: skip
        self.store, self.embedder, self.progress, self.on_queued = store, embedder, progress, on_queued
        self.failures: list[tuple[str, str]] = []  # (report id, why)
        self.done = 0  # reports completed
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="qa-vectors", daemon=True)
        self._thread.start()

    def add(self, report_id: str, version: str, chunks: Sequence[Chunk]) -> None:
        if self.on_queued:
            self.on_queued(len(chunks))
        self._queue.put((report_id, version, list(chunks)))

    def resume(self) -> int:
        """Queue the reports an earlier pass left without vectors; how many."""
        pending = self.store.pending()
        for record in pending:
            self.add(record.report_id, record.version, self.store.report_chunks(record.report_id))
        return len(pending)

    def finish(self) -> list[tuple[str, str]]:
        """Wait until every queued report is done; the failures."""
        self._queue.put(None)
        self._thread.join()
        return self.failures

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            report_id, version, chunks = job
            try:
                vectors = self.embedder.embed_passages([c.embed_text for c in chunks], self.progress)
                if self.store.set_vectors(report_id, version, chunks, vectors):
                    keep_index(self.store, chunks, vectors)
                    self.done += 1
            except QAError as ex:
                self.failures.append((report_id, str(ex)))
            except Exception as ex:  # the pass must end (and say why) whatever happens to one report
                self.failures.append((report_id, f"{type(ex).__name__}: {ex}"))


def ingest_paths(
    paths: Iterable[Path],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    on_result: Callable[[IngestResult], None] | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    background: bool = False,
    on_queued: Callable[[int], None] | None = None,
) -> list[IngestResult]:
    """Ingest files and folders; every file gets a result, failures carry the reason. First the store is
    cleared of what a killed writer left behind (qa.store.chroma.Store.repair).

    background: each report is stored and searchable by keywords as soon as it is read; the chunks the
    embedding cache does not hold are embedded by a background pass (progress: chunks embedded; on_queued:
    chunks handed to it), which also resumes reports an earlier pass left without vectors. Returns when
    that pass is done; a report it could not complete is a failed result (searchable by keywords)."""
    files, results = collect_files(paths)
    if files:
        store.repair()
    for result in results:
        if on_result:
            on_result(result)
    shelf = Shelf(store.index_dir, store.dim)  # one for the run: compacting loads only the packs added since
    shelf.sweep_stale()
    # Reports an intact pack does not hold (a damaged pack is dropped when loaded): "unchanged" in the store,
    # but their search index is written again from it, and the result says so.
    to_index = unindexed(store, shelf) if files else {}

    def indexed_again(result: IngestResult) -> IngestResult:
        record, why = to_index.pop(result.report_id or "", (None, ""))
        if record is None or result.status != "unchanged":
            return result
        try:
            rebuild_index(store, record, shelf)
        except QAError as ex:
            return IngestResult(result.path, result.report_id, "failed", f"{why}; rebuilding it failed: {ex}")
        return dataclasses.replace(result, status="updated", reason=f"repaired: {why}; {INDEX_REBUILT}")

    later = VectorPass(store, embedder, progress, on_queued) if background else None
    if later is not None and files:
        later.resume()
    seen: dict[str, Path] = {}
    for path in files:
        if path.name in seen and seen[path.name].resolve() != path.resolve():
            result = IngestResult(
                str(path), path.name, "failed",
                f"same file name as {seen[path.name]}; reports are identified by file name — rename one",
                code="input.same_name", other=str(seen[path.name]),
            )  # fmt: skip
        else:
            seen[path.name] = path
            try:
                written = ingest_file(path, store, embedder, settings, progress, vectors_later=later)
                result = indexed_again(written)
            except QAError as ex:
                reason = ex.reason if isinstance(ex, InputError) else str(ex)
                result = IngestResult(str(path), path.name, "failed", reason, code=ex.code, fields=ex.fields)
        results.append(result)
        if on_result:
            on_result(result)
        if len(results) % COMPACT_EVERY == 0:
            compact_index(store, shelf)
    for record, why in list(to_index.values()):  # damaged packs of reports not in this run's files
        if why.startswith("its index pack was damaged"):
            shown = record.source_path or record.report_id
            stored = IngestResult(shown, record.report_id, "unchanged", n_chunks=record.n_chunks)
            result = indexed_again(stored)
            results.append(result)
            if on_result:
                on_result(result)
    if later is not None:
        for report_id, why in later.finish():
            failed = IngestResult(report_id, report_id, "failed",
                                  f"its vectors could not be computed ({why}); it is searchable by keywords "
                                  "meanwhile: run `qa ingest` again to finish it")  # fmt: skip
            results.append(failed)
            if on_result:
                on_result(failed)
    if files:
        compact_index(store, shelf)
    return results
