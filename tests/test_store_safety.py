"""Many processes on one store (issue 11): a report is its own, never its content's; one writer at a time
(the writer lock names its holder); readers notice other processes' writes and carry on; what a killed
writer leaves behind is cleaned up. Real Chroma, real files, `qa ingest` / `qa rm` as real processes; no
sleeps that race: every wait polls a condition against a deadline."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, make_settings, run_cli

from qa.index.retriever import Retriever
from qa.ingest.pipeline import ingest_file, ingest_paths
from qa.store.chroma import Store
from qa.store.client import process_name
from qa.store.errors import ReportDamaged, StoreBusy, StoreReadError
from qa.store.lock import LOCK_COLLECTION
from qa.store.records import STAMP_ID
from qa.wiring import open_services

ZICHUAN = "zichuan_2024.txt"
LUOJIANG = "luojiang_2024.txt"
DABANCHENG = "dabancheng_2024.txt"
ZICHUAN_Q = "淄川区行政复议案件151件"


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    """Poll until condition() is truthy; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def copy(tmp_path: Path, *names: str, folder: str = "docs") -> Path:
    target = tmp_path / folder
    target.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(CORPUS / name, target / name)
    return target


def stored_chunks(store: Store, report_id: str) -> dict[str, int]:
    """{version: chunks} actually held for a report."""
    got = store.chunks.get(where={"report_id": report_id}, include=["metadatas"])
    counts: dict[str, int] = {}
    for meta in got["metadatas"]:
        counts[meta["version"]] = counts.get(meta["version"], 0) + 1
    return counts


def assert_consistent(store: Store) -> None:
    """Every listed report holds exactly its listed chunks, and nothing else is stored."""
    records = store.reports()
    for record in records:
        assert stored_chunks(store, record.report_id) == {record.version: record.n_chunks}, record.report_id
    assert store.count_chunks() == sum(r.n_chunks for r in records)


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    return run_cli(*args, env={"QA_DATA_DIR": str(data_dir)})


def start_cli(*args: str, data_dir: Path, log: Path, cwd: Path = ROOT, extra_env: dict | None = None):
    """`qa …` as a running process, its stdout and stderr going to `log` (read while it runs)."""
    handle = open(log, "w")  # noqa: SIM115 (closed by the caller's finish())
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", *args],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, "QA_DATA_DIR": str(data_dir), **(extra_env or {})},
        cwd=cwd,
    )
    process.log_handle = handle  # type: ignore[attr-defined]
    return process


def finish(process, timeout: float = 240) -> int:
    try:
        return process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
        process.log_handle.close()


# ---- report identity: the report, not its content ---------------------------------------------------


def test_identical_bytes_under_another_name_are_refused_naming_the_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "qa-data"
    docs = copy(tmp_path, ZICHUAN)
    twin = docs / "zichuan_copy.txt"
    shutil.copy(docs / ZICHUAN, twin)
    assert cli("ingest", str(docs / ZICHUAN), data_dir=data_dir).returncode == 0

    refused = cli("ingest", str(twin), data_dir=data_dir)
    assert refused.returncode == 1
    assert f"same content as {ZICHUAN}" in refused.stdout + refused.stderr
    assert f"qa rm {ZICHUAN}" in refused.stdout + refused.stderr  # says what to do
    services = open_services(make_settings(data_dir))
    assert [r.report_id for r in services.store.reports()] == [ZICHUAN]
    hits = services.retriever.search(ZICHUAN_Q, k=5).hits
    assert hits and {h.chunk.report_id for h in hits} == {ZICHUAN}  # cites the right name

    # Removing the refused name touches nothing; the report keeps every chunk and stays unchanged.
    assert cli("rm", "zichuan_copy.txt", data_dir=data_dir).returncode == 1  # no such report
    again = cli("ingest", str(docs / ZICHUAN), data_dir=data_dir)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert_consistent(services.store)

    # Renamed for good: remove the old name, then the new one is stored.
    assert cli("rm", ZICHUAN, data_dir=data_dir).returncode == 0
    moved = cli("ingest", str(twin), data_dir=data_dir)
    assert moved.returncode == 0 and "ingested" in moved.stdout, moved.stdout + moved.stderr
    assert [r.report_id for r in services.store.reports()] == ["zichuan_copy.txt"]
    assert_consistent(services.store)


