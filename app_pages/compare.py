"""对比: the catalogue's indicators across the library's reports, every value with the sentence it is quoted
from; an indicator a report does not state stays empty. CSV / Excel / Markdown downloads (the bytes
`qa compare --out` writes) and a bar chart."""

from __future__ import annotations

import streamlit as st

from app_pages import ui, ui_checkup, ui_compare
from app_pages.common import empty_library, get_services, reports_multiselect, show_flash
from qa.api import Library
from qa.compare.columns import compared_records
from qa.compare.table import CompareTable, to_csv, to_markdown, to_xlsx
from qa.core.office import CSV_MIME, XLSX_MIME
from qa.wiring import Services


@st.cache_data(show_spinner="正在从各报告中提取指标…", max_entries=8)
def library_table(location: str, signature: str) -> CompareTable:
    """The table over every report of the library; rebuilt only when a report is added, replaced or removed
    (the store's signature changes), not on every rerun of the page."""
    services = get_services()
    return Library(services.settings, services=services).compare()


def comparison_table(services: Services) -> CompareTable | None:
    records = services.store.reports()
    if not records:
        empty_library(services, "没有可以对比的内容", "samples-compare")
        return None
    compared = compared_records(records)
    if len(compared) < len(records):
        st.caption(f"对比表的指标目录针对法治政府建设报告；另有 {len(records) - len(compared)} 份其他类型的报告"
                   "（政府工作报告、统计公报等）未列入。")  # fmt: skip
    if not compared:
        st.info("文档库中没有法治政府建设报告，没有可以对比的指标。")
        return None
    chosen = reports_multiselect(compared, "参与对比的报告", "cmp_reports", "全部报告")
    table = library_table(services.store.location, services.store.signature(records))
    return ui_compare.subset(table, chosen)


def indicator_chart(table: CompareTable) -> None:
    st.subheader("图表", anchor=False)
    options = ui_compare.stated(table)
    if not options:
        st.info("所选报告都没有提到目录中的指标。")
        return
    labels = {i.key: i.label for i in options}
    if st.session_state.get("cmp_indicator") not in labels:
        st.session_state["cmp_indicator"] = options[0].key
    key = st.selectbox("指标", list(labels), format_func=labels.get, key="cmp_indicator")
    chart = ui_compare.chart_data(table, key)
    st.bar_chart(
        {"报告": [r["报告"] for r in chart.rows], chart.unit_label: [r["数值"] for r in chart.rows]},
        x="报告",
        y=chart.unit_label,
        x_label="",
        y_label=chart.unit_label,
        horizontal=True,  # region names stay readable
        sort=False,
        height=70 + 45 * len(chart.rows),
    )
    st.caption(
        ui.escape_markdown(
            f"{labels[key]}："
            + "；".join(f"{r['报告']} {r['原文']}" for r in chart.rows)
            + "（原文写法，出处见下）"
        )
    )
    if chart.missing:
        st.caption(ui.escape_markdown("没有数值（报告未提及，不作图）：" + "、".join(chart.missing)))
    if chart.mixed_units:
        st.warning(
            ui.escape_markdown(
                f"各报告的单位不同（{' / '.join(chart.units)}），图中按原文数值画出，比较时请留意。"
            )
        )


def page_compare() -> None:
    services = get_services()
    st.title("对比")
    show_flash()
    table = comparison_table(services)
    if table is None:
        return
    st.caption(
        "每个数值都摘自报告原文，出处（引文、报告、章节）见下方各指标；空白表示该报告没有提到这个指标（不推测）；"
        "“另有”表示同一报告对该指标还写了别的数值（口径不同），对比前请看出处。"
    )
    # a static table: every indicator shown, and a long cell (9件（另有 83件）) wraps instead of being cut
    st.table(ui.markdown_rows(ui_compare.wide_rows(table)), hide_index=True)
    with st.container(horizontal=True):
        st.download_button("下载 Excel", to_xlsx(table), file_name="compare.xlsx", mime=XLSX_MIME,
                           icon=":material/table_view:", on_click="ignore", key="cmp-dl-xlsx")  # fmt: skip
        st.download_button("下载 CSV", to_csv(table), file_name="compare.csv", mime=CSV_MIME,
                           icon=":material/table:", on_click="ignore", key="cmp-dl-csv")  # fmt: skip
        st.download_button("下载 Markdown", to_markdown(table), file_name="compare.md", mime="text/markdown",
                           icon=":material/description:", on_click="ignore", key="cmp-dl-md")  # fmt: skip
    checkup_columns(services, [r.report_id for r in table.reports])
    indicator_chart(table)
    st.subheader("出处", anchor=False)
    st.caption("展开一个指标，查看每个数值摘自哪份报告的哪一句（数值以黄色标出）、所在章节与段落编号。")
    for indicator in ui_compare.stated(table):
        with st.expander(ui.escape_markdown(ui_compare.indicator_heading(table, indicator))):
            st.markdown(ui_compare.sources_html(table, indicator.key), unsafe_allow_html=True)
    unstated = ui_compare.unstated(table)
    if unstated:
        st.caption(ui.escape_markdown("所选报告都没有提到：" + "、".join(i.label for i in unstated)))


def checkup_columns(services: Services, report_ids: list[str]) -> None:
    """报告体检 as a column set over the compared reports: the contents the regulation asks for, the deadline,
    figures per thousand characters (the passages behind each judgement: 摘要 → 报告体检)."""
    from app_pages.summary import library_checkups, regulation_basis

    st.subheader("报告体检", anchor=False)
    basis = regulation_basis(services)
    if basis is None:
        return
    records = [r for r in services.store.reports() if r.report_id in set(report_ids)]
    checkups = library_checkups(services, records, basis)
    st.caption(ui.escape_markdown(
        f"对照{basis.cited}：✓ 有专门部分　△ 正文提及、未单列　✗ 缺　？ 节选或无日期，无法判断。"
        "每项判断的原文出处见“摘要 → 报告体检”。"
    ))  # fmt: skip
    st.table(ui.markdown_rows(ui_checkup.table_rows(checkups)), hide_index=True)
