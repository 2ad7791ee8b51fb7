"""The Streamlit app driven in-process with AppTest over a real store (5 sample reports or fewer), plus the
pure UI helpers of qa/ui.py. The browser itself is exercised in test_browser.py."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import streamlit as st
from conftest import CORPUS, ROOT, make_settings
from streamlit.testing.v1 import AppTest

from qa import ui
from qa.errors import InputError
from qa.schemas import Answer, Citation, IngestResult, UnverifiedNumber

APP = ROOT / "app.py"
ZICHUAN_Q = "淄川区办理行政复议案件多少件？"


@pytest.fixture(autouse=True)
def fresh_resources() -> Iterator[None]:
    """cache_resource outlives an AppTest; each test has its own QA_DATA_DIR, so start from nothing."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def ingest(data_dir: Path, *names: str) -> None:
    """Put corpus reports into the store the app will open (embeddings come from the shared cache)."""
    from qa.ingest import ingest_file
    from qa.wiring import open_services

    services = open_services(make_settings(data_dir))
    for name in names:
        result = ingest_file(CORPUS / name, services.store, services.embedder, services.settings)
        assert result.status == "ingested", result


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if page:
        at.session_state["goto_page"] = page
    at.run()
    assert not at.exception, at.exception
    return at


def ask_in(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def last_answer(at: AppTest):
    message = at.chat_message[-1]
    assert message.name == "assistant"
    return message


def plain(markdown: str) -> str:
    """What a Markdown string escaped by ui.escape_markdown (or an HTML block of ui.text_html) reads as."""
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"\\(.)", r"\1", markdown)))


def texts(elements) -> list[str]:
    return [plain(element.value) for element in elements]


def sidebar_text(at: AppTest) -> str:
    return "\n".join(texts(at.sidebar.markdown) + texts(at.sidebar.caption))


# ---- 问答 ------------------------------------------------------------------------------------------


