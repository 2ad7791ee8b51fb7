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
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.core.schemas import Chunk
from qa.index.tokens import tokenize

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

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
UNIT_TOLERANCE = 1e-3  # a stored vector's length may differ from 1 by this much (float32 rounding)


# The code a pack's contents are computed with: the tokenizer and pack format (this module), the comparison
# cells (compare, indicators, figures, numbers) and the normaliser. Packs live in a folder named by a
# fingerprint of it (store.index_dir), so a change to any of them is a new, empty index that each report is
# packed into again from the store, instead of old postings or cells served as current.
BUILT_BY = (
    "qa.index.tokens",
    "qa.question.words",
    "qa.index.packs",
    "qa.compare.table",
    "qa.genre.indicators",
    "qa.genre.figures",
    "qa.genre.numbers",
    "qa.genre.outline",
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
