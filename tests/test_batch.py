"""`qa summarize PATH… --out DIR` as a real subprocess (offline, and against the local OpenAI-compatible
server): per-report failures, --strict, --dry-run, resume after a kill, the index; plus the batch runner's
incremental rules in-process."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import docx
import openpyxl
import pytest
from conftest import CORPUS, CORPUS_FILES, ROOT, make_settings, run_cli
from fake_chat import FakeChatModel
from openai_server import OpenAIServer, Reply, Request
from summary_llm import schema_name, summary_responder
from test_summarize import EMBEDDER, _inventing

from qa.cli.main import main
from qa.core.files import atomic_write
from qa.engines.chat import ChatEngine
from qa.summary.batch import estimate, plan, run_batch, view_from_file
from qa.summary.summarize import Summary
from qa.wiring import make_engine

LLM_ENV = {
    "QA_LLM_MODEL": "gpt-4o-mini",
    "QA_LLM_API_KEY": "test",
    "QA_LLM_RETRIES": "2",
    "QA_LLM_TIMEOUT": "20",
}


def _counts(stdout: str) -> dict[str, str]:
    """The final table of `qa summarize` as {column: value}."""
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:3] == ["ok", "skipped", "failed"])
    values = lines[at + 1].split()
    return dict(
        zip(
            ["ok", "skipped", "failed", "stopped", "unverified", "tokens", "cost", "time"],
            values,
            strict=True,
        )
    )


def _summaries(out: Path) -> dict[str, Summary]:
    summaries = [Summary.model_validate_json(p.read_text("utf-8")) for p in sorted(out.glob("*.json"))]
    return {s.report_id: s for s in summaries}


INDEX_HEADERS = ["报告文件", "标题", "地区", "年度", "发布日期", "生成方式", "关键指标（项）",
                 "未核实（处）", "输入 tokens", "输出 tokens", "费用（美元）", "生成时间", "JSON 文件",
                 "Markdown 文件", "Word 文件"]  # fmt: skip


def _index(out: Path) -> tuple[list[dict], list[dict]]:
    """index.jsonl (machine keys) and index.csv (UTF-8 with BOM, Chinese headings) of an output folder."""
    jsonl = [json.loads(line) for line in (out / "index.jsonl").read_text("utf-8").splitlines()]
    data = (out / "index.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    rows = list(reader)
    assert reader.fieldnames == INDEX_HEADERS
    return jsonl, rows


def _sheet(path: Path) -> list[list[str]]:
    """An Excel file's first sheet as text cells ("" for empty), as a CSV reader gives them."""
    sheet = openpyxl.load_workbook(path).worksheets[0]
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


