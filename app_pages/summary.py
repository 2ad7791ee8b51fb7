"""摘要: one report's structured summary as a card (every figure with its quote and a ✓/⚠ mark), cached under
<QA_DATA_DIR>/summaries/ with `qa summarize`'s reuse rules; and summaries of a selection in one go, as a zip.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import streamlit as st

from app_pages import auth, ui, ui_checkup, ui_summary
from app_pages.common import (
    empty_library,
    engine_choice,
    error_detail,
    get_services,
    report_picker,
    reports_multiselect,
    show_error,
    show_flash,
)
from qa.core.errors import QAError
from qa.core.office import CSV_MIME, DOCX_MIME, XLSX_MIME
from qa.core.schemas import ReportRecord
from qa.engines.base import Engine
from qa.genre import regulation
from qa.genre.regulation_text import Basis
from qa.summary.batch import BatchItem, Job, run_jobs, view_from_store
from qa.summary.summarize import Summary, summary_heading
from qa.wiring import Services

FORCE = "sum_force"  # report id to summarize again on this run (set by the 重新生成 button)
BATCH_RESULT = "sum_batch_result"
LLM_CONCURRENCY = 4  # reports (so LLM calls) in flight in a batch, as `qa summarize` defaults to
ZIP_LABEL = "下载全部（zip：Word、JSON、Markdown 及索引 CSV / Excel）"


def regenerate(report_id: str) -> None:
    st.session_state[FORCE] = report_id


def single_report(services: Services, records: list[ReportRecord], engine: Engine, out_dir: Path) -> None:
    report_id = report_picker(records, "报告", "sum_report")
    view = view_from_store(services.store, report_id)
    force = st.session_state.pop(FORCE, None) == report_id
    summary = None if force else ui_summary.cached_summary(view, out_dir, engine)
    status = "已从缓存读取（报告、模板与引擎均未变化）"
    if summary is None:
        if engine.model is not None and not force:  # the whole report goes to a model: say so first
            st.info(
                ui.escape_markdown(
                    f"这份报告还没有 {engine.model} 生成的摘要。生成时会把整份报告分段发给模型（不是只取检索片段），"
                    "会产生 token 费用。"
                ),
                icon=":material/info:",
            )
            if not auth.can("summarize"):
                st.caption("生成 LLM 摘要需要编辑权限（会产生费用）；可以切换到离线引擎查看摘要。")
                return
            if not st.button("生成摘要", type="primary", icon=":material/summarize:", key="sum-generate"):
                return
        started = time.perf_counter()
        try:
            with st.spinner(
                ui.escape_markdown(f"正在生成《{view.meta.title or report_id}》的摘要（整份报告）…")
            ):
                summary = ui_summary.make_summary(view, out_dir, engine)
        except QAError as ex:  # shown in this tab, like a failed answer in 问答: the batch tab stays usable
            show_error(ex)
            return
        status = f"刚刚生成，用时 {time.perf_counter() - started:.1f} 秒，已缓存"
    render_summary(
        summary, view_sections={c.id: c.section for c in view.chunks}, status=status, out_dir=out_dir
    )


def render_summary(summary: Summary, view_sections: dict[str, str], status: str, out_dir: Path) -> None:
    json_text, md_text, docx_data = ui_summary.summary_files(out_dir, summary.report_id)
    stem = Path(summary.report_id).stem
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(ui.escape_markdown(status))
        st.download_button("下载 Word", docx_data, file_name=f"{stem}.docx", mime=DOCX_MIME,
                           icon=":material/article:", on_click="ignore", key="sum-dl-docx")  # fmt: skip
        st.download_button("下载 JSON", json_text, file_name=f"{stem}.json", mime="application/json",
                           icon=":material/data_object:", on_click="ignore", key="sum-dl-json")  # fmt: skip
        st.download_button("下载 Markdown", md_text, file_name=f"{stem}.md", mime="text/markdown",
                           icon=":material/description:", on_click="ignore", key="sum-dl-md")  # fmt: skip
        st.button("重新生成", icon=":material/refresh:", on_click=regenerate, args=(summary.report_id,),
                  key="sum-regenerate", type="tertiary", disabled=not auth.can("summarize"))  # fmt: skip
    with st.container(border=True):
        st.subheader(ui.escape_markdown(summary_heading(summary)), anchor=False)
        st.markdown(ui_summary.summary_header_html(summary), unsafe_allow_html=True)
        warning = ui_summary.unverified_text(summary)
        if warning:
            st.warning(warning)
            with st.expander("未核实的内容"):
                st.markdown("  \n".join(ui.escape_markdown(line) for line in ui_summary.check_lines(summary)))
        st.markdown(ui_summary.summary_card_html(summary, view_sections), unsafe_allow_html=True)
        with st.expander(ui.DETAILS_LABEL, key="sum-details"):  # template / prompt refs, hashes: not on view
            st.caption("  \n".join(ui.escape_markdown(line) for line in ui.summary_details(summary)))


def batch(services: Services, records: list[ReportRecord], engine: Engine, out_dir: Path) -> None:
    chosen = reports_multiselect(records, "选择报告", "sum_batch", "选择要生成摘要的报告")
    force = st.checkbox("忽略缓存，全部重新生成", key="sum_batch_force")
    st.caption("已缓存且报告、模板与引擎都未变化的摘要会直接沿用；单份报告失败不会中断其余报告。")
    if st.button(
        "批量生成", type="primary", icon=":material/playlist_play:", disabled=not chosen, key="sum-batch-run"
    ):
        items = run_batch(services, chosen, engine, out_dir, force)
        done = [i.report_id for i in items if i.status != "failed" and i.report_id]
        st.session_state[BATCH_RESULT] = {
            "items": [asdict(i) for i in items],
            "zip": ui_summary.summaries_zip(out_dir, done) if done else None,
        }
    result = st.session_state.get(BATCH_RESULT)
    if not result:
        return
    items = [BatchItem(**i) for i in result["items"]]
    counts = ui_summary.batch_counts(items)
    fatal = next((i for i in items if i.fatal), None)
    if fatal is not None:
        reason = ui.row_message(fatal.reason, fatal.code, fatal.fields)
        st.error(
            f"批量生成已停止：{ui.escape_markdown(reason.text)} 请检查模型设置后重试（已生成的摘要会保留）。"
        )
        if reason.detail:
            error_detail(reason.detail)
    (st.warning if any(i.status == "failed" for i in items) else st.success)(f"批量生成完成：{counts}")
    st.dataframe(ui_summary.batch_rows(items), hide_index=True)
    if result["zip"]:
        st.download_button(ZIP_LABEL, result["zip"], file_name="summaries.zip",
                           mime="application/zip", icon=":material/folder_zip:", on_click="ignore",
                           key="sum-dl-zip")  # fmt: skip


def run_batch(
    services: Services, report_ids: list[str], engine: Engine, out_dir: Path, force: bool
) -> list[BatchItem]:
    """Summarize the reports with qa.summary.batch's runner (as `qa summarize`): a progress bar, several reports at
    a time with an LLM, stopped on a configuration error. Views are read from the store here, on the
    script thread; the workers only call the model."""
    bar = st.progress(0.0, text=f"正在生成摘要（0/{len(report_ids)}）…")
    done: list[BatchItem] = []

    def tick(item: BatchItem) -> None:
        done.append(item)
        label = ui_summary.STATUS_LABELS.get(item.status, item.status)
        text = f"{label}：{item.report_id or item.path}（{len(done)}/{len(report_ids)}）"
        bar.progress(len(done) / len(report_ids), text=ui.escape_markdown(text))

    jobs = [Job(report_id, ui_summary.preloaded(lambda r=report_id: view_from_store(services.store, r)))
            for report_id in report_ids]  # fmt: skip
    items = run_jobs(jobs, out_dir, engine, force=force, concurrency=LLM_CONCURRENCY if engine.model else 1,
                     on_done=tick)  # fmt: skip
    order = {report_id: n for n, report_id in enumerate(report_ids)}
    items.sort(key=lambda i: order.get(i.path, 0))
    bar.progress(1.0, text=f"完成：{ui_summary.batch_counts(items)}")
    return items


def page_summary() -> None:
    services = get_services()
    st.title("摘要")
    st.html(ui_summary.CSS)
    show_flash()
    records = services.store.reports()
    if not records:
        empty_library(services, "没有可以摘要的内容", "samples-summary")
        return
    engine = engine_choice("sum_engine", "摘要引擎")
    out_dir = ui_summary.summary_dir(services.settings.data_dir, engine)
    one, many, check = st.tabs(["单份报告", "批量生成", "报告体检"])
    with one:
        single_report(services, records, engine, out_dir)
    with many:
        if auth.can("summarize"):
            batch(services, records, engine, out_dir)
        else:
            st.caption("批量生成摘要需要编辑权限。")
    with check:
        checkup_tab(services, records)


def checkup_tab(services: Services, records: list[ReportRecord]) -> None:
    """报告体检 of one report: the contents the regulation asks for, each with its passage, the deadline and
    how concrete it is; the Markdown and the table across the library's 法治 reports to download."""
    from qa.summary.checkup import check_report
    from qa.summary.checkup_docs import checkup_markdown, table_bytes

    basis = regulation_basis(services)
    if basis is None:
        return
    st.caption(ui.escape_markdown(
        f"对照{basis.cited}对法治政府建设年度报告的要求：五项内容是否齐全（每项附报告原文出处）、"
        f"是否在规定时限前公开（{basis.rule}）、各部分有多少具体数字。{basis.note}。"
        + ("" if basis.contents_article else f"{regulation.CITE_APP}。")
    ))  # fmt: skip
    report_id = report_picker(records, "报告", "chk_report")
    view = view_from_store(services.store, report_id)
    checkup = check_report(view, basis)
    st.html(ui_checkup.CSS)
    if checkup.note and checkup.applicable:
        st.warning(ui.escape_markdown(checkup.note + "。"))
    st.markdown(ui_checkup.checkup_html(checkup, view.chunks), unsafe_allow_html=True)
    checkups = library_checkups(services, records, basis)
    csv_data, xlsx_data = table_bytes(checkups)
    with st.container(horizontal=True):
        if checkup.applicable:  # another kind of report has no check-up to hand on
            st.download_button("下载本报告体检（Markdown）", checkup_markdown(checkup),
                               file_name=f"{Path(report_id).stem}.check.md", mime="text/markdown",
                               icon=":material/description:", on_click="ignore", key="chk-dl-md")  # fmt: skip
        st.download_button(f"下载全部 {len(checkups)} 份的体检表（Excel）", xlsx_data, file_name="check.xlsx",
                           mime=XLSX_MIME, icon=":material/table_view:", on_click="ignore", key="chk-dl-xlsx")  # fmt: skip
        st.download_button("下载体检表（CSV）", csv_data, file_name="check.csv", mime=CSV_MIME,
                           icon=":material/table:", on_click="ignore", key="chk-dl-csv")  # fmt: skip


