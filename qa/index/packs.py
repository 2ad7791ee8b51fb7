"""The derived search index: BM25 postings, unit vectors and chunk columns of report versions, in immutable
packs that are kept on disk and shared by every process on the store.

A pack holds one or more report versions (keyed report id + version, so its content never changes). The
index a process searches is a list of packs plus, per pack, which rows are alive (their version is the
report's active one): adding a report adds a pack, removing one marks its rows dead — nothing is rebuilt
for the other reports. BM25 (Lucene's formula, bm25s's defaults) is scored at query time from raw term
frequencies, so the library-wide statistics (document count, mean length, document frequency) always
describe the alive rows. When dead rows outweigh alive ones, or packs pile up, the alive rows are merged
into one pack (postings re-mapped, never re-tokenized).

On disk (`<data dir>/index/<embedder>/`): one folder per pack (`.npy` arrays — vectors memory-mapped — and
`pack.json` with the vocabulary, the keys and the chunk columns) and `manifest.json` naming the packs.
Packs are written to a temporary folder and renamed into place, the manifest replaced under a file lock:
a reader sees whole packs or none. The manifest holds each pack's SHA-256 (of its files, as written), and
a pack is checked when loaded (checksum; postings, row ranges and columns in bounds; vectors finite and of
unit length): a pack that is missing, unreadable or damaged is dropped and its reports are read from the
store again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.core.files import atomic_write
from qa.core.schemas import Chunk
from qa.core.text import folded

if TYPE_CHECKING:
    from qa.compare.table import Cell

log = logging.getLogger(__name__)

K1, B = 1.5, 0.75  # bm25s's defaults (method "lucene")
_COLUMNS = (
    "id",
    "report_id",
    "version",
    "ordinal",
    "section",
    "start",
    "end",
    "text",
    "title",
    "region",
    "year",
)
MERGE_PACKS = 12  # more packs than this: the smallest are merged
MAX_PACK_ROWS = 12_000  # chunks: packs are built and merged up to this size (bounds memory at any scale)
SMALL_SELECTION = 4000  # rows: a selection this small is scored range by range, not with a whole-pack mask
UNIT_TOLERANCE = 1e-3  # a stored vector's length may differ from 1 by this much (float32 rounding)


# The code a pack's contents are computed with: the tokenizer and pack format (this module), the comparison
# cells (compare, indicators, figures, numbers) and the normaliser. Packs live in a folder named by a
# fingerprint of it (store.index_dir), so a change to any of them is a new, empty index that each report is
# packed into again from the store, instead of old postings or cells served as current.
BUILT_BY = (
    "qa.index.packs",
    "qa.compare.table",
    "qa.genre.indicators",
    "qa.genre.figures",
    "qa.genre.numbers",
    "qa.core.text",
)


def folder_for(data_dir: Path, embedder_name: str) -> Path:
    """Where a store's packs live: per embedder, and per version of the code that builds them (built_by)."""
    return data_dir / "index" / embedder_name / built_by()


def built_by() -> str:
    """A fingerprint of the code packs are built with (its source, else its compiled code); never imports it."""
    import importlib.util
    import marshal

    digest = hashlib.sha256()
    for name in BUILT_BY:
        spec = importlib.util.find_spec(name)
        loader = spec.loader if spec else None
        source = loader.get_source(name) if loader and hasattr(loader, "get_source") else None
        if source is not None:
            digest.update(source.encode("utf-8"))
        elif loader is not None and hasattr(loader, "get_code"):
            digest.update(marshal.dumps(loader.get_code(name)))
        digest.update(b"\0")
    return "built-" + digest.hexdigest()[:12]


def stale_indexes(folder: Path) -> list[Path]:
    """What an index folder's parent holds from other versions of that code: sibling built-* folders and
    packs of the layout before fingerprints (manifest.json and pack folders directly in the parent)."""
    parent = folder.parent
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p != folder and (p.name.startswith("built-") or p.name in (
        "manifest.json", "manifest.lock") or (p.is_dir() and (p / "pack.json").exists())))  # fmt: skip


