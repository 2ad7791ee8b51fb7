"""问答: ask about one report or all of them; every claim cites its passage (click [n] → the passage, the
supporting span highlighted; 查看原文 → the passage inside the report). Citations are numbered 1..n in the
order the answer uses them; prompt refs and chunk ids are in each answer's 详细信息. An empty conversation
starts with the loaded reports and three example questions built from them."""

from __future__ import annotations

import uuid

import streamlit as st

from app_pages import ui
from app_pages.common import (
    engine_or_error,
    get_services,
    go_to,
    keep_valid,
    message_for,
    reports_multiselect,
    retry_store,
    samples_button,
    show_error,
    show_flash,
)
from qa.api import Library
from qa.core.errors import InputError, QAError
from qa.core.schemas import Citation, ReportRecord
from qa.engines.base import Engine
from qa.store.errors import StoreError
from qa.wiring import Services

ASK = "chat_ask"  # an example question to ask on this run (set by its button)


def new_id() -> str:
    return uuid.uuid4().hex[:10]


def clear_chat() -> None:
    st.session_state["messages"] = []


def chat_filters(records: list[ReportRecord]) -> tuple[list[str], list[int]]:
    years = sorted({r.meta.year for r in records if r.meta.year}, reverse=True)
    keep_valid("flt_years", years)
    with st.sidebar:
        st.subheader("检索范围")
        report_ids = reports_multiselect(records, "报告", "flt_reports", "全部报告")
        chosen_years = st.multiselect("年度", years, key="flt_years", placeholder="全部年度")
        st.button("清空对话", on_click=clear_chat, icon=":material/delete_sweep:")
    return report_ids, chosen_years


@st.dialog("查看原文", width="large")
def show_context(citation: Citation) -> None:
    st.markdown(ui.escape_markdown(f"《{citation.title or citation.report_id}》 · {citation.section}"))
    store = get_services().store
    header = citation.part == "header"
    try:
        text = store.report_header(citation.report_id) if header else store.report_text(citation.report_id)
    except InputError:
        st.warning("这份报告已从文档库删除，无法显示原文。")
        return
    html = ui.context_html(text, citation)
    if html is None:
        st.warning("这份报告已重新导入，原文已变化，找不到这段引文。")
    else:
        where = "网页页眉（文号、日期等报告信息）" if header else "报告清洗后的正文"
        st.caption(f"浅蓝底为引用段落，黄色为支持答案的原句（{where}）。")
        st.markdown(html, unsafe_allow_html=True)


def render_citation(citation: Citation, message_id: str, number: int) -> None:
    """A source under an answer, under the number the answer shows for it (ui.citation_numbers)."""
    with st.expander(ui.citation_label(citation, number), key=f"src-{message_id}-{citation.n}"):
        st.caption(
            ui.escape_markdown(
                f"报告：{citation.report_id} · 章节：{citation.section or '（正文开头）'} · "
                + (
                    "位置：网页页眉"
                    if citation.part == "header"
                    else f"位置：第 {citation.start}–{citation.end} 字"
                )
            )
        )
        st.markdown(ui.passage_html(citation, ui.anchor_id(message_id, number)), unsafe_allow_html=True)
        if st.button(
            "查看原文", key=f"ctx-{message_id}-{citation.n}", icon=":material/article:", type="tertiary"
        ):
            show_context(citation)


def render_answer(message: dict, records: list[ReportRecord]) -> None:
    answer = message["answer"]
    numbers = ui.citation_numbers(answer.text, [c.n for c in answer.citations])
    note = ui.standalone_note(message["question"], answer.standalone_question)
    if note:
        st.caption(ui.escape_markdown(note))
    if answer.refused:
        st.info(ui.escape_markdown(answer.text), icon=":material/search_off:")
        if answer.scope_note:  # a place / year / filter the library cannot answer for: said, not guessed
            st.caption("问题所问的地区、年度或筛选范围内没有可用的报告，因此不用其他报告的数字作答。")
        else:
            st.caption("报告中没有找到能支持回答的内容，因此不作回答。")
    else:
        st.markdown(
            ui.answer_markdown(
                answer.text, message["id"], [c.n for c in answer.citations], answer.unverified_numbers
            ),
            unsafe_allow_html=True,
        )
        if answer.year_note:  # quoted from a report of another year than asked
            st.warning(ui.escape_markdown("⚠ " + answer.year_note))
        warning = ui.unverified_warning(answer.unverified_numbers)
        if warning:
            st.warning(ui.escape_markdown(warning))
        if answer.uncited:
            st.warning("⚠ 这个回答没有引用任何原文段落，其中的内容无法追溯到报告，请勿直接采用。")
        dropped = ui.dropped_note(answer.dropped_citations)
        if dropped:
            st.caption(ui.escape_markdown(dropped))
        if answer.dropped_claims:
            st.caption(f"已删去 {len(answer.dropped_claims)} 句引用了问题范围以外报告的内容。")
        for citation in sorted(answer.citations, key=lambda c: numbers[c.n]):
            render_citation(citation, message["id"], numbers[citation.n])
    meta = ui.answer_meta(answer)
    scope = ui.scope_note(answer.scope, records)
    st.caption(ui.escape_markdown(meta + (f" · {scope}" if scope else "")))
    with st.expander(ui.DETAILS_LABEL, key=f"details-{message['id']}"):
        st.caption("  \n".join(ui.escape_markdown(line) for line in ui.answer_details(answer, numbers)))


