"""Hybrid retrieval: dense + BM25 over CJK unigrams+bigrams, fused by weighted reciprocal rank.

The BM25 index and the exact dense index are derived from the store (one source of truth), keyed by
report id + version, and rebuilt when the store's signature (report ids + active versions) changes — by
this process or any other. A report listed with chunks the store does not hold is an error that says to
re-ingest it, never an empty answer. A search that fails because another process changed the store under
it reconnects and runs once more. A question that names a region or report is narrowed to it (qa.scope
decides which reports may answer); one asked across reports gives each report a turn.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from qa import scope
from qa.config import Settings
from qa.embeddings import Embedder
from qa.errors import EmptyIndexError
from qa.schemas import Chunk, Hit, ReportRecord
from qa.scope import asks_across_reports
from qa.store import Store, StoreChanged, StoreError, damaged

T = TypeVar("T")

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
# Question scaffolding that says nothing about the passage sought.
_STOP = frozenset(
    "的 了 是 在 和 与 及 对 把 被 吗 呢 吧 啊 请 问 多少 什么 哪些 哪个 哪里 如何 怎么 怎样 是否 有没有 几 个 分别 情况 方面 "
    "请问 一下 主要 具体 哪 些 有 有哪 哪些 年度 报告 其中".split()
)


def tokenize(text: str) -> list[str]:
    """CJK unigrams + bigrams, ASCII words and numbers (decimals kept whole)."""
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    for run in _CJK_RUN.findall(text):
        tokens.extend(ch for ch in run if ch not in _STOP)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1) if run[i : i + 2] not in _STOP)
    tokens.extend(_WORD.findall(text))
    return tokens


def _key(report_id: str, version: str) -> str:
    """What the derived indexes are keyed by: the report and its version (a version's chunks are read as
    the report's only when they carry its id, so no report can answer with another one's chunks)."""
    return f"{report_id}\t{version}"


@dataclass
class _Piece:
    """One report version as derived from the store; kept across rebuilds, so a change re-reads and
    re-tokenizes only the reports that changed."""

    chunks: list[Chunk]  # in offset order
    token_ids: list[list[int]]  # per chunk, ids into the retriever's vocabulary
    terms: frozenset[str]
    vectors: np.ndarray | None  # L2-normalised rows; None when read for Chroma's (ANN) query


@dataclass
class _Index:
    """What is derived from the store and rebuilt when it changes: BM25 over every active chunk, the
    library's vocabulary, and (up to Settings.exact_dense_max chunks) the unit vectors for exact dense
    search. Chunks are kept in (report, offset) order so equal scores rank the same way every time."""

    signature: str
    chunks: list[Chunk]
    keys: np.ndarray  # _key(report, version) of each chunk
    bm25: object | None
    vocabulary: frozenset[str] = frozenset()
    vectors: np.ndarray | None = None  # rows match chunks, L2-normalised; None: ask Chroma (ANN)
    damaged: dict[str, str] = field(default_factory=dict)  # report id → what is wrong (left out of the index)
    stamp: str = ""  # the registry stamp when it was built (an index with damaged reports lives that long)


@dataclass(frozen=True)
class Selection:
    """Which reports a search ran over, and why (shown to users); refusal: none may answer (qa.scope)."""

    reports: tuple[str, ...]
    reason: str  # all | filter | named
    refusal: str = ""


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    selection: Selection
    records: list[ReportRecord] = field(default_factory=list)


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._index: _Index | None = None
        self._pieces: dict[str, _Piece] = {}  # _key(report, version) → piece
        self._vocab: dict[str, int] = {}  # token → id; only grows, so the pieces' ids stay valid
        self._lock = threading.Lock()

    # ---- derived index (BM25, vocabulary, exact dense) -------------------------------------------

    def index(self, records: Sequence[ReportRecord]) -> _Index:
        signature = self.store.signature(records)
        with self._lock:
            index = self._index
            # An index with damaged reports lasts until the next write: a re-ingest that repairs one keeps
            # its version (so the signature), but writes a new stamp.
            if (index is None or index.signature != signature
                    or (index.damaged and index.stamp != self.store.registry_stamp())):  # fmt: skip
                self._index = self._build_index(records, signature)
            return self._index

    def _build_index(self, records: Sequence[ReportRecord], signature: str) -> _Index:
        import bm25s
        from bm25s.tokenization import Tokenized

        stamp = self.store.registry_stamp()
        ordered = sorted(records, key=lambda r: r.report_id)
        exact = sum(r.n_chunks for r in ordered) <= self.settings.exact_dense_max
        wanted = {_key(r.report_id, r.version): r for r in ordered}
        stale = [key for key in wanted
                 if key not in self._pieces or (exact and self._pieces[key].vectors is None)]  # fmt: skip
        if stale:
            self._pieces.update(self._read_pieces([wanted[key] for key in stale], exact))
        problems = {}
        for key, record in wanted.items():
            held = len(self._pieces[key].chunks) if key in self._pieces else 0
            if held != record.n_chunks:
                problems[key] = f"listed with {record.n_chunks} chunks, holding {held}"
        for key in problems:  # never kept: the next build reads them again
            self._pieces.pop(key, None)
        if problems and self.store.signature() != signature:
            # Another process replaced or removed reports while we read them: not damage, a stale view.
            raise StoreChanged(f"the store at {self.store.location} changed while it was read; read it again")
        self._pieces = {key: self._pieces[key] for key in wanted if key in self._pieces}
        damaged_reports = {wanted[key].report_id: problem for key, problem in problems.items()}
        pieces = list(self._pieces.values())
        chunks = [c for p in pieces for c in p.chunks]
        chunk_keys = np.array([_key(c.report_id, c.version) for c in chunks])
        if not chunks:
            return _Index(signature, [], chunk_keys, None, damaged=damaged_reports, stamp=stamp)
        bm25 = bm25s.BM25()
        bm25.index(
            Tokenized(ids=[ids for p in pieces for ids in p.token_ids], vocab=self._vocab),
            show_progress=False,
        )
        vocabulary = frozenset().union(*(p.terms for p in pieces))
        vectors = np.vstack([p.vectors for p in pieces if len(p.chunks)]) if exact else None
        return _Index(signature, chunks, chunk_keys, bm25, vocabulary, vectors, damaged_reports, stamp)

    def _read_pieces(self, records: list[ReportRecord], with_vectors: bool) -> dict[str, _Piece]:
        """Read, tokenize (and normalise the vectors of) the given reports' active versions. A chunk counts
        for a report only when it carries the report's id (stores written before ids were keyed by report
        could share a version between two reports)."""
        read: dict[str, list[tuple[Chunk, np.ndarray | None]]] = {
            _key(r.report_id, r.version): [] for r in records
        }
        versions = sorted({r.version for r in records})
        pairs_read = (
            self.store.iter_chunk_vectors(versions)
            if with_vectors
            else ((chunk, None) for chunk in self.store.iter_chunks(versions))
        )
        for chunk, vector in pairs_read:
            key = _key(chunk.report_id, chunk.version)
            if key in read:
                read[key].append((chunk, vector))
        pieces = {}
        for key, pairs in read.items():
            pairs.sort(key=lambda cv: cv[0].start)
            tokens = [tokenize(f"{c.section} {c.text}") for c, _ in pairs]
            vectors = None
            if with_vectors:
                matrix = (
                    np.vstack([v for _, v in pairs]) if pairs else np.empty((0, self.store.dim), np.float32)
                )
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                vectors = (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)
            pieces[key] = _Piece(
                chunks=[c for c, _ in pairs],
                token_ids=[[self._vocab.setdefault(t, len(self._vocab)) for t in ts] for ts in tokens],
                terms=frozenset(t for ts in tokens for t in ts),
                vectors=vectors,
            )
        return pieces

    def vocabulary(self) -> frozenset[str]:
        """Every token (CJK unigram/bigram, word, number) the stored reports use."""
        return self._retrying(lambda: self.index(self.store.reports()).vocabulary)

    def _retrying(self, run: Callable[[], T]) -> T:
        """Run a read of the store; when another process changed the store under it (a stale view, or
        Chroma's 'Error finding id' after its write), reconnect and run it once more. A second failure is
        raised: a StoreError whose message says what to do."""
        try:
            return run()
        except StoreError as ex:
            if not ex.retryable:
                raise
        self.store.reload()
        return run()

    @staticmethod
    def _keys(records: Sequence[ReportRecord], versions: Sequence[str],
              report_ids: Sequence[str] | None = None) -> list[str]:  # fmt: skip
        """The index keys of these versions (of these reports only, when given)."""
        wanted_versions, wanted_reports = set(versions), set(report_ids or ())
        return [_key(r.report_id, r.version) for r in records
                if r.version in wanted_versions and (not report_ids or r.report_id in wanted_reports)]  # fmt: skip

    # ---- BM25 ----------------------------------------------------------------------------------

    def bm25(
        self, question: str, versions: Sequence[str], records: Sequence[ReportRecord], n: int,
        report_ids: Sequence[str] | None = None,
    ) -> list[Chunk]:  # fmt: skip
        index = self.index(records)
        tokens = tokenize(question)
        if index.bm25 is None or not tokens:
            return []
        scores = np.asarray(index.bm25.get_scores(tokens), dtype=np.float64)
        scores[~np.isin(index.keys, self._keys(records, versions, report_ids))] = -1.0
        top = np.argsort(-scores, kind="stable")[:n]
        return [index.chunks[i] for i in top if scores[i] > 0]

    # ---- dense ---------------------------------------------------------------------------------

    def dense(
        self, question: str, versions: Sequence[str], records: Sequence[ReportRecord], n: int,
        report_ids: Sequence[str] | None = None,
    ) -> list[Chunk]:  # fmt: skip
        """Nearest chunks by cosine: exact over the derived vectors (deterministic; Chroma's HNSW graph is
        rebuilt per store and a filtered search over a small report is approximate), or Chroma's ANN
        query for a store past exact_dense_max chunks (server / cluster scale)."""
        vector = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        index = self.index(records)
        if index.vectors is None:
            keys = set(self._keys(records, versions, report_ids))
            owners = sorted({key.split("\t", 1)[0] for key in keys})
            return [chunk for chunk, _ in self.store.query(vector, n, versions, owners)
                    if _key(chunk.report_id, chunk.version) in keys]  # fmt: skip
        if not index.chunks:
            return []
        similarity = index.vectors @ (vector / (np.linalg.norm(vector) or 1.0))
        similarity[~np.isin(index.keys, self._keys(records, versions, report_ids))] = -np.inf
        top = np.argsort(-similarity, kind="stable")[:n]
        return [index.chunks[i] for i in top if np.isfinite(similarity[i])]

    # ---- hybrid --------------------------------------------------------------------------------

    def select(
        self,
        question: str,
        records: Sequence[ReportRecord],
        report_ids: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        years: Sequence[int] | None = None,
        auto_scope: bool = True,
    ) -> Selection:
        """The user's filters, narrowed to the question's scope (places, issuers, years) when auto_scope."""
        if not auto_scope:
            plain = scope.Scope()
            routed = scope.route(
                plain, question, records, report_ids=report_ids, regions=regions, years=years
            )
        else:
            asked = scope.parse(question, records)
            routed = scope.route(asked, question, records, report_ids=report_ids, regions=regions,
                                 years=years, text_of=self.store.report_text)  # fmt: skip
        return Selection(routed.reports, routed.reason, routed.refusal)

    def search(
        self,
        question: str,
        k: int = 5,
        report_ids: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        years: Sequence[int] | None = None,
        mode: str = "hybrid",
        auto_scope: bool = True,
    ) -> SearchResult:
        """Top-k chunks for a question. mode: hybrid | dense | bm25."""

        def run() -> SearchResult:
            records = self.store.reports()
            if not records:
                raise EmptyIndexError("the store has no reports yet; run `qa ingest PATH` first")
            selection = self.select(question, records, report_ids, regions, years, auto_scope)
            spread = len(selection.reports) > 1 and (
                selection.reason == "named" or asks_across_reports(question)
            )
            hits = self._search_reports(question, selection.reports, k, mode, spread, records)
            return SearchResult(hits, selection, records)

        return self._retrying(run)

    def search_reports(
        self,
        question: str,
        report_ids: Sequence[str],
        k: int = 5,
        *,
        mode: str = "hybrid",
        spread: bool = False,
        records: Sequence[ReportRecord] | None = None,
    ) -> list[Hit]:
        """Top-k chunks of these reports; spread: each report gets a turn (round-robin). Raises ReportDamaged
        when one of them is listed with chunks the store does not hold."""
        try:
            return self._search_reports(question, report_ids, k, mode, spread,
                                        list(records if records is not None else self.store.reports()))  # fmt: skip
        except StoreError as ex:
            if not ex.retryable:
                raise
        self.store.reload()  # the caller's records may be what changed: read them again
        return self._search_reports(question, report_ids, k, mode, spread, self.store.reports())

    def _search_reports(
        self, question: str, report_ids: Sequence[str], k: int, mode: str, spread: bool,
        records: Sequence[ReportRecord],
    ) -> list[Hit]:  # fmt: skip
        wanted = set(report_ids)
        chosen = [r for r in records if r.report_id in wanted]
        if not chosen:
            return []
        index = self.index(records)
        broken = [r for r in chosen if r.report_id in index.damaged]
        if broken:
            raise damaged(broken[0], index.damaged[broken[0].report_id])
        versions = [r.version for r in chosen]
        owners = [r.report_id for r in chosen]
        pool = max(k * 4, 20)
        ranked: list[tuple[list[Chunk], float, str]] = []
        if mode in ("hybrid", "dense"):
            ranked.append(
                (self.dense(question, versions, records, pool, owners), self.settings.dense_weight, "dense")
            )
        if mode in ("hybrid", "bm25"):
            ranked.append(
                (self.bm25(question, versions, records, pool, owners), self.settings.bm25_weight, "bm25")
            )
        fused = fuse(ranked, pool, self.settings.rrf_k)
        return diversify(fused, k) if spread else fused[:k]


def diversify(hits: Sequence[Hit], k: int) -> list[Hit]:
    """Round-robin over reports (each report's hits in rank order; reports ordered by their best hit)."""
    by_report: dict[str, list[Hit]] = {}
    for hit in hits:
        by_report.setdefault(hit.chunk.report_id, []).append(hit)
    queues = list(by_report.values())  # insertion order = order of each report's best hit
    picked: list[Hit] = []
    depth = 0
    while len(picked) < k and any(depth < len(q) for q in queues):
        picked.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return picked[:k]


def fuse(ranked: Sequence[tuple[list[Chunk], float, str]], k: int, rrf_k: int = 60) -> list[Hit]:
    """Weighted reciprocal-rank fusion: score = Σ weight / (rrf_k + rank)."""
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    ranks: dict[str, dict[str, int]] = {}
    for results, weight, name in ranked:
        for rank, chunk in enumerate(results, start=1):
            scores[chunk.id] = scores.get(chunk.id, 0.0) + weight / (rrf_k + rank)
            chunks[chunk.id] = chunk
            ranks.setdefault(chunk.id, {})[name] = rank
    order = sorted(scores, key=lambda cid: (-scores[cid], chunks[cid].report_id, chunks[cid].start))[:k]
    return [Hit(chunks[cid], scores[cid], ranks[cid].get("dense"), ranks[cid].get("bm25")) for cid in order]
