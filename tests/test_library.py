"""The Python API a notebook uses: `from qa import Library` over a real store and real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, SHARED_CACHE

from qa.core.errors import InputError


def test_a_notebook_ingests_asks_summarizes_and_removes(tmp_path: Path) -> None:
    from qa import Library

    lib = Library.open(tmp_path / "data", env={"QA_CACHE_DIR": str(SHARED_CACHE)})
    results = lib.ingest([CORPUS / "zichuan_2024.txt", CORPUS / "luojiang_2024.txt"])
    assert [r.status for r in results] == ["ingested", "ingested"]
    answer = lib.ask("淄川区办理行政复议案件多少件？", session="nb")
    assert "151件" in answer.text and answer.citations and answer.citations[0].report_id == "zichuan_2024.txt"
    follow_up = lib.ask("那洛江区呢？", session="nb")  # the session keeps the conversation
    assert "121件" in follow_up.text and all(c.report_id == "luojiang_2024.txt" for c in follow_up.citations)
    assert lib.ask("淄川区办理行政复议案件多少件？", reports=["luojiang_2024"]).refused  # a filter, by stem
    hits = lib.search("行政复议案件", reports=["zichuan_2024"], k=3).hits  # passages, as `qa search`
    assert hits and {h.chunk.report_id for h in hits} == {"zichuan_2024.txt"}
    table = lib.compare()  # the comparison, as `qa compare`: a column per report, every value quoted
    assert [c.report_id for c in table.reports] == ["luojiang_2024.txt", "zichuan_2024.txt"]
    assert any(
        cell.raw == "151件" for (_, report_id), cell in table.cells.items() if report_id == "zichuan_2024.txt"
    )
    summary = lib.summarize("zichuan_2024.txt")
    assert summary.unverified == 0 and any(f.raw == "151件" for f in summary.key_figures)
    assert lib.remove("zichuan_2024") and [r.report_id for r in lib.reports()] == ["luojiang_2024.txt"]
    with pytest.raises(InputError, match="no report 'zichuan_2024.txt'"):
        lib.summarize("zichuan_2024.txt")


def test_importing_qa_does_not_load_the_store_or_the_model() -> None:
    code = "import sys, qa; print(any(m.startswith(('chromadb', 'openai')) for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"


def test_workspaces_keep_teams_apart(tmp_path: Path) -> None:
    """Each workspace has its own store, sessions and summaries; removing in one never touches another."""
    from qa import Library

    env = {"QA_CACHE_DIR": str(SHARED_CACHE)}
    team_a = Library.open(tmp_path / "data", workspace="team-a", env=env)
    team_b = Library.open(tmp_path / "data", workspace="team-b", env=env)
    team_a.ingest([CORPUS / "zichuan_2024.txt"])
    team_b.ingest([CORPUS / "zichuan_2024.txt", CORPUS / "luojiang_2024.txt"])
    assert [r.report_id for r in team_a.reports()] == ["zichuan_2024.txt"]
    assert "没有洛江区" in team_a.ask("洛江区新收行政复议申请多少件？").text  # team B's report is not A's
    team_a.remove("zichuan_2024.txt")
    assert len(team_b.reports()) == 2 and "151件" in team_b.ask("淄川区办理行政复议案件多少件？").text
    assert (tmp_path / "data" / "workspaces" / "team-a").is_dir() and team_a.settings.workspace == "team-a"
    with pytest.raises(Exception, match="workspace name"):
        Library.open(tmp_path / "data", workspace="../etc", env=env)


def test_workspaces_on_a_chroma_server_are_databases_of_their_own(chroma_server: str, tmp_path: Path) -> None:
    from qa import Library

    env = {"QA_CACHE_DIR": str(SHARED_CACHE), "QA_CHROMA_URL": chroma_server}
    team_a = Library.open(tmp_path / "a", workspace="team-a", env=env)
    team_b = Library.open(tmp_path / "b", workspace="审计组", env=env)  # a Chinese name works too
    team_a.ingest([CORPUS / "luojiang_2024.txt"])
    assert [r.report_id for r in team_a.reports()] == ["luojiang_2024.txt"] and team_b.reports() == []
    team_b.ingest([CORPUS / "luojiang_2024.txt"])
    team_b.remove("luojiang_2024.txt")
    assert [r.report_id for r in team_a.reports()] == ["luojiang_2024.txt"]


def test_the_offline_engine_loads_only_what_it_uses(tmp_path: Path) -> None:
    """A cold offline `qa ask` pays only for what it uses: the OpenAI SDK (~0.5 s to import), the chunker's
    langchain and streamlit stay out of a process that only asks."""
    opening = (
        "import sys\n"
        "from qa import Library\n"
        f"lib = Library.open({str(tmp_path / 'data')!r}, engine='offline', env={{'QA_CACHE_DIR': {str(SHARED_CACHE)!r}}})\n"
    )
    ingest = opening + f"lib.ingest([{str(CORPUS / 'zichuan_2024.txt')!r}])\n"
    done = subprocess.run(
        [sys.executable, "-c", ingest], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    ask = opening + (
        "assert '151件' in lib.ask('淄川区办理行政复议案件多少件？').text\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'openai', 'langchain_text_splitters', "
        "'langchain_core', 'streamlit'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ---- a long-running reader while another process writes ------------------------------------------

_WRITER = """
import sys
from qa.cli.main import main
report, path = sys.argv[1:3]
for command in (["rm", report], ["ingest", path]):
    code = main(command)
    if code:
        sys.exit(f"qa {' '.join(command)} exited {code}")