def retry_question(message_id: str) -> None:
    """重试 after a store error: drop the failed turn (the question and its error) and ask it again on this
    run; the rest of the conversation stays as it was."""
    messages = st.session_state.get("messages", [])
    at = next((i for i, m in enumerate(messages) if m.get("id") == message_id), None)
    if at is None:
        return
    question = messages[at].get("retry", "")
    drop_from = at - 1 if at and messages[at - 1].get("role") == "user" else at
    del messages[drop_from : at + 1]
    retry_store()
    st.session_state[ASK] = question


def render_message(message: dict, records: list[ReportRecord], last: bool = False) -> None:
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.markdown(ui.escape_markdown(message["content"]))
        elif message.get("error"):
            show_error(ui.UserMessage(message["error"], message.get("error_detail", "")))
            if last and message.get("retry"):  # a store error: the question can be asked again as it was
                st.button("重试", key=f"retry-{message['id']}", on_click=retry_question, args=(message["id"],),
                          icon=":material/refresh:")  # fmt: skip
        else:
            render_answer(message, records)


def answer_question(
    question: str,
    services: Services,
    engine: Engine,
    records: list[ReportRecord],
    report_ids: list[str],
    years: list[int],
) -> None:
    messages = st.session_state["messages"]
    history = ui.history_turns(messages)
    user_message = {"id": new_id(), "role": "user", "content": question}
    messages.append(user_message)
    render_message(user_message, records)
    with st.chat_message("assistant"):
        placeholder = st.empty()
        streamed: list[str] = []

        def on_token(token: str) -> None:
            streamed.append(token)
            placeholder.markdown(ui.escape_markdown("".join(streamed), emphasis=True) + " ▌")

        try:
            with st.spinner("正在检索并作答…"):
                library = Library(services.settings, engine, services=services)  # the notebook API, shared
                answer = library.ask(question, reports=report_ids or None, years=years or None,
                                     history=history, on_token=on_token)  # fmt: skip
        except QAError as ex:
            placeholder.empty()
            error = message_for(ex)
            message = {
                "id": new_id(),
                "role": "assistant",
                "content": "",
                "error": error.text,
                "error_detail": error.detail,
            }
            if isinstance(ex, StoreError) and ex.retryable:  # the store changed under us: worth a retry
                message["retry"] = question
            messages.append(message)
            show_error(error)
            if message.get("retry"):
                st.button("重试", key=f"retry-{message['id']}", on_click=retry_question, args=(message["id"],),
                          icon=":material/refresh:")  # fmt: skip
            return
        placeholder.empty()
        message = {
            "id": new_id(),
            "role": "assistant",
            "content": answer.text,
            "answer": answer,
            "question": question,
        }
        messages.append(message)
        render_answer(message, records)


def ask_example(question: str) -> None:
    st.session_state[ASK] = question


def start_screen(records: list[ReportRecord], disabled: bool) -> None:
    """What an empty conversation shows: the loaded reports and three questions to ask about them."""
    st.markdown(ui.escape_markdown(ui.library_overview(records)))
    st.caption("可以试试这些问题（点击即提问）：")
    with st.container(horizontal=True):
        for n, question in enumerate(ui.example_questions(records)):
            st.button(question, key=f"example-{n}", on_click=ask_example, args=(question,), disabled=disabled,
                      icon=":material/help:")  # fmt: skip
    st.caption("答案中的 [n] 可点击查看出处原文；可在侧栏限定报告或年度，追问会结合上文。")


def page_chat() -> None:
    services = get_services()
    engine, llm_error = engine_or_error()
    st.title("问答")
    st.html(ui.CITE_SCRIPT, unsafe_allow_javascript=True)
    show_flash()
    records = services.store.reports()
    if not records:
        st.warning("文档库中还没有报告。可以先导入示例报告，或到「文档库」页面上传自己的报告。")
        with st.container(horizontal=True):
            samples_button(services, "samples-chat")
            st.button("上传报告", icon=":material/upload:", on_click=go_to, args=("library",))
        return
    report_ids, years = chat_filters(records)
    if llm_error:
        show_error(llm_error)
    messages = st.session_state.setdefault("messages", [])
    example = st.session_state.pop(ASK, None)
    if not messages and not example:
        start_screen(records, disabled=llm_error is not None)
    for n, message in enumerate(messages, start=1):
        render_message(message, records, last=n == len(messages))
    question = st.chat_input("请输入问题，例如：某区办理行政复议案件多少件？", disabled=llm_error is not None)
    question = question or example
    if question and question.strip():
        answer_question(question.strip(), services, engine, records, report_ids, years)
