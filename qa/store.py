"""Chroma adapter (embedded PersistentClient, or HttpClient for a server): the only module that imports
chromadb. We always pass embeddings ourselves: Chroma's default embedding function downloads a model.

Two collections per embedder: `qa-chunks-<embedder>` (one record per chunk) and `qa-reports-<embedder>`
(one record per report: metadata, clean text and the *active version*). Replacing a report writes the
new chunks first, then flips the active version in one upsert, then deletes the old chunks; searches
only see chunks of active versions, so a crash leaves the old or the new version, never a mix.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlparse

import numpy as np

from qa.config import Settings
from qa.errors import ConfigError, InputError
from qa.schemas import Chunk, ReportMeta, ReportRecord

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import chromadb  # noqa: E402  (telemetry must be off before import)
import chromadb.errors  # noqa: E402

CHUNKS_PREFIX = "qa-chunks-"
REPORTS_PREFIX = "qa-reports-"
STAMP_ID = "__registry__"  # a record in the reports collection whose stamp changes with every write
_META_FIELDS = ("title", "issuer", "publisher", "region", "publish_date", "doc_number", "index_no",
                "region_code", "level", "issuer_kind")  # fmt: skip
_PATH_SEP = " › "  # region_path is stored as one string (Chroma metadata values are scalars)


def _client_settings() -> chromadb.Settings:
    return chromadb.Settings(anonymized_telemetry=False, allow_reset=False)


def open_client(settings: Settings) -> tuple[chromadb.ClientAPI, str]:
    """Embedded client under QA_DATA_DIR, or an HTTP client when QA_CHROMA_URL is set."""
    if settings.chroma_url:
        url = urlparse(
            settings.chroma_url if "://" in settings.chroma_url else "http://" + settings.chroma_url
        )
        if not url.hostname:
            raise ConfigError(
                f"QA_CHROMA_URL={settings.chroma_url!r} is not a URL like http://localhost:8000"
            )
        ssl = url.scheme == "https"
        port = url.port or (443 if ssl else 8000)
        try:
            client = chromadb.HttpClient(host=url.hostname, port=port, ssl=ssl, settings=_client_settings())
            client.heartbeat()
        except Exception as ex:  # chromadb raises assorted httpx/ValueError types for a dead server
            raise ConfigError(
                f"cannot reach the Chroma server at {settings.chroma_url} (QA_CHROMA_URL): "
                f"{type(ex).__name__}. Start it with `chroma run --path DIR --port {port}` "
                "or unset QA_CHROMA_URL to use the embedded store"
            ) from ex
        return client, settings.chroma_url
    path = settings.data_dir / "chroma"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=_client_settings()), str(path)
    except OSError as ex:
        raise ConfigError(
            f"cannot use {path} for the store ({ex}); set QA_DATA_DIR to a writable folder"
        ) from ex


class Store:
    def __init__(self, client: chromadb.ClientAPI, embedder_name: str, dim: int, location: str = "") -> None:
        self.client = client
        self.embedder_name = embedder_name
        self.dim = dim
        self.location = location
        self.chunks = client.get_or_create_collection(
            CHUNKS_PREFIX + embedder_name,
            embedding_function=None,
            metadata={"embedder": embedder_name, "dim": dim},
            configuration={"hnsw": {"space": "cosine"}},
        )
        stored_dim = (self.chunks.metadata or {}).get("dim")
        if stored_dim is not None and int(stored_dim) != dim:
            raise ConfigError(
                f"collection {self.chunks.name} holds {stored_dim}-dimensional vectors but embedder "
                f"{embedder_name} makes {dim}-dimensional ones; use the embedder the store was built with "
                "or a fresh QA_DATA_DIR"
            )
        self.reports_col = client.get_or_create_collection(
            REPORTS_PREFIX + embedder_name, embedding_function=None, metadata={"embedder": embedder_name}
        )
        self._batch = max(1, min(client.get_max_batch_size(), 2000))
        self._registry: tuple[str, list[ReportRecord]] | None = None  # (stamp, records)
        if not self.registry_stamp():  # a new store, or one written before stamps existed
            self.reports_col.upsert(ids=[STAMP_ID], embeddings=[[1.0]], documents=[""], metadatas=[_stamp()])

    @classmethod
    def open(cls, settings: Settings, embedder_name: str, dim: int) -> Store:
        client, location = open_client(settings)
        return cls(client, embedder_name, dim, location)

    # ---- registry ------------------------------------------------------------------------------

    def registry_stamp(self) -> str:
        """Changes in the same write as every report flip or removal, by any process (0.5 ms to read)."""
        got = self.reports_col.get(ids=[STAMP_ID], include=["metadatas"])
        return str((got["metadatas"][0] or {}).get("stamp", "")) if got["ids"] else ""

    def reports(self) -> list[ReportRecord]:
        """Every stored report, sorted by id. Reused until the registry stamp changes: reading the whole
        registry costs ~40 ms at 600 reports, and every search needs it."""
        stamp = self.registry_stamp()
        if stamp and self._registry is not None and self._registry[0] == stamp:
            return list(self._registry[1])
        got = self.reports_col.get(include=["metadatas"])
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
        got = self.reports_col.get(ids=[report_id], include=["metadatas"])
        if not got["ids"] or (got["metadatas"][0] or {}).get("deleted"):
            return None
        return _record(got["ids"][0], got["metadatas"][0])

    def report_text(self, report_id: str) -> str:
        got = self.reports_col.get(ids=[report_id], include=["documents", "metadatas"])
        if not got["ids"] or report_id == STAMP_ID or (got["metadatas"][0] or {}).get("deleted"):
            raise InputError(f"no report {report_id!r} in the store; see `qa ls`")
        return got["documents"][0] or ""

    def report_header(self, report_id: str) -> str:
        """The page header stripped from a report (header table, title line…), verbatim; "" if none."""
        got = self.reports_col.get(ids=[report_id], include=["metadatas"])
        return str((got["metadatas"][0] or {}).get("header", "")) if got["ids"] else ""

    def signature(self, records: Sequence[ReportRecord] | None = None) -> str:
        """Changes whenever a report is added, replaced or removed (drives BM25 rebuilds)."""
        records = self.reports() if records is None else records
        joined = "\n".join(f"{r.report_id}\t{r.version}" for r in records)
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    def other_embedders(self) -> list[str]:
        """Embedders that have collections here besides ours (for 'wrong embedder?' hints)."""
        names = [getattr(c, "name", c) for c in self.client.list_collections()]
        return sorted(
            n[len(CHUNKS_PREFIX) :] for n in names if n.startswith(CHUNKS_PREFIX) and n != self.chunks.name
        )

    # ---- writes --------------------------------------------------------------------------------

    def replace_report(
        self,
        report_id: str,
        version: str,
        meta: ReportMeta,
        text: str,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        source: dict[str, str | None] | None = None,
    ) -> None:
        """Store a report's new version: new chunks, then flip the active version, then drop old chunks."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        for i in range(0, len(chunks), self._batch):
            part = chunks[i : i + self._batch]
            self.chunks.upsert(
                ids=[c.id for c in part],
                embeddings=np.asarray(vectors[i : i + self._batch], dtype=np.float32),
                documents=[c.text for c in part],
                metadatas=[_chunk_meta(c) for c in part],
            )
        record = {
            "version": version,
            "n_chunks": len(chunks),
            "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **{k: v for k, v in (source or {}).items() if v},
            **{k: getattr(meta, k) for k in _META_FIELDS if getattr(meta, k)},
        }
        if meta.year is not None:
            record["year"] = meta.year
        if meta.region_path:
            record["region_path"] = _PATH_SEP.join(meta.region_path)
        # The flip: the new active version and a new registry stamp in one write.
        self.reports_col.upsert(
            ids=[report_id, STAMP_ID], embeddings=[[1.0], [1.0]], documents=[text, ""],
            metadatas=[record, _stamp()],
        )  # fmt: skip
        self.chunks.delete(where={"$and": [{"report_id": report_id}, {"version": {"$ne": version}}]})

    def remove_report(self, report_id: str) -> bool:
        """Remove a report and all its chunks. A tombstone and a new stamp go first, in one write: the
        report is gone from search at once (in every process); its chunks and record follow."""
        if self.get_report(report_id) is None:
            return False
        self.reports_col.upsert(
            ids=[report_id, STAMP_ID], embeddings=[[1.0], [1.0]], documents=["", ""],
            metadatas=[{"deleted": True}, _stamp()],
        )  # fmt: skip
        self.chunks.delete(where={"report_id": report_id})
        self.reports_col.delete(ids=[report_id])
        return True

    # ---- reads ---------------------------------------------------------------------------------

    def query(self, vector: np.ndarray, k: int, versions: Sequence[str]) -> list[tuple[Chunk, float]]:
        """Nearest chunks among the given report versions: (chunk, cosine distance), best first."""
        if not versions or k <= 0:
            return []
        got = self.chunks.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=_versions_filter(versions),
            include=["documents", "metadatas", "distances"],
        )
        return [
            (_chunk(cid, doc, meta), float(dist))
            for cid, doc, meta, dist in zip(
                got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
            )
        ]

    def _pages(self, versions: Sequence[str], include: list[str], page: int) -> Iterable[dict]:
        """The chunk records of the given versions, `page` at a time (Chroma's get, paged by offset)."""
        if not versions:
            return
        offset = 0
        while True:
            got = self.chunks.get(
                where=_versions_filter(versions), include=include, limit=page, offset=offset
            )
            yield got
            if len(got["ids"]) < page:
                return
            offset += page

    def iter_chunks(self, versions: Sequence[str], page: int = 5000) -> Iterable[Chunk]:
        """All chunks of the given versions (for the BM25 index and whole-report work)."""
        for got in self._pages(versions, ["documents", "metadatas"], page):
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                yield _chunk(cid, doc, meta)

    def iter_chunk_vectors(
        self, versions: Sequence[str], page: int = 5000
    ) -> Iterable[tuple[Chunk, np.ndarray]]:
        """All chunks of the given versions with their stored vectors (for the exact dense index)."""
        for got in self._pages(versions, ["documents", "metadatas", "embeddings"], page):
            for cid, doc, meta, vector in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                              strict=True):  # fmt: skip
                yield _chunk(cid, doc, meta), np.asarray(vector, dtype=np.float32)

    def report_chunks(self, report_id: str) -> list[Chunk]:
        record = self.get_report(report_id)
        if record is None:
            raise InputError(f"no report {report_id!r} in the store; see `qa ls`")
        return sorted(self.iter_chunks([record.version]), key=lambda c: c.ordinal)

    def count_chunks(self) -> int:
        return self.chunks.count()


def _stamp() -> dict[str, str]:
    return {"stamp": uuid.uuid4().hex}


def _versions_filter(versions: Sequence[str]) -> dict:
    return {"version": {"$in": list(versions)}}


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
    )
