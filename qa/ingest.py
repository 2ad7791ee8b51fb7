"""files → Document → chunks → vectors → store, one report at a time; a failing file never stops the rest."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from qa import loaders, metadata
from qa.chunking import chunk_document
from qa.config import Settings
from qa.embeddings import Embedder
from qa.errors import InputError, QAError
from qa.schemas import Document, IngestResult
from qa.store import Store

# Bump when loading, metadata or chunking logic changes: every report is then re-ingested once.
# 6: versions (and so chunk ids) are keyed by report id as well as content: two reports never share chunks
PIPELINE_VERSION = "6"


def collect_files(paths: Iterable[Path]) -> tuple[list[Path], list[IngestResult]]:
    """Expand files and folders (recursively) into report files; bad paths become failed results."""
    files: list[Path] = []
    failed: list[IngestResult] = []
    for path in paths:
        if not path.exists():
            failed.append(IngestResult(_shown(path), None, "failed", "no such file or folder"))
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
                    )  # fmt: skip
                )
            files.extend(found)
        else:
            files.append(path)
    unnamed = [path for path in files if not _utf8_name(path)]
    failed += [IngestResult(_shown(path), None, "failed", "file name is not valid UTF-8: rename the file "
                            "(reports are identified by name), then ingest it again") for path in unnamed]  # fmt: skip
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
        )
    return None, ""


def ingest_file(
    path: Path,
    store: Store,
    embedder: Embedder,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
    report_id: str | None = None,
) -> IngestResult:
    """Ingest one file. Raises QAError (InputError/ProviderError/StoreError…) for the caller to report.

    The slow part (load, chunk, embed) runs without the store's writer lock; whether to write at all
    (unchanged? same content as another report?) is decided again under the lock, just before writing."""
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
        raise InputError("no text to index after cleaning", str(path))
    misses_before = getattr(embedder, "misses", 0)
    vectors = embedder.embed_passages([c.embed_text for c in chunks], progress)
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
    return IngestResult(
        str(path),
        report_id,
        "updated" if existing else "ingested",
        reason=f"repaired: {problem}" if problem else "",
        n_chunks=len(chunks),
        embedded=getattr(embedder, "misses", 0) - misses_before,
    )


def ingest_paths(
    paths: Iterable[Path],
    store: Store,
    embedder: Embedder,
    settings: Settings,
    on_result: Callable[[IngestResult], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[IngestResult]:
    """Ingest files and folders; every file gets a result, failures carry the reason. First the store is
    cleared of what a killed writer left behind (qa.store.Store.repair)."""
    files, results = collect_files(paths)
    if files:
        store.repair()
    for result in results:
        if on_result:
            on_result(result)
    seen: dict[str, Path] = {}
    for path in files:
        if path.name in seen and seen[path.name].resolve() != path.resolve():
            result = IngestResult(
                str(path), path.name, "failed",
                f"same file name as {seen[path.name]}; reports are identified by file name — rename one",
            )  # fmt: skip
        else:
            seen[path.name] = path
            try:
                result = ingest_file(path, store, embedder, settings, progress)
            except QAError as ex:
                reason = ex.reason if isinstance(ex, InputError) else str(ex)
                result = IngestResult(str(path), path.name, "failed", reason)
        results.append(result)
        if on_result:
            on_result(result)
    return results