def _docx_text(source: Path | bytes) -> tuple[list[str], list[list[str]]]:
    """A Word file's paragraphs and the rows of its first table."""
    document = docx.Document(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    rows = [[cell.text for cell in row.cells] for row in document.tables[0].rows] if document.tables else []
    return [p.text for p in document.paragraphs], rows


def _report_of(request: Request) -> str:
    """Which sample report a map or reduce request is about (from the 报告：《title》 line)."""
    title = re.search(r"报告：《(.+?)》", request.prompt)
    markers = {"淄川区": "zichuan", "洛江区": "luojiang", "达坂城区": "dabancheng", "蓉江新区": "rongjiang",
               "浈江区": "zhenjiang"}  # fmt: skip
    return next((name for marker, name in markers.items() if title and marker in title.group(1)), "")


def _troubled(request: Request) -> Reply:
    """淄川: invalid JSON every time; 洛江: a 429 storm; 达坂城: an invented figure; others: valid."""
    report = _report_of(request)
    if report == "zichuan":
        return Reply("这不是 JSON")
    if report == "luojiang":
        return Reply(status=429, error="rate limited", headers={"retry-after-ms": "10"})
    if report == "dabancheng":
        return _inventing(request)
    return summary_responder(request)


# ---- offline, CLI ---------------------------------------------------------------------------------


def test_offline_batch_writes_summaries_and_index_then_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], umask_022: int
) -> None:
    out = tmp_path / "summaries"
    first = run_cli("summarize", str(CORPUS), "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert _counts(first.stdout)["ok"] == "5" and _counts(first.stdout)["failed"] == "0"
    assert "Traceback" not in first.stderr
    summaries = _summaries(out)
    assert sorted(summaries) == CORPUS_FILES
    assert all((out / f"{Path(name).stem}.md").read_text("utf-8").startswith("# ") for name in CORPUS_FILES)
    jsonl, rows = _index(out)
    assert [r["report_id"] for r in jsonl] == [r["报告文件"] for r in rows] == CORPUS_FILES
    assert {r["生成方式"] for r in rows} == {"抽取式（离线，逐字引用原文）"} and all(
        int(r["关键指标（项）"]) > 0 for r in rows
    )
    assert {r["engine"] for r in jsonl} == {"extractive"}  # machine keys stay in the JSONL
    # people's tables: local times, no template refs, hashes or UTC stamps
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", r["生成时间"]) for r in rows)
    assert not any("@" in value or "#" in value for r in rows for value in r.values())
    assert [r["未核实（处）"] for r in rows] == ["0"] * 5
    assert (
        [r["Word 文件"] for r in rows]
        == [r["docx"] for r in jsonl]
        == [f"{Path(n).stem}.docx" for n in CORPUS_FILES]
    )
    assert _sheet(out / "index.xlsx") == [INDEX_HEADERS, *(list(r.values()) for r in rows)]
    assert not list(out.glob(".*.tmp"))
    # every file written with the user's umask (022 → 0644), not the temporary file's 0600
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {
        p.name: 0o644 for p in out.iterdir()
    } and len(list(out.iterdir())) == 3 + 3 * len(CORPUS_FILES)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    assert main(["summarize", str(CORPUS), "--out", str(out)]) == 0  # in-process: a subprocess costs ~3 s
    second = capsys.readouterr()
    assert _counts(second.out)["skipped"] == "5", second.out
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {k: v for k, v in after.items() if not k.startswith("index")} == {
        k: v for k, v in before.items() if not k.startswith("index")
    }


# ---- LLM, CLI -------------------------------------------------------------------------------------


def test_llm_batch_one_failing_report_never_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summaries"
    with OpenAIServer(responder=_troubled) as server:
        run = run_cli("summarize", str(CORPUS), "--out", str(out), "--concurrency", "3",
                      env={**LLM_ENV, "QA_LLM_BASE_URL": server.url})  # fmt: skip
        for name, value in {**LLM_ENV, "QA_LLM_BASE_URL": server.url}.items():
            monkeypatch.setenv(name, value)
        strict_code = main(["summarize", str(CORPUS / "dabancheng_2024.txt"), "--out", str(tmp_path / "strict"),
                            "--strict"])  # fmt: skip
        strict = capsys.readouterr()
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    counts = _counts(run.stdout)
    assert (counts["ok"], counts["skipped"], counts["failed"]) == ("3", "0", "2")
    lines = {name: next(line for line in run.stderr.splitlines() if name in line) for name in CORPUS_FILES}
    assert "failed" in lines["zichuan_2024.txt"] and "invalid JSON twice" in lines["zichuan_2024.txt"]
    assert "failed" in lines["luojiang_2024.txt"] and "429" in lines["luojiang_2024.txt"]
    assert "unverified" in lines["dabancheng_2024.txt"] and "ok" in lines["dabancheng_2024.txt"]
    luojiang_calls = Counter(r.prompt for r in server.chat_requests() if _report_of(r) == "luojiang")
    assert set(luojiang_calls.values()) == {3}  # each retried twice (QA_LLM_RETRIES), then reported
    summaries = _summaries(out)
    assert sorted(summaries) == ["dabancheng_2024.txt", "rongjiang_2023.txt", "zhenjiang_sfj_2024.txt"]
    invented = summaries["dabancheng_2024.txt"]
    assert invented.unverified == 2 and [f.raw for f in invented.key_figures if not f.verified] == ["9999件"]
    assert all(s.engine == "llm" and s.model == "gpt-4o-mini" and s.cost_usd for s in summaries.values())
    jsonl, rows = _index(out)
    assert [r["报告文件"] for r in rows] == sorted(summaries)
    assert int(counts["tokens"].split("/")[0].replace(",", "")) == sum(
        s.prompt_tokens for s in summaries.values()
    )
    # --strict: the same invented figure fails the report
    assert strict_code == 1 and _counts(strict.out)["failed"] == "1"
    assert "--strict" in strict.err and "9999件" in strict.err
    assert not list((tmp_path / "strict").glob("*_20??.json"))


def test_dry_run_lists_reports_and_cost_and_sends_nothing(tmp_path: Path) -> None:
    out = tmp_path / "summaries"
    with OpenAIServer(responder=summary_responder) as server:
        run = run_cli("summarize", str(CORPUS), "--out", str(out), "--dry-run",
                      env={**LLM_ENV, "QA_LLM_BASE_URL": server.url})  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert server.requests == []
    assert all(name in run.stdout for name in CORPUS_FILES)
    assert "5 to summarize" in run.stdout and "Nothing was sent" in run.stdout
    assert "$" in run.stdout and "unknown cost" not in run.stdout  # gpt-4o-mini has a price
    assert not out.exists()


# ---- kill and resume --------------------------------------------------------------------------------


def _copies(folder: Path, n: int) -> list[Path]:
    folder.mkdir()
    files = []
    for i in range(n):
        source = CORPUS / CORPUS_FILES[i % len(CORPUS_FILES)]
        target = folder / f"r{i:02d}_{source.name}"
        shutil.copyfile(source, target)
        files.append(target)
    return files


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qa.cli", *args], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for_outputs(proc: subprocess.Popen, out: Path, timeout: float = 30) -> None:
    """Until the first summary is written; the process is killed if that never happens."""
    deadline = time.time() + timeout
    while not list(out.glob("*_20??.json")):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError(f"no summary appeared: {proc.communicate()}")
        time.sleep(0.05)


def test_resume_after_a_kill_mid_batch(tmp_path: Path) -> None:
    files = _copies(tmp_path / "reports", 8)
    out = tmp_path / "summaries"
    args = ["summarize", str(tmp_path / "reports"), "--out", str(out), "--concurrency", "2"]
    with OpenAIServer(responder=summary_responder, latency=0.15) as server:
        proc = _start(args, {**LLM_ENV, "QA_LLM_BASE_URL": server.url})
        _wait_for_outputs(proc, out)
        proc.kill()  # SIGKILL: no handler runs, no index is written
        proc.communicate()
    done = _summaries(out)
    assert 1 <= len(done) < len(files)
    for name in done:  # nothing half-written: each summary parses and has its Markdown
        assert (out / f"{Path(name).stem}.md").read_text("utf-8").startswith("# ")
    before = {name: (out / f"{Path(name).stem}.json").read_bytes() for name in done}

    with OpenAIServer(responder=summary_responder) as server:
        rerun = run_cli(*args[:-1], "8", env={**LLM_ENV, "QA_LLM_BASE_URL": server.url})
    assert rerun.returncode == 0, rerun.stderr
    counts = _counts(rerun.stdout)
    assert (int(counts["skipped"]), int(counts["ok"])) == (len(done), len(files) - len(done))
    assert all((out / f"{Path(name).stem}.json").read_bytes() == data for name, data in before.items())
    jsonl, rows = _index(out)
    assert (
        sorted(r["报告文件"] for r in rows)
        == sorted(r["report_id"] for r in jsonl)
        == [f.name for f in files]
    )
    assert not list(out.glob(".*.tmp"))


def test_sigterm_stops_promptly_and_keeps_the_finished_reports(tmp_path: Path) -> None:
    _copies(tmp_path / "reports", 6)
    out = tmp_path / "summaries"
    with OpenAIServer(responder=summary_responder, latency=0.1) as server:
        proc = _start(["summarize", str(tmp_path / "reports"), "--out", str(out), "--concurrency", "1"],
                      {**LLM_ENV, "QA_LLM_BASE_URL": server.url})  # fmt: skip
        _wait_for_outputs(proc, out)
        server.latency = 5.0  # what is in flight now would take long: it must not hold up the exit
        stopped = time.time()
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=15)
        finally:
            proc.kill()  # no-op when it has exited
    assert proc.returncode == 130, stderr
    assert time.time() - stopped < 4
    assert "interrupted" in stderr and "Traceback" not in stderr
    jsonl, _ = _index(out)
    assert sorted(r["report_id"] for r in jsonl) == sorted(_summaries(out))  # the index matches what is there