def test_same_text_in_other_bytes_is_two_independent_reports(services, tmp_path: Path) -> None:
    """The same report saved as GBK: the clean text (and every chunk's text) is identical, the bytes are
    not. Each name has its own chunks; removing one leaves the other whole and unchanged."""
    docs = copy(tmp_path, ZICHUAN)
    gbk = docs / "zichuan_gbk.txt"
    gbk.write_bytes((docs / ZICHUAN).read_text(encoding="utf-8").encode("gb18030"))
    results = ingest_paths([docs], services.store, services.embedder, services.settings)
    assert [r.status for r in results] == ["ingested", "ingested"], results
    original, other = services.store.get_report(ZICHUAN), services.store.get_report("zichuan_gbk.txt")
    assert services.store.report_text(ZICHUAN) == services.store.report_text("zichuan_gbk.txt")
    assert original.version != other.version
    ids = {
        name: set(services.store.chunks.get(where={"report_id": name})["ids"]) for name in (ZICHUAN, gbk.name)
    }
    assert ids[ZICHUAN] and ids[gbk.name] and not ids[ZICHUAN] & ids[gbk.name]

    for name in (ZICHUAN, gbk.name):  # each answers with its own passages, under its own name
        hits = services.retriever.search(ZICHUAN_Q, k=5, report_ids=[name]).hits
        assert hits and {h.chunk.report_id for h in hits} == {name}
        assert any("151件" in h.chunk.text for h in hits)

    assert services.store.remove_report(gbk.name)
    assert stored_chunks(services.store, ZICHUAN) == {original.version: original.n_chunks}
    hits = services.retriever.search(ZICHUAN_Q, k=5).hits
    assert hits and {h.chunk.report_id for h in hits} == {ZICHUAN}
    again = ingest_file(docs / ZICHUAN, services.store, services.embedder, services.settings)
    assert again.status == "unchanged"
    assert_consistent(services.store)


def test_a_report_missing_its_chunks_is_an_error_and_re_ingest_repairs_it(services, tmp_path: Path) -> None:
    docs = copy(tmp_path, ZICHUAN, LUOJIANG)
    ingest_paths([docs], services.store, services.embedder, services.settings)
    record = services.store.get_report(ZICHUAN)
    assert services.retriever.search(ZICHUAN_Q, k=5, report_ids=[ZICHUAN]).hits
    # Listed with 13 chunks, holding none: what removing a report that shared them did before pipeline 6.
    services.store.chunks.delete(where={"report_id": ZICHUAN})

    reader = Retriever(services.store, services.embedder, services.settings)  # a process started now
    with pytest.raises(ReportDamaged, match=rf"report {ZICHUAN} is damaged .*holding 0.*qa ingest"):
        reader.search(ZICHUAN_Q, k=5, report_ids=[ZICHUAN])
    with pytest.raises(ReportDamaged):
        services.store.report_chunks(ZICHUAN)
    # The other report still answers.
    assert reader.search("洛江区综治中心", k=5, report_ids=[LUOJIANG]).hits

    repaired = ingest_file(docs / ZICHUAN, services.store, services.embedder, services.settings)
    assert repaired.status == "updated"  # never "unchanged"
    assert repaired.reason == f"repaired: listed with {record.n_chunks} chunks, holding 0"
    assert_consistent(services.store)
    hits = reader.search(ZICHUAN_Q, k=5, report_ids=[ZICHUAN]).hits  # the same reader, repaired
    assert hits and any("151件" in h.chunk.text for h in hits)


