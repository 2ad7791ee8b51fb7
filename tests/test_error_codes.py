"""Typed errors: every raise site names a code and passes the fields its message is built from, and the app's
Chinese comes from one table keyed by code. These tests raise the errors where the package raises them (real
files, real settings, a real HTTP server, a real store) and check what the app shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, SHARED_CACHE
from openai_server import OpenAIServer, Reply

from app_pages import ui
from qa.core.config import Settings
from qa.core.errors import ConfigError, InputError, ProviderError, QAError
from qa.ingest.pipeline import load_document
from qa.models.llm import ChatLLM, make_chat_llm, make_client

MESSAGES = [{"role": "user", "content": "淄川区行政复议案件多少件？"}]


def _chat(server: OpenAIServer) -> ChatLLM:
    return ChatLLM(make_client(server.url, "sk-test", 5.0, 0), "fake-model", retries=0)


def _raised(call) -> QAError:
    with pytest.raises(QAError) as raised:
        call()
    return raised.value


# ---- the table covers every code -------------------------------------------------------------------

_CODE_LITERAL = re.compile(r"""\bcode\s*=\s*"([a-z_.]+)"(?:\s+if\s.+?\selse\s+"([a-z_.]+)")?""")


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in [*(ROOT / "qa").rglob("*.py"), *(ROOT / "app_pages").rglob("*.py")]:
        for match in _CODE_LITERAL.finditer(path.read_text(encoding="utf-8")):
            found.update(code for code in match.groups() if code)
    return found


def test_every_error_code_raised_has_a_chinese_text_or_lead() -> None:
    codes = _codes_in_source()
    assert {
        "llm.rate_limited",
        "input.not_pdf",
        "store.busy",
        "store.report_damaged",
    } <= codes  # the scan works
    missing = sorted(codes - set(ui.ERROR_TEXTS) - set(ui.ERROR_LEADS))
    assert not missing, f"codes without a Chinese text in app_pages/ui.py ERROR_TEXTS: {missing}"


def test_every_chinese_text_is_for_a_code_that_is_raised_and_names_only_its_fields() -> None:
    codes = _codes_in_source()
    unused = sorted(set(ui.ERROR_TEXTS) - codes)
    assert not unused, f"Chinese texts no raise site uses (a renamed code?): {unused}"
    for code, text in ui.ERROR_TEXTS.items():
        assert re.search(r"[\u4e00-\u9fff]", text), code
        assert not re.search(r"\{[^}]*[^a-z_}][^}]*\}", text), (
            f"{code}: a placeholder that is not a field name"
        )


# ---- real raise sites → the app's Chinese ---------------------------------------------------------


def test_files_that_cannot_be_reports_are_said_so_by_code(tmp_path: Path) -> None:
    cases = {
        "假.pdf": (b"hello, not a pdf", "input.not_pdf", "不是有效的 PDF 文件"),
        "旧.docx": (b"\xd0\xcf\x11\xe0 an old .doc", "input.not_docx", "不是有效的 Word（.docx）文件"),
        "二进制.txt": (b"abc\x00\x01\x02" * 10, "input.binary", "看起来是二进制文件"),
        "空.txt": (b"", "input.empty", "文件为空（0 字节）"),
        "表格.xls": (b"x", "input.unsupported_type", "不支持的文件类型（.xls）"),
    }
    for name, (data, code, chinese) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        error = _raised(lambda path=path: load_document(path, Settings(data_dir=tmp_path)))
        assert error.code == code, name
        message = ui.error_message(error)
        assert message.text.startswith(f"{name}：{chinese}"), message.text
        assert message.detail == str(error) and str(error).startswith(str(path))


def test_a_file_over_the_limit_says_its_size_and_the_limit_from_the_fields(tmp_path: Path) -> None:
    path = tmp_path / "大.txt"
    path.write_bytes("淄川区".encode() * 400_000)  # 3.4 MB
    error = _raised(lambda: load_document(path, Settings(data_dir=tmp_path, max_file_mb=2)))
    assert error.code == "input.too_large" and error.fields == {"size_mb": "3.4", "limit_mb": "2"}
    assert ui.error_message(error).text.startswith("大.txt：文件大小 3.4 MB，超过 2 MB 的上限")


def test_bad_settings_are_said_so_by_code(tmp_path: Path) -> None:
    error = _raised(lambda: Settings.from_env({"QA_DATA_DIR": str(tmp_path), "QA_RRF_K": "x"}))
    assert (error.code, error.fields["name"]) == ("config.invalid_value", "QA_RRF_K")
    assert (
        ui.error_message(error).text
        == "设置项 QA_RRF_K 的值 'x' 无效，应为整数。请修改这个环境变量后重启应用。"
    )
    error = _raised(lambda: Settings(data_dir=tmp_path, llm_base_url="http://h/v1?api_key=secret"))
    assert error.code == "config.url_has_query" and "secret" not in str(error)
    assert ui.error_message(error).text.startswith("设置项 QA_LLM_BASE_URL 带有查询参数")
    error = _raised(lambda: make_chat_llm(Settings(data_dir=tmp_path, llm_model="m")))
    assert (error.code, error.fields) == ("llm.no_endpoint", {"model": "m"})
    assert ui.error_message(error).text.startswith("已设置 QA_LLM_MODEL=m，但没有模型服务地址")


@pytest.mark.parametrize(
    ("reply", "code", "chinese"),
    [
        (Reply(status=401, error="bad key"), "llm.auth_rejected", "模型服务拒绝了 API 密钥（401）"),
        (Reply(status=404, error="no model"), "llm.not_found", "模型服务返回 404（找不到）"),
        (Reply(status=429), "llm.rate_limited", "模型服务限流（429）"),
        (Reply(status=503), "llm.server_error", "模型服务出错（503）"),
        (Reply(status=418, error="teapot"), "llm.http_error", "模型服务返回错误（418）"),
        (Reply(malformed=True), "llm.bad_response", "模型服务返回的内容不是 OpenAI 格式"),
        (Reply("半句话", finish_reason="length"), "llm.truncated", "模型的回答达到长度上限被截断"),
    ],
)
def test_model_service_failures_are_said_so_by_code(
    server: OpenAIServer, reply: Reply, code: str, chinese: str
) -> None:
    server.enqueue(reply)
    error = _raised(lambda: _chat(server).complete(MESSAGES, prompt_ref="answer@1#x"))
    assert error.code == code
    message = ui.error_message(error)
    assert message.text.startswith(chinese) and message.detail == str(error)
    if code in ("llm.rate_limited", "llm.server_error"):
        assert error.fields["request_id"] == "req_test" and error.fields["status"] == reply.status


def test_an_unreachable_endpoint_names_it() -> None:
    llm = ChatLLM(make_client("http://127.0.0.1:9/v1", "sk-test", 2.0, 0), "m", retries=0)
    error = _raised(lambda: llm.complete(MESSAGES, prompt_ref="answer@1#x"))
    assert error.code == "llm.unreachable" and error.fields["endpoint"] == "http://127.0.0.1:9/v1"
    assert ui.error_message(error).text.startswith("无法连接到模型服务 http://127.0.0.1:9/v1。")


# ---- the Chinese does not depend on the English ----------------------------------------------------


def test_rewording_an_english_message_does_not_change_the_chinese() -> None:
    said = ProviderError("m: h failed with 503; try again later", code="llm.server_error", status=503)
    reworded = ProviderError("the server had a bad day (HTTP 503)", code="llm.server_error", status=503)
    assert (
        ui.error_message(said).text == ui.error_message(reworded).text == "模型服务出错（503）。请稍后重试。"
    )
    assert ui.error_message(reworded).detail == "the server had a bad day (HTTP 503)"
    # and an English message that reads like another error's does not borrow its Chinese
    lookalike = ProviderError("m: h is rate-limiting (429); wait and retry", code="llm.error")
    assert ui.error_message(lookalike).text == "模型服务出错：m: h is rate-limiting (429); wait and retry"


def test_an_unknown_code_keeps_the_english_whole_after_a_chinese_lead() -> None:
    assert ui.error_message(ConfigError("prompt file p.yaml: bad", code="config.new_thing")).text == (
        "设置有误：prompt file p.yaml: bad"
    )
    assert ui.error_message(InputError("文件为空（0 字节）")).text == "文件为空（0 字节）"


# ---- context, notes and copies keep the code and fields -------------------------------------------


def test_context_and_notes_keep_code_fields_and_class() -> None:
    error = ProviderError("h failed with 503", code="llm.server_error", retriable=True, status=503)
    named = error.noted("(after 3 tries in 2 s)").within("zichuan.txt (map, part 1/2)").within("zichuan.txt")
    assert str(named) == "zichuan.txt: zichuan.txt (map, part 1/2): h failed with 503 (after 3 tries in 2 s)"
    assert (
        type(named) is ProviderError and named.code == "llm.server_error" and named.fields == {"status": 503}
    )
    assert (
        not named.retriable and error.retriable and str(error) == "h failed with 503"
    )  # the original is kept
    unsent = named.unsent()
    assert unsent.not_sent and not named.not_sent and str(unsent) == str(named)
    assert ui.error_message(named).text == "模型服务出错（503）。请稍后重试。"

    from qa.store.errors import ReportDamaged

    damaged = ReportDamaged("zichuan.txt is listed with 5 chunks, holding 3", "zichuan.txt").within("x")
    assert damaged.report_id == "zichuan.txt" and damaged.code == "store.report_damaged"
    assert ui.error_message(damaged).text.startswith("报告「zichuan.txt」在文档库中的数据不完整")


# ---- rows keep the code: ingest results ------------------------------------------------------------


def test_an_ingest_result_keeps_the_code_and_the_app_says_it_in_chinese(tmp_path: Path) -> None:
    from qa import Library

    bad = tmp_path / "in" / "假.pdf"
    bad.parent.mkdir()
    bad.write_bytes(b"not a pdf at all")
    lib = Library.open(tmp_path / "data", engine="offline", env={"QA_CACHE_DIR": str(SHARED_CACHE)})
    [result] = lib.ingest([bad])
    assert (result.status, result.code) == ("failed", "input.not_pdf")
    assert ui.ingest_line("假.pdf", result).startswith("失败：假.pdf — 不是有效的 PDF 文件")
    assert ui.result_message(result).detail == result.reason == "not a PDF file (no %PDF header)"


# ---- Library: the typed errors ---------------------------------------------------------------------


def test_library_under_an_unusable_folder_raises_the_projects_error(tmp_path: Path) -> None:
    from qa import Library

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    lib = Library.open(blocker / "data", engine="offline", env={"QA_CACHE_DIR": str(SHARED_CACHE)})
    error = _raised(lib.reports)
    assert (
        isinstance(error, ConfigError) and str(blocker / "data") in str(error) and "QA_DATA_DIR" in str(error)
    )
    assert ui.error_message(error).text.startswith(f"无法使用文件夹 {blocker / 'data'}")


def test_library_remove_of_an_unknown_report_says_so(tmp_path: Path) -> None:
    from qa import Library

    lib = Library.open(tmp_path / "data", engine="offline", env={"QA_CACHE_DIR": str(SHARED_CACHE)})
    error = _raised(lambda: lib.remove("nowhere.txt"))
    assert isinstance(error, InputError) and error.code == "input.unknown_report"
    assert "no report 'nowhere.txt' in the store" in str(error) and "qa ls" in str(error)
    assert ui.error_message(error).text.startswith("文档库中没有报告 nowhere.txt")