def test_a_rejected_key_stops_the_batch_instead_of_failing_every_report(tmp_path: Path) -> None:
    files = _copies(tmp_path / "reports", 8)
    out = tmp_path / "summaries"
    with OpenAIServer(responder=lambda r: Reply(status=401, error="Incorrect API key provided")) as server:
        run = run_cli("summarize", str(tmp_path / "reports"), "--out", str(out), "--concurrency", "2",
                      env={**LLM_ENV, "QA_LLM_BASE_URL": server.url})  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    counts = _counts(run.stdout)
    failed, stopped = int(counts["failed"]), int(counts["stopped"])
    assert counts["ok"] == "0" and failed + stopped == len(files)
    assert 1 <= failed <= 2  # only the reports already in flight hit the key
    # a 401 is not retried, and once it came back nothing more was sent: at most the calls then in flight
    assert 1 <= len(server.chat_requests()) <= 2
    [message] = [line for line in run.stderr.splitlines() if line.startswith("error: batch stopped")]
    assert "rejected the API key (401)" in message
    assert f"{stopped} report(s) not run" in run.stderr and "run the same command again" in run.stderr
    assert not out.exists()  # nothing written, not even an empty index


# ---- the runner, in-process -------------------------------------------------------------------------


def test_incremental_rules(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in CORPUS_FILES[:3]:
        shutil.copyfile(CORPUS / name, reports / name)
    (reports / "empty.txt").write_bytes(b"")
    settings, out = make_settings(tmp_path / "data"), tmp_path / "out"
    files = plan([reports]).files

    def statuses(**options) -> dict[str, str]:
        return {Path(i.path).name: i.status for i in run_batch(files, out, settings, EMBEDDER, **options)}

    assert statuses() == {**dict.fromkeys(CORPUS_FILES[:3], "ok"), "empty.txt": "failed"}
    assert statuses() == {**dict.fromkeys(CORPUS_FILES[:3], "skipped"), "empty.txt": "failed"}
    with open(reports / CORPUS_FILES[0], "a", encoding="utf-8") as handle:
        handle.write("\n附:全年新增法律顾问12名。\n")
    assert statuses()[CORPUS_FILES[0]] == "ok"  # new bytes → new source hash → redone
    assert set(statuses(template="generic").values()) == {"ok", "failed"}  # another template → redone
    assert set(statuses(template="generic").values()) == {"skipped", "failed"}
    assert set(statuses(force=True).values()) == {"ok", "failed"}
    (out / f"{Path(CORPUS_FILES[1]).stem}.md").unlink()  # a summary without its Markdown is not done
    assert statuses(force=False)[CORPUS_FILES[1]] == "ok"
    offline = make_engine(settings, "offline")
    assert estimate(files, settings, EMBEDDER, offline, out)["up_to_date"] == 3
    assert estimate(files, settings, EMBEDDER, offline, out, template="generic")["up_to_date"] == 0
    model = ChatEngine(FakeChatModel())  # another engine: nothing it made is there
    assert estimate(files, settings, "another-embedder", model, out)["up_to_date"] == 0


def test_a_report_after_the_key_was_rejected_is_not_run_rather_than_failed(tmp_path: Path) -> None:
    from qa.core.errors import ConfigError
    from qa.models.llm import make_chat_llm
    from qa.summary.batch import summarize_view

    with OpenAIServer(responder=lambda r: Reply(status=401, error="Incorrect API key provided")) as server:
        settings = make_settings(tmp_path / "data", llm_base_url=server.url, llm_model="gpt-4o-mini",
                                 llm_api_key="test")  # fmt: skip
        llm = make_chat_llm(settings).limited(2)
        with pytest.raises(ConfigError):
            llm.complete([{"role": "user", "content": "hi"}], prompt_ref="x@1#0")
        view = view_from_file(CORPUS / "zichuan_2024.txt", settings, EMBEDDER)
        item = summarize_view(lambda: view, tmp_path / "out", ChatEngine(llm), label="zichuan_2024.txt")
    assert (item.status, item.fatal) == ("stopped", False)
    assert (
        item.reason.startswith("not run: zichuan_2024.txt (map, part 1/")
        and "rejected the API key" in item.reason
    )
    assert len(server.chat_requests()) == 1


def test_the_index_lists_each_report_as_it_finishes(tmp_path: Path) -> None:
    """A run killed mid-batch leaves an index of what it finished (written as reports finish, not only at
    the end)."""
    files = [CORPUS / name for name in CORPUS_FILES[:3]]
    out = tmp_path / "out"
    listed: list[list[str]] = []

    def on_done(item) -> None:  # runs after the index write for that report
        listed.append([r["report_id"] for r in _index(out)[0]])

    run_batch(files, out, make_settings(tmp_path / "data"), EMBEDDER, concurrency=1, on_done=on_done,
              index_every=0)  # fmt: skip
    assert listed == [sorted(CORPUS_FILES[:1]), sorted(CORPUS_FILES[:2]), sorted(CORPUS_FILES[:3])]


def test_stale_temp_files_are_removed_and_writes_are_atomic(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".zichuan_2024.json.abc123.tmp").write_text('{"half": ', encoding="utf-8")
    run_batch([CORPUS / "zichuan_2024.txt"], out, make_settings(tmp_path / "data"), EMBEDDER)
    assert sorted(p.name for p in out.iterdir()) == [
        "index.csv", "index.jsonl", "index.xlsx", "zichuan_2024.docx", "zichuan_2024.json",
        "zichuan_2024.md",
    ]  # fmt: skip
    with pytest.raises(TypeError):
        atomic_write(out / "x.json", None)  # type: ignore[arg-type]
    assert not (out / "x.json").exists() and not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002], ids=["022", "027", "002"])