def test_re_ingest_removes_orphan_chunks_left_by_a_killed_writer(services, tmp_path: Path) -> None:
    """The state a kill leaves, made directly: (1) between the version flip and the old chunks' delete
    (chunks of an older version of a listed report); (2) in a removal, after the tombstone (the report's
    chunks and tombstone left). Readers never see either; re-ingest cleans both up."""
    docs = copy(tmp_path, ZICHUAN, LUOJIANG)
    ingest_paths([docs], services.store, services.embedder, services.settings)
    store = services.store
    record = store.get_report(ZICHUAN)
    old = store.chunks.get(where={"report_id": ZICHUAN}, include=["embeddings", "documents", "metadatas"])
    store.chunks.upsert(
        ids=[f"0ld{cid}" for cid in old["ids"]],
        embeddings=old["embeddings"],
        documents=old["documents"],
        metadatas=[{**meta, "version": "0" * 32} for meta in old["metadatas"]],
    )
    store.reports_col.upsert(ids=[LUOJIANG, STAMP_ID], embeddings=[[1.0], [1.0]], documents=["", ""],
                             metadatas=[{"deleted": True}, {"stamp": "killed-in-rm"}])  # fmt: skip
    luojiang_chunks = sum(stored_chunks(store, LUOJIANG).values())
    assert luojiang_chunks > 0

    # What readers see meanwhile: only the active version of the listed report.
    assert [r.report_id for r in store.reports()] == [ZICHUAN]
    hits = services.retriever.search(ZICHUAN_Q, k=50).hits
    assert {(h.chunk.report_id, h.chunk.version) for h in hits} == {(ZICHUAN, record.version)}

    # Re-ingesting the one file (as the app's upload does) rewrites it: not "unchanged".
    result = ingest_file(docs / ZICHUAN, store, services.embedder, services.settings)
    assert (
        result.status == "updated"
        and result.reason == f"repaired: {record.n_chunks} chunks of older versions left behind"
    )
    assert stored_chunks(store, ZICHUAN) == {record.version: record.n_chunks}

    # `qa ingest` (ingest_paths) first clears what no record points at: the removal's chunks and tombstone.
    (docs / LUOJIANG).unlink()
    results = ingest_paths([docs], store, services.embedder, services.settings)
    assert [r.status for r in results] == ["unchanged"]
    assert stored_chunks(store, LUOJIANG) == {}
    assert not store.reports_col.get(ids=[LUOJIANG])["ids"]
    assert_consistent(store)


def test_a_store_written_before_report_keyed_ids_says_what_to_do(services, tmp_path: Path) -> None:
    """Before pipeline 6, identical files shared one version: the second name's write relabelled the
    chunks. The report left without chunks is an error naming the command, never an empty answer; the
    upgrade path is the one the messages give."""
    docs = copy(tmp_path, ZICHUAN)
    shutil.copy(docs / ZICHUAN, docs / "zichuan_copy.txt")
    ingest_file(docs / ZICHUAN, services.store, services.embedder, services.settings)
    store = services.store
    record = store.reports_col.get(ids=[ZICHUAN], include=["metadatas", "documents"])
    chunks = store.chunks.get(where={"report_id": ZICHUAN}, include=["embeddings", "documents", "metadatas"])
    legacy = "1e9acy" + "0" * 26
    store.chunks.delete(ids=chunks["ids"])
    store.chunks.upsert(
        ids=[f"{legacy[:16]}-{meta['start']}" for meta in chunks["metadatas"]],
        embeddings=chunks["embeddings"],
        documents=chunks["documents"],
        metadatas=[
            {**meta, "version": legacy, "report_id": "zichuan_copy.txt"} for meta in chunks["metadatas"]
        ],
    )
    meta = {**record["metadatas"][0], "version": legacy}
    store.reports_col.upsert(
        ids=[ZICHUAN, "zichuan_copy.txt", STAMP_ID], embeddings=[[1.0]] * 3,
        documents=[record["documents"][0]] * 2 + [""],
        metadatas=[meta, {**meta, "source_path": str(docs / "zichuan_copy.txt")}, {"stamp": "legacy"}],
    )  # fmt: skip

    with pytest.raises(ReportDamaged, match=rf"ingest its file again: qa ingest .*{ZICHUAN}"):
        services.retriever.search(ZICHUAN_Q, k=5, report_ids=[ZICHUAN])
    hits = services.retriever.search(ZICHUAN_Q, k=5, report_ids=["zichuan_copy.txt"]).hits
    assert hits and {h.chunk.report_id for h in hits} == {"zichuan_copy.txt"}  # never cited as the other

    # Following the messages: re-ingest refuses the duplicate and names it; remove it; re-ingest.
    results = ingest_paths([docs / ZICHUAN], store, services.embedder, services.settings)
    assert results[0].status == "failed" and "same content as zichuan_copy.txt" in results[0].reason
    assert store.remove_report("zichuan_copy.txt")
    results = ingest_paths([docs / ZICHUAN], store, services.embedder, services.settings)
    assert [r.status for r in results] == ["updated"]
    assert_consistent(store)
    assert services.retriever.search(ZICHUAN_Q, k=5, report_ids=[ZICHUAN]).hits


