"""The derived search index (qa.index.packs): BM25 as bm25s scores it, kept incrementally (a report added is a
pack, a report removed is dead rows; merging keeps the scores), packs on disk shared by processes."""

from __future__ import annotations

import shutil
from pathlib import Path

import bm25s
import numpy as np
import pytest
from bm25s.tokenization import Tokenized

from qa.core.schemas import Chunk
from qa.index import packs, searcher
from qa.index.retriever import Retriever, tokenize
from qa.index.shelf import Shelf
from qa.ingest.pipeline import ingest_paths

DOCS = Path(__file__).resolve().parent.parent / "data" / "reports"
TEXTS = {
    "a": ["淄川区办理行政复议案件151件，审结67件", "综合纠错率达29.8%", "法律援助案件235件"],
    "b": ["洛江区新收行政复议申请121件", "行政诉讼败诉率11.11%", "人民调解纠纷案件受理1661件", "复议"],
    "c": ["达坂城区收到行政复议申请11件", "追回欠薪1547.16万元"],
}
QUESTIONS = ["行政复议案件多少件", "败诉率", "法律援助", "欠薪 万元", "调解 复议 复议"]


def piece(key: str, texts: list[str], dim: int = 4) -> packs.Piece:
    chunks = [Chunk(id=f"{key}-{i}", report_id=key, version="v", ordinal=i, section="", start=i * 100,
                    end=i * 100 + len(t), text=t, embed_text=t) for i, t in enumerate(texts)]  # fmt: skip
    vectors = np.random.default_rng(len(key)).normal(size=(len(texts), dim)).astype(np.float32)
    return packs.Piece(key, chunks, [tokenize(t) for t in texts], vectors)


def bm25s_scores(texts: list[str], question: str) -> np.ndarray:
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in tokenize(text)] for text in texts]
    model = bm25s.BM25()
    model.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
    return np.asarray(model.get_scores([t for t in tokenize(question) if t in vocab]), dtype=np.float64)


def our_scores(index: searcher.Index, keys: list[str], n_rows: int, question: str) -> np.ndarray:
    got = {c.text: s for c, s in index.bm25(tokenize(question), keys, n_rows)}
    return np.array([got.get(t, 0.0) for k in keys for t in TEXTS[k]])


@pytest.mark.parametrize("question", QUESTIONS)
def test_bm25_scores_are_bm25s_scores(question: str) -> None:
    index = searcher.Index([packs.Pack.build([piece(k, TEXTS[k]) for k in TEXTS], 4)], TEXTS)
    texts = [t for k in TEXTS for t in TEXTS[k]]
    assert np.allclose(our_scores(index, list(TEXTS), len(texts), question), bm25s_scores(texts, question),
                       rtol=1e-5)  # fmt: skip