def test_files_are_written_with_the_users_umask(tmp_path: Path, mask: int) -> None:
    (tmp_path / "old.csv").write_text("old")
    (tmp_path / "old.csv").chmod(0o600)  # replaced, not kept: the new file gets the umask's mode too
    old = os.umask(mask)
    try:
        atomic_write(tmp_path / "new.md", "# 摘要")
        atomic_write(tmp_path / "old.csv", b"\xef\xbb\xbf\xe6\x8c\x87\xe6\xa0\x87")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.md").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "old.csv").stat().st_mode) == 0o666 & ~mask
    assert (tmp_path / "old.csv").read_text("utf-8-sig") == "指标"


def test_word_summary_has_identity_sections_figures_and_sources(tmp_path: Path) -> None:
    out = tmp_path / "out"
    [item] = run_batch([CORPUS / "zichuan_2024.txt"], out, make_settings(tmp_path / "data"), EMBEDDER)
    assert item.status == "ok", item.reason
    summary = _summaries(out)["zichuan_2024.txt"]
    paragraphs, table = _docx_text(out / "zichuan_2024.docx")
    assert paragraphs[0] == "淄川区人民政府2024年度法治政府建设情况报告" == summary.title
    assert paragraphs[1] == "地区：山东省 › 淄博市 › 淄川区 · 发布单位：淄川区人民政府 · 年度：2024年"
    headings = ["概况", "主要举措", "关键指标", "存在的不足", "下一步计划", "附录：来源"]
    assert [p for p in paragraphs if p in headings] == headings
    # the figure table: every key figure, each with its quote and the number of its source
    assert table[0] == ["指标", "数值", "原文", "核实"] and len(table) == len(summary.key_figures) + 1
    row = next(r for r in table if r[1] == "151件")
    assert row[0] == "行政复议 收案" and row[3] == "✓"
    quote, n = re.fullmatch(r"(.+)\[(\d+)\]", row[2]).groups()
    assert "办理行政复议案件151件" in quote and quote in (CORPUS / "zichuan_2024.txt").read_text("utf-8")
    # the appendix: source n says where in the report it is and quotes the sentence
    appendix = paragraphs[paragraphs.index("附录：来源") :]
    at = next(i for i, p in enumerate(appendix) if p.startswith(f"[{n}] "))
    assert "一、推进法治政府建设的主要举措和成效" in appendix[at]
    assert quote in appendix[at + 1 : at + 1 + len(summary.key_figures)]
    cited = {
        int(m) for p in paragraphs[: paragraphs.index("附录：来源")] for m in re.findall(r"\[(\d+)\]", p)
    }
    cited |= {int(m) for r in table for m in re.findall(r"\[(\d+)\]", r[2])}
    listed = {int(m) for p in appendix for m in re.findall(r"^\[(\d+)\] ", p)}
    assert cited == listed == set(range(1, len(listed) + 1))  # every [n] in the text has its source
    # fit to hand on: no chunk ids, hashes, template refs or UTC stamps; the footer in local time
    chunk_ids = {figure.chunk_id for figure in summary.key_figures}
    everything = "\n".join(paragraphs + [cell for r in table for cell in r])
    assert not any(chunk_id in everything for chunk_id in chunk_ids) and "段落 " not in everything
    assert summary.source_hash[:12] not in everything and summary.template not in everything
    assert re.search(r"生成于 \d{4}-\d\d-\d\d \d\d:\d\d，生成方式：抽取式", paragraphs[-1]), paragraphs[-1]
    markdown = (out / "zichuan_2024.md").read_text("utf-8")
    assert not any(chunk_id in markdown for chunk_id in chunk_ids) and "<!--" not in markdown
    assert summary.source_hash[:12] not in markdown and "一、推进法治政府建设的主要举措和成效" in markdown