# ---- one writer at a time ------------------------------------------------------------------------


def test_concurrent_ingests_never_leave_an_empty_report(tmp_path: Path) -> None:
    """10 pairs of `qa ingest` processes started together on one store, both replacing the same two reports
    with different content. Before the lock, one pair in three left a report listed with N chunks but
    holding none (each writer deleted the other's chunks), both runs exiting 0."""
    first = copy(tmp_path, LUOJIANG, folder="first")
    second = copy(tmp_path, DABANCHENG, folder="second")
    for name, source in (("00_zichuan.txt", ZICHUAN), ("01_rongjiang.txt", "rongjiang_2023.txt")):
        text = (CORPUS / source).read_text(encoding="utf-8")  # first in both runs: written at the same time
        (first / name).write_text(text, encoding="utf-8")
        (second / name).write_text(text + "\n五、补充说明\n全年新增普法驿站8个。\n", encoding="utf-8")
    for pair in range(10):
        data_dir = tmp_path / f"store{pair}"
        runs = [start_cli("ingest", str(folder), data_dir=data_dir, log=tmp_path / f"{pair}-{n}.log")
                for n, folder in enumerate((first, second))]  # fmt: skip
        codes = [finish(run) for run in runs]
        logs = [(tmp_path / f"{pair}-{n}.log").read_text() for n in range(2)]
        assert codes == [0, 0], logs
        services = open_services(make_settings(data_dir))
        assert [r.report_id for r in services.store.reports()] == [
            "00_zichuan.txt", "01_rongjiang.txt", DABANCHENG, LUOJIANG]  # fmt: skip
        for record in services.store.reports():
            assert services.store.report_problem(record) == "", (pair, record.report_id, logs)
        assert_consistent(services.store)


def test_a_waiting_writer_is_told_who_holds_the_lock(services, tmp_path: Path) -> None:
    """The test process holds the store's lock; `qa ingest` waits, says for whom, and goes on once it is free."""
    docs = copy(tmp_path, LUOJIANG)
    data_dir = services.settings.data_dir
    services.store.owner = "lock-holder-test"
    holding = contextlib.ExitStack()
    holding.enter_context(services.store.writing())
    log = tmp_path / "ingest.log"
    process = start_cli("ingest", str(docs), data_dir=data_dir, log=log)
    try:
        expected = f"waiting for the store lock held by lock-holder-test (pid {os.getpid()} on host {socket.gethostname()}) since "
        wait_for(lambda: expected in log.read_text(), "the waiting message")
        assert process.poll() is None  # still waiting
        assert services.store.get_report(LUOJIANG) is None
    finally:
        holding.close()
    assert finish(process) == 0, log.read_text()
    assert "ingested" in log.read_text()
    assert services.store.get_report(LUOJIANG) is not None
    assert services.store.lock_holder() is None  # released: nobody is named any more


