"""reportqa in the browser, the script app.py serves: 问答, 文档库, 摘要, 对比 and 评测 (the pages live in
app_pages/).

Settings are read from the environment once; the embedder, the store and the LLM client are built once
per process (st.cache_resource, app_pages/common.py). A QAError raised while a page runs becomes an error
message here (common.show_error: in Chinese, the original in a 详细信息 expander); everything that can be pure
(labels, HTML, table rows, chart data, the Chinese messages) lives in qa/ui*.py. Streamlit's own widget text
(the uploader's "Upload", the dropdowns' "Select all") is put into Chinese in the browser by ui.WIDGET_SCRIPT.
"""

from __future__ import annotations

import streamlit as st

from app_pages import auth, ui
from app_pages.chat import page_chat
from app_pages.common import GOTO, base_settings, engine_or_error, get_services, keep_widget_state, show_error
from app_pages.compare import page_compare
from app_pages.evals import page_eval
from app_pages.library import page_library
from app_pages.summary import page_summary
from qa.core.errors import QAError
from qa.core.redact import redact
from qa.engines.base import Engine
from qa.wiring import Services


def sidebar_status(services: Services, engine: Engine, llm_error: ui.UserMessage | None) -> None:
    """Engine in use and library size; drawn after the page so an upload or delete shows at once."""
    st.subheader("回答引擎")
    if llm_error:
        show_error(llm_error)
    else:
        # an HTML block, so the endpoint URL is not turned into a link
        st.markdown(ui.text_html(ui.engine_label(engine.label)), unsafe_allow_html=True)
    try:
        records = services.store.reports()
    except QAError:  # the page above already said what failed, with 重试
        st.caption("文档库暂时无法读取。")
        return
    # where the store lives is for admins; everyone else sees how many reports it holds
    where = f"文档库：{redact(services.store.location)} · " if auth.can("settings") else "文档库："
    st.caption(ui.escape_markdown(f"{where}{len(records)} 份报告"))
    vectors = ui.vector_status(records)
    if vectors:  # a batch ingest's background pass is still embedding: keyword search works meanwhile
        st.caption(vectors)


def main() -> None:
    st.set_page_config(page_title="reportqa 报告问答", page_icon="📑", layout="wide")
    keep_widget_state()
    pages = {
        "chat": st.Page(page_chat, title="问答", icon=":material/forum:", url_path="chat", default=True),
        "library": st.Page(page_library, title="文档库", icon=":material/library_books:", url_path="library"),
        "summary": st.Page(page_summary, title="摘要", icon=":material/summarize:", url_path="summary"),
        "compare": st.Page(page_compare, title="对比", icon=":material/compare_arrows:", url_path="compare"),
        "eval": st.Page(page_eval, title="评测", icon=":material/analytics:", url_path="eval"),
    }
    st.html(ui.CSS)
    st.html(ui.WIDGET_SCRIPT, unsafe_allow_javascript=True)
    auth.browser_steps()  # a sign-in's cookie to set, or a sign-out's to clear
    try:
        # the installation's users and sign-ins, whatever the workspace; the sign-in page and st.stop() when needed
        # hidden: no menu beside the sign-in form, and the page a typed URL names is kept for after sign-in
        user = auth.gate(base_settings(), lambda: st.navigation(list(pages.values()), position="hidden"))
    except QAError as ex:
        show_error(ex)
        st.stop()
    auth.workspace_picker(user)  # before the store is opened: each workspace has its own
    if not auth.can("eval"):  # admins only: an eval reads datasets and spends the LLM key
        # not in the menu; its URL still reaches the page, which says it is for admins and shows nothing else
        pages["eval"] = st.Page(page_eval, title="评测", url_path="eval", visibility="hidden")
    current = st.navigation(list(pages.values()))
    goto = st.session_state.pop(GOTO, None)
    if goto in pages and pages[goto].url_path != current.url_path:
        st.switch_page(pages[goto])
    try:
        services = get_services()
    except QAError as ex:
        show_error(ex)
        st.stop()
    engine, llm_error = engine_or_error()
    status = st.sidebar.container()  # above the page's own sidebar widgets, filled after the page ran
    try:
        current.run()
    except QAError as ex:
        show_error(ex)
    with status:
        sidebar_status(services, engine, llm_error)
        auth.sidebar(user)


if __name__ == "__main__":  # streamlit run / AppTest
    main()