def test_a_missing_word_file_is_written_without_redoing_the_summary(tmp_path: Path) -> None:
    out, settings = tmp_path / "out", make_settings(tmp_path / "data")
    run_batch([CORPUS / "zichuan_2024.txt"], out, settings, EMBEDDER)
    docx_path, json_path = out / "zichuan_2024.docx", out / "zichuan_2024.json"
    written = docx_path.read_bytes()
    summary = json_path.read_bytes()
    docx_path.unlink()  # e.g. a folder summarized before summaries had a Word file
    [item] = run_batch([CORPUS / "zichuan_2024.txt"], out, settings, EMBEDDER)
    assert item.status == "skipped" and json_path.read_bytes() == summary
    assert docx_path.is_file() and _docx_text(docx_path) == _docx_text(written)
    assert (
        estimate([CORPUS / "zichuan_2024.txt"], settings, EMBEDDER, make_engine(settings, "offline"), out)[
            "up_to_date"
        ]
        == 1
    )


def test_same_file_name_twice_fails_the_second(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(CORPUS / "zichuan_2024.txt", tmp_path / folder / "zichuan_2024.txt")
    planned = plan([tmp_path / "a", tmp_path / "b"])
    assert planned.files == [tmp_path / "a" / "zichuan_2024.txt"]
    assert [i.path for i in planned.failed] == [str(tmp_path / "b" / "zichuan_2024.txt")]
    assert "same file name" in planned.failed[0].reason


def _tokens(request: Request) -> int:
    """The prompt tokens the test server reports for a request (its rough count)."""
    return sum(len(str(m.get("content", ""))) for m in request.messages) // 2 + 1


def _counting_server(latency: float = 0.05):
    """A summary server that records the most requests it had in flight at once."""
    state = {"in_flight": 0, "peak": 0}
    lock = threading.Lock()

    def counting(request: Request) -> Reply:
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        time.sleep(latency)
        with lock:
            state["in_flight"] -= 1
        return summary_responder(request)

    return OpenAIServer(responder=counting), state


def test_concurrency_bounds_the_llm_calls_in_flight(tmp_path: Path) -> None:
    """--concurrency bounds the LLM calls in flight across reports and their section maps."""
    from qa.models.llm import make_chat_llm

    files = _copies(tmp_path / "reports", 4)
    server, state = _counting_server()
    with server:
        settings = make_settings(tmp_path / "data", llm_base_url=server.url, llm_model="gpt-4o-mini",
                                 llm_api_key="test")  # fmt: skip
        items = run_batch(
            files, tmp_path / "out", settings, EMBEDDER, ChatEngine(make_chat_llm(settings)), concurrency=2
        )
    assert [i.status for i in items] == ["ok"] * 4
    assert state["peak"] == 2
    assert {schema_name(r) for r in server.chat_requests()} == {"summary_map", "summary_rule_of_law"}


def test_one_report_maps_its_sections_in_parallel_and_keeps_their_order(tmp_path: Path) -> None:
    from qa.models.llm import make_chat_llm
    from qa.summary.summarize import section_batches

    one = CORPUS / "zichuan_2024.txt"
    server, state = _counting_server(latency=0.2)
    with server:
        settings = make_settings(tmp_path / "data", llm_base_url=server.url, llm_model="gpt-4o-mini",
                                 llm_api_key="test")  # fmt: skip
        [item] = run_batch(
            [one], tmp_path / "out", settings, EMBEDDER, ChatEngine(make_chat_llm(settings)), concurrency=3
        )
    maps = [r for r in server.chat_requests() if schema_name(r) == "summary_map"]
    parts = section_batches(view_from_file(one, settings, EMBEDDER).chunks)
    assert item.status == "ok" and len(maps) == len(parts) >= 3
    assert state["peak"] == 3  # not one after another, and never more than --concurrency
    summary = _summaries(tmp_path / "out")["zichuan_2024.txt"]
    assert summary.prompt_tokens == sum(_tokens(r) for r in server.chat_requests())
    [reduce] = [r for r in server.chat_requests() if schema_name(r) != "summary_map"]
    notes = reduce.prompt
    firsts = [notes.find(batch[0].id) for batch in parts]  # the notes reach the reduce in document order
    assert all(at >= 0 for at in firsts) and firsts == sorted(firsts)


def test_summaries_inside_the_input_folder_are_not_reports(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copyfile(CORPUS / "zichuan_2024.txt", reports / "zichuan_2024.txt")
    out = reports / "summaries"
    run_batch(plan([reports], out).files, out, make_settings(tmp_path / "data"), EMBEDDER)
    assert (out / "zichuan_2024.md").exists() and (out / "zichuan_2024.docx").exists()
    assert plan([reports], out).files == [reports / "zichuan_2024.txt"]
    # without the exclusion the .md and .docx summaries would be summarized
    assert sorted(p.name for p in plan([reports]).files) == [
        "zichuan_2024.docx", "zichuan_2024.md", "zichuan_2024.txt"
    ]  # fmt: skip


def test_summaries_are_named_after_the_report_and_two_of_one_name_both_kept(tmp_path: Path) -> None:
    """NAME.docx (as the app hands it out); a second report of the same name (NAME.md beside NAME.txt) is
    kept under its whole file name instead of overwriting the first."""
    reports, out = tmp_path / "reports", tmp_path / "out"
    reports.mkdir()
    text = (CORPUS / "zichuan_2024.txt").read_text("utf-8")
    (reports / "zichuan_2024.txt").write_text(text, encoding="utf-8")
    (reports / "zichuan_2024.md").write_text(text.replace("151件", "152件"), encoding="utf-8")
    items = run_batch(
        sorted(reports.iterdir()), out, make_settings(tmp_path / "data"), EMBEDDER, concurrency=2
    )
    assert [i.status for i in items] == ["ok", "ok"]
    owners = {p.name: json.loads(p.read_text("utf-8"))["report_id"] for p in out.glob("zichuan_2024*.json")}
    assert sorted(owners.values()) == ["zichuan_2024.md", "zichuan_2024.txt"]
    short, full = sorted(owners, key=len)
    assert short == "zichuan_2024.json" and full == f"{owners[full]}.json"
    for name in owners:
        assert (out / name).with_suffix(".docx").exists() and (out / name).with_suffix(".md").exists()
    again = run_batch(sorted(reports.iterdir()), out, make_settings(tmp_path / "data"), EMBEDDER)
    assert [i.status for i in again] == ["skipped", "skipped"]  # each finds its own files again