def regulation_basis(services: Services) -> Basis | None:
    """What check-ups cite: the regulation's articles read from QA_REGULATION_TEXT when it is set, else its
    name. A file that is not the regulation's text is said here, in Chinese (None: nothing to check by)."""
    settings = services.settings
    path = settings.regulation_text
    try:  # read once per version of the file, not on every rerun of the page (a PDF takes a while to parse)
        stat = path.stat() if path is not None and path.is_file() else None
        version = (stat.st_mtime_ns, stat.st_size) if stat else None
        return _read_basis(str(path) if path else "", version, settings.max_file_bytes)
    except QAError as ex:
        show_error(ex)
        return None


@st.cache_data(show_spinner="正在读取规定文本…", max_entries=4)
def _read_basis(path: str, version: tuple[int, int] | None, max_bytes: int) -> Basis:
    from qa.ingest.regulation import read_regulation

    return read_regulation(Path(path) if path else None, max_bytes)


def library_checkups(services: Services, records: list[ReportRecord], basis: Basis) -> list:
    """The check-ups of the 法治 reports among records (the table 对比 shows as a column set); read again only
    when a report is added, replaced or removed, or the regulation's text changes."""
    from qa.compare.columns import compared_records

    ids = tuple(r.report_id for r in compared_records(records))
    return _checkups(services.store.location, services.store.signature(services.store.reports()), ids, basis)


@st.cache_data(show_spinner="正在体检各报告…", max_entries=8)
def _checkups(location: str, signature: str, report_ids: tuple[str, ...], basis: Basis) -> list:
    from qa.summary.checkup import check_report

    services = get_services()
    return [check_report(view_from_store(services.store, report_id), basis) for report_id in report_ids]
