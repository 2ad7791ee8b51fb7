"""Hybrid retrieval: dense + BM25 over CJK unigrams+bigrams, fused by weighted reciprocal rank.

The BM25 index and the exact dense index are derived from the store (one source of truth), keyed by
report id + version, and rebuilt when the store's signature (report ids + active versions) changes — by
this process or any other. A report listed with chunks the store does not hold is an error that says to
re-ingest it, never an empty answer. A search that fails because another process changed the store under
it reconnects and runs once more. A question that names a region or report is narrowed to it (qa.question.scope
decides which reports may answer); one asked across reports gives each report a turn.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from qa.core.config import Settings
from qa.core.errors import EmptyIndexError
from qa.core.schemas import Chunk, Hit, ReportRecord
from qa.index import packs, searcher, shelf
from qa.index.tokens import tokenize
from qa.models.embeddings import Embedder
from qa.question import scope
from qa.question.scope import asks_across_reports
from qa.store.chroma import Store
from qa.store.errors import StoreChanged, StoreError, damaged

if TYPE_CHECKING:
    from qa.compare.table import CompareTable, ReportColumn

T = TypeVar("T")
log = logging.getLogger(__name__)

_key = packs.key  # what the derived index is keyed by: report id + version


@dataclass
class _Index:
    """What is derived from the store for one signature (report ids + active versions): the packs' alive
    rows (qa.index.packs.Index: BM25 + exact dense), the reports left out as damaged, and the registry stamp it
    was built at (an index with damaged reports lives that long)."""

    signature: str
    search: searcher.Index
    exact: bool  # dense search over the derived vectors (else Chroma's ANN query)
    damaged: dict[str, str] = field(default_factory=dict)  # report id → what is wrong (left out of the index)
    stamp: str = ""


@dataclass(frozen=True)
class Selection:
    """Which reports a search ran over, and why (shown to users); refusal: none may answer (qa.question.scope)."""

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
        self._shelf = shelf.Shelf(store.index_dir, store.dim)
        if not store.read_only:
            self._shelf.sweep_stale()  # an index another version built: gone, this one is built again
        self._verified: set[str] = set()  # keys whose pack rows this process checked against the store
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
        """The packs on disk (and in memory) for the active versions; the versions no pack holds are read
        from the store, checked and added as one new pack. Packs read from disk are checked against the
        store's chunk counts once per process: a report whose chunks went missing is read again (and so
        found damaged), never served from the cache."""
        stamp = self.store.registry_stamp()
        wanted = {_key(r.report_id, r.version): r for r in records}
        # a report's vectors may come after its keywords: checked (and searched) apart
        state = {key: key + ("\tv" if r.embedded else "\tk") for key, r in wanted.items()}
        packs = self._shelf.packs()
        missing = self._unverified(wanted, state, _held(packs))
        fresh, problems = self._add_packs(missing, wanted, state, signature)
        packs = [*packs, *fresh]  # not the manifest again: a pack loaded above may have been dropped since
        alive = {key: wanted[key].embedded for key in wanted if key not in problems}
        search = self._compacted(searcher.Index(packs, alive), fresh, alive, signature)
        absent = [key for key in alive if key not in search.where]
        if absent:  # a report with no rows would be a false "not mentioned", cached until the next write
            raise StoreChanged(f"the search index of {self.store.location} lost {len(absent)} reports while it "
                               "was read (another process changed it); read it again")  # fmt: skip
        for damage in self._shelf.take_damage():  # its reports were read from the store above, or are gone
            log.warning("warning: %s; its reports were read from the store again", damage.describe())
        damaged_reports = {wanted[key].report_id: problem for key, problem in problems.items()}
        exact = sum(r.n_chunks for r in records) <= self.settings.exact_dense_max
        return _Index(signature, search, exact, damaged_reports, stamp)

    def _unverified(self, wanted: dict[str, ReportRecord], state: dict[str, str],
                    held: dict[str, tuple[packs.Pack, int, bool]]) -> list[str]:  # fmt: skip
        """The keys no loaded pack holds as this process verified them: to be read from the store. A pack's
        rows for a key are verified once, when their count is the count the store lists and holds."""
        # A key counts as held only when a pack this process has loaded holds it (with vectors, once the
        # report has them). What was verified once may be gone since: a pack merged or dropped by another
        # process (a `qa rm` then `qa ingest` of the same file comes back at the same version), and a key
        # verified but held by no pack would otherwise be searched as a report with no rows — a false
        # "not mentioned" for as long as the signature stays the same.
        usable = {key for key in wanted if key in held and (held[key][2] or not wanted[key].embedded)}
        unchecked = [key for key in usable if state[key] not in self._verified]
        if unchecked:
            counts = self.store.chunk_counts(sorted({wanted[k].version for k in unchecked}))
            for key in unchecked:
                pack, i, _ = held[key]
                rows = int(pack.starts[i + 1] - pack.starts[i])
                if rows == wanted[key].n_chunks == counts.get(wanted[key].version, 0):
                    self._verified.add(state[key])
        return [key for key in wanted if key not in usable or state[key] not in self._verified]

    def _add_packs(self, missing: list[str], wanted: dict[str, ReportRecord], state: dict[str, str],
                   signature: str) -> tuple[list[packs.Pack], dict[str, str]]:  # fmt: skip
        """Read the missing keys from the store into new packs on the shelf. Returns the packs built here
        (searched even if another process drops them) and the damaged keys (key → what is wrong)."""
        problems: dict[str, str] = {}
        fresh: list[packs.Pack] = []
        for batch in _batches(missing, wanted, packs.MAX_PACK_ROWS):  # a pack each: memory stays bounded
            pieces = self._read_pieces([wanted[key] for key in batch])
            for key in batch:
                got = len(pieces[key].chunks)
                if got != wanted[key].n_chunks:
                    problems[key] = f"listed with {wanted[key].n_chunks} chunks, holding {got}"
            if problems and self.store.signature() != signature:
                # Another process replaced or removed reports while we read them: not damage, a stale view.
                raise StoreChanged(
                    f"the store at {self.store.location} changed while it was read; read it again"
                )
            good = [pieces[key] for key in batch if key not in problems]
            if good:
                fresh.append(packs.Pack.build(good, self.store.dim))
                self._shelf.add(fresh[-1])
                self._verified.update(state[p.key] for p in good)
        return fresh, problems

    def _compacted(self, search: searcher.Index, fresh: Sequence[packs.Pack], alive: dict[str, bool],
                   signature: str) -> searcher.Index:  # fmt: skip
        """The index over the shelf's packs once compacted, or as it was when compacting is not safe now."""
        # Compact only when the registry now is the one these records were read from: the packs were loaded
        # after the records, and a pack another process added meanwhile holds a report this view does not
        # know yet — compacting would drop it as dead. Every pack loaded is added after its report's flip, so
        # a registry read after loading them (same signature) knows every report they hold.
        if self.store.signature() == signature and self._shelf.compact(search):
            compacted = searcher.Index(self._with(self._shelf.packs(), fresh), alive)
            # another process may have merged away what this one just merged: keep the packs in memory then
            if all(key in compacted.where for key in alive):
                return compacted
        return search

    @staticmethod
    def _with(packs: list[packs.Pack], fresh: Sequence[packs.Pack]) -> list[packs.Pack]:
        """The shelf's packs and the ones this process just built (another process may have merged or
        dropped those from the manifest already; their rows are what this search needs)."""
        names = {p.name for p in packs}
        return [*packs, *(p for p in fresh if p.name not in names)]

    def _read_pieces(self, records: list[ReportRecord]) -> dict[str, packs.Piece]:
        """Read and tokenize the given reports' active versions from the store. A chunk counts for a report
        only when it carries the report's id (stores written before ids were keyed by report could share a
        version between two reports)."""
        read: dict[str, list[tuple[Chunk, np.ndarray]]] = {_key(r.report_id, r.version): [] for r in records}
        versions = sorted({r.version for r in records})
        for chunk, vector in self.store.iter_chunk_vectors(versions):
            key = _key(chunk.report_id, chunk.version)
            if key in read:
                read[key].append((chunk, vector))
        pieces = {}
        embedded = {_key(r.report_id, r.version) for r in records if r.embedded}
        for key, pairs in read.items():
            pairs.sort(key=lambda cv: cv[0].start)
            chunks = [c for c, _ in pairs]
            # a report still waiting for its vectors holds placeholders in Chroma: never searched by them
            vectors = np.vstack([v for _, v in pairs]) if pairs and key in embedded else None
            pieces[key] = packs.Piece.of(key, chunks, vectors)
        return pieces

    def cells(self, indicator: str, report_ids: Sequence[str]) -> dict:
        """report id → (comparison-table cell, the chunk it quotes) for the indicator, from the derived index
        (computed once per report version, kept with its pack): the reports among report_ids stating it."""

        def run() -> dict:
            records = self.store.reports()
            index = self.index(records)
            wanted = set(report_ids)
            return index.search.cells(indicator, [_key(r.report_id, r.version) for r in records
                                                  if r.report_id in wanted])  # fmt: skip

        return self._retrying(run)

    def compare_table(self, columns: Sequence[ReportColumn]) -> CompareTable:
        """The comparison table (qa.compare.table) of these reports, from the cells kept in the derived index:
        what build_table computes from their chunks, without reading or re-reading thousands of reports."""
        from qa.compare.table import CompareTable
        from qa.genre.indicators import CATALOGUE

        def run() -> CompareTable:
            records = self.store.reports()
            index = self.index(records)
            wanted = {c.report_id for c in columns}
            keys = [_key(r.report_id, r.version) for r in records if r.report_id in wanted]
            broken = sorted(wanted & set(index.damaged))
            if broken:
                raise damaged(next(r for r in records if r.report_id == broken[0]), index.damaged[broken[0]])
            cells = {(cell.indicator, cell.report_id): cell for cell, _ in index.search.all_cells(keys)}
            return CompareTable(CATALOGUE, tuple(columns), cells)

        return self._retrying(run)

    def vocabulary(self) -> frozenset[str]:
        """Every token (CJK unigram/bigram, word, number) the stored reports use."""
        return self._retrying(lambda: self.index(self.store.reports()).search.vocabulary())

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
        hits = index.search.bm25(tokenize(question), self._keys(records, versions, report_ids), n)
        return [chunk for chunk, score in hits if score > 0]

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
        keys = self._keys(records, versions, report_ids)
        if not index.exact:
            embedded = {_key(r.report_id, r.version) for r in records if r.embedded}
            wanted = set(keys) & embedded
            owners = sorted({key.split("\t", 1)[0] for key in wanted})
            return [chunk for chunk, _ in self.store.query(vector, n, versions, owners)
                    if _key(chunk.report_id, chunk.version) in wanted]  # fmt: skip
        unit = vector / (np.linalg.norm(vector) or 1.0)
        return [chunk for chunk, _ in index.search.dense(unit, keys, n)]

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


def _held(packs: Sequence[packs.Pack]) -> dict[str, tuple[packs.Pack, int, bool]]:
    """key → (the pack holding it, its row in that pack, whether those rows have vectors); a pack with
    vectors for a key wins over one with its keywords only."""
    held: dict[str, tuple[packs.Pack, int, bool]] = {}
    for pack in packs:
        for i, key in enumerate(pack.keys):
            has = bool(pack.starts[i + 1] > pack.starts[i] and pack.has_vector[pack.starts[i]])
            if key not in held or (has and not held[key][2]):
                held[key] = (pack, i, has)
    return held


def _batches(keys: Sequence[str], records: dict[str, ReportRecord], rows: int) -> list[list[str]]:
    """Keys in groups of about `rows` chunks."""
    groups: list[list[str]] = [[]]
    size = 0
    for key in keys:
        if groups[-1] and size + records[key].n_chunks > rows:
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += records[key].n_chunks
    return [g for g in groups if g]


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
