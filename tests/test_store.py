"""Document lifecycle against real Chroma: embedded PersistentClient and a real `chroma run` server."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, make_settings

from qa.core.errors import ConfigError, EmptyIndexError
from qa.ingest.pipeline import ingest_file, ingest_paths
from qa.store.chroma import Store
from qa.store.errors import StoreReadOnly
from qa.wiring import open_services


@pytest.fixture(params=["embedded", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    """Fresh services on each backend. Server mode gets its own collections via a unique data dir name."""
    if request.param == "server":
        url = request.getfixturevalue("chroma_server")
        services = open_services(make_settings(tmp_path / "unused", chroma_url=url))
        for record in services.store.reports():  # the server is shared by the session: start empty
            services.store.remove_report(record.report_id)
        return services
    return open_services(make_settings(tmp_path / "store"))


def _versions_in_collection(services, report_id: str) -> set[str]:
    got = services.store.chunks.get(where={"report_id": report_id}, include=["metadatas"])
    return {m["version"] for m in got["metadatas"]}


def _search_texts(services, question: str, report: str) -> list[str]:
    hits = services.retriever.search(question, k=50, report_ids=[report]).hits
    return [h.chunk.text for h in hits]


def test_lifecycle_ingest_unchanged_update_remove(backend, tmp_path: Path) -> None:
    services = backend
    path = tmp_path / "zichuan_2024.txt"
    shutil.copy(CORPUS / "zichuan_2024.txt", path)

    first = ingest_file(path, services.store, services.embedder, services.settings)
    assert first.status == "ingested" and first.n_chunks > 5
    assert any("151件" in t for t in _search_texts(services, "行政复议案件", path.name))

    again = ingest_file(path, services.store, services.embedder, services.settings)
    assert again.status == "unchanged" and again.embedded == 0

    path.write_text(
        path.read_text(encoding="utf-8") + "\n五、补充说明\n全年新增智慧普法驿站8个,覆盖全部镇街。\n",
        encoding="utf-8",
    )
    updated = ingest_file(path, services.store, services.embedder, services.settings)
    assert updated.status == "updated"
    assert updated.embedded < updated.n_chunks  # unchanged chunks came from the cache
    record = services.store.get_report(path.name)
    assert _versions_in_collection(services, path.name) == {record.version}  # old chunks are gone
    assert any("智慧普法驿站8个" in t for t in _search_texts(services, "智慧普法驿站", path.name))

    assert services.store.remove_report(path.name)
    assert services.store.get_report(path.name) is None
    assert _versions_in_collection(services, path.name) == set()
    with pytest.raises(EmptyIndexError):  # the only report is gone: nothing left to search
        services.retriever.search("淄川区行政复议", k=5)
    assert not services.store.remove_report(path.name)


class _Crash(RuntimeError):
    pass


def _crash(*args, **kwargs):
    raise _Crash("simulated crash")


def test_crash_before_flip_keeps_the_old_version(services, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "luojiang_2024.txt"
    shutil.copy(CORPUS / "luojiang_2024.txt", path)
    ingest_file(path, services.store, services.embedder, services.settings)
    old = services.store.get_report(path.name)

    path.write_text(path.read_text(encoding="utf-8").replace("法护世遗", "海丝法韵"), encoding="utf-8")
    monkeypatch.setattr(services.store.reports_col, "upsert", _crash)  # dies after writing the new chunks
    with pytest.raises(_Crash):
        ingest_file(path, services.store, services.embedder, services.settings)
    monkeypatch.undo()

    assert services.store.get_report(path.name).version == old.version
    texts = _search_texts(services, "普法新品牌", path.name)
    assert any("法护世遗" in t for t in texts) and not any("海丝法韵" in t for t in texts)
    hits = services.retriever.search("普法新品牌", k=50).hits
    assert {h.chunk.version for h in hits} == {old.version}  # never a mix

    retried = ingest_file(path, services.store, services.embedder, services.settings)
    assert retried.status == "updated"
    assert _versions_in_collection(services, path.name) == {services.store.get_report(path.name).version}


def test_crash_after_flip_serves_only_the_new_version(services, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "luojiang_2024.txt"
    shutil.copy(CORPUS / "luojiang_2024.txt", path)
    ingest_file(path, services.store, services.embedder, services.settings)
    path.write_text(path.read_text(encoding="utf-8").replace("法护世遗", "海丝法韵"), encoding="utf-8")
    monkeypatch.setattr(services.store.chunks, "delete", _crash)  # dies before the old chunks are dropped
    with pytest.raises(_Crash):
        ingest_file(path, services.store, services.embedder, services.settings)
    monkeypatch.undo()
    new = services.store.get_report(path.name)
    hits = services.retriever.search("普法新品牌", k=50).hits
    assert {h.chunk.version for h in hits} == {new.version}
    assert any("海丝法韵" in h.chunk.text for h in hits)


def test_failed_file_leaves_the_store_unchanged(services, tmp_path: Path) -> None:
    good = tmp_path / "zichuan_2024.txt"
    shutil.copy(CORPUS / "zichuan_2024.txt", good)
    ingest_file(good, services.store, services.embedder, services.settings)
    before = services.store.get_report(good.name)
    good.write_bytes(b"\x00\x01binary now")
    results = ingest_paths([good], services.store, services.embedder, services.settings)
    assert results[0].status == "failed" and "binary" in results[0].reason
    assert services.store.get_report(good.name) == before
    assert services.store.count_chunks() == before.n_chunks


def test_collection_dimension_mismatch_is_a_clear_error(services) -> None:
    with pytest.raises(ConfigError, match="dimensional"):
        Store(services.store.client, services.embedder.name, 8)


def test_unreachable_server_is_a_config_error(tmp_path: Path) -> None:
    from conftest import free_port

    with pytest.raises(ConfigError, match="cannot reach the Chroma server"):
        Store.open(make_settings(tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}"), "x-emb", 4)


def test_store_query_filters_by_version(services, tmp_path: Path) -> None:
    ingest_paths([CORPUS / "zichuan_2024.txt", CORPUS / "luojiang_2024.txt"], services.store, services.embedder,
                 services.settings)  # fmt: skip
    zichuan = services.store.get_report("zichuan_2024.txt")
    results = services.store.query(np.ones(services.embedder.dim, dtype=np.float32), 50, [zichuan.version])
    assert results and {c.report_id for c, _ in results} == {"zichuan_2024.txt"}


@pytest.mark.parametrize("exact_dense_max", [200_000, 0], ids=["exact", "chroma-ann"])
def test_dense_search_on_each_backend_and_path(backend, tmp_path: Path, exact_dense_max: int) -> None:
    """Dense search is exact over the derived vectors; past exact_dense_max it is Chroma's own query —
    embedded or a real `chroma run` — and both find the passage and only active versions."""
    from qa.index.retriever import Retriever

    for name in ("zichuan_2024.txt", "luojiang_2024.txt"):
        shutil.copy(CORPUS / name, tmp_path / name)
    ingest_paths([tmp_path], backend.store, backend.embedder, backend.settings)
    retriever = Retriever(
        backend.store, backend.embedder, backend.settings.replace(exact_dense_max=exact_dense_max)
    )
    records = backend.store.reports()
    zichuan = [r.version for r in records if r.report_id == "zichuan_2024.txt"]
    hits = retriever.dense("淄川区行政复议案件综合纠错率", zichuan, records, 5)
    assert hits and {h.report_id for h in hits} == {"zichuan_2024.txt"}
    assert "综合纠错率达29.8%" in hits[0].text or "综合纠错率达29.8%" in hits[1].text
    # Brute force over the stored vectors agrees with the top of either path.
    got = backend.store.chunks.get(where={"version": zichuan[0]}, include=["embeddings"])
    matrix = np.asarray(got["embeddings"], dtype=np.float32)
    query = backend.embedder.embed_query("淄川区行政复议案件综合纠错率")
    cosine = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    assert hits[0].id == got["ids"][int(np.argmax(cosine))]


def test_exact_dense_search_is_the_same_on_every_fresh_store(tmp_path: Path) -> None:
    """The eval gate needs repeatable runs: two fresh stores of the same files rank alike."""
    for name in ("luojiang_2024.txt", "dabancheng_2024.txt"):
        shutil.copy(CORPUS / name, tmp_path / name)
    questions = [
        "洛江区建成了多少个镇级综治中心和村级综治中心？",
        "洛江区累计兑现惠企资金多少",
        "达坂城区开展矛盾纠纷排查多少次",
    ]
    rankings = []
    for run in range(2):
        services = open_services(make_settings(tmp_path / f"store{run}"))
        ingest_paths([tmp_path], services.store, services.embedder, services.settings)
        records = services.store.reports()
        versions = [r.version for r in records if r.report_id == "luojiang_2024.txt"]
        rankings.append(
            [[c.id for c in services.retriever.dense(q, versions, records, 20)] for q in questions]
        )
    assert rankings[0] == rankings[1]


def test_a_change_by_another_process_reaches_a_running_one(services, tmp_path: Path) -> None:
    """The registry is cached per process until its stamp changes: the app keeps answering while
    `qa rm` / `qa ingest` run elsewhere, and must not serve a removed report from memory."""
    from conftest import run_cli

    for name in ("zichuan_2024.txt", "luojiang_2024.txt"):
        shutil.copy(CORPUS / name, tmp_path / name)
    ingest_paths([tmp_path], services.store, services.embedder, services.settings)
    question = "淄川区行政复议案件151件"
    assert "zichuan_2024.txt" in {h.chunk.report_id for h in services.retriever.search(question, k=10).hits}
    stamp = services.store.registry_stamp()
    env = {"QA_DATA_DIR": str(services.settings.data_dir)}
    assert run_cli("rm", "zichuan_2024.txt", env=env).returncode == 0
    assert services.store.registry_stamp() != stamp
    assert [r.report_id for r in services.store.reports()] == ["luojiang_2024.txt"]
    hits = services.retriever.search(question, k=10, auto_scope=False).hits
    assert hits and {h.chunk.report_id for h in hits} == {"luojiang_2024.txt"}


# ---- a damaged or read-only store (issue 21) -----------------------------------------------------------


def _cli(*args: str, data_dir: Path, as_reader: bool = False):
    """`qa …` as a real process; as_reader: as a user who may not write to the store (see _reader_prefix)."""
    import subprocess
    import sys

    from conftest import ROOT

    prefix = _reader_prefix() if as_reader else []
    env = {**os.environ, "QA_DATA_DIR": str(data_dir)}
    return subprocess.run([*prefix, sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)  # fmt: skip


def _reader_prefix() -> list[str]:
    """Tests run as root, and root writes through any file mode. Root without the capabilities that bypass
    permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) is held to them like any user, yet can still run
    the interpreter under /root: that is the reader. As another user, file modes alone suffice."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: no way to be a user who may not write")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}"]