@pytest.mark.parametrize("question", QUESTIONS)
def test_a_report_added_or_removed_changes_the_statistics_without_a_rebuild(question: str) -> None:
    first = packs.Pack.build([piece("a", TEXTS["a"]), piece("b", TEXTS["b"])], 4)
    added = packs.Pack.build([piece("c", TEXTS["c"])], 4)  # one report added: one more pack
    # b removed: its rows are dead, and the library-wide statistics are those of a and c alone
    index = searcher.Index([first, added], ["a", "c"])
    texts = TEXTS["a"] + TEXTS["c"]
    assert index.n_docs == len(texts) and index.dead_rows == len(TEXTS["b"])
    assert np.allclose(
        our_scores(index, ["a", "c"], len(texts), question), bm25s_scores(texts, question), rtol=1e-5
    )
    # merging the alive rows into one pack keeps every score
    merged = searcher.Index([packs.Pack.merge([(p, a) for p, a in zip(index.packs, index.alive, strict=True)])],
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
    index = searcher.Index([packs.Pack.build([a, c], 4)], ["a", "c"])
    query = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    got = index.dense(query, ["a", "c"], 10)
    unit = a.vectors / np.linalg.norm(a.vectors, axis=1, keepdims=True)
    assert [ch.text for ch, _ in got] == [TEXTS["a"][i] for i in np.argsort(-(unit @ query))]
    assert index.bm25(tokenize("欠薪"), ["c"], 5)[0][0].text == TEXTS["c"][1]


def test_packs_survive_on_disk_and_a_damaged_one_is_read_again(tmp_path: Path) -> None:
    shelf = Shelf(tmp_path)
    pack = packs.Pack.build([piece("a", TEXTS["a"])], 4)
    shelf.add(pack)
    again = Shelf(tmp_path).packs()  # another process
    assert [p.keys for p in again] == [["a"]]
    index = searcher.Index(again, ["a"])
    assert index.bm25(tokenize("纠错率"), ["a"], 1)[0][0].text == "综合纠错率达29.8%"
    (tmp_path / pack.name / "rows.npy").write_bytes(b"not numpy")
    assert Shelf(tmp_path).packs() == []  # unreadable: skipped, so its report is read from the store
    assert Shelf(tmp_path).names() == [] and not (tmp_path / pack.name).exists()  # and cleared away


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
    shelf = Shelf(tmp_path)
    keys = [f"r{i}" for i in range(packs.MERGE_PACKS + 2)]
    for key in keys:  # one pack per ingested report, as a long `qa ingest` leaves them
        shelf.add(packs.Pack.build([piece(key, TEXTS["a"])], 4))
    index = searcher.Index(shelf.packs(), keys)
    before = {c.id: s for c, s in index.bm25(tokenize("行政复议案件"), keys, 100)}
    assert shelf.compact(index)
    index = searcher.Index(Shelf(tmp_path).packs(), keys)  # what the next process loads
    assert len(index.packs) < packs.MERGE_PACKS and index.dead_rows == 0
    assert {c.id: s for c, s in index.bm25(tokenize("行政复议案件"), keys, 100)} == pytest.approx(before)

    # most reports of the merged pack removed: it is rewritten with the alive rows only
    merged = max(index.packs, key=lambda p: p.n_rows)
    gone = merged.keys[1:]
    alive = [k for k in keys if k not in gone]
    index = searcher.Index(shelf.packs(), alive)
    assert index.dead_rows == len(gone) * len(TEXTS["a"])
    assert shelf.compact(index)
    index = searcher.Index(Shelf(tmp_path).packs(), alive)
    assert index.dead_rows == 0 and sorted(index.where) == sorted(alive)


def test_a_wide_selection_scores_as_a_narrow_one(monkeypatch) -> None:
    """Many reports are scored a pack at a time with a mask, a few range by range: the same results."""
    pieces = [piece(k, TEXTS[k]) for k in TEXTS]
    index = searcher.Index([packs.Pack.build(pieces, 4)], TEXTS)
    query = np.array([0.3, -1.0, 0.2, 0.5], dtype=np.float32)
    chosen = ["a", "c"]
    narrow = (index.dense(query, chosen, 10), index.bm25(tokenize("行政复议 欠薪"), chosen, 10))
    monkeypatch.setattr(searcher, "SMALL_SELECTION", 0)
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
    import qa.ingest.pipeline

    ingest_paths([DOCS / "zichuan_2024.txt", DOCS / "luojiang_2024.txt"], services.store, services.embedder,
                 services.settings)  # fmt: skip
    question, report = "淄川区办理行政复议案件多少件", "zichuan_2024.txt"
    reader = Retriever(
        services.store, services.embedder, services.settings
    )  # the app's, kept for the process
    assert reader.search(question, k=5, report_ids=[report]).hits
    services.store.remove_report(report)
    reader.index(services.store.reports())  # the reader's next search after the removal
    assert not any(report in p.keys[0] for p in Shelf(services.store.index_dir).packs())
    monkeypatch.setattr(
        qa.ingest.pipeline, "keep_index", lambda *args, **kwargs: None
    )  # read before the pack lands
    assert (
        qa.ingest.pipeline.ingest_file(
            DOCS / report, services.store, services.embedder, services.settings
        ).status
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
    held = {k.split("\t")[0] for p in Shelf(services.store.index_dir).packs() for k in p.keys}
    assert held == {"zichuan_2024.txt", "luojiang_2024.txt"}


# ---- damaged packs (issue 21) ------------------------------------------------------------------------


def _damage(where: Path, how: str) -> None:
    """Damage a pack folder in place, leaving valid files (except `truncated` / `garbage`)."""
    if how == "posting rows out of range":
        rows = np.load(where / "rows.npy")
        np.save(where / "rows.npy", rows + 100_000)
    elif how == "token ids out of range":
        indptr = np.load(where / "indptr.npy")
        indptr[1:] += 50_000
        np.save(where / "indptr.npy", indptr)
    elif how == "report rows out of range":
        starts = np.load(where / "starts.npy")
        starts[-1] += 7
        np.save(where / "starts.npy", starts)
    elif how == "zeroed vectors":
        np.save(where / "vectors.npy", np.zeros_like(np.load(where / "vectors.npy")))
    elif how == "NaN vectors":
        vectors = np.load(where / "vectors.npy")
        vectors[0] = np.nan
        np.save(where / "vectors.npy", vectors)
    elif how == "truncated":
        data = (where / "vectors.npy").read_bytes()
        (where / "vectors.npy").write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        (where / "pack.json").write_bytes(b"\x00\xffnot json")
    elif how == "folder missing":  # still named in the manifest
        shutil.rmtree(where)
    else:
        raise AssertionError(how)


DAMAGE = ["posting rows out of range", "token ids out of range", "report rows out of range", "zeroed vectors",
          "NaN vectors", "truncated", "garbage", "folder missing"]  # fmt: skip


@pytest.mark.parametrize("checksums", [True, False], ids=["checksummed", "written-before-checksums"])
@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_pack_is_found_when_loaded_dropped_and_named(
    tmp_path: Path, how: str, checksums: bool
) -> None:
    """A pack whose files are valid but whose values point out of bounds used to fail searches with an
    IndexError (zeroed vectors silently ranked every row 0). Each is caught when loaded — by the checksum
    written with it, and without one (a pack written before checksums) by the checks on its contents."""
    import json

    shelf = Shelf(tmp_path, dim=4)
    kept, hurt = (
        packs.Pack.build([piece("a", TEXTS["a"])], 4),
        packs.Pack.build([piece("b", TEXTS["b"])], 4),
    )
    shelf.add(kept)
    shelf.add(hurt)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["sha256"]) == {kept.name, hurt.name}
    if not checksums:
        (tmp_path / "manifest.json").write_text(json.dumps({"packs": manifest["packs"]}))
    _damage(tmp_path / hurt.name, how)

    reader = Shelf(tmp_path, dim=4)  # another process
    assert [p.name for p in reader.packs()] == [kept.name]
    (damage,) = reader.take_damage()
    unnamed = how in ("garbage", "folder missing")  # its list of reports cannot be read either
    assert damage.pack == hurt.name and damage.reports == ([] if unnamed else ["b"])
    assert damage.describe().startswith(f"index pack {hurt.name} was damaged: " if unnamed else
                                        "index pack for b was damaged: ")  # fmt: skip
    if checksums and how != "folder missing":
        assert "checksum mismatch" in damage.why
    assert reader.packs() and not reader.take_damage()  # said once: it is out of the manifest
    assert Shelf(tmp_path).names() == [kept.name] and not (tmp_path / hurt.name).exists()
    index = searcher.Index(reader.packs(), ["a"])  # what is left searches as before
    assert index.bm25(tokenize("纠错率"), ["a"], 1)[0][0].text == "综合纠错率达29.8%"


def test_a_vector_without_a_direction_is_never_ranked_by_dense_search() -> None:
    a = piece("a", TEXTS["a"])
    a.vectors[1] = 0.0  # zero, as a broken embedder may return
    a.vectors[2] = np.nan
    pack = packs.Pack.build([a], 4)
    assert pack.has_vector.tolist() == [True, False, False]
    pack.check(4)  # and the pack is sound
    got = searcher.Index([pack], ["a"]).dense(np.array([1.0, 0, 0, 0], dtype=np.float32), ["a"], 10)
    assert [c.text for c, _ in got] == [TEXTS["a"][0]]


def _pack_of(index_dir: Path, report: str) -> Path:
    import json

    for name in json.loads((index_dir / "manifest.json").read_text())["packs"]:
        if any(
            k.startswith(report + "\t")
            for k in json.loads((index_dir / name / "pack.json").read_text())["keys"]
        ):
            return index_dir / name
    raise AssertionError(f"no pack holds {report}")


@pytest.mark.parametrize("how", ["posting rows out of range", "zeroed vectors", "truncated"])
def test_qa_ask_and_qa_ingest_over_a_damaged_pack(tmp_path: Path, how: str) -> None:
    """Issue 21: `qa ask` over a damaged pack failed with "unexpected IndexError … (a bug)", and `qa ingest`
    said "unchanged" and left it. Now the pack is dropped, the report read from the store, and each says so."""
    from conftest import run_cli

    data_dir = tmp_path / "data"
    env = {"QA_DATA_DIR": str(data_dir)}
    files = [str(DOCS / "zichuan_2024.txt"), str(DOCS / "luojiang_2024.txt")]
    assert run_cli("ingest", *files, env=env).returncode == 0
    index_dir = next((data_dir / "index").iterdir()) / packs.built_by()
    question = "淄川区办理行政复议案件多少件？"

    _damage(_pack_of(index_dir, "zichuan_2024.txt"), how)
    asked = run_cli("ask", question, env=env)
    assert asked.returncode == 0, asked.stderr
    assert "151件" in asked.stdout and "zichuan_2024.txt" in asked.stdout
    assert "warning: index pack for zichuan_2024.txt was damaged: " in asked.stderr
    assert "its reports were read from the store again" in asked.stderr and "IndexError" not in asked.stderr
    again = run_cli("ask", question, env=env)  # the reader wrote the pack again: nothing more to say
    assert "151件" in again.stdout and "damaged" not in again.stderr

    _damage(_pack_of(index_dir, "zichuan_2024.txt"), how)
    ingested = run_cli("ingest", *files, env=env)
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    lines = ingested.stderr.splitlines()  # a line per file, beside the progress bars
    (zichuan,) = [line for line in lines if "zichuan_2024.txt" in line]
    assert zichuan.split()[0] == "updated" and "repaired: its index pack was damaged: " in zichuan
    assert zichuan.endswith("index rebuilt from the store)") and "from cache" not in zichuan
    assert any(line.startswith("unchanged") and "luojiang_2024.txt" in line for line in lines)
    assert "1 updated, 1 unchanged" in ingested.stdout
    assert "2 unchanged" in run_cli("ingest", *files, env=env).stdout  # repaired for good
    searched = run_cli("search", question, env=env)
    assert searched.returncode == 0 and "151件" in searched.stdout and "damaged" not in searched.stderr


def test_qa_ingest_repairs_a_store_whose_packs_are_all_damaged(tmp_path: Path) -> None:
    """With every pack damaged, `qa ingest` itself failed (its compaction read them); now each report's
    pack is written again from the store, the one named, the others said to be, and searches answer."""
    import json

    from conftest import run_cli

    data_dir = tmp_path / "data"
    env = {"QA_DATA_DIR": str(data_dir)}
    names = ["zichuan_2024.txt", "luojiang_2024.txt"]
    assert run_cli("ingest", *(str(DOCS / n) for n in names), env=env).returncode == 0
    index_dir = next((data_dir / "index").iterdir()) / packs.built_by()
    manifest = json.loads((index_dir / "manifest.json").read_text())
    for name in manifest["packs"]:
        _damage(index_dir / name, "posting rows out of range")
    (index_dir / "manifest.json").write_text(
        json.dumps({"packs": manifest["packs"]})
    )  # no checksums: the checks

    ingested = run_cli("ingest", str(DOCS / "zichuan_2024.txt"), env=env)  # one file named, both repaired
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    assert "2 updated" in ingested.stdout
    for name in names:
        (line,) = [x for x in ingested.stderr.splitlines() if name in x]
        assert line.split()[0] == "updated"
        assert "repaired: its index pack was damaged: postings point beyond the pack's" in line
    assert sorted(k.split("\t")[0] for p in Shelf(index_dir).packs() for k in p.keys) == sorted(names)
    asked = run_cli("ask", "洛江区新收行政复议申请多少件？", env=env)
    assert "121件" in asked.stdout and "damaged" not in asked.stderr


def test_an_index_built_by_other_code_is_built_again_and_says_so(tmp_path: Path) -> None:
    """Packs hold postings and comparison cells computed by the tokenizer and the indicator code: packs built
    by another version of that code are never served; the index is built again from the store, in one line."""
    from conftest import run_cli

    data_dir = tmp_path / "data"
    env = {"QA_DATA_DIR": str(data_dir)}
    assert run_cli("ingest", str(DOCS / "zichuan_2024.txt"), env=env).returncode == 0
    embedder_dir = next((data_dir / "index").iterdir())
    current = embedder_dir / packs.built_by()
    assert (current / "manifest.json").exists()
    old = embedder_dir / "built-000000000000"  # as another version of the code left it
    current.rename(old)
    asked = run_cli("ask", "淄川区办理行政复议案件多少件？", env=env)
    assert asked.returncode == 0 and "151件" in asked.stdout, asked.stderr
    assert (
        asked.stderr.count("was built by another version") == 1
        and "built again from the store" in asked.stderr
    )
    assert not old.exists() and (current / "manifest.json").exists()
    again = run_cli("ask", "淄川区办理行政复议案件多少件？", env=env)
    assert "another version" not in again.stderr  # once
    # the layout before fingerprints: packs directly in the embedder's folder
    shutil.copytree(current, embedder_dir, dirs_exist_ok=True)
    shutil.rmtree(current)
    ingested = run_cli("ingest", str(DOCS / "zichuan_2024.txt"), env=env)
    assert ingested.returncode == 0 and "was built by another version" in ingested.stderr
    assert sorted(p.name for p in embedder_dir.iterdir()) == [current.name]
