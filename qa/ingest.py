"""files → Document → chunks → vectors → store, one report at a time; a failing file never stops the rest."""

from __future__ import annotations

import dataclasses
import hashlib
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
PIPELINE_VERSION = "5"  # 5: report identity from the gazetteer (region path, level, issuer kind)


def collect_files(paths: Iterable[Path]) -> tuple[list[Path], list[IngestResult]]:
    """Expand files and folders (recursively) into report files; bad paths become failed results."""
    files: list[Path] = []
    failed: list[IngestResult] = []
    for path in paths:
        if not path.exists():
            failed.append(IngestResult(str(path), None, "failed", "no such file or folder"))
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
                        str(path),
                        None,
                        "failed",
                        f"folder has no reports ({', '.join(sorted(loaders.SUPPORTED))})",
                    )  # fmt: skip
                )
            files.extend(found)
        else:
            files.append(path)
    return files, failed


def load_document(path: Path, settings: Settings) -> Document:
    """Load, clean and read metadata of one file."""
    document = loaders.load(path, settings.max_file_bytes)
    return dataclasses.replace(document, meta=metadata.extract(document))


def ingest_version(content_hash: str, settings: Settings, embedder_name: str) -> str:
    """Same bytes + same pipeline settings → same version → nothing to do."""
    key = "\0".join(
        [content_hash, PIPELINE_VERSION, str(settings.chunk_size), str(settings.chunk_overlap), embedder_name]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def ingest_file(
    path: Path,
    store: Store,
    embedder: Embedder,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
    report_id: str | None = None,
) -> IngestResult:
    """Ingest one file. Raises QAError (InputError/ProviderError…) for the caller to report."""
    report_id = report_id or path.name
    data = loaders.read_bytes(path, settings.max_file_bytes)
    version = ingest_version(hashlib.sha256(data).hexdigest(), settings, embedder.name)
    existing = store.get_report(report_id)
    if existing is not None and existing.version == version:
        return IngestResult(str(path), report_id, "unchanged", n_chunks=existing.n_chunks)
    document = dataclasses.replace(load_document(path, settings), report_id=report_id)
    chunks = chunk_document(
        report_id, document.text, document.meta, version, settings.chunk_size, settings.chunk_overlap
    )
    if not chunks:
        raise InputError("no text to index after cleaning", str(path))
    misses_before = getattr(embedder, "misses", 0)
    vectors = embedder.embed_passages([c.embed_text for c in chunks], progress)
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
            "header": document.header[:2000],  # the page header, verbatim: 文号, 发文日期… are quoted from it
            "format": document.format,
            "encoding": document.encoding,
        },
    )
    return IngestResult(
        str(path),
        report_id,
        "updated" if existing else "ingested",
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
    """Ingest files and folders; every file gets a result, failures carry the reason."""
    files, results = collect_files(paths)
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