def test_question_gets_an_answer_with_clickable_citations(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    assert "抽取式（离线，逐字引用原文）" in sidebar_text(at)
    assert "2 份报告" in sidebar_text(at)
    ask_in(at, ZICHUAN_Q)

    answer = last_answer(at)
    body = answer.markdown[0].value
    assert "151件" in body
    links = re.findall(r'<a class="qa-cite" href="#(qa-src-[0-9a-f]+-(\d+))"', body)
    assert links, body
    anchor, n = links[0]
    [expander] = answer.expander
    assert plain(expander.label).startswith(f"[{n}] 《淄川区人民政府2024年度法治政府建设情况报告》")
    passage = expander.markdown[0].value
    assert f'id="{anchor}"' in passage
    marked = re.search(r'<mark class="qa-quote">(.*?)</mark>', passage).group(1)
    assert "151件" in marked
    assert "报告：zichuan_2024.txt · 章节：一、推进法治政府建设的主要举措和成效 > (三)" in plain(
        expander.caption[0].value
    )
    meta = texts(answer.caption)
    assert any(line.startswith("抽取式 · 用时") and "淄川区" in line for line in meta), meta
    assert at.warning.len == 0  # every number is grounded


def test_follow_up_uses_the_history(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    ask_in(at, ZICHUAN_Q)
    ask_in(at, "洛江区呢？")
    answer = last_answer(at)
    assert "已理解为：洛江区办理行政复议案件多少件？" in texts(answer.caption)
    assert "121件" in answer.markdown[0].value
    assert "luojiang_2024.txt" in plain(answer.expander[0].caption[0].value)
    assert len(at.chat_message) == 4


def test_filters_limit_the_reports_and_refusals_say_so(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    at.multiselect(key="flt_reports").set_value(["luojiang_2024.txt"]).run()
    ask_in(at, "办理行政复议案件多少件？")
    answer = last_answer(at)
    assert answer.expander.len >= 1
    assert all("luojiang_2024.txt" in plain(e.caption[0].value) for e in answer.expander)

    next(b for b in at.sidebar.button if b.label == "清空对话").click().run()
    assert at.chat_message.len == 0
    at.multiselect(key="flt_reports").set_value([]).run()
    ask_in(at, "海淀区2024年办理行政复议案件多少件？")
    answer = last_answer(at)
    assert answer.info[0].value.startswith("文中未提及")
    assert answer.expander.len == 0


def test_view_original_shows_the_passage_in_the_report(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    ask_in(at, ZICHUAN_Q)
    key = next(b.key for b in last_answer(at).button if b.key.startswith("ctx-"))
    at.button(key=key).click().run()
    assert not at.exception
    context = next(m.value for m in at.markdown if 'class="qa-context"' in m.value)
    assert '<span class="qa-context-passage">' in context
    assert re.search(r'<mark class="qa-quote">[^<]*151件', context)

    # the report is deleted later: the old answer still shows its passage, 查看原文 says why it cannot
    at.session_state["goto_page"] = "library"
    at.run()
    at.selectbox(key="lib_selected").set_value("zichuan_2024.txt").run()
    at.checkbox(key="confirm-zichuan_2024.txt").check().run()
    at.button(key="delete-report").click().run()
    at.session_state["goto_page"] = "chat"
    at.run()
    assert "151件" in at.chat_message[1].markdown[0].value
    at.button(key=key).click().run()
    assert not at.exception
    assert "这份报告已从文档库删除，无法显示原文。" in texts(at.warning)


def test_filters_survive_a_visit_to_another_page(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    at.multiselect(key="flt_years").set_value([2024]).run()
    at.multiselect(key="flt_reports").set_value(["zichuan_2024.txt"]).run()
    at.session_state["goto_page"] = "library"
    at.run()
    at.session_state["goto_page"] = "chat"
    at.run()
    assert at.multiselect(key="flt_reports").value == ["zichuan_2024.txt"]
    assert at.multiselect(key="flt_years").value == [2024]


def test_invalid_settings_are_an_error_message(fail_closed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_MAX_FILE_MB", "lots")
    at = start()
    assert texts(at.error) == ["QA_MAX_FILE_MB='lots' is not a valid float"]


def test_llm_engine_streams_and_reports_tokens_cost_and_unverified_numbers(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch, fake_llm: str
) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    monkeypatch.setenv("QA_LLM_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("QA_LLM_BASE_URL", fake_llm)
    at = start()
    assert f"LLM：gpt-4o-mini @ {fake_llm}" in sidebar_text(at)
    ask_in(at, ZICHUAN_Q)
    answer = last_answer(at)
    body = answer.markdown[0].value
    assert "151件" in body and 'class="qa-cite"' in body
    assert '<mark class="qa-unverified" title="未能在引用原文中核实">999件</mark>' in body
    [warning] = answer.warning  # Streamlit shows the leading ⚠ as the box's icon
    assert (
        warning.icon == "⚠"
        and plain(warning.value) == "以下数字未能在引用原文中核实：999件（引用原文中没有）"
    )
    meta = " ".join(texts(answer.caption))
    assert "LLM：gpt-4o-mini" in meta and "tokens 120 输入 / 30 输出" in meta
    assert "费用 $0.000036" in meta and "提示词 answer@" in meta


def test_misconfigured_llm_is_an_error_message_not_a_traceback(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    monkeypatch.setenv("QA_LLM_MODEL", "some-model")  # no endpoint, no key
    at = start()
    assert any("QA_LLM_MODEL=some-model" in e for e in texts(at.error))
    assert at.chat_input[0].disabled


# ---- empty library ----------------------------------------------------------------------------------


def test_empty_library_offers_the_samples(fail_closed: Path) -> None:
    at = start()
    assert any("文档库中还没有报告" in w.value for w in at.warning)
    assert at.chat_input.len == 0
    next(b for b in at.button if b.label == "上传报告").click().run()
    assert at.title[0].value == "文档库" and at.file_uploader.len == 1
    at.session_state["goto_page"] = "chat"
    at.run()
    at.button(key="samples-chat").click().run()
    assert not at.exception
    [imported] = texts(at.success)
    lines = imported.split("  \n")
    assert len(lines) == 5 and all(line.startswith("新增：") for line in lines), lines
    assert "5 份报告" in sidebar_text(at)
    ask_in(at, ZICHUAN_Q)
    assert "151件" in last_answer(at).markdown[0].value


# ---- 文档库 ----------------------------------------------------------------------------------------


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader[0].set_value([(name, data, "text/plain") for name, data in files])
    next(b for b in at.button if b.label == "导入").click().run()
    assert not at.exception, at.exception
    return at


def test_upload_is_saved_under_a_safe_name_and_listed(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    at = start("library")
    assert at.title[0].value == "文档库"
    data = (CORPUS / "rongjiang_2023.txt").read_bytes()
    upload(at, ("上传/蓉江新区 报告.txt", data))
    assert texts(at.success) == ["新增：上传/蓉江新区 报告.txt（15 个分块）"]
    saved = fail_closed / "uploads" / "蓉江新区 报告.txt"
    assert saved.read_bytes() == data
    table = at.dataframe[0].value
    assert list(table["报告"]) == ["zichuan_2024.txt", "蓉江新区 报告.txt"]
    assert "赣州蓉江新区2023年度法治政府建设工作情况报告" in list(table["标题"])
    assert at.selectbox(key="lib_selected").value == "蓉江新区 报告.txt"  # the new report is shown
    assert any("一、" in m.value and 'class="qa-outline"' in m.value for m in at.markdown)

    upload(at, ("蓉江新区 报告.txt", data))  # same bytes again
    assert texts(at.success) == ["未变化：蓉江新区 报告.txt（15 个分块）"]


def test_bad_uploads_are_errors_and_lose_nothing(fail_closed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    monkeypatch.setenv("QA_MAX_FILE_MB", "0.01")
    at = start("library")
    upload(
        at,
        ("empty.txt", b""),
        ("binary.txt", b"\x00\x01\x02\xff" * 64),
        ("../../etc/passwd.txt", "淄川区".encode()),
        ("big.txt", "淄".encode() * 6000),
    )
    errors = texts(at.error)
    assert len(errors) == 4, errors
    assert errors[0].startswith("失败：empty.txt — 文件为空")
    assert errors[1].startswith("失败：binary.txt — ") and "binary" in errors[1]
    assert errors[2].startswith("失败：../../etc/passwd.txt — ") and "“..”" in errors[2]
    assert errors[3].startswith("失败：big.txt — 文件大小") and "QA_MAX_FILE_MB" in errors[3]
    assert list(at.dataframe[0].value["报告"]) == ["zichuan_2024.txt"]
    assert not (fail_closed / "uploads").exists() or not any((fail_closed / "uploads").glob("*.txt"))


def test_delete_removes_the_report_from_answers(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    ask_in(at, ZICHUAN_Q)
    assert "151件" in last_answer(at).markdown[0].value
    at.session_state["goto_page"] = "library"
    at.run()
    at.selectbox(key="lib_selected").set_value("zichuan_2024.txt").run()
    delete = at.button(key="delete-report")
    assert delete.disabled  # nothing happens without the confirmation
    at.checkbox(key="confirm-zichuan_2024.txt").check().run()
    at.button(key="delete-report").click().run()
    assert not at.exception
    assert any("已删除报告 zichuan_2024.txt" in s.value for s in at.success)
    assert list(at.dataframe[0].value["报告"]) == ["luojiang_2024.txt"]

    at.session_state["goto_page"] = "chat"
    at.run()
    ask_in(at, ZICHUAN_Q)
    answer = last_answer(at)
    assert answer.info[0].value.startswith("文中未提及")
    assert all("zichuan" not in e.label for e in answer.expander)


def test_deleting_an_uploaded_report_removes_its_file(fail_closed: Path) -> None:
    at = start("library")
    upload(at, ("zichuan_2024.txt", (CORPUS / "zichuan_2024.txt").read_bytes()))
    saved = fail_closed / "uploads" / "zichuan_2024.txt"
    assert saved.exists()
    at.checkbox(key="confirm-zichuan_2024.txt").check().run()
    at.button(key="delete-report").click().run()
    assert not saved.exists()
    assert any("文档库中还没有报告" in w.value for w in at.warning)


@pytest.mark.parametrize("page", ["summary", "compare", "eval"])
def test_pages_not_in_this_version_say_so(fail_closed: Path, page: str) -> None:
    at = start(page)
    assert at.info.len == 1 and "尚未在此版本中提供" in at.info[0].value
    assert at.dataframe.len == 0 and at.chat_input.len == 0


# ---- the upload handler on its own -------------------------------------------------------------------


def load_app_module():
    """app.py as a module, without running the page (its main() only runs as a Streamlit script)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reportqa_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_replacement_keeps_the_previous_upload(services) -> None:
    app_module = load_app_module()
    good = (CORPUS / "zichuan_2024.txt").read_bytes()
    first = app_module.save_and_ingest("report.txt", good, services)
    assert first.status == "ingested" and first.report_id == "report.txt"
    second = app_module.save_and_ingest("report.txt", b"\x00\x00binary", services)
    assert second.status == "failed" and "binary" in second.reason
    folder = services.settings.data_dir / "uploads"
    assert (folder / "report.txt").read_bytes() == good
    assert services.store.get_report("report.txt").version
    assert "151件" in services.store.report_text("report.txt")


# ---- pure helpers (qa/ui.py) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("淄川区2024年报告.txt", "淄川区2024年报告.txt"),
        ("C:\\Users\\me\\Desktop\\洛江区.DOCX", "洛江区.DOCX"),
        ("folder/sub/报告.html", "报告.html"),
        ("  .hidden.md ", "hidden.md"),
        ('a<b>:c"d|e?f*.pdf', "a_b__c_d_e_f_.pdf"),
        ("报告" * 200 + ".txt", "报告" * 32 + "报.txt"),  # cut to 200 bytes of UTF-8
    ],
)
def test_safe_upload_names(raw: str, safe: str) -> None:
    assert ui.safe_upload_name(raw) == safe
    assert len(ui.safe_upload_name(raw).encode()) <= 200


@pytest.mark.parametrize(
    "raw",
    ["../secret.txt", "a/../../b.txt", "..", "bad\x00name.txt", "tab\tname.txt", "rtl\u202etxt.exe", "x.exe",
     "noext", ".txt", "", "   "],
)  # fmt: skip
def test_unsafe_upload_names_are_refused(raw: str) -> None:
    with pytest.raises(InputError):
        ui.safe_upload_name(raw)


def test_upload_size_checks() -> None:
    ui.check_upload_size(10, 10)
    with pytest.raises(InputError, match="文件为空"):
        ui.check_upload_size(0, 10)
    with pytest.raises(InputError, match="超过"):
        ui.check_upload_size(11, 10)


def _citation(passage: str = "甲乙。办理案件151件。丙丁。", start: int = 100) -> Citation:
    quote = "办理案件151件。"
    q = passage.index(quote)
    return Citation(1, "r.txt", "标题", "一、节", ("c1",), passage, start, start + len(passage), quote,
                    start + q, start + q + len(quote))  # fmt: skip


def test_answer_markdown_links_citations_marks_unverified_and_escapes() -> None:
    text = "共151件[1]，另有999件[1]。<script>alert(1)</script> $x$ [2]\n第二行"
    out = ui.answer_markdown(text, "m1", cited=[1], unverified=[UnverifiedNumber("999件", "no citation")])
    assert out.count('<a class="qa-cite" href="#qa-src-m1-1" title="查看来源 [1]">[1]</a>') == 2
    assert '<mark class="qa-unverified" title="未能在引用原文中核实">999件</mark>' in out
    assert "151件<a" in out  # a verified number is left alone
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "\\$x\\$" in out and "\\[2\\]" in out  # no LaTeX, an unknown marker is plain text
    assert "  \n第二行" in out


def test_passage_and_context_html_mark_the_supporting_span() -> None:
    citation = _citation("甲<b>乙。\n办理案件151件。丙丁。")
    html = ui.passage_html(citation, "qa-src-m1-1")
    assert html.startswith('<div class="qa-passage" id="qa-src-m1-1">')
    assert "甲&lt;b&gt;乙。<br>" in html and '<mark class="qa-quote">办理案件151件。</mark>' in html
    assert "\n" not in html
    report = "x" * 100 + citation.passage + "尾部"
    context = ui.context_html(report, citation, window=10)
    assert context.startswith('<div class="qa-context">…xxxxxxxxxx<span class="qa-context-passage">')
    assert '<mark class="qa-quote">办理案件151件。</mark>' in context and context.endswith("尾部</div>")
    assert ui.context_html("完全不同的文本", citation) is None
    moved = ui.context_html("前言" + citation.passage, citation)  # offsets stale, text still there
    assert moved is not None and "办理案件151件" in moved


def test_quote_span_falls_back_to_searching_the_passage() -> None:
    citation = _citation()
    assert ui.quote_span(citation) == (3, 12)
    shifted = Citation(**{**citation.__dict__, "quote_start": 100, "quote_end": 103})
    assert ui.quote_span(shifted) == (3, 12)
    lost = Citation(**{**citation.__dict__, "quote": "不在段落里", "quote_start": 0, "quote_end": 5})
    assert ui.quote_span(lost) is None


def test_labels() -> None:
    assert ui.engine_label(None) == "抽取式（离线，逐字引用原文）"
    assert ui.engine_label("m @ http://x/v1") == "LLM：m @ http://x/v1"
    assert ui.citation_label(_citation()) == "\\[1\\] 《标题》 · 一、节"
    assert (
        ui.standalone_note("洛江区呢？", "洛江区办理行政复议案件多少件？")
        == "已理解为：洛江区办理行政复议案件多少件？"
    )
    assert ui.standalone_note("淄川区 多少件？", "淄川区多少件？") is None
    warning = ui.unverified_warning(
        [UnverifiedNumber("9件", "no citation"), UnverifiedNumber("9件", "no citation"),
         UnverifiedNumber("3%", "not in the cited passages")]
    )  # fmt: skip
    assert warning == "⚠ 以下数字未能在引用原文中核实：9件（所在句子没有引用）、3%（引用原文中没有）"
    assert (
        ui.ingest_line("a.txt", IngestResult("a.txt", "a.txt", "updated", n_chunks=3))
        == "更新：a.txt（3 个分块）"
    )
    assert ui.ingest_line("b.txt", IngestResult("b.txt", None, "failed", "file is empty")) == (
        "失败：b.txt — file is empty"
    )
    llm_answer = Answer("q", "a", [], [], False, "llm", "m", "answer@1#abc", prompt_tokens=10,
                        completion_tokens=2, cost_usd=None, latency_ms=1234)  # fmt: skip
    assert ui.answer_meta(llm_answer) == (
        "LLM：m · 用时 1.23 秒 · tokens 10 输入 / 2 输出 · 费用未知 · 提示词 answer@1#abc"
    )


def test_history_turns_skip_failed_turns_and_keep_the_last_ones() -> None:
    messages = [{"role": "user", "content": f"q{i}"} for i in range(10)]
    messages.append({"role": "assistant", "content": "", "error": "boom"})
    turns = ui.history_turns(messages, max_messages=3)
    assert [t.content for t in turns] == ["q7", "q8", "q9"]


# ---- a fake OpenAI-compatible endpoint --------------------------------------------------------------


@pytest.fixture
def fake_llm() -> Iterator[str]:
    """Streams an answer citing the source that holds '151件', plus a number no source has (999件)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            blocks = re.split(r"^\[(\d+)\] 《", prompt, flags=re.M)
            n = next((blocks[i] for i in range(1, len(blocks), 2) if "151件" in blocks[i + 1]), "1")
            pieces = ["淄川区办理行政复议案件", f"151件[{n}]，", f"另有999件[{n}]。"]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
            for piece in pieces:
                chunk = {
                    **base,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            usage = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
            self.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