def _make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)


def _make_writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def test_an_empty_database_file_is_a_damaged_store_and_is_left_as_it_is(tmp_path: Path) -> None:
    """Issue 21: a zero-length chroma.sqlite3 made `qa ls` say "no reports … add some" (exit 0): Chroma had
    written a new, empty database over it. Now every command says the store is damaged, which file, and
    what to do, exits 1, and the file stays as it was found."""
    data_dir = tmp_path / "data"
    assert _cli("ingest", str(CORPUS / "zichuan_2024.txt"), data_dir=data_dir).returncode == 0
    database = data_dir / "chroma" / "chroma.sqlite3"
    database.write_bytes(b"")
    before = database.stat()
    for args in (
        ["ls"],
        ["ask", "淄川区办理行政复议案件多少件？"],
        ["ingest", str(CORPUS / "zichuan_2024.txt")],
    ):
        result = _cli(*args, data_dir=data_dir)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "no reports" not in result.stdout
        assert (
            f"the store at {data_dir / 'chroma'} is damaged: {database} is empty (0 bytes)" in result.stderr
        )
        assert (
            "Restore the folder from a backup, or move it aside" in result.stderr
            and "qa ingest" in result.stderr
        )
    after = database.stat()
    assert (after.st_size, after.st_mtime_ns) == (0, before.st_mtime_ns)  # never written over

    database.unlink()  # gone, while Chroma's index folders are still there
    result = _cli("ls", data_dir=data_dir)
    assert (
        result.returncode == 1 and f"{database} is missing, while the folder holds Chroma's" in result.stderr
    )
    assert not database.exists()


