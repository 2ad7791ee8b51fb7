"""The index a process searches: a list of packs and which of their rows are alive; BM25 scored at query time
from raw term frequencies, and exact dense search over unit vectors."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qa.core.schemas import Chunk
from qa.index.packs import Pack

if TYPE_CHECKING:
    from qa.compare.table import Cell

log = logging.getLogger(__name__)

K1, B = 1.5, 0.75  # bm25s's defaults (method "lucene")
SMALL_SELECTION = 4000  # rows: a selection this small is scored range by range, not with a whole-pack mask

# ---- the index a process searches ----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    pack: int
    start: int
    end: int


class Index:
    """Packs + which rows are alive; BM25 and exact dense search over any set of report versions."""

    def __init__(self, packs: Sequence[Pack], wanted: Iterable[str] | Mapping[str, bool]) -> None:
        """wanted: the active keys; as a mapping, key → whether its rows with vectors are to be used (a
        report whose vectors came after its keywords is in an older pack without them, and a newer one)."""
        self.packs = list(packs)
        need = dict(wanted) if isinstance(wanted, Mapping) else dict.fromkeys(wanted, False)
        self.where: dict[str, Span] = {}
        self.alive = [np.zeros(p.n_rows, dtype=bool) for p in self.packs]
        for pi, pack in enumerate(self.packs):
            for i, key in enumerate(pack.keys):
                if key not in need:
                    continue
                s, e = int(pack.starts[i]), int(pack.starts[i + 1])
                has = e > s and bool(pack.has_vector[s])
                held = self.where.get(key)
                if held is None or (need[key] and has and not self.packs[held.pack].has_vector[held.start]):
                    if held is not None:
                        self.alive[held.pack][held.start : held.end] = False
                    self.where[key] = Span(pi, s, e)
                    self.alive[pi][s:e] = True
        self.n_docs = int(sum(a.sum() for a in self.alive))
        total = sum(float(p.doc_len[a].sum()) for p, a in zip(self.packs, self.alive, strict=True))
        self.avgdl = total / self.n_docs if self.n_docs else 1.0
        self._full = [bool(a.all()) for a in self.alive]
        self._vocabulary: frozenset[str] | None = None

    @property
    def dead_rows(self) -> int:
        return sum(p.n_rows for p in self.packs) - self.n_docs

    def spans(self, keys: Iterable[str]) -> list[Span]:
        return sorted((self.where[k] for k in keys if k in self.where), key=lambda s: (s.pack, s.start))

    def cells(self, indicator: str, keys: Iterable[str]) -> dict[str, tuple[Cell, Chunk]]:
        """report id → (its comparison-table cell for the indicator, the chunk the cell quotes), for the
        reports among keys that state it."""
        return {chunk.report_id: (cell, chunk) for cell, chunk in self.all_cells(keys, indicator)}

    def all_cells(self, keys: Iterable[str], indicator: str | None = None) -> list[tuple[Cell, Chunk]]:
        """The comparison-table cells of these report versions (of one indicator, when given), each with the
        chunk it quotes."""
        from qa.compare.table import Cell, Other

        out = []
        for key in keys:
            span = self.where.get(key)
            if span is None:
                continue
            pack = self.packs[span.pack]
            for cell in pack.cells.get(key, ()):
                if indicator is not None and cell["indicator"] != indicator:
                    continue
                ids = pack.columns["id"][span.start : span.end]
                if cell["chunk_id"] in ids:
                    chunk = pack.chunk(span.start + ids.index(cell["chunk_id"]))
                    others = tuple(Other(**o) for o in cell["others"])
                    out.append((Cell(**{**cell, "others": others}), chunk))
        return out

    def vocabulary(self) -> frozenset[str]:
        """Every token an alive row uses."""
        if self._vocabulary is None:
            terms: set[str] = set()
            for pack, alive, full in zip(self.packs, self.alive, self._full, strict=True):
                if full:
                    terms.update(pack.vocab)
                elif alive.any() and len(pack.rows):
                    used = np.add.reduceat(
                        alive[pack.rows].astype(np.int64), pack.indptr[:-1].clip(max=len(pack.rows) - 1)
                    )
                    used[np.diff(pack.indptr) == 0] = 0
                    terms.update(t for t, u in zip(pack.vocab, used, strict=True) if u)
            self._vocabulary = frozenset(terms)
        return self._vocabulary

    # ---- BM25 ----------------------------------------------------------------------------------

    def bm25(self, tokens: Sequence[str], keys: Iterable[str], n: int) -> list[tuple[Chunk, float]]:
        spans = self.spans(keys)
        if not spans or not tokens or not self.n_docs:
            return []
        counts: dict[str, int] = {}
        for t in tokens:
            counts[t] = counts.get(t, 0) + 1
        weights = {t: c * self._idf(t) for t, c in counts.items()}
        weights = {t: w for t, w in weights.items() if w > 0}
        if not weights:
            return []
        scored = [(pi, rows, scores) for pi, rows, scores in self._bm25_rows(weights, spans) if len(rows)]
        return self._top(scored, n)

    def _idf(self, term: str) -> float:
        df = 0
        for pack, alive, full in zip(self.packs, self.alive, self._full, strict=True):
            t = pack.term_of.get(term)
            if t is None:
                continue
            s, e = pack.indptr[t], pack.indptr[t + 1]
            df += int(e - s) if full else int(alive[pack.rows[s:e]].sum())
        return float(np.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))) if df else 0.0

    def _bm25_rows(self, weights: dict[str, float], spans: list[Span]):
        """(pack, rows, scores) per pack: the selected rows with a score > 0."""
        by_pack: dict[int, list[Span]] = {}
        for span in spans:
            by_pack.setdefault(span.pack, []).append(span)
        for pi, pack_spans in by_pack.items():
            pack = self.packs[pi]
            selected = sum(s.end - s.start for s in pack_spans)
            scores: dict[int, float] | np.ndarray
            if selected <= SMALL_SELECTION:
                parts_rows, parts_scores = [], []
                for span in pack_spans:
                    rows, scores = self._score_range(pack, weights, span.start, span.end)
                    parts_rows.append(rows)
                    parts_scores.append(scores)
                rows, scores = np.concatenate(parts_rows), np.concatenate(parts_scores)
            else:
                mask = np.zeros(pack.n_rows, dtype=bool)
                for span in pack_spans:
                    mask[span.start : span.end] = True
                rows, scores = self._score_range(pack, weights, 0, pack.n_rows)
                keep = mask[rows]
                rows, scores = rows[keep], scores[keep]
            yield pi, rows, scores

    def _score_range(self, pack: Pack, weights: dict[str, float], lo: int, hi: int):
        gathered_rows, gathered = [], []
        for term, weight in weights.items():
            t = pack.term_of.get(term)
            if t is None:
                continue
            s, e = int(pack.indptr[t]), int(pack.indptr[t + 1])
            if lo > 0 or hi < pack.n_rows:
                a, b = np.searchsorted(pack.rows[s:e], (lo, hi))
                s, e = s + int(a), s + int(b)
            if e <= s:
                continue
            rows, tf = pack.rows[s:e], pack.tf[s:e]
            norm = K1 * ((1 - B) + B * pack.doc_len[rows] / self.avgdl)
            gathered_rows.append(rows)
            gathered.append(weight * tf / (norm + tf))
        if not gathered:
            return np.zeros(0, np.int64), np.zeros(0)
        rows = np.concatenate(gathered_rows)
        uniq, inverse = np.unique(rows, return_inverse=True)
        return uniq, np.bincount(inverse, weights=np.concatenate(gathered))

    # ---- dense ---------------------------------------------------------------------------------

    def dense(self, unit: np.ndarray, keys: Iterable[str], n: int) -> list[tuple[Chunk, float]]:
        """Exact cosine over the selected rows that have vectors: range by range for a few reports, one
        product per pack (masked) for many."""
        by_pack: dict[int, list[Span]] = {}
        for span in self.spans(keys):
            by_pack.setdefault(span.pack, []).append(span)
        scored = []
        for pi, spans in by_pack.items():
            pack = self.packs[pi]
            if sum(s.end - s.start for s in spans) > SMALL_SELECTION:
                mask = np.zeros(pack.n_rows, dtype=bool)
                for span in spans:
                    mask[span.start : span.end] = True
                rows = np.flatnonzero(mask & pack.has_vector)
                if len(rows):
                    scored.append((pi, rows, (np.asarray(pack.vectors) @ unit)[rows]))
                continue
            for span in spans:
                rows = np.arange(span.start, span.end)[pack.has_vector[span.start : span.end]]
                if len(rows):
                    scored.append((pi, rows, np.asarray(pack.vectors[rows]) @ unit))
        return self._top(scored, n)

    def _top(self, scored: list[tuple[int, np.ndarray, np.ndarray]], n: int) -> list[tuple[Chunk, float]]:
        """The n best rows; equal scores in (report, offset) order."""
        if not scored:
            return []
        packs = np.concatenate([np.full(len(r), pi) for pi, r, _ in scored])
        rows = np.concatenate([r for _, r, _ in scored])
        scores = np.concatenate([s for _, _, s in scored]).astype(np.float64)
        if len(scores) > n * 4:
            cut = np.argpartition(-scores, n * 4)[: n * 4]
            packs, rows, scores = packs[cut], rows[cut], scores[cut]
        chunks = [self.packs[pi].chunk(int(r)) for pi, r in zip(packs, rows, strict=True)]
        order = sorted(range(len(chunks)), key=lambda i: (-scores[i], chunks[i].report_id, chunks[i].start))[
            :n
        ]
        return [(chunks[i], float(scores[i])) for i in order]