class PackDamaged(ValueError):
    """A pack on disk that cannot be used as it is: unreadable, not what was written, or inconsistent."""


_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
# Question scaffolding that says nothing about the passage sought.
_STOP = frozenset(
    "的 了 是 在 和 与 及 对 把 被 吗 呢 吧 啊 请 问 多少 什么 哪些 哪个 哪里 如何 怎么 怎样 是否 有没有 几 个 分别 情况 方面 "
    "请问 一下 主要 具体 哪 些 有 有哪 哪些 年度 报告 其中".split()
)


def tokenize(text: str) -> list[str]:
    """CJK unigrams + bigrams, ASCII words and numbers (decimals kept whole): BM25's terms."""
    text = folded(text)
    tokens: list[str] = []
    for run in _CJK_RUN.findall(text):
        tokens.extend(ch for ch in run if ch not in _STOP)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1) if run[i : i + 2] not in _STOP)
    tokens.extend(_WORD.findall(text))
    return tokens


def key(report_id: str, version: str) -> str:
    """What the derived index is keyed by: the report and its version (a version's chunks are read as the
    report's only when they carry its id, so no report can answer with another one's chunks)."""
    return f"{report_id}\t{version}"


@dataclass
class Piece:
    """One report version as read from the store: its chunks in offset order, their tokens and vectors."""

    key: str
    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray | None  # rows match chunks; None when the store holds none yet

    @classmethod
    def of(cls, report_key: str, chunks: Sequence[Chunk], vectors: np.ndarray | None) -> Piece:
        """A report version's chunks with their BM25 terms."""
        return cls(report_key, list(chunks), [tokenize(f"{c.section} {c.text}") for c in chunks], vectors)


