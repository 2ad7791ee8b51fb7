"""Hybrid retrieval: dense + BM25 over CJK unigrams+bigrams, fused by weighted reciprocal rank.

The BM25 index and the exact dense index are derived from the store (one source of truth) and rebuilt
when the store's signature (report ids + active versions) changes. A question that names a region or
report is narrowed to it (qa.scope decides which reports may answer); one asked across reports gives each
report a turn.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qa import scope
from qa.config import Settings
from qa.embeddings import Embedder
from qa.errors import EmptyIndexError
from qa.schemas import Chunk, Hit, ReportRecord
from qa.scope import asks_across_reports
from qa.store import Store

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
    versions: np.ndarray
    bm25: object | None
    vocabulary: frozenset[str] = frozenset()
    vectors: np.ndarray | None = None  # rows match chunks, L2-normalised; None: ask Chroma (ANN)


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
        self._pieces: dict[str, _Piece] = {}  # version → piece
        self._vocab: dict[str, int] = {}  # token → id; only grows, so the pieces' ids stay valid
        self._lock = threading.Lock()

    # ---- derived index (BM25, vocabulary, exact dense) -------------------------------------------

    def index(self, records: Sequence[ReportRecord]) -> _Index:
        signature = self.store.signature(records)
        with self._lock:
            if self._index is None or self._index.signature != signature:
                self._index = self._build_index(records, signature)
            return self._index

    def _build_index(self, records: Sequence[ReportRecord], signature: str) -> _Index:
        import bm25s
        from bm25s.tokenization import Tokenized

        ordered = sorted(records, key=lambda r: r.report_id)
        exact = sum(r.n_chunks for r in ordered) <= self.settings.exact_dense_max
        stale = [r.version for r in ordered
                 if r.version not in self._pieces or (exact and self._pieces[r.version].vectors is None)]  # fmt: skip
        if stale:
            self._pieces.update(self._read_pieces(stale, exact))
        self._pieces = {r.version: self._pieces[r.version] for r in ordered if r.version in self._pieces}
        pieces = list(self._pieces.values())
        chunks = [c for p in pieces for c in p.chunks]
        chunk_versions = np.array([c.version for c in chunks])
        if not chunks:
            return _Index(signature, [], chunk_versions, None)
        bm25 = bm25s.BM25()
        bm25.index(
            Tokenized(ids=[ids for p in pieces for ids in p.token_ids], vocab=self._vocab),
            show_progress=False,
        )
        vocabulary = frozenset().union(*(p.terms for p in pieces))
        vectors = np.vstack([p.vectors for p in pieces if len(p.chunks)]) if exact else None
        return _Index(signature, chunks, chunk_versions, bm25, vocabulary, vectors)

    def _read_pieces(self, versions: list[str], with_vectors: bool) -> dict[str, _Piece]:
        """Read, tokenize (and normalise the vectors of) the given report versions."""
        read: dict[str, list[tuple[Chunk, np.ndarray | None]]] = {v: [] for v in versions}
        if with_vectors:
            for chunk, vector in self.store.iter_chunk_vectors(versions):
                read[chunk.version].append((chunk, vector))
        else:
            for chunk in self.store.iter_chunks(versions):
                read[chunk.version].append((chunk, None))
        pieces = {}
        for version, pairs in read.items():
            pairs.sort(key=lambda cv: cv[0].start)
            tokens = [tokenize(f"{c.section} {c.text}") for c, _ in pairs]
            vectors = None
            if with_vectors:
                matrix = (
                    np.vstack([v for _, v in pairs]) if pairs else np.empty((0, self.store.dim), np.float32)
                )
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                vectors = (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)
            pieces[version] = _Piece(
                chunks=[c for c, _ in pairs],
                token_ids=[[self._vocab.setdefault(t, len(self._vocab)) for t in ts] for ts in tokens],
                terms=frozenset(t for ts in tokens for t in ts),
                vectors=vectors,
            )
        return pieces

    def vocabulary(self) -> frozenset[str]:
        """Every token (CJK unigram/bigram, word, number) the stored reports use."""
        return self.index(self.store.reports()).vocabulary

    # ---- BM25 ----------------------------------------------------------------------------------

    def bm25(
        self, question: str, versions: Sequence[str], records: Sequence[ReportRecord], n: int
    ) -> list[Chunk]:
        index = self.index(records)
        tokens = tokenize(question)
        if index.bm25 is None or not tokens:
            return []
        scores = np.asarray(index.bm25.get_scores(tokens), dtype=np.float64)
        scores[~np.isin(index.versions, list(versions))] = -1.0
        top = np.argsort(-scores, kind="stable")[:n]
        return [index.chunks[i] for i in top if scores[i] > 0]

    # ---- dense ---------------------------------------------------------------------------------

    def dense(
        self, question: str, versions: Sequence[str], records: Sequence[ReportRecord], n: int
    ) -> list[Chunk]:
        """Nearest chunks by cosine: exact over the derived vectors (deterministic; Chroma's HNSW graph is
        rebuilt per store and a filtered search over a small report is approximate), or Chroma's ANN
        query for a store past exact_dense_max chunks (server / cluster scale)."""
        vector = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        index = self.index(records)
        if index.vectors is None:
            return [chunk for chunk, _ in self.store.query(vector, n, versions)]
        if not index.chunks:
            return []
        similarity = index.vectors @ (vector / (np.linalg.norm(vector) or 1.0))
        similarity[~np.isin(index.versions, list(versions))] = -np.inf
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
        records = self.store.reports()
        if not records:
            raise EmptyIndexError("the store has no reports yet; run `qa ingest PATH` first")
        selection = self.select(question, records, report_ids, regions, years, auto_scope)
        spread = len(selection.reports) > 1 and (selection.reason == "named" or asks_across_reports(question))
        hits = self.search_reports(question, selection.reports, k, mode=mode, spread=spread, records=records)
        return SearchResult(hits, selection, records)

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
        """Top-k chunks of these reports; spread: each report gets a turn (round-robin)."""
        records = list(records if records is not None else self.store.reports())
        wanted = set(report_ids)
        versions = [r.version for r in records if r.report_id in wanted]
        if not versions:
            return []
        pool = max(k * 4, 20)
        ranked: list[tuple[list[Chunk], float, str]] = []
        if mode in ("hybrid", "dense"):
            ranked.append(
                (self.dense(question, versions, records, pool), self.settings.dense_weight, "dense")
            )
        if mode in ("hybrid", "bm25"):
            ranked.append((self.bm25(question, versions, records, pool), self.settings.bm25_weight, "bm25"))
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
