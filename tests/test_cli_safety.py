"""The CLI run as an office would run it: no secret in any output or file, and a one-line message (never a
traceback) for a bad data dir, a bad Chroma URL, a damaged store, a file name that is not UTF-8, and
Rich markup in a file name."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS, run_cli
from openai_server import OpenAIServer, Reply, Request

KEY = "sk-test-Zq9Xw8Vv7Uu6Tt5Ss4"
USER, PASSWORD = "analyst", "pa55-W0rd-x7"
SECRETS = (KEY, PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())


def _echo_headers(status: int):
    """A provider that answers `status` with an error body quoting the request's headers back."""

    def responder(request: Request) -> Reply:
        return Reply(status=status, error=f"rejected: request headers were {request.headers}")

    return responder


def _no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} in {where}:\n{text}"


def test_no_secret_in_any_output_or_file(tmp_path: Path, fail_closed: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "zichuan_2024.txt", docs / "zichuan_2024.txt")
    assert run_cli("ingest", str(docs)).returncode == 0
    dataset = tmp_path / "mini.jsonl"
    dataset.write_text(json.dumps({"id": "a", "doc": "zichuan_2024.txt", "question": "淄川区办理行政复议案件多少件？",
                                   "answer": "151件", "answer_type": "number", "evidence": ["办理行政复议案件151件"]},
                                  ensure_ascii=False) + "\n", encoding="utf-8")  # fmt: skip
    outputs: list[tuple[str, str]] = []
    with OpenAIServer() as server:
        host = server.url.removeprefix("http://")
        env = {"QA_LLM_BASE_URL": f"http://{USER}:{PASSWORD}@{host}", "QA_LLM_MODEL": "m", "QA_LLM_API_KEY": KEY,
               "QA_LLM_RETRIES": "0"}  # fmt: skip
        for status in (401, 400, 500):
            server.responder = _echo_headers(status)
            asked = run_cli("ask", "淄川区办理行政复议案件多少件？", env=env)
            assert asked.returncode != 0 and "Traceback" not in asked.stderr, asked.stderr
            assert f"engine: LLM m @ http://***@{host}" in asked.stderr
            outputs.append((f"ask ({status})", asked.stdout + asked.stderr))
        # the test means something only if the server did see the secrets and sent them back
        sent = server.requests[-1].headers["authorization"]
        assert KEY in sent or SECRETS[2] in sent
        assert "rejected: request headers were" in outputs[1][1] and "***" in outputs[1][1]

        server.responder = _echo_headers(400)
        summary = run_cli("summarize", str(docs), "--out", str(tmp_path / "summaries"), env=env)
        assert summary.returncode != 0 and "Traceback" not in summary.stderr
        outputs.append(("summarize", summary.stdout + summary.stderr))
        evaluated = run_cli("eval", "--dataset", str(dataset), "--docs", str(docs), "--engine", "llm",
                            "--report", str(tmp_path / "report"), "--json", str(tmp_path / "metrics.json"),
                            env=env)  # fmt: skip
        assert evaluated.returncode == 1 and "Traceback" not in evaluated.stderr, evaluated.stderr
        outputs.append(("eval", evaluated.stdout + evaluated.stderr))
        for args in (["log"], ["log", "--json"], ["history"], ["history", "--json"]):
            shown = run_cli(*args, env=env)
            assert shown.returncode == 0, shown.stderr
            outputs.append((" ".join(args), shown.stdout + shown.stderr))
    assert "rejected: request headers were" in outputs[-3][1]  # the stored error is there, masked
    for where, text in outputs:
        _no_secret(text, where)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"llm_calls.sqlite", "eval_history.jsonl", "report.md", "report.html", "report.json",
            "metrics.json"} <= names, names  # fmt: skip
    for path in written:
        _no_secret(path.read_bytes().decode("utf-8", "replace"), str(path))


