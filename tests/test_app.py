"""The Streamlit app driven in-process with AppTest over a real store (5 sample reports or fewer), plus the
pure UI helpers of qa/ui.py. The browser itself is exercised in test_browser.py."""

from __future__ import annotations

import html
import json
import re
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import streamlit as st
from conftest import CORPUS, CORPUS_FILES, ROOT, make_settings
from streamlit.testing.v1 import AppTest

if str(ROOT) not in sys.path:  # app_pages/ sits next to app.py, outside the installed package
    sys.path.insert(0, str(ROOT))

from app_pages import ui
from qa.core.errors import ConfigError, EmptyIndexError, EndpointUnreachable, InputError, ProviderError
from qa.core.office import DOCX_MIME, XLSX_MIME
from qa.core.schemas import Answer, Citation, IngestResult, UnverifiedNumber

APP = ROOT / "app_pages" / "main.py"
ZICHUAN_Q = "淄川区办理行政复议案件多少件？"


@pytest.fixture(autouse=True)
def fresh_resources() -> Iterator[None]:
    """cache_resource outlives an AppTest; each test has its own QA_DATA_DIR, so start from nothing."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def ingest(data_dir: Path, *names: str) -> None:
    """Put corpus reports into the store the app will open (embeddings come from the shared cache)."""
    from qa.ingest.pipeline import ingest_file
    from qa.wiring import open_services

    services = open_services(make_settings(data_dir))
    for name in names:
        result = ingest_file(CORPUS / name, services.store, services.embedder, services.settings)
        assert result.status == "ingested", result


def use_llm(monkeypatch: pytest.MonkeyPatch, server) -> None:
    """Configure the app's LLM (gpt-4o-mini) at a local test server."""
    monkeypatch.setenv("QA_LLM_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("QA_LLM_BASE_URL", server.url)


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


def sources_of(answer) -> list:
    """The source expanders under an answer ([n] 《title》…), not its 详细信息."""
    return [e for e in answer.expander if plain(e.label) != ui.DETAILS_LABEL]


def main_captions(element) -> list[str]:
    """The captions shown directly in an element (a chat message), not those inside its expanders."""
    return [plain(child.value) for child in element.children.values() if child.type == "caption"]


def details_of(element) -> str:
    """The text of the 详细信息 expander under an answer or on a page."""
    [details] = [e for e in element.expander if plain(e.label) == ui.DETAILS_LABEL]
    return "\n".join(texts(details.caption))


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
    [expander] = sources_of(answer)
    assert plain(expander.label).startswith(f"[{n}] 《淄川区人民政府2024年度法治政府建设情况报告》")
    passage = expander.markdown[0].value
    assert f'id="{anchor}"' in passage
    marked = re.search(r'<mark class="qa-quote">(.*?)</mark>', passage).group(1)
    assert "151件" in marked
    assert "报告：zichuan_2024.txt · 章节：一、推进法治政府建设的主要举措和成效 > (三)" in plain(
        expander.caption[0].value
    )
    meta = main_captions(answer)
    assert any(line.startswith("抽取式 · 用时") and "淄川区" in line for line in meta), meta
    assert at.warning.len == 0  # every number is grounded
    # internal ids (chunk ids, the report's version) only in 详细信息, never in the main view
    chunk_ids = list(at.session_state["messages"][-1]["answer"].citations[0].chunk_ids)
    details = details_of(answer)
    assert chunk_ids and all(chunk_id in details for chunk_id in chunk_ids), details
    main_view = body + "".join(meta) + plain(expander.label)
    assert not any(chunk_id in main_view for chunk_id in chunk_ids), main_view


def test_follow_up_uses_the_history(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    ask_in(at, ZICHUAN_Q)
    ask_in(at, "洛江区呢？")
    answer = last_answer(at)
    assert "已理解为：洛江区办理行政复议案件多少件？" in texts(answer.caption)
    assert "121件" in answer.markdown[0].value
    assert "luojiang_2024.txt" in plain(sources_of(answer)[0].caption[0].value)
    assert len(at.chat_message) == 4


def test_filters_limit_the_reports_and_refusals_say_so(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    at.multiselect(key="flt_reports").set_value(["luojiang_2024.txt"]).run()
    ask_in(at, "办理行政复议案件多少件？")
    answer = last_answer(at)
    assert len(sources_of(answer)) >= 1
    assert all("luojiang_2024.txt" in plain(e.caption[0].value) for e in sources_of(answer))

    next(b for b in at.sidebar.button if b.label == "清空对话").click().run()
    assert at.chat_message.len == 0
    at.multiselect(key="flt_reports").set_value([]).run()
    ask_in(at, "海淀区2024年办理行政复议案件多少件？")
    answer = last_answer(at)
    assert answer.info[0].value.startswith("文中未提及")
    assert sources_of(answer) == []


def test_the_scope_cases_refuse_with_their_reason_in_the_app(fail_closed: Path) -> None:
    """The cases that once answered with another report's figure: each is refused, and says why."""
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    at.multiselect(key="flt_reports").set_value(["luojiang_2024.txt"]).run()
    ask_in(at, "淄川区败诉率是多少？")
    info = plain(last_answer(at).info[0].value)
    assert "问题问的是淄川区" in info and "当前筛选" in info and "11.11%" not in info
    assert sources_of(last_answer(at)) == []

    at.multiselect(key="flt_reports").set_value([]).run()
    ask_in(at, ZICHUAN_Q)
    assert "151件" in last_answer(at).markdown[0].value
    for question, reason in [
        (
            "北京市朝阳区2024年办理行政复议案件多少件？",
            "没有北京市朝阳区",
        ),  # a follow-up naming its own place
        ("全国行政复议案件总数是多少？", "没有全国的报告"),
        ("青岛市城阳区办理行政复议案件多少件？", "没有青岛市城阳区"),
        ("淄川区2019年办理行政复议案件多少件？", "2024年度"),
    ]:
        ask_in(at, question)
        answer = last_answer(at)
        assert reason in plain(answer.info[0].value), question
        assert "151件" not in plain(answer.info[0].value) and sources_of(answer) == []
        assert any("因此不用其他报告的数字作答" in c for c in texts(answer.caption))
    ask_in(
        at, "淄川区2025年办理行政复议案件多少件？"
    )  # the 2024 report, published in 2025: answered, and said
    answer = last_answer(at)
    assert "151件" in answer.markdown[0].value
    assert any("问题问的是2025年" in w and "淄川区的报告是2024年度的" in w for w in texts(answer.warning))


def test_an_llm_answer_that_cites_nothing_carries_a_notice(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai_server import OpenAIServer, Reply

    ingest(fail_closed, "zichuan_2024.txt")
    with OpenAIServer(responder=lambda r: Reply("淄川区的法治政府建设成效显著。")) as server:
        use_llm(monkeypatch, server)
        at = start()
        ask_in(at, "淄川区法治政府建设怎么样？")
    answer = last_answer(at)
    assert "成效显著" in answer.markdown[0].value
    assert any("没有引用任何原文段落" in w for w in texts(answer.warning))


def test_a_metadata_answer_cites_the_page_header(fail_closed: Path) -> None:
    ingest(fail_closed, "luojiang_2024.txt")
    at = start()
    ask_in(at, "洛江区这份报告的文号是什么？")
    answer = last_answer(at)
    assert "泉洛政文〔2025〕14号" in answer.markdown[0].value
    [expander] = sources_of(answer)
    assert "位置：网页页眉" in plain(expander.caption[0].value)
    key = next(b.key for b in answer.button if b.key.startswith("ctx-"))
    at.button(key=key).click().run()
    assert not at.exception
    context = next(m.value for m in at.markdown if 'class="qa-context"' in m.value)
    assert re.search(r'<mark class="qa-quote">[^<]*泉洛政文〔2025〕14号', context)
    assert any("网页页眉" in c for c in texts(at.caption))


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
    assert texts(at.error) == [
        "设置项 QA_MAX_FILE_MB 的值 'lots' 无效，应为数字。请修改这个环境变量后重启应用。"
    ]
    [original] = at.expander  # the English original, for whoever fixes the setting
    assert plain(original.label) == ui.ERROR_DETAIL_LABEL
    assert texts(original.caption) == ["QA_MAX_FILE_MB='lots' is not a valid float"]


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
    meta = " ".join(main_captions(answer))
    assert "LLM：gpt-4o-mini" in meta and "tokens 900 输入 / 30 输出" in meta
    assert "费用 $0.000153" in meta and "answer@" not in meta  # the prompt ref is an internal id
    assert re.search(r"提示词：answer@\d+#[0-9a-f]{8}", details_of(answer))


def test_misconfigured_llm_is_an_error_message_not_a_traceback(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    monkeypatch.setenv("QA_LLM_MODEL", "some-model")  # no endpoint, no key
    at = start()
    assert any(e.startswith("已设置 QA_LLM_MODEL=some-model，但没有模型服务地址") for e in texts(at.error))
    assert at.chat_input[0].disabled
    examples = [b for b in at.button if b.key and b.key.startswith("example-")]
    assert len(examples) == 3 and all(b.disabled for b in examples)


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
    headline, *lines = imported.split("  \n")
    assert headline == "导入完成：新增 5 份"
    assert len(lines) == 5 and all(line.startswith("新增：") for line in lines), lines
    assert "5 份报告" in sidebar_text(at)
    ask_in(at, ZICHUAN_Q)
    assert "151件" in last_answer(at).markdown[0].value


def test_chat_starts_with_the_reports_and_example_questions_built_from_them(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start()
    assert "文档库共 2 份报告：洛江区（2024）、淄川区（2024）" in texts(at.markdown)
    examples = [b for b in at.button if b.key and b.key.startswith("example-")]
    assert [b.label for b in examples] == [
        "洛江区行政复议案件多少件？",
        "淄川区2025年有哪些工作安排？",  # the year after the one the report is on
        "各地区行政复议纠错率分别是多少？",
    ]
    examples[1].click().run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert plain(at.chat_message[0].markdown[0].value) == "淄川区2025年有哪些工作安排？"
    assert "聚焦主责" in plain(last_answer(at).markdown[0].value)
    assert not any(b.key and b.key.startswith("example-") for b in at.button)  # the start screen is gone
    assert not any(t.startswith("文档库共") for t in texts(at.markdown))


@pytest.mark.parametrize("page", ["chat", "library", "summary", "compare", "eval"])
def test_every_page_puts_streamlits_widget_text_into_chinese(fail_closed: Path, page: str) -> None:
    """Streamlit has no UI language: each page carries the script that rewrites its widgets' English
    (the browser test checks the result)."""
    ingest(fail_closed, "zichuan_2024.txt")
    at = start(page)
    scripts = [h.proto for h in at.get("html") if "__qaWidgetZh" in h.proto.body]
    assert len(scripts) == 1 and scripts[0].unsafe_allow_javascript
    assert scripts[0].body == ui.WIDGET_SCRIPT.strip()


def test_citations_are_numbered_in_the_order_the_answer_uses_them(fail_closed: Path) -> None:
    """The engine numbers sources by report; an answer across reports may cite [5] first. Shown: [1], [2]…
    with each marker still linked to its own passage."""
    ingest(fail_closed, *CORPUS_FILES)
    at = start()
    ask_in(at, "各地区行政复议工作分别有什么做法？")
    answer = last_answer(at)
    engine = at.session_state["messages"][-1]["answer"]
    used = [int(n) for n in re.findall(r"\[(\d+)\]", engine.text)]
    assert used != sorted(used), "the case needs an answer citing out of order"
    body = answer.markdown[0].value
    links = re.findall(r'<a class="qa-cite" href="#(qa-src-[0-9a-f]+-(\d+))"[^>]*>\[(\d+)\]</a>', body)
    assert [int(shown) for _, _, shown in links] == sorted(int(shown) for _, _, shown in links)
    assert [int(shown) for _, _, shown in links][0] == 1
    sources = sources_of(answer)
    assert [plain(e.label).split("]")[0] for e in sources] == [f"[{n}" for n in range(1, len(sources) + 1)]
    by_source = {c.n: c for c in engine.citations}
    assert len(links) == len(used)
    # each link leads to the passage of the source cited at that place
    for (anchor, _, _), original in zip(links, used, strict=True):
        expander = next(e for e in sources if f'id="{anchor}"' in e.markdown[0].value)
        assert by_source[original].title in plain(expander.label)
        assert by_source[original].quote[:20] in plain(expander.markdown[0].value)


# ---- 文档库 ----------------------------------------------------------------------------------------


def upload(at: AppTest, *files: tuple[str, bytes], replace: bool = False) -> AppTest:
    at.file_uploader[0].set_value([(name, data, "text/plain") for name, data in files])
    if replace:
        at.checkbox(key="lib_replace").check()
    next(b for b in at.button if b.label == "导入").click().run()
    assert not at.exception, at.exception
    return at


def test_upload_is_saved_under_a_safe_name_and_listed(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    at = start("library")
    assert at.title[0].value == "文档库"
    data = (CORPUS / "rongjiang_2023.txt").read_bytes()
    upload(at, ("上传/蓉江新区 报告.txt", data))
    assert texts(at.success) == ["导入完成：新增 1 份  \n新增：上传/蓉江新区 报告.txt（15 个分块）"]
    saved = fail_closed / "uploads" / "蓉江新区 报告.txt"
    assert saved.read_bytes() == data
    table = at.table[0].value
    assert [plain(v) for v in table["报告"]] == ["zichuan_2024.txt", "蓉江新区 报告.txt"]
    assert "赣州蓉江新区2023年度法治政府建设工作情况报告" in list(table["标题"])
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", t) for t in table["导入时间"])  # local, no UTC/T
    assert at.selectbox(key="lib_selected").value == "蓉江新区 报告.txt"  # the new report is shown
    assert any("一、" in m.value and 'class="qa-outline"' in m.value for m in at.markdown)
    # the stored version, hash and server path only in 详细信息
    details = details_of(at)
    version = re.search(r"入库版本：([0-9a-f]{16,})", details).group(1)
    sha = re.search(r"原文 SHA-256：([0-9a-f]{64})", details).group(1)
    assert f"来源文件：{saved}" in details
    main_view = " ".join(texts(at.markdown)) + table.to_string()
    assert version[:12] not in main_view and sha[:12] not in main_view and str(saved) not in main_view

    upload(at, ("蓉江新区 报告.txt", data))  # a stored name: not imported unless replacing is allowed
    assert any("没有导入" in w and "蓉江新区 报告.txt" in w for w in texts(at.warning))
    upload(
        at, ("蓉江新区 报告.txt", data), replace=True
    )  # same bytes again: nothing imported, and it says so
    assert texts(at.success) == []
    assert texts(at.info) == [
        "没有导入新内容：1 个文件与文档库中的报告相同（未变化）。  \n未变化：蓉江新区 报告.txt（15 个分块）"
    ]
    assert not any("导入完成" in t for t in texts(at.info) + texts(at.markdown) + texts(at.caption))


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
        ("改名的.pdf", "淄川区".encode()),
        ("旧版.docx", b"\xd0\xcf\x11\xe0 a .doc renamed"),
    )
    headline, *errors = texts(at.error)
    assert headline == "没有导入任何报告：6 个文件失败（原因见下）。"
    assert not texts(at.success) and not texts(at.info)  # no 导入完成
    assert len(errors) == 6, errors
    assert errors[0].startswith("失败：empty.txt — 文件为空")
    assert errors[1] == "失败：binary.txt — 看起来是二进制文件，不是文本。请上传报告的 TXT、PDF 或 Word 文件。"  # fmt: skip
    assert errors[2].startswith("失败：../../etc/passwd.txt — ") and "“..”" in errors[2]
    assert errors[3].startswith("失败：big.txt — 文件大小") and "QA_MAX_FILE_MB" in errors[3]
    assert errors[4].startswith("失败：改名的.pdf — 不是有效的 PDF 文件") and "请上传原始 PDF" in errors[4]
    assert errors[5].startswith("失败：旧版.docx — 不是有效的 Word（.docx）文件")
    assert "另存为 .docx" in errors[5]
    originals = [texts(e.caption)[0] for e in at.expander if plain(e.label) == ui.ERROR_DETAIL_LABEL]
    assert originals == [  # the English originals, one per translated failure
        "looks like a binary file (NUL bytes), not text",
        "not a PDF file (no %PDF header)",
        "not a .docx file (not a zip package)",
    ]
    assert [plain(v) for v in at.table[0].value["报告"]] == ["zichuan_2024.txt"]
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
    assert [plain(v) for v in at.table[0].value["报告"]] == ["luojiang_2024.txt"]

    at.session_state["goto_page"] = "chat"
    at.run()
    ask_in(at, ZICHUAN_Q)
    answer = last_answer(at)
    assert answer.info[0].value.startswith("文中未提及")
    assert all("zichuan" not in e.label for e in sources_of(answer))


def test_deleting_an_uploaded_report_removes_its_file(fail_closed: Path) -> None:
    at = start("library")
    upload(at, ("zichuan_2024.txt", (CORPUS / "zichuan_2024.txt").read_bytes()))
    saved = fail_closed / "uploads" / "zichuan_2024.txt"
    assert saved.exists()
    at.checkbox(key="confirm-zichuan_2024.txt").check().run()
    at.button(key="delete-report").click().run()
    assert not saved.exists()
    assert any("文档库中还没有报告" in w.value for w in at.warning)


# ---- downloads ---------------------------------------------------------------------------------------


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch):
    """What a download button hands out: AppTest keeps media in a memory store it makes per run; keep a
    handle on the latest one and read a button's file from it."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test

    stores: list[MemoryMediaFileStorage] = []

    class Kept(MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            stores.append(self)

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Kept)

    def read(at: AppTest, label: str, mime: str | None = None) -> bytes:
        """The button's file; with mime, also check the type it is served as."""
        button = next(b for b in at.get("download_button") if b.label == label)
        file = stores[-1].get_file(button.proto.url.rsplit("/", 1)[-1])
        assert mime is None or file.mimetype == mime, file.mimetype
        return file.content

    return read


def labels_of(at: AppTest, kind: str) -> list[str]:
    return [element.label for element in at.get(kind)]


# ---- 摘要 ------------------------------------------------------------------------------------------


def card_of(at: AppTest) -> str:
    return next(m.value for m in at.markdown if 'class="qa-summary"' in m.value)


def figure_row(card: str, indicator: str, raw: str) -> tuple[str, str] | None:
    """(quote cell, mark cell) of a key-figure row of the card."""
    found = re.search(
        rf'<tr><td>{re.escape(indicator)}</td><td class="qa-num">{re.escape(raw)}</td><td>(.*?)</td>(<td.*?</td>)</tr>',
        card,
    )
    return (found.group(1), found.group(2)) if found else None


def test_summary_card_downloads_and_the_cache(fail_closed: Path, downloads) -> None:
    import io

    import docx

    from qa.summary.summarize import Summary

    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start("summary")
    assert at.title[0].value == "摘要"
    at.selectbox(key="sum_report").set_value("zichuan_2024.txt").run()
    assert not at.exception and at.error.len == 0
    quote, mark = figure_row(card_of(at), "行政复议 收案", "151件")
    assert '<mark class="qa-quote">151件</mark>' in quote and ">✓</td>" in mark
    header = next(m.value for m in at.markdown if "qa-engine" in m.value)
    assert (
        '<span class="qa-engine">抽取式（离线，逐字引用原文）</span>' in header and "地区：淄川区" in header
    )
    assert any(c.startswith("刚刚生成") for c in texts(at.caption))
    for heading in ("概况", "主要举措", "关键指标", "存在的不足", "下一步计划", "来源"):
        assert f"<h4>{heading}" in card_of(at)

    summary = Summary.model_validate_json(downloads(at, "下载 JSON"))
    assert summary.report_id == "zichuan_2024.txt" and summary.engine == "extractive"
    assert any(f.raw == "151件" and f.verified for f in summary.key_figures)
    assert re.search(r"\| 行政复议 收案 \| 151件\[\^\d+\] \| ✓ \|", downloads(at, "下载 Markdown").decode())
    json_path = fail_closed / "summaries" / "offline" / "zichuan_2024.json"
    assert json_path.read_text(encoding="utf-8") == downloads(at, "下载 JSON").decode()
    assert (fail_closed / "summaries" / "offline" / "zichuan_2024.md").is_file()
    word = downloads(at, "下载 Word", DOCX_MIME)
    assert word == (fail_closed / "summaries" / "offline" / "zichuan_2024.docx").read_bytes()
    document = docx.Document(io.BytesIO(word))
    assert document.paragraphs[0].text == summary.title
    assert "地区：山东省 › 淄博市 › 淄川区" in document.paragraphs[1].text
    row = next(r for r in document.tables[0].rows if r.cells[1].text == "151件")
    assert row.cells[0].text == "行政复议 收案" and "办理行政复议案件151件" in row.cells[2].text
    written = json_path.stat().st_mtime_ns

    again = start("summary")  # a second visit (a new session) reuses the file
    again.selectbox(key="sum_report").set_value("zichuan_2024.txt").run()
    assert any(c.startswith("已从缓存读取") for c in texts(again.caption))
    assert json_path.stat().st_mtime_ns == written
    assert Summary.model_validate_json(downloads(again, "下载 JSON")).created_at == summary.created_at
    assert figure_row(card_of(again), "行政复议 收案", "151件")

    again.button(key="sum-regenerate").click().run()  # 重新生成 writes it again
    assert any(c.startswith("刚刚生成") for c in texts(again.caption))
    assert json_path.stat().st_mtime_ns != written


def test_checkup_tab_cites_each_part_and_compare_shows_it_as_columns(fail_closed: Path, downloads) -> None:
    import csv
    import io

    ingest(fail_closed, "zichuan_2024.txt", "dabancheng_2024.txt")
    at = start("summary")
    at.selectbox(key="chk_report").set_value("dabancheng_2024.txt").run()
    assert not at.exception and at.error.len == 0
    check = next(m.value for m in at.markdown if 'class="qa-check"' in m.value)
    # a present part shows its heading marked inside its paragraph; a missing one says where we looked
    assert "<mark>一、2024年法治政府建设主要举措和成效</mark>" in check
    assert "缺少的内容：第一责任人职责。" in check and "下一年度安排中的提及不算" in check
    assert "写了不足，未写原因" in check and "页眉和落款都没有日期" in check
    assert not re.search(r"[0-9a-f]{16}-\d+", check) and "chunk" not in check  # no internal ids on view
    markdown = downloads(at, "下载本报告体检（Markdown）").decode()
    assert markdown.startswith("# 报告体检：达坂城区（2024年度）") and "| 缺 |" in markdown
    rows = list(
        csv.DictReader(io.StringIO(downloads(at, "下载体检表（CSV）", "text/csv").decode("utf-8-sig")))
    )
    assert {r["报告"]: r["第一责任人职责"] for r in rows} == {"淄川区": "有", "达坂城区": "缺"}

    compare = start("compare")
    table = next(t for t in compare.table if "缺少的内容" in t.value.columns).value.set_index("报告")
    assert table.loc["达坂城区", "缺少的内容"] == "第一责任人职责"
    # 淄川's page gives its 发文日期 only: signed before the deadline, but when it went public is not written
    assert (
        table.loc["淄川区", "是否按时公开"] == "？ 无法判断"
        and table.loc["淄川区", "第一责任人职责"] == "✓ 有"
    )


def test_checkup_cites_the_regulations_articles_from_its_text_or_says_in_chinese_what_is_wrong(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from test_checkup import SHAPED_LIKE_THE_REGULATION

    ingest(fail_closed, "dabancheng_2024.txt")
    rules = tmp_path / "规定.txt"
    rules.write_text(SHAPED_LIKE_THE_REGULATION, encoding="utf-8")
    monkeypatch.setenv("QA_REGULATION_TEXT", str(rules))
    at = start("summary")
    assert at.error.len == 0
    assert any("《法治政府建设与责任落实督察工作规定》第三条、第四条" in c for c in texts(at.caption))
    check = next(m.value for m in at.markdown if 'class="qa-check"' in m.value)
    assert "每年3月31日（含）之前向社会公开上一年度报告（第四条）" in check

    monkeypatch.setenv("QA_REGULATION_TEXT", str(CORPUS / "dabancheng_2024.txt"))  # a report, not the rules
    st.cache_resource.clear()  # settings are read when the app starts: this is a restart
    at = start("summary")
    said = " ".join(e.value for e in at.error).replace("\\_", "_")  # Markdown-escaped
    assert "没有“第…条”形式的条款" in said and "QA_REGULATION_TEXT" in said and "Traceback" not in said
    assert not any('class="qa-check"' in m.value for m in at.markdown)


def test_summary_page_keeps_internal_ids_in_details_and_shows_local_times(
    fail_closed: Path, downloads, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from qa.summary.summarize import Summary

    ingest(fail_closed, "zichuan_2024.txt")
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        at = start("summary")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    summary = Summary.model_validate_json(downloads(at, "下载 JSON"))
    details = details_of(at)
    assert f"模板：{summary.template}" in details and f"原文 SHA-256：{summary.source_hash}" in details
    created = datetime.fromisoformat(summary.created_at) + timedelta(hours=8)  # UTC+8, as the server is set
    assert f"生成时间：{created:%Y-%m-%d %H:%M}（UTC {summary.created_at}）" in details
    card = card_of(at)
    assert summary.template not in card and summary.source_hash[:12] not in card


def test_unverified_items_are_flagged_on_the_card(fail_closed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app_pages import ui_summary

    real = ui_summary.summarize_report

    def with_a_bad_figure(view, engine=None, **kwargs):
        summary = real(view, engine, **kwargs)
        bad = summary.key_figures[0].model_copy(update={"raw": "999件", "verified": False})
        return summary.model_copy(update={"key_figures": [bad, *summary.key_figures[1:]], "unverified": 1,
                                          "checks": ["figure 办理行政复议案件 999件: not in the quoted passage"]})  # fmt: skip

    monkeypatch.setattr(ui_summary, "summarize_report", with_a_bad_figure)
    ingest(fail_closed, "zichuan_2024.txt")
    at = start("summary")
    [warning] = at.warning
    assert "1 处内容未能在原文中核实" in warning.value
    assert "999件: not in the quoted passage" in plain(at.expander[0].markdown[0].value)
    card = card_of(at)
    assert '<tr class="qa-unverified-row"><td>行政复议 收案</td><td class="qa-num">999件</td>' in card
    assert "⚠ 未核实</td>" in card


def test_deleting_a_report_drops_its_cached_summary(fail_closed: Path) -> None:
    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start("summary")
    at.selectbox(key="sum_report").set_value("zichuan_2024.txt").run()
    folder = fail_closed / "summaries" / "offline"
    cached = [folder / f"zichuan_2024.{ext}" for ext in ("json", "md", "docx")]
    assert all(path.is_file() for path in cached)
    at.session_state["goto_page"] = "library"
    at.run()
    at.selectbox(key="lib_selected").set_value("zichuan_2024.txt").run()
    at.checkbox(key="confirm-zichuan_2024.txt").check().run()
    at.button(key="delete-report").click().run()
    assert not any(path.exists() for path in cached)
    assert (
        fail_closed / "summaries" / "offline" / "luojiang_2024.json"
    ).is_file()  # the other report's stays
    at.session_state["goto_page"] = "summary"
    at.run()
    assert at.selectbox(key="sum_report").value == "luojiang_2024.txt" and not at.exception


def test_llm_summary_is_made_on_request_and_labelled_with_the_model(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai_server import OpenAIServer
    from summary_llm import summary_responder

    from qa.summary.summarize import Summary

    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    with OpenAIServer(responder=summary_responder) as server:
        use_llm(monkeypatch, server)
        at = start("summary")
        at.selectbox(key="sum_report").set_value("zichuan_2024.txt").run()
        assert at.radio(key="sum_engine").value == "llm"
        assert any("会产生 token 费用" in i.value for i in at.info)
        assert not server.chat_requests() and not any("qa-summary" in m.value for m in at.markdown)
        at.button(key="sum-generate").click().run()
        assert not at.exception and not at.error, texts(at.error)
        assert server.chat_requests()  # map over the sections, then reduce
        header = next(m.value for m in at.markdown if "qa-engine" in m.value)
        assert '<span class="qa-engine">LLM：gpt-4o-mini</span>' in header and "tokens" in header
        assert "151件" in card_of(at)
        sent = len(server.chat_requests())

        # a batch with the LLM (a few reports at a time): the one made above is reused, the other is made
        at.multiselect(key="sum_batch").set_value(["luojiang_2024.txt", "zichuan_2024.txt"]).run()
        at.button(key="sum-batch-run").click().run()
        rows = at.dataframe[0].value
        assert dict(zip(rows["报告"], rows["结果"], strict=True)) == {
            "luojiang_2024.txt": "已生成", "zichuan_2024.txt": "沿用缓存"
        }  # fmt: skip
        assert len(server.chat_requests()) > sent
        made = Summary.model_validate_json(
            (fail_closed / "summaries" / "llm-gpt-4o-mini" / "luojiang_2024.json").read_text()
        )
        assert made.engine == "llm" and made.model == "gpt-4o-mini"
        sent = len(server.chat_requests())

        at.radio(key="sum_engine").set_value("offline").run()  # another engine: not the LLM's summary
        header = next(m.value for m in at.markdown if "qa-engine" in m.value)
        assert '<span class="qa-engine">抽取式（离线，逐字引用原文）</span>' in header
        assert len(server.chat_requests()) == sent
        at.radio(key="sum_engine").set_value("llm").run()  # and back: the LLM's summary is still cached
        header = next(m.value for m in at.markdown if "qa-engine" in m.value)
        assert '<span class="qa-engine">LLM：gpt-4o-mini</span>' in header
        assert len(server.chat_requests()) == sent


def test_batch_summaries_zip_and_a_failing_report_stops_nothing(
    fail_closed: Path, downloads, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codecs
    import csv
    import io
    import zipfile

    import docx
    import openpyxl
    from openai_server import OpenAIServer, Reply
    from summary_llm import summary_responder

    from qa.summary.summarize import Summary

    def responder(request):  # the model fails on one report (invalid JSON, twice): a real failure
        return Reply("不是 JSON") if "洛江区" in request.prompt else summary_responder(request)

    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt", "rongjiang_2023.txt")
    with OpenAIServer(responder=responder) as server:
        use_llm(monkeypatch, server)
        at = start("summary")
        at.selectbox(key="sum_report").set_value("zichuan_2024.txt").run()
        at.button(key="sum-generate").click().run()  # cached before the batch
        at.multiselect(key="sum_batch").set_value(
            ["luojiang_2024.txt", "rongjiang_2023.txt", "zichuan_2024.txt"]
        ).run()
        at.button(key="sum-batch-run").click().run()
    assert not at.exception
    rows = at.dataframe[0].value
    assert dict(zip(rows["报告"], rows["结果"], strict=True)) == {
        "luojiang_2024.txt": "失败", "rongjiang_2023.txt": "已生成", "zichuan_2024.txt": "沿用缓存"
    }  # fmt: skip
    assert "invalid JSON" in rows["原因"][0] and "luojiang_2024.txt" in rows["原因"][0]
    assert any("已生成 1 份 · 沿用缓存 1 份 · 失败 1 份" in w for w in texts(at.warning))

    zipped = downloads(at, "下载全部（zip：Word、JSON、Markdown 及索引 CSV / Excel）", "application/zip")
    archive = zipfile.ZipFile(io.BytesIO(zipped))
    assert sorted(archive.namelist()) == [
        "index.csv", "index.xlsx", "rongjiang_2023.docx", "rongjiang_2023.json", "rongjiang_2023.md",
        "zichuan_2024.docx", "zichuan_2024.json", "zichuan_2024.md",
    ]  # fmt: skip
    for name in ("rongjiang_2023.json", "zichuan_2024.json"):
        summary = Summary.model_validate_json(archive.read(name))
        assert summary.report_id == name.replace(".json", ".txt")
        document = docx.Document(io.BytesIO(archive.read(name.replace(".json", ".docx"))))
        assert document.paragraphs[0].text == summary.title
    data = archive.read("index.csv")
    assert data.startswith(codecs.BOM_UTF8)
    index = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert index[0][:3] == ["报告文件", "标题", "地区"]
    assert sorted(r[0] for r in index[1:]) == ["rongjiang_2023.txt", "zichuan_2024.txt"]
    sheet = openpyxl.load_workbook(io.BytesIO(archive.read("index.xlsx"))).worksheets[0]
    assert [["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)] == index


def test_batch_stops_on_a_rejected_key_and_says_so(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai_server import OpenAIServer, Reply

    import app_pages.summary

    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt", "rongjiang_2023.txt")
    monkeypatch.setattr(app_pages.summary, "LLM_CONCURRENCY", 1)  # one in flight: the others never start
    with OpenAIServer(responder=lambda r: Reply(status=401, error="Incorrect API key provided")) as server:
        use_llm(monkeypatch, server)
        at = start("summary")
        at.multiselect(key="sum_batch").set_value(
            ["luojiang_2024.txt", "rongjiang_2023.txt", "zichuan_2024.txt"]
        ).run()
        at.button(key="sum-batch-run").click().run()
    assert not at.exception
    rows = at.dataframe[0].value
    assert sorted(rows["结果"]) == ["失败", "未运行", "未运行"]
    assert len(server.chat_requests()) == 1
    [error] = [e for e in texts(at.error) if "批量生成已停止" in e]
    assert "模型服务拒绝了 API 密钥（401）" in error and "已生成的摘要会保留" in error
    [original] = [e for e in at.expander if plain(e.label) == ui.ERROR_DETAIL_LABEL]
    assert "rejected the API key (401)" in texts(original.caption)[0]
    assert not list((fail_closed / "summaries").glob("**/*.json"))


# ---- 对比 ------------------------------------------------------------------------------------------


def test_compare_table_cites_every_value_and_leaves_missing_ones_empty(fail_closed: Path, downloads) -> None:
    import codecs
    import csv
    import io

    import openpyxl

    ingest(fail_closed, "zichuan_2024.txt", "luojiang_2024.txt")
    at = start("compare")
    assert at.title[0].value == "对比" and not at.error
    # a static table: long cells wrap where a data grid would cut them (test_browser checks it)
    assert at.dataframe.len == 0
    table = at.table[0].value.set_index("指标")
    assert table.loc["行政复议 收案", "淄川区（2024）"] == "151件"
    assert table.loc["行政复议 收案", "洛江区（2024）"] == "121件"
    assert table.loc["行政复议 纠错率", "淄川区（2024）"] == "29.8%"
    assert table.loc["行政复议 纠错率", "洛江区（2024）"] == ""  # not stated: empty, never a guess

    sources = next(e for e in at.expander if plain(e.label) == "行政复议 收案 · 2/2 份报告有数值")
    html_block = sources.markdown[0].value
    assert '<mark class="qa-quote">151件</mark>' in html_block and "zichuan_2024.txt" in html_block
    assert "章节 一、推进法治政府建设的主要举措和成效" in html_block
    # a report that states two values for an indicator shows both, each quoted
    assert table.loc["行政诉讼 案件数", "淄川区（2024）"] == "9件（另有 83件）"
    litigation = next(e for e in at.expander if plain(e.label).startswith("行政诉讼 案件数"))
    other = litigation.markdown[0].value
    assert (
        "该报告另有 83件（口径不同）" in other
        and '区法院受理行政诉讼案件<mark class="qa-quote">83件</mark>' in other
    )

    data = downloads(at, "下载 CSV", "text/csv")
    assert data.startswith(codecs.BOM_UTF8)  # the bytes `qa compare --out` writes
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    zichuan = next(r for r in rows if r["指标"] == "行政复议 收案" and r["报告文件"] == "zichuan_2024.txt")
    assert zichuan["原文数值"] == "151件" and "151件" in zichuan["原文引用"] and zichuan["章节"]
    assert not re.search(
        r"[0-9a-f]{16}-\d+", data.decode("utf-8-sig")
    )  # no internal ids in what is handed on
    assert not any(r["指标"] == "行政复议 纠错率" and r["报告文件"] == "luojiang_2024.txt" for r in rows)
    sheet = openpyxl.load_workbook(io.BytesIO(downloads(at, "下载 Excel", XLSX_MIME))).worksheets[0]
    cells = [["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
    assert cells == [list(rows[0]), *(list(r.values()) for r in rows)]
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.b
    assert "# 指标对比" in downloads(at, "下载 Markdown").decode()

    at.selectbox(key="cmp_indicator").set_value("admin_review_correction").run()
    captions = texts(at.caption)
    assert "行政复议 纠错率：淄川区（2024） 29.8%（原文写法，出处见下）" in captions
    assert "没有数值（报告未提及，不作图）：洛江区（2024）" in captions

    at.multiselect(key="cmp_reports").set_value(["luojiang_2024.txt"]).run()
    assert list(at.table[0].value.columns) == ["指标", "分组", "洛江区（2024）"]


# ---- 评测 ------------------------------------------------------------------------------------------

MINI_DATASET = [
    {"id": "t-1", "doc": "zichuan_2024.txt", "question": "淄川区办理行政复议案件多少件？", "answer": "151件",
     "answer_type": "number", "evidence": ["办理行政复议案件151件"]},
    {"id": "t-2", "doc": "zichuan_2024.txt", "question": "淄川区全年受理法律援助案件多少件？", "answer": "999件",
     "answer_type": "number", "evidence": ["全年受理法律援助案件235件"]},
]  # fmt: skip


def eval_form(at: AppTest, name: str, data: bytes, docs: Path | str) -> AppTest:
    at.selectbox(key="eval_dataset").set_value("__upload__").run()
    at.file_uploader(key="eval_upload").set_value([(name, data, "application/json")]).run()
    at.selectbox(key="eval_docs").set_value(str(docs)).run()
    return at


def test_eval_run_shows_metrics_failures_history_and_reports(
    fail_closed: Path, tmp_path: Path, downloads
) -> None:
    docs = ROOT / "data" / "reports"  # an eval reads only the project's folders or the library's uploads
    data = "".join(json.dumps(case, ensure_ascii=False) + "\n" for case in MINI_DATASET).encode()
    at = eval_form(start("eval"), "mini.jsonl", data, docs)
    assert at.selectbox(key="eval_baseline:mini.jsonl").value == "__none__"  # no baseline for this dataset
    at.selectbox(key="eval_baseline:mini.jsonl").set_value(
        str(ROOT / "evals" / "baselines" / "offline-dev.json")
    )
    at.selectbox(key="eval_gold:mini.jsonl").set_value("__none__")
    at.button(key="eval-run").click().run()
    assert not at.exception and not at.error, texts(at.error)

    metrics = {m.label: m for m in at.metric}
    assert metrics["答案准确率"].value == "50.0%"
    dev = json.loads((ROOT / "evals" / "baselines" / "offline-dev.json").read_text(encoding="utf-8"))
    assert metrics["答案准确率"].delta == f"{(0.5 - dev['metrics']['answer_accuracy']) * 100:+.1f} 个百分点"
    assert metrics["检索召回率@5"].value == "100.0%"
    assert any("与基线 offline-dev.json 相比有指标下降" in w for w in texts(at.warning))
    [failing] = [e for e in at.expander if "t-2" in plain(e.label)]
    assert plain(failing.label) == "t-2 · 淄川区全年受理法律援助案件多少件？"
    detail = plain(failing.markdown[0].value)
    assert "**标准答案**：999件" in detail and "**给出的答案**：" in detail and "235件" in detail
    assert not any("t-1" in plain(e.label) for e in at.expander)

    lines = (fail_closed / "eval_history.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["failing"] == ["t-2"]
    assert json.loads(lines[0])["dataset"] == "上传/mini.jsonl"
    assert "<html" in downloads(at, "下载报告（HTML）").decode()
    assert "t-2" in downloads(at, "下载报告（Markdown）").decode()
    report = json.loads(downloads(at, "下载结果（JSON）"))
    assert report["n"] == 2 and report["baseline"]["regressed"] is True
    assert "共 1 次评测记录" in " ".join(texts(at.caption))


def test_eval_lists_the_questions_that_failed_with_an_error(
    fail_closed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai_server import OpenAIServer, Reply

    uploads = (
        fail_closed / "uploads"
    )  # the library's uploaded reports: what an eval may read besides the project's
    uploads.mkdir(parents=True)
    (uploads / "zichuan_2024.txt").write_bytes((CORPUS / "zichuan_2024.txt").read_bytes())
    docs = "__library__"
    data = "".join(json.dumps(case, ensure_ascii=False) + "\n" for case in MINI_DATASET).encode()

    def responder(request) -> Reply:  # the model fails on t-1 and answers t-2
        if "办理行政复议案件多少件" in request.prompt:
            return Reply(status=500, error="model crashed")
        return Reply("全年受理法律援助案件235件[1]。")

    with OpenAIServer(responder=responder) as server:
        use_llm(monkeypatch, server)
        monkeypatch.setenv("QA_LLM_RETRIES", "0")
        at = eval_form(start("eval"), "mini.jsonl", data, docs)
        at.selectbox(key="eval_gold:mini.jsonl").set_value("__none__")
        at.button(key="eval-run").click().run()
    assert not at.exception, at.exception
    [notice] = texts(at.error)  # the run went on: one notice names the question and what happened
    assert "1 个问题回答时出错" in notice and "t-1：" in notice and "500" in notice
    assert {m.label: m.value for m in at.metric}["答案准确率"] == "0.0%"  # t-1 counts as wrong
    [errored] = [e for e in at.expander if "t-1" in plain(e.label)]
    assert plain(errored.label) == "t-1（出错） · 淄川区办理行政复议案件多少件？"
    assert "**出错**：" in plain(errored.markdown[0].value) and "500" in plain(errored.markdown[0].value)
    [record] = (fail_closed / "eval_history.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(record)["errors"] == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("malformed", "line 2: not valid JSON"),
        ("missing doc", "line 1: doc 'nowhere.txt' is not a file in"),
        ("not utf-8", "不是 UTF-8 编码的 JSONL 文本"),
        ("no uploads", "文档库中还没有上传的报告"),
        ("broken baseline", "not a readable baseline"),
    ],
)
def test_bad_eval_input_is_an_error_message(
    fail_closed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, message: str
) -> None:
    docs = ROOT / "data" / "reports"
    good = json.dumps(MINI_DATASET[0], ensure_ascii=False).encode() + b"\n"
    data = {
        "malformed": good + b'{"id": "t-9", "doc": \n',
        "missing doc": json.dumps({**MINI_DATASET[0], "doc": "nowhere.txt"}).encode(),
        "not utf-8": "淄川区".encode("gbk") * 3,
    }.get(case, good)
    if case == "broken baseline":
        import app_pages.evals

        baselines = tmp_path / "baselines"
        baselines.mkdir()
        (baselines / "broken.json").write_text('{"kind": ', encoding="utf-8")
        monkeypatch.setattr(app_pages.evals, "BASELINES", baselines)
    at = eval_form(start("eval"), "mini.jsonl", data, docs)
    if case == "no uploads":
        at.selectbox(key="eval_docs").set_value("__library__").run()
    if case == "broken baseline":
        at.selectbox(key="eval_baseline:mini.jsonl").set_value(str(baselines / "broken.json"))
    at.button(key="eval-run").click().run()
    assert not at.exception
    [error] = texts(at.error)
    assert message in error, error
    assert at.metric.len == 0 and not (fail_closed / "eval_history.jsonl").exists()


# ---- the upload handler on its own -------------------------------------------------------------------


def test_a_failed_replacement_keeps_the_previous_upload(services) -> None:
    from app_pages.common import save_and_ingest

    good = (CORPUS / "zichuan_2024.txt").read_bytes()
    first = save_and_ingest("report.txt", good, services)
    assert first.status == "ingested" and first.report_id == "report.txt"
    second = save_and_ingest("report.txt", b"\x00\x00binary", services)
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
    warning = ui.unverified_warning([UnverifiedNumber("151件", "another measure", "行政复议", "行政诉讼")])
    assert (
        warning == "⚠ 以下数字未能在引用原文中核实：151件（引用原文中这是行政复议的数字，不是所问的行政诉讼）"
    )
    assert (
        ui.ingest_line("a.txt", IngestResult("a.txt", "a.txt", "updated", n_chunks=3))
        == "更新：a.txt（3 个分块）"
    )
    empty = IngestResult("b.txt", None, "failed", "file is empty", code="input.empty")
    assert ui.ingest_line("b.txt", empty) == "失败：b.txt — 文件为空（0 字节）。请检查文件后重新上传。"
    llm_answer = Answer("q", "a", [], [], False, "llm", "m", "answer@1#abc", prompt_tokens=10,
                        completion_tokens=2, cost_usd=None, latency_ms=1234)  # fmt: skip
    assert ui.answer_meta(llm_answer) == "LLM：m · 用时 1.23 秒 · tokens 10 输入 / 2 输出 · 费用未知"
    assert "提示词：answer@1#abc" in ui.answer_details(llm_answer)


def test_citations_are_renumbered_in_reading_order_and_keep_their_links() -> None:
    assert ui.citation_numbers("甲[3]乙[1]丙[3]丁[2]", [1, 2, 3]) == {3: 1, 1: 2, 2: 3}
    assert ui.citation_numbers("甲[2]", [1, 2]) == {2: 1, 1: 2}  # a source the text never marks comes last
    out = ui.answer_markdown("淄川区29.8%[5]。浈江区12.63%[4]。又[5]", "m1", cited=[4, 5])
    links = re.findall(r'href="#qa-src-m1-(\d+)" title="查看来源 \[(\d+)\]">\[(\d+)\]</a>', out)
    assert links == [("1", "1", "1"), ("2", "2", "2"), ("1", "1", "1")]
    cited_5 = Citation(**{**_citation().__dict__, "n": 5})
    assert ui.citation_label(cited_5, 1).startswith("\\[1\\] 《标题》")
    details = ui.answer_details(Answer("q", "a", [cited_5], [], False, "extractive", None, None), {5: 1})
    assert "[1] r.txt · 第 100–115 字 · 段落 c1" in details


def test_local_time_uses_the_servers_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from datetime import timedelta, timezone

    assert ui.local_time("2026-11-29T12:15:40+00:00", timezone(timedelta(hours=8))) == "2026-11-29 20:15"
    naive = "2026-11-29T12:15:40"  # read as UTC
    assert ui.local_time(naive, timezone(timedelta(hours=-5))) == "2026-11-29 07:15"
    assert ui.local_time("") == "" and ui.local_time("昨天") == "昨天"
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        assert ui.local_time("2026-11-29T12:15:40+00:00") == "2026-11-29 20:15"
        monkeypatch.setenv("TZ", "America/New_York")
        time.tzset()
        assert ui.local_time("2026-11-29T12:15:40+00:00") == "2026-11-29 07:15"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("error", "text", "detail"),
    [
        (InputError("not a PDF file (no %PDF header)", "/data/uploads/报告.pdf", code="input.not_pdf"),
         "报告.pdf：不是有效的 PDF 文件（文件开头没有 %PDF 标记，可能是改了扩展名的其他文件）。请上传原始 PDF，或另存为 Word / TXT 后再上传。",
         "/data/uploads/报告.pdf: not a PDF file (no %PDF header)"),
        (InputError("unsupported file type '.xls'; supported: .docx, .pdf", "a.xls", code="input.unsupported_type",
                    suffix=".xls"),
         "a.xls：不支持的文件类型（.xls）。请另存为 DOCX、HTML、MD、PDF、TXT 之一后再上传。", "*"),
        (InputError("no report text found after removing page furniture (a scanned PDF? run OCR first)", "扫描.pdf",
                    code="input.scanned_pdf"),
         "扫描.pdf：没有可提取的文字，可能是扫描件（图片）PDF。请先做文字识别（OCR），或上传文字版 PDF / Word。", "*"),
        (InputError("no readable text in the file (binary or garbled?)", "x.txt", code="input.no_readable_text"),
         "x.txt：文件中没有可读的文字（可能是二进制文件或乱码）。请另存为 UTF-8 编码的文本后再上传。", "*"),
        (InputError("file is 25.0 MB, over the 20 MB limit (raise QA_MAX_FILE_MB to allow it)", "C:\\报告\\大.docx",
                    code="input.too_large", size_mb="25.0", limit_mb="20"),
         "大.docx：文件大小 25.0 MB，超过 20 MB 的上限。请压缩或拆分后再上传，或请管理员调高 QA_MAX_FILE_MB。", "*"),
        (InputError("not a .docx file (not a zip package)", "旧.docx", code="input.not_docx"),
         "旧.docx：不是有效的 Word（.docx）文件。如果是旧版 .doc 或 WPS 文件，请在 Word / WPS 中另存为 .docx 后再上传。", "*"),
        (InputError("文件为空（0 字节）"), "文件为空（0 字节）", ""),  # Chinese already: as it is
        (InputError("line 2: not valid JSON (Expecting value)", "/x/mini.jsonl"),  # unknown: kept whole
         "输入有误：/x/mini.jsonl: line 2: not valid JSON (Expecting value)", ""),
        (ConfigError("QA_RRF_K='x' is not a valid int", code="config.invalid_value", name="QA_RRF_K", raw="'x'",
                     kind="int"),
         "设置项 QA_RRF_K 的值 'x' 无效，应为整数。请修改这个环境变量后重启应用。", "*"),
        (EndpointUnreachable("model m: cannot connect to http://127.0.0.1:9/v1; check QA_LLM_BASE_URL",
                             endpoint="http://127.0.0.1:9/v1"),
         "无法连接到模型服务 http://127.0.0.1:9/v1。请检查 QA_LLM_BASE_URL，以及模型服务是否已启动。", "*"),
        (ProviderError("model m: http://x/v1 failed with 503 (request id r1); try again later",
                       code="llm.server_error", status=503, request_id="r1"),
         "模型服务出错（503）。请稍后重试。", "*"),
        (EmptyIndexError("the store has no reports yet; run `qa ingest PATH` first"),
         "文档库中还没有报告。请先到「文档库」页面上传报告，或导入示例报告。", "*"),
        (ConfigError("prompt file /p/x.yaml: bad"), "设置有误：prompt file /p/x.yaml: bad", ""),
        (InputError("unpacks to more than 100 MB (its parts declare 301 MB): a zip bomb or not a report, so it is "
                    "refused. If it is a real report, save it as PDF or text", "/u/炸弹.docx",
                    code="input.unpacks_too_large", limit_mb="100"),
         "炸弹.docx：文件解压后超过 100 MB（可能是“压缩炸弹”，或不是报告），已拒绝，没有解压。如果确是报告，请另存为 PDF 或 TXT 后再上传，或请管理员调高 QA_MAX_FILE_MB。", "*"),
        (ConfigError("QA_LLM_BASE_URL has a query string (http://h/v1?…, the rest not shown: it may hold a key); "
                     "a base URL cannot have one", code="config.url_has_query", name="QA_LLM_BASE_URL"),
         "设置项 QA_LLM_BASE_URL 带有查询参数（“?”之后的部分，可能含有密钥），地址中不能有。请把 API 密钥放在 QA_LLM_API_KEY 中，"
         "把 QA_LLM_BASE_URL 改为不带“?”的地址（通常以 /v1 结尾）后重启应用。", "*"),
    ],
)  # fmt: skip
def test_errors_are_shown_in_chinese_with_the_original_kept(error, text: str, detail: str) -> None:
    message = ui.error_message(error)
    assert message.text == text
    assert message.detail == (str(error) if detail == "*" else detail)


def test_a_damaged_or_read_only_store_is_said_so_in_chinese_without_a_retry() -> None:
    from app_pages.common import store_message
    from qa.store.errors import StoreDamaged, StoreReadOnly

    damaged = store_message(
        StoreDamaged("the store at /d/chroma is damaged: /d/chroma/chroma.sqlite3 is empty")
    )
    assert (
        damaged.text.startswith("文档库已损坏")
        and "没有做任何改动" in damaged.text
        and "重试" not in damaged.text
    )
    assert "chroma.sqlite3" in damaged.detail
    read_only = store_message(
        StoreReadOnly("the store at /d/chroma is read-only: this process may not write")
    )
    assert read_only.text.startswith("文档库为只读") and "可以浏览、检索和问答" in read_only.text


def test_streamlit_widget_text_rules() -> None:
    assert ui.widget_text_zh("Upload") == "选择文件"
    assert ui.widget_text_zh(" 20MB per file") == " 单个文件不超过 20MB"
    assert ui.widget_text_zh("Drag and drop files here") == "将文件拖放到这里"
    assert ui.widget_text_zh("xls files are not allowed.") == "不支持 xls 类型的文件。"
    assert ui.widget_text_zh("Select all") == "全选" and ui.widget_text_zh("No results") == "没有匹配项"
    assert ui.widget_text_zh("Select 3 matches") == "选择 3 个匹配项"
    assert ui.widget_text_zh("Uploading a report") is None and ui.widget_text_zh("淄川区") is None
    assert json.dumps(ui.WIDGET_TEXT_RULES) in ui.WIDGET_SCRIPT  # the browser runs the same rules


def test_import_outcome_says_imported_only_when_something_was() -> None:
    def results(*statuses: str) -> list[IngestResult]:
        return [IngestResult(f"{i}.txt", f"{i}.txt", s, "file is empty" if s == "failed" else "") for i, s in enumerate(statuses)]  # fmt: skip

    assert ui.ingest_outcome(results("ingested", "updated", "unchanged")) == (
        "success", "导入完成：新增 1 份、更新 1 份；1 个文件未变化"
    )  # fmt: skip
    assert ui.ingest_outcome(results("unchanged", "unchanged")) == (
        "info", "没有导入新内容：2 个文件与文档库中的报告相同（未变化）。"
    )  # fmt: skip
    assert ui.ingest_outcome(results("failed", "unchanged")) == (
        "error", "没有导入任何报告：1 个文件未变化，1 个文件失败（原因见下）。"
    )  # fmt: skip
    assert all("导入完成" not in ui.ingest_outcome(results(*s))[1] for s in [("failed",), ("unchanged",), ()])


def test_start_screen_lists_the_reports_and_builds_examples_from_them() -> None:
    from qa.core.schemas import ReportMeta, ReportRecord

    def record(report_id: str, **meta) -> ReportRecord:
        return ReportRecord(report_id, "v", ReportMeta(**meta), 1)

    a = record("a.txt", region="淄川区", year=2024, title="淄川区报告")
    b = record("b.txt", region="浈江区", issuer="韶关市浈江区司法局", issuer_kind="部门", year=2023)
    untitled = record("c.txt")
    overview = ui.library_overview([a, b, untitled])
    assert overview == "文档库共 3 份报告：淄川区（2024）、韶关市浈江区司法局（2023）、未识别地区"
    assert ui.example_questions([b, a]) == [
        "淄川区行政复议案件多少件？", "韶关市浈江区司法局2024年有哪些工作安排？", "各地区行政复议纠错率分别是多少？"
    ]  # fmt: skip
    assert ui.example_questions([a]) == [
        "淄川区行政复议案件多少件？", "淄川区2025年有哪些工作安排？", "淄川区法治政府建设存在哪些问题？"
    ]  # fmt: skip
    assert ui.example_questions([]) == []
    overview = ui.library_overview([a] * 10, limit=2)
    assert overview == "文档库共 10 份报告：淄川区（2024）、淄川区（2024） 等 10 份"


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
            # a count a tokenizer can give for the ~2,600-character prompt (qa.models.sanity refuses 120)
            usage = {"prompt_tokens": 900, "completion_tokens": 30, "total_tokens": 930}
            self.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


# ---- pure helpers of the new pages (qa/ui_summary.py, qa/ui_compare.py, qa/ui_eval.py) ---------------


def _summary(**changes):
    from qa.summary.summarize import KeyFigure, MeasureArea, Point, Summary

    base = Summary(
        report_id="r.txt", template="summary_rule_of_law@1#abc", title="<b>标题</b>", region="淄川区", year=2024,
        overview="概述<script>x</script>", overview_citations=["c1"],
        measures=[MeasureArea(area="复议", points=[Point(text="办理151件", citations=["c2"]),
                                                  Point(text="另有999件", citations=["c9"], verified=False)])],
        key_figures=[KeyFigure(indicator="复议案件", raw="151件", quote="办理复议案件151件。", chunk_id="c2",
                               verified=True),
                     KeyFigure(indicator="诉讼", raw="9件", quote="诉讼案件10件", chunk_id="c3")],
        created_at="2026-01-02T03:04:05+00:00",
    )  # fmt: skip
    return base.model_copy(update=changes)


def test_summary_card_html_marks_verification_escapes_and_numbers_sources() -> None:
    from app_pages import ui_summary

    card = ui_summary.summary_card_html(_summary(), {"c1": "（开篇）", "c2": "一、举措 > (一)复议"})
    assert "\n" not in card and "<script>" not in card and "概述&lt;script&gt;" in card
    # the quote is on demand: folded under 原文 with its [n]
    assert re.search(
        r'<tr><td>复议案件</td><td class="qa-num">151件</td><td><details class="qa-figure-quote"><summary>原文'
        r'<sup[^>]*>\[2\]</sup></summary>办理复议案件<mark class="qa-quote">151件</mark>',
        card,
    )
    assert '<td class="qa-ok" title="数值见于引文，引文见于原文">✓</td>' in card
    assert '<tr class="qa-unverified-row"><td>诉讼</td><td class="qa-num">9件</td><td><details' in card
    assert "诉讼案件10件" in card
    assert "另有999件" in card and card.count("⚠ 未核实") == 2  # the point and the figure
    assert '<sup class="qa-ref" title="一、举措 &gt; (一)复议">[2]</sup>' in card
    assert "<li>一、举措 &gt; (一)复议</li>" in card and "c2" not in card  # no ids on view
    assert "存在的不足" not in card and "未单列" not in card  # a part the report does not have is left out
    header = ui_summary.summary_header_html(_summary(engine="llm", model="m1", cost_usd=None))
    assert '<span class="qa-engine">LLM：m1</span>' in header and "费用未知" in header
    assert "地区：淄川区 · 年度：2024" in header
    assert ui_summary.engine_text(_summary()) == "抽取式（离线，逐字引用原文）"
    assert ui_summary.unverified_text(_summary()) is None
    assert ui_summary.unverified_text(_summary(unverified=2)).startswith("⚠ 2 处内容未能在原文中核实")
    assert ui_summary.check_lines(_summary(checks=[str(n) for n in range(25)]), limit=3) == [
        "0",
        "1",
        "2",
        "……另有 22 处",
    ]


def test_batch_rows_and_counts() -> None:
    from app_pages import ui_summary
    from qa.summary.batch import BatchItem

    items = [BatchItem("a", "a", "ok", seconds=1.234, unverified=2), BatchItem("b", "b", "skipped"),
             BatchItem("c", "c", "failed", "boom"), BatchItem("d", "d", "failed", "bang")]  # fmt: skip
    rows = ui_summary.batch_rows(items)
    assert rows[0] == {"报告": "a", "结果": "已生成", "未核实": 2, "用时（秒）": 1.23, "原因": ""}
    assert rows[2]["结果"] == "失败" and rows[2]["原因"] == "boom" and rows[2]["未核实"] is None
    assert ui_summary.batch_counts(items) == "已生成 1 份 · 沿用缓存 1 份 · 失败 2 份"
    assert ui_summary.batch_counts(items[1:2]) == "沿用缓存 1 份"


def _table():
    from qa.compare.table import Cell, CompareTable, ReportColumn
    from qa.genre.indicators import CATALOGUE

    received, rate = CATALOGUE[0], CATALOGUE[2]
    reports = (ReportColumn("a.txt", "甲区", 2024), ReportColumn("b.txt", "乙区", 2024),
               ReportColumn("c.txt", "甲区", 2024))  # fmt: skip
    cells = {
        (received.key, "a.txt"): Cell("a.txt", received.key, "151件", 151.0, "件", "办理<案件>151件", "a-1", "一、x"),
        (received.key, "c.txt"): Cell("c.txt", received.key, "12宗", 12.0, "宗", "收案12宗", "c-1", ""),
        (rate.key, "b.txt"): Cell("b.txt", rate.key, "29.8%", 29.8, "%", "纠错率29.8%", "b-1", "二、y"),
    }  # fmt: skip
    return CompareTable((received, rate), reports, cells), received, rate


def test_compare_rows_sources_and_chart_data() -> None:
    from app_pages import ui_compare

    table, received, rate = _table()
    titles = ui_compare.column_titles(table.reports)
    assert titles == {
        "a.txt": "甲区（2024） · a.txt",
        "b.txt": "乙区（2024）",
        "c.txt": "甲区（2024） · c.txt",
    }
    rows = ui_compare.wide_rows(table)
    assert rows[0] == {"指标": received.label, "分组": received.group, "甲区（2024） · a.txt": "151件",
                       "乙区（2024）": "", "甲区（2024） · c.txt": "12宗"}  # fmt: skip
    assert [i.key for i in ui_compare.stated(table)] == [received.key, rate.key]
    assert ui_compare.indicator_heading(table, rate) == f"{rate.label} · 1/3 份报告有数值"
    html_block = ui_compare.sources_html(table, received.key)
    assert '办理&lt;案件&gt;<mark class="qa-quote">151件</mark>' in html_block and "<案件>" not in html_block
    assert "章节 （正文开头）" in html_block and "c-1" not in html_block  # the section, never the chunk id
    assert "未提及（空白，不推测）：乙区（2024）" in html_block
    chart = ui_compare.chart_data(table, received.key)
    assert [r["数值"] for r in chart.rows] == [151.0, 12.0] and chart.missing == ["乙区（2024）"]
    assert chart.unit_label == "数值（件 / 宗）" and chart.mixed_units
    only_b = ui_compare.subset(table, ["b.txt"])
    assert [r.report_id for r in only_b.reports] == ["b.txt"] and list(only_b.cells) == [(rate.key, "b.txt")]
    assert ui_compare.subset(table, []) is table
    single = ui_compare.chart_data(table, rate.key)
    assert single.unit_label == "数值（%）" and not single.mixed_units and len(single.missing) == 2


def test_eval_files_defaults_and_inputs(tmp_path: Path) -> None:
    from app_pages import ui_eval

    datasets, golds = ui_eval.dataset_files(ROOT / "evals" / "datasets")
    assert [p.name for p in golds] == ["summary_gold.jsonl"]
    assert {"qa_dev.jsonl", "qa_holdout.jsonl"} <= {p.name for p in datasets}
    baselines = sorted((ROOT / "evals" / "baselines").glob("*.json"))
    assert ui_eval.default_baseline(baselines, "qa_dev.jsonl", "extractive").name == "offline-dev.json"
    assert ui_eval.default_baseline(baselines, "qa_holdout.jsonl", "llm").name == "offline-holdout.json"
    assert ui_eval.default_baseline(baselines, "mine.jsonl", "extractive") is None
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert ui_eval.default_baseline([broken], "qa_dev.jsonl", "extractive") is None
    dev = ROOT / "evals" / "baselines" / "offline-dev.json"
    assert ui_eval.default_summary_gold(dev, golds).name == "summary_gold.jsonl"
    assert ui_eval.default_summary_gold(ROOT / "evals" / "baselines" / "offline-holdout.json", golds) is None
    assert ui_eval.check_docs(str(ROOT / "data" / "reports"), ROOT) == ROOT / "data" / "reports"
    assert str(ROOT / "evals" / "corpus-web" / "docs") in map(str, ui_eval.docs_folders(ROOT))
    for elsewhere in (str(tmp_path), "/etc", str(ROOT), "data/reports/../../"):  # no path on a visitor's word
        with pytest.raises(InputError, match="请从列表中选择文档目录"):
            ui_eval.check_docs(elsewhere, ROOT)
    assert ui_eval.upload_text("a.jsonl", "\ufeff{}".encode()) == "{}"
    with pytest.raises(InputError, match="空文件"):
        ui_eval.upload_text("a.jsonl", b"\n")
    assert ui_eval.upload_name("C:\\x\\我的 数据.jsonl") == "我的_数据.jsonl"
    assert ui_eval.upload_name("../..") == "dataset.jsonl"


def test_eval_progress_metric_cards_and_history() -> None:
    from app_pages import ui_eval
    from qa.evals import gate

    assert ui_eval.progress_value("ingest", 7, None, False) == (0.05, "正在导入文档：已向量化 7 个分块")
    assert ui_eval.progress_value("questions", 5, 10, False) == (pytest.approx(0.55), "正在回答问题（5/10）")
    assert ui_eval.progress_value("questions", 10, 10, True)[0] == pytest.approx(0.9)
    assert ui_eval.progress_value("summaries", 1, 2, True) == (
        pytest.approx(0.95),
        "正在生成并检查摘要（1/2）",
    )
    metrics = {"k": 3, "answer_accuracy": 0.5, "retrieval_recall_at_k": 1.0, "refusal_accuracy": 1.0,
               "citation_precision": 0.9, "number_grounding": 1.0, "rows": [],
               "summary": {"figure_recall": 0.8}}  # fmt: skip
    baseline = {"metrics": {"answer_accuracy": 0.75, "retrieval_recall_at_k": 1.0}, "engine": None}
    comparison = gate.compare(baseline, metrics)
    cards = {c.name: c for c in ui_eval.metric_cards(metrics, comparison)}
    assert cards["answer_accuracy"].value == "50.0%" and cards["answer_accuracy"].delta == "-25.0 个百分点"
    assert cards["answer_accuracy"].regressed and cards["retrieval_recall_at_k"].delta == "持平"
    assert (
        cards["retrieval_recall_at_k"].label == "检索召回率@3" and cards["citation_precision"].delta is None
    )
    [summary_card] = ui_eval.metric_cards(metrics, None, summary=True)
    assert summary_card.label == "摘要 · 关键数据召回率" and summary_card.value == "80.0%"
    assert "答案准确率 75.0% → 50.0%" in ui_eval.regression_text(comparison, "b.json")
    runs = [
        {"time": "2026-01-01T10:00:00+00:00", "git_commit": "abc", "dataset": "evals/datasets/qa_dev.jsonl",
         "metrics": {"answer_accuracy": 0.9, "refusal_accuracy": 1.0, "retrieval_recall_at_k": 0.95}},
        {"time": "2026-01-02T10:00:00+00:00", "git_commit": None, "dataset": "other.jsonl",
         "metrics": {"answer_accuracy": 0.5}},
    ]  # fmt: skip
    [row] = ui_eval.history_rows(runs, "qa_dev.jsonl")
    assert row == {"运行": f"{ui.local_time('2026-01-01T10:00:00+00:00')} · abc", "答案准确率": 90.0,
                   "拒答准确率": 100.0, "检索召回率@k": 95.0, "数字可溯源率": None}  # fmt: skip
    assert len(ui_eval.history_rows(runs)) == 2
    more = [
        {**runs[0], "engine": "extractive"},
        {**runs[0], "engine": "llm", "model": "m", "n": 4, "failing": ["q-1"]},
    ]
    table = ui_eval.history_table([*runs, *more])
    assert [r["引擎"] for r in table] == ["LLM：m", "抽取式", "", ""]
    assert table[0]["失败"] == 1 and table[0]["问题数"] == 4
    assert ui_eval.metric_trend(runs, "answer_accuracy") == [0.9, 0.5]
    assert ui_eval.metric_trend(runs, "answer_accuracy", "other.jsonl") == [0.5]


# ---- sign-in and roles ---------------------------------------------------------------------------------


def users_with(data_dir: Path, **roles: str) -> None:
    from qa.team.auth import Users

    users = Users(data_dir / "users.json")
    for name, role in roles.items():
        users.add(name, role, f"{name}-password")


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth_name").set_value(name)
    at.text_input(key="auth_password").set_value(password)
    at.button[0].click().run()  # the form's 登录
    assert not at.exception, at.exception
    return at


def test_sign_in_is_required_and_a_wrong_password_gets_nowhere(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    users_with(fail_closed, zhang="reader")
    monkeypatch.setenv("QA_AUTH", "required")
    at = start()
    assert at.title[0].value == "登录 reportqa" and not at.chat_input  # nothing but the sign-in form
    sign_in(at, "zhang", "not-the-password")
    assert "用户名或密码不正确。" in texts(at.error) and not at.chat_input
    sign_in(at, "zhang", "zhang-password")
    assert at.chat_input and any("当前用户：zhang（读者）" in c for c in texts(at.sidebar.caption))
    ask_in(at, ZICHUAN_Q)
    assert "151件" in last_answer(at).markdown[0].value  # a reader may ask


def test_sign_in_without_any_user_says_how_to_add_one(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_AUTH", "required")
    at = start()
    assert any("qa users add" in e for e in texts(at.error)) and not at.text_input


def test_a_damaged_users_file_is_a_message_at_sign_in_not_a_traceback(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_closed.mkdir(parents=True, exist_ok=True)
    (fail_closed / "users.json").write_text('{"users": {"x": "notadict"}}', encoding="utf-8")
    monkeypatch.setenv("QA_AUTH", "required")
    at = start()
    assert not at.exception and not at.chat_input and not at.text_input
    assert any("用户文件无法读取" in e and "users.json" in e and "'x'" in e for e in texts(at.error)), texts(
        at.error
    )


def test_roles_limit_what_a_user_may_change(fail_closed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    users_with(fail_closed, zhang="reader", li="editor", wang="admin")
    monkeypatch.setenv("QA_AUTH", "required")

    reader = sign_in(start(), "zhang", "zhang-password")
    reader.session_state["goto_page"] = "library"
    reader.run()
    assert not reader.get("file_uploader") and not [b for b in reader.button if b.key == "delete-report"]
    assert any("只读" in c for c in texts(reader.caption))
    assert not [
        e for e in reader.expander if plain(e.label) == "详细信息"
    ]  # no server path, hashes for readers
    reader.session_state["goto_page"] = "eval"  # not in the menu; its URL gets a message, not the page
    reader.run()
    assert "评测需要管理员权限。" in texts(reader.error)
    assert not [b for b in reader.button if b.key == "eval-run"] and not reader.get("file_uploader")

    editor = sign_in(start(), "li", "li-password")
    editor.session_state["goto_page"] = "library"
    editor.run()
    assert editor.get("file_uploader") and [b for b in editor.button if b.key == "delete-report"]
    editor.session_state["goto_page"] = "eval"
    editor.run()
    assert "评测需要管理员权限。" in texts(editor.error) and not [
        b for b in editor.button if b.key == "eval-run"
    ]

    admin = sign_in(start(), "wang", "wang-password")
    admin.session_state["goto_page"] = "eval"
    admin.run()
    assert not admin.error and admin.title[0].value == "评测"


def test_failed_sign_ins_pause_the_account_across_reloads_and_are_audited(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count lives on the server: a new browser session (a reload, AppTest's new run) does not reset it;
    the pause says until when, and even the right password waits it out."""
    users_with(fail_closed, zhang="reader")
    monkeypatch.setenv("QA_AUTH", "required")
    for attempt in range(5):
        at = sign_in(start(), "zhang", f"wrong-{attempt}")  # each attempt from a fresh session
    assert any("登录失败次数过多" in e and "之后再试" in e for e in texts(at.error)), texts(at.error)
    at = sign_in(start(), "zhang", "zhang-password")
    assert any("账号 zhang 已暂停登录" in e for e in texts(at.error)) and not at.chat_input
    rows = [
        json.loads(line) for line in (fail_closed / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [r["action"] for r in rows] == ["sign-in-failed"] * 5
    assert all(r["user"] == "zhang" and "127.0.0.1" in r["detail"] for r in rows)


def test_a_session_ends_on_sign_out_and_when_the_password_or_role_changes(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.team.auth import Users

    ingest(fail_closed, "zichuan_2024.txt")
    users_with(fail_closed, zhang="reader", li="editor")
    monkeypatch.setenv("QA_AUTH", "required")
    zhang, li = sign_in(start(), "zhang", "zhang-password"), sign_in(start(), "li", "li-password")
    assert zhang.chat_input and li.chat_input
    Users(fail_closed / "users.json").add("zhang", "reader", "a-new-password")  # the password changes
    zhang.run()
    assert zhang.title[0].value == "登录 reportqa" and not zhang.chat_input
    Users(fail_closed / "users.json").add("li", "reader", "li-password")  # the role changes
    li.run()
    assert li.title[0].value == "登录 reportqa"
    li = sign_in(li, "li", "li-password")
    assert any("当前用户：li（读者）" in c for c in texts(li.sidebar.caption))
    next(b for b in li.sidebar.button if b.key == "auth-sign-out").click().run()
    assert li.title[0].value == "登录 reportqa"
    import sqlite3

    with sqlite3.connect(fail_closed / "signin.sqlite3") as db:
        assert db.execute("select count(*) from sessions").fetchone()[0] == 0  # ended on the server too


def test_an_upload_with_a_stored_name_replaces_only_when_asked_and_is_recorded(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(fail_closed, "zichuan_2024.txt")
    users_with(fail_closed, li="editor")
    monkeypatch.setenv("QA_AUTH", "required")
    at = sign_in(start(), "li", "li-password")
    at.session_state["goto_page"] = "library"
    at.run()
    changed = (CORPUS / "zichuan_2024.txt").read_bytes() + "另行补充：新增调解案件1件。".encode()
    at.get("file_uploader")[0].set_value([("zichuan_2024.txt", changed, "text/plain")])
    next(b for b in at.button if b.label == "导入").click().run()
    assert any("同名" in w and "没有导入" in w for w in texts(at.warning))

    def changes() -> list[dict]:
        rows = [
            json.loads(line)
            for line in (fail_closed / "audit.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        return [r for r in rows if not r["action"].startswith("sign-in")]

    assert not changes()
    at.get("file_uploader")[0].set_value([("zichuan_2024.txt", changed, "text/plain")])
    at.checkbox(key="lib_replace").check()
    next(b for b in at.button if b.label == "导入").click().run()
    assert not at.exception
    [row] = changes()
    assert (row["user"], row["role"], row["action"], row["report"]) == (
        "li",
        "editor",
        "replace",
        "zichuan_2024.txt",
    )


def test_workspaces_keep_a_teams_library_apart_in_the_app(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa import Library
    from qa.team.auth import Users

    ingest(fail_closed, "zichuan_2024.txt")  # the default workspace
    Library.open(fail_closed, workspace="team-a").ingest([CORPUS / "luojiang_2024.txt"])
    users = Users(fail_closed / "users.json")
    users.add("zhang", "reader", "zhang-password", workspaces=("team-a",))
    users.add("wang", "admin", "wang-password")
    monkeypatch.setenv("QA_AUTH", "required")

    reader = sign_in(start(), "zhang", "zhang-password")  # only team-a: no choice to make, its library
    assert not [s for s in reader.sidebar.selectbox if s.label == "工作区"]
    assert any("1 份报告" in c for c in texts(reader.sidebar.caption))
    ask_in(reader, ZICHUAN_Q)
    assert "没有淄川区" in plain(
        last_answer(reader).info[0].value
    )  # the default workspace's report is not team-a's

    admin = sign_in(start(), "wang", "wang-password")
    [picker] = [s for s in admin.sidebar.selectbox if s.label == "工作区"]
    assert picker.options == ["默认", "team-a"]
    ask_in(admin, ZICHUAN_Q)
    assert "151件" in last_answer(admin).markdown[0].value
    next(s for s in admin.sidebar.selectbox if s.label == "工作区").set_value("team-a").run()
    assert admin.session_state["workspace"] == "team-a", admin.session_state["workspace"]
    assert admin.chat_message.len == 0  # another team's library: the conversation starts over
    ask_in(admin, "洛江区新收行政复议申请多少件？")
    assert "121件" in last_answer(admin).markdown[0].value


def test_the_sidebar_says_how_much_of_the_library_has_its_vectors(fail_closed: Path) -> None:
    """While a batch ingest's background pass is embedding (here: stopped by an embeddings endpoint that is
    down), the sidebar says 向量索引 x/y and the report still answers by keywords."""
    from qa.core.errors import ProviderError
    from qa.ingest.pipeline import ingest_paths
    from qa.wiring import open_services

    class Down:  # the real embedder's name and size, an endpoint that fails, nothing in its cache
        def __init__(self, inner) -> None:
            self.name, self.dim, self.inner = inner.name, inner.dim, inner

        def lookup(self, texts):
            return None

        def embed_passages(self, texts, progress=None):
            raise ProviderError("embeddings endpoint unreachable")

        def embed_query(self, text):
            return self.inner.embed_query(text)

    services = open_services(make_settings(fail_closed))
    first = ingest_paths([CORPUS / "luojiang_2024.txt"], services.store, services.embedder, services.settings)
    assert [r.status for r in first] == ["ingested"]
    results = ingest_paths([CORPUS / "zichuan_2024.txt"], services.store, Down(services.embedder), services.settings,
                           background=True)  # fmt: skip
    assert [r.status for r in results] == ["ingested", "failed"]
    n_luojiang = services.store.get_report("luojiang_2024.txt").n_chunks
    total = n_luojiang + services.store.get_report("zichuan_2024.txt").n_chunks
    at = start()
    assert f"向量索引 {n_luojiang}/{total} 段" in sidebar_text(at)
    ask_in(at, "淄川区办理行政复议案件多少件？")
    assert "151件" in plain(last_answer(at).markdown[0].value)