def test_a_writer_gives_up_after_the_lock_timeout_naming_the_holder(services, tmp_path: Path) -> None:
    impatient = Store.open(services.settings, services.embedder.name, services.embedder.dim, lock_timeout=0.3,
                           index_dir=services.store.index_dir,
                           owner="second writer")  # fmt: skip
    told: list[str] = []
    impatient.on_lock_wait = told.append
    services.store.owner = "qa ingest"
    with services.store.writing():
        started = time.monotonic()
        with pytest.raises(StoreBusy, match=r"locked by qa ingest \(pid \d+ on host .+\) since .*try again"):
            impatient.repair()
        assert 0.3 <= time.monotonic() - started < 5
    assert told and told[0].startswith("waiting for the store lock held by qa ingest (pid")
    assert impatient.repair() == 0  # free again


def test_the_owner_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert process_name(["/venv/bin/qa", "ingest", "docs/"]) == "qa ingest"
    assert process_name(["/src/qa/cli.py", "--data-dir", "/x", "rm", "a.txt"]) == "qa rm"
    assert process_name(["/venv/bin/streamlit", "run", "app.py"]) == "streamlit"


@pytest.mark.server
def test_server_lock_names_its_holder_and_a_stale_one_is_broken(chroma_server: str, tmp_path: Path) -> None:
    """With a Chroma server the lock is a collection on the server (any machine): the same guarantees."""
    settings = make_settings(tmp_path / "unused", chroma_url=chroma_server)
    holder = open_services(settings, owner="qa ingest").store
    waiter = open_services(settings, owner="second writer", lock_timeout=0.5).store
    with holder.writing():
        assert holder.lock_holder().owner == "qa ingest"
        with (
            pytest.raises(StoreBusy, match=r"locked by qa ingest \(pid \d+ on host .+\) since"),
            waiter.writing(),
        ):
            pass
    assert holder.lock_holder() is None

    # A holder that crashed (on another machine) and stopped renewing: broken after stale_after seconds.
    holder.client.create_collection(LOCK_COLLECTION, embedding_function=None, metadata={
        "owner": "qa ingest", "pid": 4242, "host": "elsewhere", "since": "2026-01-01T00:00:00+00:00",
        "token": "dead", "renewed": 0})  # fmt: skip
    told: list[str] = []
    waiter.on_lock_wait, waiter.lock_timeout = told.append, 30
    waiter._writer.stale_after = 0.5
    started = time.monotonic()
    with waiter.writing():
        assert waiter.lock_holder().owner == "second writer"
    assert 0.5 <= time.monotonic() - started < 20
    assert told and "qa ingest (pid 4242 on host elsewhere)" in told[0]
    assert waiter.lock_holder() is None


# ---- any number of readers -----------------------------------------------------------------------


@pytest.mark.parametrize("exact_dense_max", [200_000, 0], ids=["exact", "chroma-ann"])
def test_a_reader_survives_an_external_ingest_and_rm(tmp_path: Path, exact_dense_max: int) -> None:
    """A long-lived reader (the app, a `qa` process) keeps answering while `qa ingest` and `qa rm` run in
    other processes: it sees the new report, stops seeing the removed one, and never fails."""
    data_dir = tmp_path / "qa-data"
    docs = copy(tmp_path, ZICHUAN, LUOJIANG)
    assert cli("ingest", str(docs / ZICHUAN), data_dir=data_dir).returncode == 0
    reader = open_services(make_settings(data_dir, exact_dense_max=exact_dense_max))
    assert reader.retriever.search(ZICHUAN_Q, k=5).hits

    assert cli("ingest", str(docs / LUOJIANG), data_dir=data_dir).returncode == 0
    hits = reader.retriever.search("洛江区镇级综治中心", k=5, report_ids=[LUOJIANG]).hits
    assert hits and {h.chunk.report_id for h in hits} == {LUOJIANG}
    assert reader.store.reconnects >= 1
    assert [h.chunk.report_id for h in reader.retriever.search(ZICHUAN_Q, k=5, report_ids=[ZICHUAN]).hits]

    assert cli("rm", ZICHUAN, data_dir=data_dir).returncode == 0
    assert [r.report_id for r in reader.store.reports()] == [LUOJIANG]
    hits = reader.retriever.search(ZICHUAN_Q, k=10, auto_scope=False).hits
    assert hits and {h.chunk.report_id for h in hits} == {LUOJIANG}
    assert len(reader.store.report_chunks(LUOJIANG)) == reader.store.get_report(LUOJIANG).n_chunks