def _one_line_error(result, *needles: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    shown = result.stderr.strip()
    assert shown.startswith("error:") and shown.count("\n") == 0, shown
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "qa-data"
    not_a_folder.write_text("x")
    for command in (["ls"], ["log"], ["history"]):
        result = run_cli(*command, env={"QA_DATA_DIR": str(not_a_folder)})
        assert result.returncode == 2
        _one_line_error(result, "QA_DATA_DIR", "is a file, not a folder")


@pytest.mark.parametrize(("url", "says"), [("http://127.0.0.1:99999", "port 99999 is not a port from 1 to 65535"),
                                           ("http://127.0.0.1:http", "port http"),
                                           ("ftp://127.0.0.1:8000", "http:// or https://"),
                                           ("localhost:8000", "has no scheme: write http://localhost:8000")])  # fmt: skip
def test_a_chroma_url_that_cannot_be_one(url: str, says: str) -> None:
    """Before: localhost:8000 (no scheme) was not named as the mistake."""
    result = run_cli("ls", env={"QA_CHROMA_URL": url})
    assert result.returncode == 2
    _one_line_error(result, "QA_CHROMA_URL", says)


def test_an_llm_base_url_with_a_key_in_its_query_is_refused_without_showing_the_key() -> None:
    """Before: http://…/v1?api_key=… was sent to /v1/?api_key=…chat/completions (and the key into logs)."""
    result = run_cli("ask", "--engine", "llm", "淄川区办理行政复议案件多少件？",
                     env={"QA_LLM_BASE_URL": f"http://127.0.0.1:8000/v1?api_key={KEY}", "QA_LLM_MODEL": "m"})  # fmt: skip
    assert result.returncode == 2
    _one_line_error(result, "QA_LLM_BASE_URL has a query string", "Put the API key in QA_LLM_API_KEY",
                    "QA_LLM_BASE_URL=http://127.0.0.1:8000/v1")  # fmt: skip
    assert KEY not in result.stderr + result.stdout


def test_a_damaged_store_says_which_and_what_to_do(fail_closed: Path) -> None:
    assert run_cli("ls").returncode == 0  # creates the empty store
    database = fail_closed / "chroma" / "chroma.sqlite3"
    database.write_bytes(b"this is not a database " * 1000)
    result = run_cli("ls")
    assert result.returncode == 2
    _one_line_error(result, "cannot open the store", str(fail_closed / "chroma"), "qa ingest")
    assert "move the folder aside" in result.stderr.lower()


def test_odd_file_names_neither_stop_a_batch_nor_break_the_listing(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(CORPUS / "zichuan_2024.txt", folder / "zichuan_2024.txt")
    shutil.copy(CORPUS / "luojiang_2024.txt", folder / "[bold red]x.txt")
    (Path(os.fsdecode(os.fsencode(folder) + b"/report-\xff\xfe.txt"))).write_bytes(
        (CORPUS / "dabancheng_2024.txt").read_bytes()
    )
    ingested = run_cli("ingest", str(folder))
    assert ingested.returncode == 1 and "Traceback" not in ingested.stderr, ingested.stderr
    lines = ingested.stdout + ingested.stderr
    assert "report-\\xff\\xfe.txt  file name is not valid UTF-8: rename the file" in lines
    assert "2 ingested, 1 failed" in lines
    assert "[bold red]x.txt" in lines  # shown as named, not read as markup

    listing = run_cli("ls")
    assert listing.returncode == 0 and "[bold red]x.txt" in listing.stdout
    removed = run_cli("rm", "[bold red]x.txt")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == "removed [bold red]x.txt"
    left = [row["report"] for row in json.loads(run_cli("ls", "--json").stdout)]
    assert left == ["zichuan_2024.txt"]


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qa.cli import library
    from qa.cli import main as cli

    def broken(args, settings) -> int:
        raise RuntimeError(f"boom at http://{USER}:{PASSWORD}@h/v1")

    monkeypatch.setattr(library, "cmd_ls", broken)
    assert cli.main(["ls"]) == 1
    shown = capsys.readouterr().err
    assert shown.startswith("error: unexpected RuntimeError: boom at http://***@h/v1"), shown
    assert PASSWORD not in shown
    assert shown.strip().count("\n") == 0 and "qa --debug" in shown
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "ls"])


def test_the_app_shows_no_secret_in_errors_or_the_engine_label() -> None:
    from app_pages import ui
    from qa.core.errors import ConfigError, EndpointUnreachable, ProviderError

    label = ui.engine_label(f"m @ http://{USER}:{PASSWORD}@h/v1")
    assert label == "LLM：m @ http://***@h/v1"
    for error in (ConfigError(f"model m: http://{USER}:{PASSWORD}@h/v1 rejected the API key (401). Set …"),
                  ProviderError(f"model m: h answered 418: echo Authorization: Bearer {KEY}"),
                  EndpointUnreachable(f"model m: cannot connect to http://{USER}:{PASSWORD}@h/v1",
                                      endpoint=f"http://{USER}:{PASSWORD}@h/v1"),
                  ProviderError("model m: h answered 418", code="llm.http_error", status=418,
                                detail=f"echo Authorization: Bearer {KEY}")):  # fmt: skip
        message = ui.error_message(error)
        _no_secret(message.text + message.detail, "ui.error_message")
    _no_secret(ui.row_message(f"failed: api_key={KEY}").text, "ui.row_message")
