"""The derived search index (qa.derived): BM25 as bm25s scores it, kept incrementally (a report added is a
pack, a report removed is dead rows; merging keeps the scores), packs on disk shared by processes."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import pytest
from bm25s.tokenization import Tokenized

from qa import derived
from qa.ingest import ingest_paths
from qa.retrieve import Retriever, tokenize
from qa.schemas import Chunk

DOCS = Path(__file__).resolve().parent.parent / "data" / "reports"
TEXTS = {
    "a": ["淄川区办理行政复议案件151件，审结67件", "综合纠错率达29.8%", "法律援助案件235件"],
    "b": ["洛江区新收行政复议申请121件", "行政诉讼败诉率11.11%", "人民调解纠纷案件受理1661件", "复议"],
    "c": ["达坂城区收到行政复议申请11件", "追回欠薪1547.16万元"],
}
QUESTIONS = ["行政复议案件多少件", "败诉率", "法律援助", "欠薪 万元", "调解 复议 复议"]


def piece(key: str, texts: list[str], dim: int = 4) -> derived.Piece:
    chunks = [Chunk(id=f"{key}-{i}", report_id=key, version="v", ordinal=i, section="", start=i * 100,
                    end=i * 100 + len(t), text=t, embed_text=t) for i, t in enumerate(texts)]  # fmt: skip
    vectors = np.random.default_rng(len(key)).normal(size=(len(texts), dim)).astype(np.float32)
    return derived.Piece(key, chunks, [tokenize(t) for t in texts], vectors)


def bm25s_scores(texts: list[str], question: str) -> np.ndarray:
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in tokenize(text)] for text in texts]
    model = bm25s.BM25()
    model.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
    return np.asarray(model.get_scores([t for t in tokenize(question) if t in vocab]), dtype=np.float64)


def our_scores(index: derived.Index, keys: list[str], n_rows: int, question: str) -> np.ndarray:
    got = {c.text: s for c, s in index.bm25(tokenize(question), keys, n_rows)}
    return np.array([got.get(t, 0.0) for k in keys for t in TEXTS[k]])


@pytest.mark.parametrize("question", QUESTIONS)
def test_bm25_scores_are_bm25s_scores(question: str) -> None:
    index = derived.Index([derived.Pack.build([piece(k, TEXTS[k]) for k in TEXTS], 4)], TEXTS)
    texts = [t for k in TEXTS for t in TEXTS[k]]
    assert np.allclose(our_scores(index, list(TEXTS), len(texts), question), bm25s_scores(texts, question),
                       rtol=1e-5)  # fmt: skip


@pytest.mark.parametrize("question", QUESTIONS)
def test_a_report_added_or_removed_changes_the_statistics_without_a_rebuild(question: str) -> None:
    first = derived.Pack.build([piece("a", TEXTS["a"]), piece("b", TEXTS["b"])], 4)
    added = derived.Pack.build([piece("c", TEXTS["c"])], 4)  # one report added: one more pack
    # b removed: its rows are dead, and the library-wide statistics are those of a and c alone
    index = derived.Index([first, added], ["a", "c"])
    texts = TEXTS["a"] + TEXTS["c"]
    assert index.n_docs == len(texts) and index.dead_rows == len(TEXTS["b"])
    assert np.allclose(
        our_scores(index, ["a", "c"], len(texts), question), bm25s_scores(texts, question), rtol=1e-5
    )
    # merging the alive rows into one pack keeps every score
    merged = derived.Index([derived.Pack.merge([(p, a) for p, a in zip(index.packs, index.alive, strict=True)])],
                           ["a", "c"])  # fmt: skip
    assert merged.dead_rows == 0 and len(merged.packs[0].keys) == 2
    assert np.allclose(our_scores(merged, ["a", "c"], len(texts), question),
                       our_scores(index, ["a", "c"], len(texts), question))  # fmt: skip
    assert (
        "淄川" in merged.vocabulary()
        and "洛江" not in merged.vocabulary()
        and "洛江" not in index.vocabulary()
    )


def test_dense_is_exact_cosine_over_the_selected_reports_and_skips_rows_without_vectors() -> None:
    a, c = piece("a", TEXTS["a"]), piece("c", TEXTS["c"])
    c.vectors = None  # stored, not embedded yet: found by BM25, not by dense
    index = derived.Index([derived.Pack.build([a, c], 4)], ["a", "c"])
    query = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    got = index.dense(query, ["a", "c"], 10)
    unit = a.vectors / np.linalg.norm(a.vectors, axis=1, keepdims=True)
    assert [ch.text for ch, _ in got] == [TEXTS["a"][i] for i in np.argsort(-(unit @ query))]
    assert index.bm25(tokenize("欠薪"), ["c"], 5)[0][0].text == TEXTS["c"][1]


def test_packs_survive_on_disk_and_a_damaged_one_is_read_again(tmp_path: Path) -> None:
    shelf = derived.Shelf(tmp_path)
    pack = derived.Pack.build([piece("a", TEXTS["a"])], 4)
    shelf.add(pack)
    again = derived.Shelf(tmp_path).packs()  # another process
    assert [p.keys for p in again] == [["a"]]
    index = derived.Index(again, ["a"])
    assert index.bm25(tokenize("纠错率"), ["a"], 1)[0][0].text == "综合纠错率达29.8%"
    (tmp_path / pack.name / "rows.npy").write_bytes(b"not numpy")
    assert derived.Shelf(tmp_path).packs() == []  # unreadable: skipped, so its report is read from the store
    assert derived.Shelf(tmp_path).names() == [] and not (tmp_path / pack.name).exists()  # and cleared away


def test_a_new_process_searches_from_the_packs_on_disk(services, monkeypatch) -> None:
    ingest_paths([DOCS], services.store, services.embedder, services.settings)
    question = "淄川区办理行政复议案件多少件"
    first = [h.chunk.id for h in services.retriever.search(question, k=5).hits]
    assert (services.store.index_dir / "manifest.json").exists()

    def no_chunk_reads(*args, **kwargs):
        raise AssertionError("the derived index was rebuilt from the store instead of loaded from disk")

    monkeypatch.setattr(services.store, "iter_chunk_vectors", no_chunk_reads)
    reader = Retriever(services.store, services.embedder, services.settings)  # a process started now
    assert [h.chunk.id for h in reader.search(question, k=5).hits] == first


def test_compaction_merges_the_smallest_packs_and_rewrites_mostly_dead_ones(tmp_path: Path) -> None:
    shelf = derived.Shelf(tmp_path)
    keys = [f"r{i}" for i in range(derived.MERGE_PACKS + 2)]
    for key in keys:  # one pack per ingested report, as a long `qa ingest` leaves them
        shelf.add(derived.Pack.build([piece(key, TEXTS["a"])], 4))
    index = derived.Index(shelf.packs(), keys)
    before = {c.id: s for c, s in index.bm25(tokenize("行政复议案件"), keys, 100)}
    assert shelf.compact(index)
    index = derived.Index(derived.Shelf(tmp_path).packs(), keys)  # what the next process loads
    assert len(index.packs) < derived.MERGE_PACKS and index.dead_rows == 0
    assert {c.id: s for c, s in index.bm25(tokenize("行政复议案件"), keys, 100)} == pytest.approx(before)

    # most reports of the merged pack removed: it is rewritten with the alive rows only
    merged = max(index.packs, key=lambda p: p.n_rows)
    gone = merged.keys[1:]
    alive = [k for k in keys if k not in gone]
    index = derived.Index(shelf.packs(), alive)
    assert index.dead_rows == len(gone) * len(TEXTS["a"])
    assert shelf.compact(index)
    index = derived.Index(derived.Shelf(tmp_path).packs(), alive)
    assert index.dead_rows == 0 and sorted(index.where) == sorted(alive)


def test_a_wide_selection_scores_as_a_narrow_one(monkeypatch) -> None:
    """Many reports are scored a pack at a time with a mask, a few range by range: the same results."""
    pieces = [piece(k, TEXTS[k]) for k in TEXTS]
    index = derived.Index([derived.Pack.build(pieces, 4)], TEXTS)
    query = np.array([0.3, -1.0, 0.2, 0.5], dtype=np.float32)
    chosen = ["a", "c"]
    narrow = (index.dense(query, chosen, 10), index.bm25(tokenize("行政复议 欠薪"), chosen, 10))
    monkeypatch.setattr(derived, "SMALL_SELECTION", 0)
    wide = (index.dense(query, chosen, 10), index.bm25(tokenize("行政复议 欠薪"), chosen, 10))
    for got, expected in zip(wide, narrow, strict=True):
        assert [c.id for c, _ in got] == [c.id for c, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected])
        assert {c.report_id for c, _ in got} <= set(chosen)


def test_a_reader_reads_a_report_again_when_no_pack_holds_it_any_more(services, monkeypatch) -> None:
    """Issue 21: `qa rm X` then `qa ingest X` brings X back at the same version. A reader that checked X's
    pack once, saw the removal (its compaction dropped the pack: no alive rows) and then read the registry
    between the re-ingest's flip and its pack being written, searched X as a report with no rows: 文中未提及,
    cached until the next write."""
    import qa.ingest

    ingest_paths([DOCS / "zichuan_2024.txt", DOCS / "luojiang_2024.txt"], services.store, services.embedder,
                 services.settings)  # fmt: skip
    question, report = "淄川区办理行政复议案件多少件", "zichuan_2024.txt"
    reader = Retriever(
        services.store, services.embedder, services.settings
    )  # the app's, kept for the process
    assert reader.search(question, k=5, report_ids=[report]).hits
    services.store.remove_report(report)
    reader.index(services.store.reports())  # the reader's next search after the removal
    assert not any(report in p.keys[0] for p in derived.Shelf(services.store.index_dir).packs())
    monkeypatch.setattr(qa.ingest, "keep_index", lambda *args, **kwargs: None)  # read before the pack lands
    assert (
        qa.ingest.ingest_file(DOCS / report, services.store, services.embedder, services.settings).status
        == "ingested"
    )
    hits = reader.search(question, k=5, report_ids=[report]).hits
    assert hits and any("151件" in h.chunk.text for h in hits)


def test_a_reader_with_an_older_view_never_compacts_away_a_newer_report(services) -> None:
    """The packs are loaded after the registry was read: a pack added meanwhile holds a report this view
    does not list. Compacting then would drop it as dead (every process then re-reads it from the store)."""
    ingest_paths([DOCS / "zichuan_2024.txt"], services.store, services.embedder, services.settings)
    reader = Retriever(services.store, services.embedder, services.settings)
    older = services.store.reports()
    ingest_paths([DOCS / "luojiang_2024.txt"], services.store, services.embedder, services.settings)
    reader.index(older)  # built from the older registry and today's packs
    held = {k.split("\t")[0] for p in derived.Shelf(services.store.index_dir).packs() for k in p.keys}
    assert held == {"zichuan_2024.txt", "luojiang_2024.txt"}
