"""reportqa in the browser: 问答 (answers with clickable citations) and 文档库 (upload, browse, delete).

Settings are read from the environment once; the embedder, the store and the LLM client are built once
per process (st.cache_resource). QAError becomes st.error here and nowhere else in the app; everything
that can be pure (labels, HTML, safe upload names) lives in qa/ui.py.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from qa import ui
from qa.answer import ask
from qa.chunking import sections
from qa.config import Settings
from qa.errors import InputError, QAError
from qa.ingest import collect_files, ingest_file
from qa.llm import ChatLLM
from qa.schemas import Citation, IngestResult, ReportRecord
from qa.wiring import Services, make_llm, open_services

SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "reports"
UPLOADS = "uploads"
GOTO = "goto_page"  # set to a page name (chat, library…) to switch pages on the next run
FILTER_KEYS = ("flt_reports", "flt_years")


# ---- wiring ----------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    return Settings.from_env(os.environ)


@st.cache_resource(show_spinner="正在打开文档库与向量模型…")
def get_services() -> Services:
    return open_services(get_settings())


@st.cache_resource(show_spinner=False)
def get_llm() -> ChatLLM | None:
    return make_llm(get_settings())


def llm_or_error() -> tuple[ChatLLM | None, str | None]:
    try:
        return get_llm(), None
    except QAError as ex:
        return None, str(ex)


# ---- ingesting -------------------------------------------------------------------------------------


def ingest_one(path: Path, services: Services, progress: Callable[[int], None] | None = None) -> IngestResult:
    """Ingest one file; a QAError becomes a failed result carrying its reason."""
    try:
        return ingest_file(path, services.store, services.embedder, services.settings, progress)
    except QAError as ex:
        reason = ex.reason if isinstance(ex, InputError) else str(ex)
        return IngestResult(str(path), path.name, "failed", reason)


def save_and_ingest(
    name: str, data: bytes, services: Services, progress: Callable[[int], None] | None = None
) -> IngestResult:
    """Store one uploaded file under <data_dir>/uploads with a safe name, then ingest it.

    Never raises for a bad upload: the result says why it failed. A failed upload leaves what was stored
    before untouched (the previous file of the same name is put back)."""
    try:
        safe_name = ui.safe_upload_name(name)
        ui.check_upload_size(len(data), services.settings.max_file_bytes)
    except InputError as ex:
        return IngestResult(name, None, "failed", ex.reason)
    folder = services.settings.data_dir / UPLOADS
    target = folder / safe_name
    backup = folder / ".previous" / safe_name
    had_previous = False
    try:
        backup.parent.mkdir(parents=True, exist_ok=True)
        had_previous = target.exists()
        if had_previous:
            os.replace(target, backup)
        target.write_bytes(data)
    except OSError as ex:
        if had_previous and backup.exists():
            os.replace(backup, target)
        return IngestResult(name, safe_name, "failed", f"无法保存上传的文件：{ex.strerror or ex}")
    result = ingest_one(target, services, progress)
    if result.status == "failed":
        target.unlink(missing_ok=True)
        if had_previous:
            os.replace(backup, target)
    elif had_previous:
        backup.unlink(missing_ok=True)
    return result


def import_samples(services: Services) -> list[IngestResult]:
    """Ingest the bundled sample reports with a progress bar; one result per file."""
    files, results = collect_files([SAMPLES_DIR])
    bar = st.progress(0.0, text="正在导入示例报告…")
    for i, path in enumerate(files):
        bar.progress(i / len(files), text=f"正在导入 {path.name}（{i + 1}/{len(files)}）")
        results.append(ingest_one(path, services))
    bar.progress(1.0, text="导入完成")
    return results


def go_to(page: str) -> None:
    """Switch to another page on the next run (a button callback cannot switch pages itself)."""
    st.session_state[GOTO] = page


def flash(kind: str, text: str) -> None:
    """A message shown once at the top of the next run (after a callback or st.rerun)."""
    st.session_state.setdefault("flash", []).append((kind, text))


def show_flash() -> None:
    for kind, text in st.session_state.pop("flash", []):
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(text)


def samples_button(services: Services, key: str) -> None:
    if st.button("导入示例报告", type="primary", key=key, icon=":material/download:"):
        results = import_samples(services)
        done = [ui.ingest_line(Path(r.path).name, r) for r in results if r.status != "failed"]
        if done:
            flash("success", "  \n".join(ui.escape_markdown(line) for line in done))
        for result in results:
            if result.status == "failed":
                flash("error", ui.escape_markdown(ui.ingest_line(Path(result.path).name, result)))
        st.rerun()


# ---- 问答 ------------------------------------------------------------------------------------------


def new_id() -> str:
    return uuid.uuid4().hex[:10]


def clear_chat() -> None:
    st.session_state["messages"] = []


def chat_filters(records: list[ReportRecord]) -> tuple[list[str], list[int]]:
    by_id = {r.report_id: r for r in records}
    years = sorted({r.meta.year for r in records if r.meta.year}, reverse=True)
    for key, options in (("flt_reports", list(by_id)), ("flt_years", years)):
        if key in st.session_state:  # a deleted report must not linger in the filter
            st.session_state[key] = [v for v in st.session_state[key] if v in options]
    with st.sidebar:
        st.subheader("检索范围")
        report_ids = st.multiselect(
            "报告",
            list(by_id),
            format_func=lambda report_id: ui.report_option(by_id.get(report_id), report_id),
            key="flt_reports",
            placeholder="全部报告",
        )
        chosen_years = st.multiselect("年度", years, key="flt_years", placeholder="全部年度")
        st.button("清空对话", on_click=clear_chat, icon=":material/delete_sweep:")
    return report_ids, chosen_years


@st.dialog("查看原文", width="large")
def show_context(citation: Citation) -> None:
    st.markdown(ui.escape_markdown(f"《{citation.title or citation.report_id}》 · {citation.section}"))
    try:
        text = get_services().store.report_text(citation.report_id)
    except InputError:
        st.warning("这份报告已从文档库删除，无法显示原文。")
        return
    html = ui.context_html(text, citation)
    if html is None:
        st.warning("这份报告已重新导入，原文已变化，找不到这段引文。")
    else:
        st.caption("浅蓝底为引用段落，黄色为支持答案的原句（报告清洗后的正文）。")
        st.markdown(html, unsafe_allow_html=True)


def render_citation(citation: Citation, message_id: str) -> None:
    with st.expander(ui.citation_label(citation), key=f"src-{message_id}-{citation.n}"):
        st.caption(
            ui.escape_markdown(
                f"报告：{citation.report_id} · 章节：{citation.section or '（正文开头）'} · "
                f"位置：第 {citation.start}–{citation.end} 字"
            )
        )
        st.markdown(ui.passage_html(citation, ui.anchor_id(message_id, citation.n)), unsafe_allow_html=True)
        if st.button(
            "查看原文", key=f"ctx-{message_id}-{citation.n}", icon=":material/article:", type="tertiary"
        ):
            show_context(citation)


def render_answer(message: dict, records: list[ReportRecord]) -> None:
    answer = message["answer"]
    note = ui.standalone_note(message["question"], answer.standalone_question)
    if note:
        st.caption(ui.escape_markdown(note))
    if answer.refused:
        st.info(ui.escape_markdown(answer.text), icon=":material/search_off:")
        st.caption("报告中没有找到能支持回答的内容，因此不作回答。")
    else:
        st.markdown(
            ui.answer_markdown(
                answer.text, message["id"], [c.n for c in answer.citations], answer.unverified_numbers
            ),
            unsafe_allow_html=True,
        )
        warning = ui.unverified_warning(answer.unverified_numbers)
        if warning:
            st.warning(ui.escape_markdown(warning))
        dropped = ui.dropped_note(answer.dropped_citations)
        if dropped:
            st.caption(ui.escape_markdown(dropped))
        for citation in answer.citations:
            render_citation(citation, message["id"])
    meta = ui.answer_meta(answer)
    scope = ui.scope_note(answer.scope, records)
    st.caption(ui.escape_markdown(meta + (f" · {scope}" if scope else "")))


def render_message(message: dict, records: list[ReportRecord]) -> None:
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.markdown(ui.escape_markdown(message["content"]))
        elif message.get("error"):
            st.error(message["error"])
        else:
            render_answer(message, records)


def answer_question(
    question: str,
    services: Services,
    llm: ChatLLM | None,
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
                answer = ask(
                    question,
                    services.retriever,
                    llm=llm,
                    report_ids=report_ids or None,
                    years=years or None,
                    history=history,
                    on_token=on_token,
                )
        except QAError as ex:
            placeholder.empty()
            st.error(str(ex))
            messages.append({"id": new_id(), "role": "assistant", "content": "", "error": str(ex)})
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


def page_chat() -> None:
    services = get_services()
    llm, llm_error = llm_or_error()
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
        st.error(llm_error)
    messages = st.session_state.setdefault("messages", [])
    if not messages:
        st.caption(
            f"文档库共 {len(records)} 份报告。提问后，答案中的 [n] 可点击查看出处原文；"
            "可在侧栏限定报告或年度，追问会结合上文。"
        )
    for message in messages:
        render_message(message, records)
    question = st.chat_input("请输入问题，例如：某区办理行政复议案件多少件？", disabled=llm_error is not None)
    if question and question.strip():
        answer_question(question.strip(), services, llm, records, report_ids, years)


# ---- 文档库 ----------------------------------------------------------------------------------------


def delete_report(report_id: str) -> None:
    services = get_services()
    try:
        record = services.store.get_report(report_id)
        removed = services.store.remove_report(report_id)
    except QAError as ex:
        flash("error", str(ex))
        return
    if not removed:
        flash("warning", f"报告 {report_id} 已不在文档库中。")
        return
    uploads = (services.settings.data_dir / UPLOADS).resolve()
    if record and record.source_path:  # an uploaded copy goes with it; files the user owns stay
        source = Path(record.source_path).resolve()
        if source.parent == uploads:
            source.unlink(missing_ok=True)
    st.session_state.pop(f"confirm-{report_id}", None)
    flash("success", f"已删除报告 {report_id}：问答中不会再引用它。")


def upload_section(services: Services) -> None:
    settings = services.settings
    with st.form("upload", clear_on_submit=True):
        files = st.file_uploader(
            "上传报告",
            type=ui.UPLOAD_TYPES,
            accept_multiple_files=True,
            # The browser refuses what is clearly too big; save_and_ingest checks the exact limit.
            max_upload_size=max(1, math.ceil(settings.max_file_mb)),
            help=f"支持 {' / '.join(ui.UPLOAD_TYPES)}；单个文件不超过 {settings.max_file_mb:g} MB。"
            "与已有报告同名的文件会更新该报告。",
        )
        submitted = st.form_submit_button("导入", type="primary", icon=":material/upload:")
    if not submitted:
        return
    if not files:
        st.warning("请先选择要上传的文件。")
        return
    bar = st.progress(0.0, text="正在导入…")
    done: list[str] = []
    for i, upload in enumerate(files):
        bar.progress(i / len(files), text=f"正在导入 {upload.name}（{i + 1}/{len(files)}）")
        embedded = [0]

        def progress(
            n: int, name: str = upload.name, done: list[int] = embedded, at: float = i / len(files)
        ) -> None:
            done[0] += n
            bar.progress(at, text=f"正在导入 {name}：已向量化 {done[0]} 个分块")

        result = save_and_ingest(upload.name, upload.getvalue(), services, progress)
        line = ui.escape_markdown(ui.ingest_line(upload.name, result))
        if result.status == "failed":
            st.error(line)
        else:
            done.append(line)
            st.session_state["lib_selected"] = result.report_id
    bar.progress(1.0, text="导入完成")
    if done:
        st.success("  \n".join(done))


def report_details(services: Services, record: ReportRecord) -> None:
    meta = record.meta
    left, right = st.columns([1, 2], gap="large")
    with left:
        facts = [
            ("标题", meta.title),
            ("发布单位", meta.issuer),
            ("发布网站", meta.publisher),
            ("地区", meta.region),
            ("年度", meta.year),
            ("发布日期", meta.publish_date),
            ("文号", meta.doc_number),
            ("索引号", meta.index_no),
            ("分块数", record.n_chunks),
            ("格式 / 编码", " / ".join(x for x in (record.format, record.encoding or "") if x)),
            ("来源文件", record.source_path),
            ("导入时间", ui.report_rows([record])[0]["导入时间"]),
        ]
        st.markdown(
            "  \n".join(f"**{k}**：{ui.escape_markdown(str(v))}" for k, v in facts if v not in (None, ""))
        )
        with st.container(border=True):
            st.markdown("**删除报告**")
            confirm = st.checkbox(
                f"确认删除 {record.report_id}（不可撤销）", key=f"confirm-{record.report_id}"
            )
            st.button(
                "删除",
                type="primary",
                icon=":material/delete:",
                disabled=not confirm,
                on_click=delete_report,
                args=(record.report_id,),
                key="delete-report",
            )
    with right:
        try:
            text = services.store.report_text(record.report_id)
        except QAError as ex:
            st.error(str(ex))
            return
        tree = sections(text)
        outline_tab, text_tab = st.tabs([f"章节结构（{len(tree)}）", f"清洗后正文（{len(text)} 字）"])
        with outline_tab:
            if tree:
                with st.container(height=520):
                    st.markdown(ui.outline_html(tree), unsafe_allow_html=True)
            else:
                st.caption("没有识别出章节标题。")
        with text_tab, st.container(height=520):
            st.markdown(ui.text_html(text), unsafe_allow_html=True)


def page_library() -> None:
    services = get_services()
    st.title("文档库")
    show_flash()
    upload_section(services)
    records = services.store.reports()
    if not records:
        st.warning("文档库中还没有报告：上传报告，或导入示例报告。")
        samples_button(services, "samples-library")
        return
    st.subheader(f"报告（{len(records)} 份）")
    st.dataframe(ui.report_rows(records), hide_index=True)
    by_id = {r.report_id: r for r in records}
    if st.session_state.get("lib_selected") not in by_id:
        st.session_state["lib_selected"] = records[0].report_id
    selected = st.selectbox(
        "查看报告",
        list(by_id),
        format_func=lambda report_id: ui.report_option(by_id.get(report_id), report_id),
        key="lib_selected",
    )
    report_details(services, by_id[selected])


# ---- pages not in this version -------------------------------------------------------------------


def page_summary() -> None:
    st.title("摘要")
    st.info("网页版的报告摘要功能尚未在此版本中提供。", icon=":material/construction:")
    st.caption("命令行可以生成结构化摘要：`qa summarize 报告目录 --out 输出目录`。")


def page_compare() -> None:
    st.title("对比")
    st.info("网页版的多报告对比功能尚未在此版本中提供。", icon=":material/construction:")
    st.caption("命令行可以生成指标对比表：`qa compare`。")


def page_eval() -> None:
    st.title("评测")
    st.info("网页版的评测功能尚未在此版本中提供。", icon=":material/construction:")
    st.caption("命令行可以运行评测：`qa eval --dataset 数据集.jsonl --docs 报告目录`。")


# ---- the app ---------------------------------------------------------------------------------------


def sidebar_status(services: Services, llm: ChatLLM | None, llm_error: str | None) -> None:
    """Engine in use and library size; drawn after the page so an upload or delete shows at once."""
    st.subheader("回答引擎")
    if llm_error:
        st.error(llm_error)
    else:
        # an HTML block, so the endpoint URL is not turned into a link
        st.markdown(ui.text_html(ui.engine_label(llm.label if llm else None)), unsafe_allow_html=True)
    n_reports = len(services.store.reports())
    st.caption(ui.escape_markdown(f"文档库：{services.store.location} · {n_reports} 份报告"))


def main() -> None:
    st.set_page_config(page_title="reportqa 报告问答", page_icon="📑", layout="wide")
    for key in FILTER_KEYS:  # keep widget values while another page is shown
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    pages = {
        "chat": st.Page(page_chat, title="问答", icon=":material/forum:", url_path="chat", default=True),
        "library": st.Page(page_library, title="文档库", icon=":material/library_books:", url_path="library"),
        "summary": st.Page(page_summary, title="摘要", icon=":material/summarize:", url_path="summary"),
        "compare": st.Page(page_compare, title="对比", icon=":material/compare_arrows:", url_path="compare"),
        "eval": st.Page(page_eval, title="评测", icon=":material/analytics:", url_path="eval"),
    }
    current = st.navigation(list(pages.values()))
    goto = st.session_state.pop(GOTO, None)
    if goto in pages and pages[goto].url_path != current.url_path:
        st.switch_page(pages[goto])
    st.html(ui.CSS)
    try:
        services = get_services()
    except QAError as ex:
        st.error(str(ex))
        st.stop()
    llm, llm_error = llm_or_error()
    status = st.sidebar.container()  # above the page's own sidebar widgets, filled after the page ran
    try:
        current.run()
    except QAError as ex:
        st.error(str(ex))
    with status:
        sidebar_status(services, llm, llm_error)


if __name__ == "__main__":  # streamlit run / AppTest; tests import the handlers without running it
    main()