def test_a_read_only_store_answers_and_refuses_writes_saying_why(tmp_path: Path) -> None:
    """Issue 21: a store this process may not write to refused even `qa ls` (Chroma writes when it opens a
    database). It is read from a copy: listing, search and questions work; writes say it is read-only."""
    data_dir = tmp_path / "data"
    files = [str(CORPUS / "zichuan_2024.txt"), str(CORPUS / "luojiang_2024.txt")]
    assert _cli("ingest", *files, data_dir=data_dir).returncode == 0
    _make_read_only(data_dir)
    try:
        listed = _cli("ls", "--json", data_dir=data_dir, as_reader=True)
        assert listed.returncode == 0, listed.stderr
        assert sorted(r["report"] for r in json.loads(listed.stdout)) == [
            "luojiang_2024.txt",
            "zichuan_2024.txt",
        ]
        asked = _cli("ask", "淄川区办理行政复议案件多少件？", data_dir=data_dir, as_reader=True)
        assert asked.returncode == 0 and "151件" in asked.stdout, asked.stderr
        searched = _cli("search", "洛江区新收行政复议申请", data_dir=data_dir, as_reader=True)
        assert searched.returncode == 0 and "121件" in searched.stdout, searched.stderr
        for args in (["rm", "zichuan_2024.txt"], ["ingest", *files]):
            refused = _cli(*args, data_dir=data_dir, as_reader=True)
            assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
            assert (
                f"error: the store at {data_dir / 'chroma'} is read-only: this process may not write to"
                in refused.stderr
            )
            assert "Its reports can be listed, searched and asked about" in refused.stderr
            assert "Traceback" not in refused.stderr
    finally:
        _make_writable(data_dir)
    listed = _cli("ls", "--json", data_dir=data_dir)  # nothing was changed, and the writer still writes
    assert len(json.loads(listed.stdout)) == 2
    assert _cli("rm", "zichuan_2024.txt", data_dir=data_dir).returncode == 0


