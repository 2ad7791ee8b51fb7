"""The `qa` command run as a real subprocess: exit codes, one line per file, JSON output, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS, free_port, run_cli


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(CORPUS / "zichuan_2024.txt", folder / "zichuan_2024.txt")
    shutil.copy(CORPUS / "luojiang_2024.txt", folder / "sub" / "luojiang_2024.txt")
    return folder


def test_ingest_ls_search_rm(reports: Path) -> None:
    first = run_cli("ingest", str(reports))
    assert first.returncode == 0, first.stderr
    assert "2 ingested" in first.stdout
    again = run_cli("ingest", str(reports))
    assert again.returncode == 0 and "2 unchanged" in again.stdout

    listing = run_cli("ls", "--json")
    rows = json.loads(listing.stdout)
    assert [(r["report"], r["year"], r["region"]) for r in rows] == [
        ("luojiang_2024.txt", 2024, "洛江区"),
        ("zichuan_2024.txt", 2024, "淄川区"),
    ]
    assert all(r["chunks"] > 5 and r["title"] for r in rows)
    assert [r["kind"] for r in rows] == ["法治报告", "法治报告"]  # DESIGN.md's listing: the report's kind
    listed = run_cli("ls").stdout.splitlines()  # a pipe: two lines a report, nothing cut
    assert listed[0].startswith("luojiang_2024.txt  法治报告  2024") and "泉州市 › 洛江区" in listed[1]
    assert "淄川区人民政府2024年度法治政府建设情况报告" in listed[3] and "…" not in "".join(listed)

    empty = run_cli("ask", "  ")
    assert (
        empty.returncode == 1 and "the question is empty" in empty.stderr and "Traceback" not in empty.stderr
    )
    gone = run_cli("rm", "nosuch.txt")
    assert (
        gone.returncode == 1 and "`qa ls` lists the reports" in gone.stderr and "Library" not in gone.stderr
    )
    asked = run_cli("ask", "淄川区办理行政复议案件多少件？")
    answer_line, source_line = asked.stdout.splitlines()[:2]
    assert "151件" in answer_line and answer_line.endswith("[1]")  # its one source is [1], as in the app
    assert source_line.startswith("[1] ") and "zichuan_2024.txt" in source_line

    found = run_cli("search", "淄川区综合纠错率是多少", "--k", "3", "--json")
    assert found.returncode == 0, found.stderr
    payload = json.loads(found.stdout)
    assert payload["scope"] == {"reports": ["zichuan_2024.txt"], "reason": "named", "refusal": ""}
    assert len(payload["hits"]) == 3
    assert {"rank", "score", "chunk_id", "report", "section", "text", "start", "end"} <= set(
        payload["hits"][0]
    )
    assert any("29.8%" in hit["text"] for hit in payload["hits"])

    text = run_cli("search", "行政复议", "--report", "luojiang_2024", "--k", "2")
    assert (
        text.returncode == 0 and "luojiang_2024.txt" in text.stdout and "zichuan_2024.txt" not in text.stdout
    )

    removed = run_cli("rm", "zichuan_2024.txt")
    assert removed.returncode == 0 and "removed zichuan_2024.txt" in removed.stdout
    gone = json.loads(run_cli("search", "淄川区综合纠错率", "--k", "10", "--json").stdout)
    # the removed report is gone, and its place is now one the library has no report for
    assert gone["hits"] == [] and "淄川区" in gone["scope"]["refusal"]

    missing = run_cli("rm", "zichuan_2024.txt")
    assert missing.returncode == 1 and "no report 'zichuan_2024.txt'" in missing.stderr


def test_ingest_reports_each_bad_file_and_keeps_going(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(CORPUS / "zichuan_2024.txt", folder / "good.txt")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (folder / "gbk.txt").write_bytes(
        (CORPUS / "dabancheng_2024.txt").read_text(encoding="utf-8").encode("gbk")
    )
    (folder / "notes.xlsx").write_bytes(b"PK")  # not a report type: ignored inside folders
    result = run_cli("ingest", str(folder), str(tmp_path / "missing.txt"))
    assert result.returncode == 1
    lines = result.stdout + result.stderr
    assert "ingested" in lines and "good.txt" in lines and "gbk.txt" in lines
    assert f"{folder / 'empty.txt'}  file is empty" in lines
    assert f"{folder / 'binary.txt'}  looks like a binary file" in lines
    assert "missing.txt  no such file or folder" in lines
    assert "Traceback" not in lines
    listing = json.loads(run_cli("ls", "--json").stdout)
    assert sorted(r["report"] for r in listing) == ["gbk.txt", "good.txt"]


def test_unsupported_file_named_directly(tmp_path: Path) -> None:
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"PK")
    result = run_cli("ingest", str(path))
    assert result.returncode == 1 and "unsupported file type '.xlsx'" in result.stdout + result.stderr


def test_folder_without_reports(tmp_path: Path) -> None:
    (tmp_path / "empty-folder").mkdir()
    result = run_cli("ingest", str(tmp_path / "empty-folder"))
    assert result.returncode == 1 and "folder has no reports" in result.stdout + result.stderr


def test_size_cap_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("法治政府建设工作扎实推进。" * 50_000, encoding="utf-8")
    result = run_cli("ingest", str(path), env={"QA_MAX_FILE_MB": "1"})
    assert result.returncode == 1 and "over the 1 MB limit" in result.stdout + result.stderr


def test_unreachable_chroma_url_is_one_line_and_exit_2() -> None:
    result = run_cli("ls", env={"QA_CHROMA_URL": f"http://127.0.0.1:{free_port()}"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "cannot reach the Chroma server" in result.stderr
    assert "Traceback" not in result.stderr


def test_search_on_an_empty_store() -> None:
    result = run_cli("search", "行政复议")
    assert result.returncode == 1 and "run `qa ingest PATH` first" in result.stderr


def test_bad_setting_is_a_clear_error() -> None:
    result = run_cli("ls", env={"QA_CHUNK_SIZE": "many"})
    assert result.returncode == 2 and "QA_CHUNK_SIZE='many' is not a valid int" in result.stderr


def test_eval_retrieval_only_contract(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "zichuan_2024.txt", docs / "zichuan_2024.txt")
    dataset = tmp_path / "mini.jsonl"
    rows = [
        {"id": "a", "doc": "zichuan_2024.txt", "question": "淄川区办理行政复议案件多少件？", "answer": "151件",
         "answer_type": "number", "evidence": ["办理行政复议案件151件"]},
        {"id": "b", "doc": "zichuan_2024.txt", "question": "淄川区法律援助案件多少件？", "answer": "235件",
         "answer_type": "number", "evidence": ["全年受理法律援助案件235件"]},
        {"id": "c", "doc": "*", "question": "哪个区的综合纠错率是29.8%？", "answer": "淄川区", "answer_type": "text",
         "evidence": ["综合纠错率达29.8%"]},
        {"id": "d", "doc": "zichuan_2024.txt", "question": "淄川区的GDP是多少？", "answer": "文中未提及",
         "answer_type": "unanswerable", "evidence": []},
    ]  # fmt: skip
    dataset.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "metrics.json"
    result = run_cli("eval", "--retrieval-only", "--dataset", str(dataset), "--docs", str(docs), "--k", "3",
                     "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert metrics["n"] == 4
    assert metrics["retrieval_recall_at_k"] == 1.0
    assert 0 < metrics["p50_ms"] <= metrics["p95_ms"]
    row = metrics["rows"][0]
    assert {
        "id",
        "question",
        "gold",
        "answer",
        "correct",
        "refused",
        "retrieval_hit",
        "citations",
        "ms",
    } <= set(row)
    assert [r["retrieval_hit"] for r in metrics["rows"]] == [True, True, True, None]


def test_eval_rejects_a_malformed_dataset(tmp_path: Path) -> None:
    dataset = tmp_path / "bad.jsonl"
    dataset.write_text(
        '{"id": "a", "doc": "x.txt", "question": "q", "answer": "1件", "answer_type": "count"}\n'
    )
    result = run_cli("eval", "--retrieval-only", "--dataset", str(dataset), "--docs", str(CORPUS))
    assert result.returncode == 1
    assert "line 1: answer_type" in result.stderr and "bad.jsonl" in result.stderr


def test_unknown_prices_total_to_unknown_never_zero(tmp_path: Path) -> None:
    from openai_server import OpenAIServer
    from summary_llm import summary_responder

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("zichuan_2024.txt", "luojiang_2024.txt"):
        shutil.copy(CORPUS / name, docs / name)
    out = tmp_path / "summaries"
    with OpenAIServer(responder=summary_responder) as server:
        # a local model nobody priced; its replies cached (QA_LLM_CACHE), so a rerun costs exactly $0
        env = {"QA_LLM_BASE_URL": server.url, "QA_LLM_MODEL": "local-model", "QA_LLM_API_KEY": "test",
               "QA_LLM_CACHE": "1"}  # fmt: skip
        first = run_cli("summarize", str(docs / "zichuan_2024.txt"), "--out", str(out), env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        # zichuan again, every call from the cache (cost 0), plus luojiang at no known price: unknown in all
        second = run_cli("summarize", str(docs), "--out", str(out), "--force", env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        log = run_cli("log", env=env)
        log_json = json.loads(run_cli("log", "--json", env=env).stdout)
    totals = next(line for line in second.stdout.splitlines() if line.strip().startswith("2 "))
    assert "unknown" in totals and "0.0000" not in totals, second.stdout
    assert log.returncode == 0 and "$0.0000" not in log.stdout, log.stdout
    assert "cost unknown" in log.stdout and "without a price: set QA_LLM_PRICES" in log.stdout
    assert log_json["totals"]["cost_usd"] is None and log_json["totals"]["unpriced"] > 0


def test_summarize_names_only_an_index_it_wrote(tmp_path: Path) -> None:
    from openai_server import OpenAIServer, Reply

    out = tmp_path / "summaries"
    with OpenAIServer(responder=lambda request: Reply(status=500, error="model crashed")) as server:
        env = {"QA_LLM_BASE_URL": server.url, "QA_LLM_MODEL": "local-model", "QA_LLM_API_KEY": "test",
               "QA_LLM_RETRIES": "0"}  # fmt: skip
        failed = run_cli("summarize", str(CORPUS / "zichuan_2024.txt"), "--out", str(out), env=env)
    assert failed.returncode == 1 and "failed" in failed.stderr + failed.stdout
    assert not (out / "index.csv").exists() and "index" not in failed.stdout  # nothing written, nothing named
    written = run_cli("summarize", str(CORPUS / "zichuan_2024.txt"), "--out", str(out))  # the offline engine
    assert written.returncode == 0, written.stderr
    assert f"index: {out / 'index.csv'}" in written.stdout.replace("\n", "") and (out / "index.csv").is_file()


def test_a_long_quote_is_shortened_around_the_number_the_answer_cites() -> None:
    from qa.cli.present import shorten

    quote = (
        "编制公布行政许可事项清单236项,"
        + "推进政务服务标准化建设," * 12
        + "受理法律援助案件537件,挽回损失27.4万元;"
        + "全面推行审批服务," * 6
    )
    assert "537件" not in shorten(quote)  # the plain opening-and-end form would hide it
    shown = shorten(quote, keep=["537件"])
    assert "537件" in shown and shown.startswith("编制公布") and f"（共 {len(quote)} 字）" in shown
    assert shorten("短句,3件。", keep=["3件"]) == "短句,3件。"


def test_a_failed_report_in_a_summary_batch_is_named_once(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    done = run_cli("summarize", str(folder), "--out", str(tmp_path / "out"))
    [line] = [x for x in (done.stdout + done.stderr).splitlines() if "empty.txt" in x and "failed" in x]
    assert line.count(str(folder / "empty.txt")) == 1 and "file is empty" in line
