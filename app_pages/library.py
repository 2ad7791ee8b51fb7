"""文档库: upload reports (saved under a safe name, then ingested), browse one (metadata, section tree,
cleaned text; versions, hashes and paths in 详细信息), delete one."""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from app_pages import auth, ui
from app_pages.common import (
    UPLOADS,
    flash,
    get_services,
    report_picker,
    samples_button,
    save_and_ingest,
    show_error,
    show_flash,
    show_import_result,
)
from app_pages.ui_summary import cached_paths
from qa.api import Library
from qa.core.errors import InputError, QAError
from qa.core.schemas import ReportRecord
from qa.genre.kinds import kind_label
from qa.ingest.chunking import sections
from qa.wiring import Services


def delete_report(report_id: str) -> None:
    if not auth.can("remove"):  # the button is drawn for editors only; the action checks again
        flash("error", "删除报告需要编辑权限。")
        return
    services = get_services()
    try:
        record = services.store.get_report(report_id)
        removed = Library(services.settings, services=services).remove(report_id)
    except QAError as ex:
        error = ui.error_message(ex)
        flash("error", ui.escape_markdown(error.text), error.detail)
        return
    if not removed:
        flash("warning", f"报告 {report_id} 已不在文档库中。")
        return
    for path in cached_paths(services.settings.data_dir, report_id):  # its cached summaries
        path.unlink(missing_ok=True)
    uploads = (services.settings.data_dir / UPLOADS).resolve()
    if record and record.source_path:  # an uploaded copy goes with it; files the user owns stay
        source = Path(record.source_path).resolve()
        if source.parent == uploads:
            source.unlink(missing_ok=True)
    st.session_state.pop(f"confirm-{report_id}", None)
    auth.audit(services.settings, "remove", report_id)
    flash("success", f"已删除报告 {report_id}：问答中不会再引用它。")


def upload_section(services: Services) -> None:
    settings = services.settings
    if not auth.can("upload"):
        st.caption("当前账号为只读（读者）：可以查看报告，上传和删除需要编辑权限。")
        return
    with st.form("upload", clear_on_submit=True):
        files = st.file_uploader(
            "上传报告",
            type=ui.UPLOAD_TYPES,
            accept_multiple_files=True,
            # The browser refuses what is clearly too big; save_and_ingest checks the exact limit.
            max_upload_size=max(1, math.ceil(settings.max_file_mb)),
            help=f"支持 {' / '.join(ui.UPLOAD_TYPES)}；单个文件不超过 {settings.max_file_mb:g} MB。"
            "与已有报告同名的文件，只有勾选“允许替换”时才会替换该报告。",
        )
        replace = st.checkbox(
            "允许替换同名的已有报告", key="lib_replace", help="不勾选时，同名文件不会导入。"
        )
        submitted = st.form_submit_button("导入", type="primary", icon=":material/upload:")
    if not submitted:
        return
    if not files:
        st.warning("请先选择要上传的文件。")
        return
    known = {r.report_id for r in services.store.reports()}
    replacing = [u.name for u in files if _stored_name(u.name) in known]
    if replacing and not replace:
        st.warning("以下文件与文档库中已有报告同名，没有导入（导入会替换原报告）：" + "、".join(replacing)
                   + "。如确需替换，请勾选“允许替换同名的已有报告”后重新上传。")  # fmt: skip
        files = [u for u in files if u.name not in replacing]
        if not files:
            return
    bar = st.progress(0.0, text="正在导入…")
    results = []
    for i, upload in enumerate(files):
        bar.progress(i / len(files), text=f"正在导入 {upload.name}（{i + 1}/{len(files)}）")
        embedded = [0]

        def progress(
            n: int, name: str = upload.name, done: list[int] = embedded, at: float = i / len(files)
        ) -> None:
            done[0] += n
            bar.progress(at, text=f"正在导入 {name}：已向量化 {done[0]} 个分块")

        result = save_and_ingest(upload.name, upload.getvalue(), services, progress)
        results.append(result)
        if result.status != "failed":
            action = "replace" if _stored_name(upload.name) in known else "upload"
            auth.audit(settings, action, result.report_id or upload.name, result.status)
        if result.status != "failed":
            st.session_state["lib_selected"] = result.report_id
    bar.empty()
    show_import_result(results, [upload.name for upload in files])


def _stored_name(name: str) -> str | None:
    """The report id an upload of this file name is stored under (None for a name that is refused)."""
    try:
        return ui.safe_upload_name(name)
    except InputError:
        return None


def report_details(services: Services, record: ReportRecord) -> None:
    meta = record.meta
    left, right = st.columns([1, 2], gap="large")
    with left:
        facts = [
            ("标题", meta.title),
            ("类型", kind_label(meta.kind, meta.issuer_kind)),
            ("发布单位", meta.issuer),
            ("发布网站", meta.publisher),
            ("地区", meta.region),
            ("年度", meta.year),
            ("发布日期", meta.publish_date),
            ("文号", meta.doc_number),
            ("索引号", meta.index_no),
            ("导入时间", ui.local_time(record.ingested_at)),
        ]
        st.markdown(
            "  \n".join(f"**{k}**：{ui.escape_markdown(str(v))}" for k, v in facts if v not in (None, ""))
        )
        if auth.can("settings"):  # versions, hashes and the server path are for admins
            with st.expander(ui.DETAILS_LABEL, key="lib-details"):
                st.caption("  \n".join(ui.escape_markdown(line) for line in ui.report_details(record)))
        if auth.can("remove"):
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
            show_error(ex)
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
    # a static table: long titles wrap instead of being cut (a data grid clips them at a column width)
    st.table(ui.markdown_rows(ui.report_rows(records)), hide_index=True)
    selected = report_picker(records, "查看报告", "lib_selected")
    report_details(services, next(r for r in records if r.report_id == selected))