def test_a_read_only_reader_follows_writes_made_elsewhere(tmp_path: Path, monkeypatch) -> None:
    """A long-running reader of a read-only store (the app run by a user who may only read) sees what a
    writer with the rights adds and removes: its copy is taken again when the store changes."""
    import qa.store.client

    data_dir = tmp_path / "data"
    assert _cli("ingest", str(CORPUS / "zichuan_2024.txt"), data_dir=data_dir).returncode == 0
    # This process is root and may write anywhere: it is told it may not, as access(2) would tell a reader.
    monkeypatch.setattr(qa.store.client, "_unwritable", lambda path: f"this process may not write to {path}")
    reader = open_services(make_settings(data_dir))
    assert reader.store.read_only is not None
    assert [r.report_id for r in reader.store.reports()] == ["zichuan_2024.txt"]
    with pytest.raises(StoreReadOnly, match="is read-only: this process may not write to"):
        reader.store.remove_report("zichuan_2024.txt")

    assert _cli("ingest", str(CORPUS / "luojiang_2024.txt"), data_dir=data_dir).returncode == 0
    hits = reader.retriever.search("洛江区新收行政复议申请多少件", k=5).hits
    assert hits and hits[0].chunk.report_id == "luojiang_2024.txt"
    assert _cli("rm", "zichuan_2024.txt", data_dir=data_dir).returncode == 0
    assert [r.report_id for r in reader.store.reports()] == ["luojiang_2024.txt"]


def test_a_writer_lock_that_cannot_be_taken_is_said_so_and_reads_go_on(services) -> None:
    """A lock file this user cannot open for writing (another user's, or something else in its place) was
    an "unexpected PermissionError … (a bug)" on every write."""
    ingest_paths([CORPUS / "zichuan_2024.txt"], services.store, services.embedder, services.settings)
    lock = Path(services.store.location) / "qa-writer.lock"
    lock.unlink()
    lock.mkdir()  # a folder where the lock file belongs: no process can open it for writing
    reader = open_services(services.settings)
    with pytest.raises(StoreReadOnly, match=r"cannot take the store's writer lock \(qa-writer.lock in .*\): "
                                            r"IsADirectoryError.*run the command as the user who owns"):  # fmt: skip
        reader.store.remove_report("zichuan_2024.txt")
    assert [r.report_id for r in reader.store.reports()] == ["zichuan_2024.txt"]
    assert reader.retriever.search("淄川区行政复议案件", k=3).hits