@dataclass
class Pack:
    name: str
    keys: list[str]
    starts: np.ndarray  # row where each key's rows start; len(keys) + 1
    vocab: list[str]
    indptr: np.ndarray  # int64, len(vocab) + 1: the postings of term t are rows[indptr[t]:indptr[t + 1]]
    rows: np.ndarray  # int32, ascending within each term
    tf: np.ndarray  # float32, the term's count in that row
    doc_len: np.ndarray  # float32, tokens per row
    vectors: np.ndarray  # float32 unit rows (zeros where has_vector is False)
    has_vector: np.ndarray  # bool
    columns: dict[str, list]
    # key → its comparison-table cells (qa.compare.table)
    cells: dict[str, list[dict]] = field(default_factory=dict)
    term_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.term_of:
            self.term_of = {t: i for i, t in enumerate(self.vocab)}

    @property
    def n_rows(self) -> int:
        return len(self.doc_len)

    def chunk(self, row: int) -> Chunk:
        c = {name: self.columns[name][row] for name in _COLUMNS}
        prefix = f"{c['title']} · {c['section']} · " if c["section"] else f"{c['title']} · "
        return Chunk(**c, embed_text=prefix + c["text"])

    # ---- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, pieces: Sequence[Piece], dim: int) -> Pack:
        keys = [p.key for p in pieces]
        starts = np.cumsum([0, *(len(p.chunks) for p in pieces)]).astype(np.int64)
        vocab: dict[str, int] = {}
        terms: list[np.ndarray] = []  # one array per chunk: no Python int per token (memory at scale)
        lengths: list[int] = []
        for piece in pieces:
            for tokens in piece.tokens:
                terms.append(
                    np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), np.int64, len(tokens))
                )
                lengths.append(len(tokens))
        n_rows = int(starts[-1])
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
        term_arr = np.concatenate(terms) if terms else np.zeros(0, np.int64)
        indptr, post_rows, tf = _postings(term_arr, rows, n_rows, len(vocab))
        vectors = np.zeros((n_rows, dim), dtype=np.float32)
        has_vector = np.zeros(n_rows, dtype=bool)
        for piece, start in zip(pieces, starts, strict=False):
            if piece.vectors is not None and len(piece.chunks):
                unit = _unit(piece.vectors)
                # a zero or NaN vector has no direction: such a row is found by keywords only, never ranked
                # by dense search with a meaningless score
                usable = np.abs(np.linalg.norm(unit, axis=1) - 1) < UNIT_TOLERANCE
                vectors[start : start + len(piece.chunks)] = np.where(usable[:, None], unit, 0)
                has_vector[start : start + len(piece.chunks)] = usable
        columns = {name: [getattr(c, name) for p in pieces for c in p.chunks] for name in _COLUMNS}
        return cls(uuid.uuid4().hex, keys, starts, list(vocab), indptr, post_rows, tf,
                   np.asarray(lengths, dtype=np.float32), vectors, has_vector, columns,
                   {p.key: _cells(p) for p in pieces}, vocab)  # fmt: skip

    @classmethod
    def merge(cls, parts: Sequence[tuple[Pack, np.ndarray]]) -> Pack:
        """One pack holding the rows kept (a bool mask per pack) of these packs, postings re-mapped."""
        vocab: dict[str, int] = {}
        keys, starts, all_terms, all_rows, all_tf, lens, vecs, has, cols = [], [0], [], [], [], [], [], [], []
        offset = 0
        for pack, keep in parts:
            new_row = np.cumsum(keep) - 1 + offset  # the kept rows' numbers in the merged pack
            local_to_merged = np.fromiter((vocab.setdefault(t, len(vocab)) for t in pack.vocab), np.int64,
                                          len(pack.vocab))  # fmt: skip
            term_of_posting = np.repeat(np.arange(len(pack.vocab)), np.diff(pack.indptr))
            kept = keep[pack.rows]
            all_terms.append(local_to_merged[term_of_posting[kept]])
            all_rows.append(new_row[pack.rows[kept]])
            all_tf.append(pack.tf[kept])
            for i, key in enumerate(pack.keys):
                s, e = pack.starts[i], pack.starts[i + 1]
                if e > s and keep[s]:
                    keys.append(key)
                    starts.append(starts[-1] + int(e - s))
            lens.append(pack.doc_len[keep])
            vecs.append(np.asarray(pack.vectors)[keep])
            has.append(pack.has_vector[keep])
            cols.append(
                {name: [v for v, k in zip(pack.columns[name], keep, strict=True) if k] for name in _COLUMNS}
            )
            offset += int(keep.sum())
        terms, rows, tf = np.concatenate(all_terms), np.concatenate(all_rows), np.concatenate(all_tf)
        used = np.bincount(terms, minlength=len(vocab)) > 0  # terms only dead rows used are dropped
        terms = (np.cumsum(used) - 1)[terms]
        words = [t for t, u in zip(vocab, used, strict=True) if u]
        order = np.lexsort((rows, terms))
        terms, rows, tf = terms[order], rows[order], tf[order]
        indptr = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=len(words)), out=indptr[1:])
        columns = {name: [v for c in cols for v in c[name]] for name in _COLUMNS}
        cells = {key: pack.cells.get(key, []) for pack, _ in parts for key in pack.keys if key in set(keys)}
        return cls(uuid.uuid4().hex, keys, np.asarray(starts, dtype=np.int64), words, indptr,
                   rows.astype(np.int32), tf, np.concatenate(lens), np.vstack(vecs), np.concatenate(has),
                   columns, cells)  # fmt: skip

    # ---- disk ----------------------------------------------------------------------------------

    _ARRAYS = ("starts", "indptr", "rows", "tf", "doc_len", "vectors", "has_vector")

    def save(self, folder: Path) -> str:
        """Write the pack as folder/<name>/ (atomically: a temporary folder renamed into place); its SHA-256."""
        tmp = folder / f".tmp-{self.name}"
        tmp.mkdir(parents=True)
        for name in self._ARRAYS:
            np.save(tmp / f"{name}.npy", np.asarray(getattr(self, name)))
        meta = {"keys": self.keys, "vocab": self.vocab, "columns": self.columns, "cells": self.cells}
        (tmp / "pack.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        digest = _digest(tmp)  # of the bytes on disk: what a reader will find
        os.replace(tmp, folder / self.name)
        return digest

    @classmethod
    def load(cls, folder: Path, name: str, sha256: str | None = None, dim: int | None = None) -> Pack:
        """The pack folder/<name>, checked: its files against the SHA-256 written with it (when known), then its
        contents (a pack written before checksums, or by a bug). Raises PackDamaged saying what is wrong."""
        where = folder / name
        if sha256 is not None and _digest(where) != sha256:
            raise PackDamaged("its files changed after they were written (checksum mismatch)")
        try:
            arrays = {n: np.load(where / f"{n}.npy", mmap_mode="r" if n == "vectors" else None,
                                 allow_pickle=False) for n in cls._ARRAYS}  # fmt: skip
            meta = json.loads((where / "pack.json").read_text(encoding="utf-8"))
            pack = cls(name, meta["keys"], vocab=meta["vocab"], columns=meta["columns"], cells=meta["cells"],
                       **arrays)  # fmt: skip
        except FileNotFoundError:
            raise
        except Exception as ex:  # np.load / json on garbage or a cut file raise assorted errors
            raise PackDamaged(f"unreadable: {type(ex).__name__}: {ex}") from ex
        pack.check(dim)
        return pack

    def check(self, dim: int | None = None) -> None:
        """Raise PackDamaged unless every index the search follows is in bounds and every vector usable: the
        postings (term → rows), each report's row range and the chunk columns, finite tf and lengths, unit
        vectors where a row has one."""
        try:
            self._check_types()
            self._check_postings()
            self._check_vectors(dim)
            self._check_columns()
        except PackDamaged:
            raise
        except Exception as ex:  # a value of the wrong kind anywhere above
            raise PackDamaged(f"inconsistent: {type(ex).__name__}: {ex}") from ex

    def _check_types(self) -> None:
        """Keys and vocabulary are text; each array is of its kind; row lengths are counts."""
        _need(isinstance(self.keys, list) and all(isinstance(k, str) for k in self.keys), "keys are not text")
        _need(
            isinstance(self.vocab, list) and all(isinstance(t, str) for t in self.vocab),
            "vocabulary is not text",
        )
        for name, kind in (("starts", "i"), ("indptr", "i"), ("rows", "i"), ("tf", "f"), ("doc_len", "f"),
                           ("vectors", "f"), ("has_vector", "b")):  # fmt: skip
            array = getattr(self, name)
            _need(isinstance(array, np.ndarray) and array.dtype.kind == kind, f"{name} has the wrong type")
        _need(self.doc_len.ndim == 1 and np.isfinite(self.doc_len).all() and (self.doc_len >= 0).all(),
              "row lengths are not finite counts")  # fmt: skip

    def _check_postings(self) -> None:
        """Report row ranges cover the rows; each term's postings are in bounds, in order, and add up to the
        rows' lengths."""
        n, starts = self.n_rows, self.starts
        _need(starts.shape == (len(self.keys) + 1,) and starts[0] == 0 and starts[-1] == n
              and (np.diff(starts) >= 0).all(), f"report row ranges do not cover the pack's {n} rows")  # fmt: skip
        indptr, rows, tf = self.indptr, self.rows, self.tf
        _need(indptr.shape == (len(self.vocab) + 1,) and indptr[0] == 0 and indptr[-1] == len(rows)
              and (np.diff(indptr) >= 0).all(), "posting lists do not match the vocabulary")  # fmt: skip
        _need(rows.ndim == 1 and tf.shape == rows.shape, "postings and term counts differ in length")
        _need(
            not len(rows) or (rows.min() >= 0 and rows.max() < n),
            f"postings point beyond the pack's {n} rows",
        )
        _need(np.isfinite(tf).all() and (tf > 0).all(), "term counts are not positive")
        ascending = np.diff(rows) > 0
        ascending[indptr[1:-1][(indptr[1:-1] > 0) & (indptr[1:-1] < len(rows))] - 1] = True  # term starts
        _need(ascending.all(), "a posting list is out of order")
        # every token of a row is one posting: the counts add up to the row's length
        _need(np.array_equal(np.bincount(rows, weights=tf, minlength=n), self.doc_len),
              "term counts do not add up to the row lengths")  # fmt: skip

    def _check_vectors(self, dim: int | None) -> None:
        n, vectors, has = self.n_rows, self.vectors, self.has_vector
        _need(
            vectors.ndim == 2 and vectors.shape[0] == n and has.shape == (n,), "vectors do not match the rows"
        )
        _need(dim is None or vectors.shape[1] == dim, f"vectors are not {dim}-dimensional")
        _need(_unit_rows(vectors, has), "vectors are not of unit length (zeroed, or not numbers)")

    def _check_columns(self) -> None:
        """The chunk columns have a value per row, and each report's rows are its own."""
        n, starts, columns = self.n_rows, self.starts, self.columns
        _need(isinstance(columns, dict) and all(isinstance(columns.get(c), list) and len(columns[c]) == n
                                                for c in _COLUMNS), "chunk columns do not match the rows")  # fmt: skip
        for i, pack_key in enumerate(self.keys):
            report_id, _, version = pack_key.partition("\t")
            s, e = int(starts[i]), int(starts[i + 1])
            versions = set(columns["version"][s:e]) if version else set()  # keys are report id + version
            _need(set(columns["report_id"][s:e]) <= {report_id} and versions <= {version},
                  f"rows of {report_id} belong to another report")  # fmt: skip
        _need(isinstance(self.cells, dict), "comparison cells are not a mapping")


def _need(ok: object, what: str) -> None:
    if not ok:
        raise PackDamaged(what)


def _unit_rows(vectors: np.ndarray, has: np.ndarray, block: int = 8192) -> bool:
    """Whether every row marked as having a vector is finite and of unit length (in blocks: the vectors are
    memory-mapped, and a whole copy would hold the library's vectors in memory twice)."""
    for lo in range(0, len(has), block):
        rows = np.asarray(vectors[lo : lo + block])[has[lo : lo + block]]
        with np.errstate(all="ignore"):
            lengths = np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
        if not (np.abs(lengths - 1) < UNIT_TOLERANCE).all():  # NaN compares False: not unit
            return False
    return True


def _digest(where: Path) -> str:
    """SHA-256 over a pack folder's files (names and bytes, in a fixed order), read in blocks."""
    digest = hashlib.sha256()
    for name in (*(f"{n}.npy" for n in Pack._ARRAYS), "pack.json"):
        digest.update(name.encode() + b"\0")
        with open(where / name, "rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _cells(piece: Piece) -> list[dict]:
    """The report's cells of the comparison table (the catalogue's indicators it states, each quoted)."""
    import dataclasses

    from qa.compare.table import ReportColumn, build_table

    report_id = piece.chunks[0].report_id if piece.chunks else ""
    table = build_table([(ReportColumn(report_id, "", None), piece.chunks)])
    return [dataclasses.asdict(cell) for cell in table.cells.values()]


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def _postings(terms: np.ndarray, rows: np.ndarray, n_rows: int, n_terms: int):
    """CSC postings (indptr, rows, tf) from one (term, row) pair per token."""
    if not len(terms):
        return np.zeros(n_terms + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)
    pair, tf = np.unique(terms * max(n_rows, 1) + rows, return_counts=True)  # sorted by term, then row
    term, row = pair // max(n_rows, 1), pair % max(n_rows, 1)
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(term, minlength=n_terms), out=indptr[1:])
    return indptr, row.astype(np.int32), tf.astype(np.float32)


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


# ---- packs on disk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Damage:
    """A pack found damaged on disk (and dropped): its reports are read from the store again."""

    pack: str
    keys: tuple[str, ...]  # the report versions it held, when its list could still be read
    why: str

    @property
    def reports(self) -> list[str]:
        return sorted({k.split("\t", 1)[0] for k in self.keys})

    def describe(self) -> str:
        held = f"for {', '.join(self.reports)}" if self.keys else self.pack
        return f"index pack {held} was damaged: {self.why}"


class Shelf:
    """The packs on disk for one store and embedder (folder None, or a folder that cannot be written: the
    packs live in this process's memory only). dim: the embedder's, which every pack's vectors must have."""

    def __init__(self, folder: Path | None, dim: int | None = None) -> None:
        self.folder = folder
        self.dim = dim
        self._loaded: dict[str, Pack] = {}
        self._local: list[str] = []  # packs kept in memory only
        self._warned = False
        self._swept = False
        self._damaged: list[Damage] = []  # found by packs(), until the caller takes them

    def sweep_stale(self) -> int:
        """Remove (once) what other versions of the pack code left beside this index, saying so in one line:
        its reports are packed again from the store into this one. How many entries were removed."""
        if self.folder is None or self._swept:
            return 0
        self._swept = True
        stale = stale_indexes(self.folder)
        for path in stale:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if stale:
            log.warning("warning: the search index in %s was built by another version of reportqa's text "
                        "processing (tokenizer, comparison cells); it is built again from the store",
                        self.folder.parent)  # fmt: skip
        return len(stale)

    def _lock(self):
        import filelock

        return filelock.FileLock(str(self.folder / "manifest.lock"), timeout=30, thread_local=False)

    def _manifest(self) -> tuple[list[str], dict[str, str]]:
        """(pack names, their SHA-256 where written) from manifest.json."""
        if self.folder is None:
            return [], {}
        try:
            manifest = json.loads((self.folder / "manifest.json").read_text(encoding="utf-8"))
            names = [str(n) for n in manifest["packs"]]
        except (OSError, ValueError, KeyError, TypeError):
            return [], {}
        sums = manifest.get("sha256")
        return names, ({str(k): str(v) for k, v in sums.items()} if isinstance(sums, dict) else {})

    def names(self) -> list[str]:
        return self._manifest()[0]

    def packs(self) -> list[Pack]:
        """The packs named in the manifest, then this process's own. Each is checked when loaded
        (Pack.load): a damaged one is dropped from disk and noted (take_damage); its reports are then held
        by no pack, so they are read from the store again."""
        listed, sums = self._manifest()
        names = [*listed, *self._local]
        for name in set(self._loaded) - set(names):  # merged away by another process
            del self._loaded[name]
        out, damaged = [], []
        for name in names:
            if name not in self._loaded:
                try:
                    self._loaded[name] = Pack.load(self.folder, name, sums.get(name), self.dim)
                except (OSError, PackDamaged) as ex:
                    if name not in self.names():  # merged away and deleted while we read it: not damage
                        continue
                    why = str(ex) if isinstance(ex, PackDamaged) else f"unreadable: {type(ex).__name__}: {ex}"
                    damaged.append(Damage(name, _keys_of(self.folder / name), why))
                    log.info("index pack %s is damaged (%s); its reports are read from the store", name, why)
                    continue
            out.append(self._loaded[name])
        if damaged:
            self._damaged.extend(damaged)
            self.drop([d.pack for d in damaged])
        return out

    def take_damage(self) -> list[Damage]:
        """The damaged packs found (and dropped) since the last call."""
        damaged, self._damaged = self._damaged, []
        return damaged

    def add(self, pack: Pack) -> None:
        self._loaded[pack.name] = pack

        def write() -> None:
            self._update(add={pack.name: pack.save(self.folder)})

        if not self._persist(write):
            self._local.append(pack.name)

    def replace(self, merged: Pack, replaced: Sequence[str]) -> None:
        """merged takes the place of the packs named (packs another process added meanwhile stay)."""
        self.add(merged)
        self.drop(replaced)

    def drop(self, names: Sequence[str]) -> None:
        for name in names:
            self._loaded.pop(name, None)
        self._local = [n for n in self._local if n not in set(names)]
        if self.folder is None:
            return
        # listed, or still on disk (a pack whose folder went missing is taken out of the manifest too)
        gone = [n for n in names if (self.folder / n).exists() or n in set(self.names())]
        if gone and self._persist(lambda: self._update(remove=gone)):
            for name in gone:
                shutil.rmtree(self.folder / name, ignore_errors=True)

    def compact(self, index: Index) -> bool:
        """Drop packs no alive row is in; merge the smallest packs when there are more than MERGE_PACKS, and
        rewrite a pack whose rows are mostly dead — never into a pack past MAX_PACK_ROWS alive rows, so a
        merge's memory stays bounded whatever the library's size. True when the packs changed."""
        packs, alive = index.packs, index.alive
        live = [int(a.sum()) for a in alive]
        empty = [p.name for p, n in zip(packs, live, strict=True) if n == 0]
        if empty:
            self.drop(empty)
        kept = [i for i, n in enumerate(live) if n]
        by_size = sorted(kept, key=lambda i: live[i])
        chosen: list[int] = []
        if len(kept) > MERGE_PACKS:
            total = 0
            for i in by_size:
                if total + live[i] > MAX_PACK_ROWS and len(chosen) >= 2:
                    break
                chosen.append(i)
                total += live[i]
        if not chosen:  # mostly dead: rewritten alone, keeping its alive rows
            chosen = [i for i in kept if live[i] * 2 < packs[i].n_rows][:1]
        if chosen:
            self.replace(Pack.merge([(packs[i], alive[i]) for i in chosen]), [packs[i].name for i in chosen])
        return bool(empty or chosen)

    def _persist(self, write) -> bool:
        """Run a disk write; False (logged) when there is no folder or it cannot be written — a cache that
        cannot be kept slows the next process down, it never stops this one."""
        if self.folder is None:
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write()
            return True
        except Exception as ex:  # OSError, filelock.Timeout…
            if not self._warned:  # once per process: every command would otherwise repeat it
                self._warned = True
                log.warning("warning: cannot keep the search index on disk in %s (%s); searches work, but each "
                            "new process re-reads the reports it lacks: make the folder writable (it is under "
                            "QA_DATA_DIR)", self.folder, ex)  # fmt: skip
            return False

    def _update(self, add: Mapping[str, str] | None = None, remove: Sequence[str] = ()) -> None:
        """Rewrite the manifest under its lock: add packs (name → SHA-256), remove others."""
        add = dict(add or {})
        with self._lock():
            listed, sums = self._manifest()
            names = [n for n in listed if n not in set(remove)] + list(add)
            sums = {n: v for n, v in {**sums, **add}.items() if n in set(names)}
            atomic_write(self.folder / "manifest.json", json.dumps({"packs": names, "sha256": sums}))


def _keys_of(where: Path) -> tuple[str, ...]:
    """The report versions a (damaged) pack says it holds; () when even that cannot be read."""
    try:
        keys = json.loads((where / "pack.json").read_text(encoding="utf-8"))["keys"]
    except Exception:  # garbage, a cut file, a list of the wrong shape: nothing to name
        return ()
    return tuple(keys) if isinstance(keys, list) and all(isinstance(k, str) for k in keys) else ()