"""


def test_a_long_running_reader_answers_after_every_rm_and_re_ingest_by_another_process(
    tmp_path: Path,
) -> None:
    """Issue 21: one Library kept for the process (as the app keeps its Store) while another process runs
    `qa rm X; qa ingest X` again and again. The file comes back at the same version, so the reader's index
    signature does not change; the reader once kept answering 文中未提及 for X after a write it had read
    mid-way (its index cached a report no pack held). A thread asks all through each write; the first read
    after the write has completed must cite X, every cycle."""
    import threading

    from qa import Library
    from qa.store.errors import StoreError

    data_dir = tmp_path / "data"
    env = {"QA_CACHE_DIR": str(SHARED_CACHE), "QA_DATA_DIR": str(data_dir)}
    lib = Library.open(data_dir, engine="offline", env=env)
    assert [r.status for r in lib.ingest([CORPUS / "zichuan_2024.txt", CORPUS / "luojiang_2024.txt"])] == [
        "ingested", "ingested"]  # fmt: skip
    question, report = "淄川区办理行政复议案件多少件？", "zichuan_2024.txt"

    def cites_report() -> bool:
        answer = lib.ask(question)
        return not answer.refused and any(c.report_id == report for c in answer.citations)

    assert cites_report()
    cycles, false_refusals, reads_during, errors = 50, [], [], []

    def ask_all_along(stop: threading.Event, cycle: int) -> None:
        while not stop.is_set():
            try:
                cites_report()  # refused or not: the report is gone for part of the write
                reads_during.append(cycle)
            except StoreError:  # said to be retried (another process changed the store twice)
                pass
            except Exception as ex:  # a reader must never break on a write it sees half done
                errors.append(f"cycle {cycle}: {type(ex).__name__}: {ex}")
            stop.wait(0.02)  # pacing only: the writer shares the machine's two cores

    for cycle in range(cycles):
        stop = threading.Event()
        reader = threading.Thread(target=ask_all_along, args=(stop, cycle))
        reader.start()
        try:
            writer = subprocess.run([sys.executable, "-c", _WRITER, report, str(CORPUS / report)], cwd=ROOT,
                                    capture_output=True, text=True, timeout=120, env={**os.environ, **env})  # fmt: skip
        finally:
            stop.set()
            reader.join()
        assert writer.returncode == 0, writer.stdout + writer.stderr
        if not cites_report():  # the first read after the write completed
            false_refusals.append(cycle)
    assert not errors, errors
    assert false_refusals == [], f"{len(false_refusals)} false refusals in {cycles} cycles: {false_refusals}"
    assert len(set(reads_during)) == cycles  # reads did interleave with every write