def test_a_failed_read_reconnects_and_retries_once_then_says_what_to_do(
    services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chromadb.errors

    ingest_paths([copy(tmp_path, ZICHUAN)], services.store, services.embedder, services.settings)
    collection = services.store.chunks
    real_get = type(collection).get
    calls = {"n": 0}

    def fails_once(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise chromadb.errors.InternalError("Error executing plan: Internal error: Error finding id")
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(type(collection), "get", fails_once)
    before = services.store.reconnects
    assert services.retriever.search(ZICHUAN_Q, k=5).hits  # Chroma's stale-index error: reconnect, retry
    assert services.store.reconnects == before + 1

    def always_fails(self, *args, **kwargs):
        raise chromadb.errors.InternalError("Error executing plan: Internal error: Error finding id")

    monkeypatch.setattr(type(collection), "get", always_fails)
    with pytest.raises(StoreReadError, match="Error finding id.*try again in a moment"):
        services.retriever.search(ZICHUAN_Q, k=5)
    monkeypatch.undo()
    assert services.retriever.search(ZICHUAN_Q, k=5).hits  # and the reader recovers without a restart


def test_a_running_app_answers_after_an_external_ingest_and_survives_a_store_error(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app (AppTest, in this process) while `qa ingest` runs in a shell: the new report answers. A
    store error is a Chinese message with 重试; the conversation is kept, and 重试 asks again."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    st.cache_resource.clear()
    try:
        ingest_paths([CORPUS / ZICHUAN], *_services(fail_closed))
        at = AppTest.from_file(str(ROOT / "app_pages" / "main.py"), default_timeout=60)
        at.run()
        assert not at.exception, at.exception
        at.chat_input[0].set_value("淄川区办理行政复议案件多少件？").run()
        assert "151件" in at.chat_message[-1].markdown[0].value

        assert cli("ingest", str(CORPUS / LUOJIANG), data_dir=fail_closed).returncode == 0
        at.chat_input[0].set_value("洛江区建成了多少个镇级综治中心？").run()
        assert not at.exception, at.exception
        assert "洛江" in at.chat_message[-1].markdown[0].value, at.chat_message[-1].markdown[0].value

        from app_pages.common import get_services

        retriever = get_services().retriever

        def broken(*args, **kwargs):
            raise StoreReadError("cannot read chunks from the store at x: InternalError: Error finding id")

        monkeypatch.setattr(retriever, "search_reports", broken)
        at.chat_input[0].set_value("洛江区累计兑现惠企资金多少？").run()
        assert not at.exception, at.exception
        assert any("读取文档库时出错" in e.value for e in at.error), [e.value for e in at.error]
        retry = [b for b in at.button if b.label == "重试"]
        assert retry
        history = at.session_state["messages"]
        assert [m["role"] for m in history] == ["user", "assistant"] * 3
        assert "151件" in history[1]["content"]  # the earlier answers are kept

        monkeypatch.undo()
        retry[0].click().run()
        assert not at.exception, at.exception
        history = at.session_state["messages"]
        assert [m.get("error", "") for m in history] == [""] * 6  # the failed turn replaced by its answer
        assert history[4]["content"] == "洛江区累计兑现惠企资金多少？"
        assert history[5]["answer"].citations
    finally:
        st.cache_resource.clear()


def _services(data_dir: Path):
    services = open_services(make_settings(data_dir))
    return services.store, services.embedder, services.settings
