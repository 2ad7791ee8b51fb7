"""How chunks and report records are laid out in Chroma's collections (metadata fields, ids, filters, a
report's text kept as the gaps between its chunks)."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import TypeVar

from qa.core.schemas import Chunk, ReportMeta, ReportRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


CHUNKS_PREFIX = "qa-chunks-"
REPORTS_PREFIX = "qa-reports-"
STAMP_ID = "__registry__"  # a record in the reports collection whose stamp changes with every write
_META_FIELDS = ("title", "issuer", "publisher", "region", "publish_date", "doc_number", "index_no",
                "region_code", "level", "issuer_kind", "kind", "made_public")  # fmt: skip
_PATH_SEP = " › "  # region_path is stored as one string (Chroma metadata values are scalars)


def _gaps(text: str, chunks: Sequence[Chunk]) -> str | None:
    """The text between the chunks, as JSON [[offset, text], …], when the chunks are slices of the text at
    their offsets and the text is them plus these gaps (the splitter drops only whitespace); else None.
    A registry document the size of a report makes every later write to Chroma's embedded log slower."""
    covered = [False] * len(text)
    for chunk in chunks:
        if text[chunk.start : chunk.end] != chunk.text:
            return None
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    gaps: list[list] = []
    for i, (char, seen) in enumerate(zip(text, covered, strict=True)):
        if seen:
            continue
        if gaps and gaps[-1][0] + len(gaps[-1][1]) == i:
            gaps[-1][1] += char
        else:
            gaps.append([i, char])
    laid = json.dumps(gaps, ensure_ascii=False)
    return laid if len(laid) <= 4000 else None


def _laid_out(chunks: Sequence[Chunk], gaps: str, length: int) -> str:
    chars = [""] * length
    for chunk in chunks:
        chars[chunk.start : chunk.end] = list(chunk.text)
    for offset, run in json.loads(gaps):
        chars[offset : offset + len(run)] = list(run)
    return "".join(chars)


def _place(record_id: str) -> float:
    """The registry's (unused) one-dimensional vector: a value of its own per record. Equal vectors make
    Chroma's HNSW graph degenerate: with [1.0] for every record, one registry write took ~1 s at 300 reports
    and grew with every report."""
    return int.from_bytes(hashlib.sha256(record_id.encode()).digest()[:6]) / float(1 << 48)


def _stamp() -> dict[str, str]:
    return {"stamp": uuid.uuid4().hex}


def _chunk_filter(versions: Sequence[str], report_ids: Sequence[str] | None = None) -> dict:
    by_version = {"version": {"$in": list(versions)}}
    if not report_ids:
        return by_version
    return {"$and": [by_version, {"report_id": {"$in": list(report_ids)}}]}


def _chunk_meta(chunk: Chunk) -> dict:
    meta: dict[str, str | int] = {
        "report_id": chunk.report_id,
        "version": chunk.version,
        "ordinal": chunk.ordinal,
        "section": chunk.section,
        "start": chunk.start,
        "end": chunk.end,
        "title": chunk.title,
        "region": chunk.region,
    }
    if chunk.year is not None:
        meta["year"] = chunk.year
    return meta


def _chunk(chunk_id: str, text: str | None, meta: dict) -> Chunk:
    text = text or ""
    title, section = str(meta.get("title", "")), str(meta.get("section", ""))
    prefix = f"{title} · {section} · " if section else f"{title} · "
    return Chunk(
        id=chunk_id,
        report_id=str(meta["report_id"]),
        version=str(meta["version"]),
        ordinal=int(meta.get("ordinal", 0)),
        section=section,
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        text=text,
        embed_text=prefix + text,
        title=title,
        region=str(meta.get("region", "")),
        year=int(meta["year"]) if meta.get("year") is not None else None,
    )


def _record(report_id: str, meta: dict | None) -> ReportRecord:
    meta = meta or {}
    return ReportRecord(
        report_id=report_id,
        version=str(meta.get("version", "")),
        meta=ReportMeta(
            **{k: str(meta.get(k, "")) for k in _META_FIELDS if k != "publish_date"},
            year=int(meta["year"]) if meta.get("year") is not None else None,
            publish_date=str(meta["publish_date"]) if meta.get("publish_date") else None,
            region_path=tuple(str(meta["region_path"]).split(_PATH_SEP)) if meta.get("region_path") else (),
        ),
        n_chunks=int(meta.get("n_chunks", 0)),
        source_path=str(meta.get("source_path", "")),
        content_hash=str(meta.get("content_hash", "")),
        format=str(meta.get("format", "")),
        encoding=str(meta["encoding"]) if meta.get("encoding") else None,
        ingested_at=str(meta.get("ingested_at", "")),
        embedded=not meta.get("pending_vectors"),
    )
