"""The 对比 page without Streamlit: table rows, the quote behind every cell, and the data of a bar chart.

Only what qa.compare.table.build_table found is shown: an indicator a report does not state is an empty cell and
has no bar (never a guess), and every value shown comes with the sentence it was quoted from.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from qa.compare.table import Cell, CompareTable, ReportColumn
from qa.genre.indicators import Indicator
from qa.genre.numbers import whole_at

EMPTY = ""  # what a cell shows when the report does not state the indicator


def subset(table: CompareTable, report_ids: Sequence[str]) -> CompareTable:
    """The table restricted to some reports (in table order); all of them when report_ids is empty."""
    if not report_ids:
        return table
    keep = set(report_ids)
    cells = {key: cell for key, cell in table.cells.items() if key[1] in keep}
    return CompareTable(table.indicators, tuple(r for r in table.reports if r.report_id in keep), cells)


def column_titles(columns: Sequence[ReportColumn]) -> dict[str, str]:
    """report id → a unique column heading, '淄川区（2024）'; the file name is added where two collide."""
    plain = {c.report_id: f"{c.label}（{c.year}）" if c.year else c.label for c in columns}
    seen = Counter(plain.values())
    return {
        report_id: title if seen[title] == 1 else f"{title} · {report_id}"
        for report_id, title in plain.items()
    }


def wide_rows(table: CompareTable) -> list[dict]:
    """One row per indicator, one column per report: the value as written in the report, or empty."""
    titles = column_titles(table.reports)
    rows = []
    for indicator in table.indicators:
        row = {"指标": indicator.label, "分组": indicator.group}
        for report in table.reports:
            cell = table.cell(indicator.key, report.report_id)
            row[titles[report.report_id]] = cell_text(cell) if cell else EMPTY
        rows.append(row)
    return rows


def cell_text(cell: Cell) -> str:
    """'9件' or, when the report states other values for the indicator, '9件（另有 83件）'."""
    return cell.raw + (f"（另有 {'、'.join(o.raw for o in cell.others)}）" if cell.others else "")


def stated(table: CompareTable) -> list[Indicator]:
    """The indicators at least one report states."""
    return [i for i in table.indicators if any(table.cell(i.key, r.report_id) for r in table.reports)]


def unstated(table: CompareTable) -> list[Indicator]:
    return [i for i in table.indicators if i not in stated(table)]


def indicator_heading(table: CompareTable, indicator: Indicator) -> str:
    """'行政复议 收案 · 4/5 份报告有数值' (expander label)."""
    n = sum(table.cell(indicator.key, r.report_id) is not None for r in table.reports)
    return f"{indicator.label} · {n}/{len(table.reports)} 份报告有数值"


def missing_reports(table: CompareTable, indicator_key: str) -> list[str]:
    """Column headings of the reports that do not state the indicator."""
    titles = column_titles(table.reports)
    return [titles[r.report_id] for r in table.reports if table.cell(indicator_key, r.report_id) is None]


def _e(text: object) -> str:
    return html.escape(str(text)).replace("\n", " ")


def _marked(quote: str, raw: str) -> str:
    """The quote, escaped, with the value marked."""
    at = whole_at(quote, raw)
    if at < 0:
        return _e(quote)
    return f'{_e(quote[:at])}<mark class="qa-quote">{_e(raw)}</mark>{_e(quote[at + len(raw) :])}'


def sources_html(table: CompareTable, indicator_key: str) -> str:
    """Each report's value with the sentence it is quoted from (the value marked), report and section;
    then the reports that do not state it. One line of HTML, everything escaped."""
    titles = column_titles(table.reports)
    items = []
    for report in table.reports:
        cell = table.cell(indicator_key, report.report_id)
        if cell is None:
            continue
        others = "".join(
            f'<br><span class="qa-where">该报告另有 {_e(o.raw)}（口径不同）：</span>“{_marked(o.quote, o.raw)}”'
            for o in cell.others
        )
        items.append(
            f"<li><strong>{_e(titles[report.report_id])}：{_e(cell.raw)}</strong><br>“{_marked(cell.quote, cell.raw)}”"
            f'<br><span class="qa-where">报告 {_e(report.report_id)} · 章节 {_e(cell.section or "（正文开头）")}'
            f"</span>{others}</li>"
        )
    missing = missing_reports(table, indicator_key)
    tail = f'<p class="qa-where">未提及（空白，不推测）：{_e("、".join(missing))}</p>' if missing else ""
    return f'<div class="qa-passage"><ul>{"".join(items)}</ul>{tail}</div>'


@dataclass(frozen=True)
class ChartData:
    rows: list[dict]  # {"报告": heading, "数值": value, "原文": raw}, only the reports that state it
    unit_label: str  # y-axis label: '数值（件）', '数值（件 / 宗）'
    units: tuple[str, ...]
    missing: list[str]  # headings of the reports without a value

    @property
    def mixed_units(self) -> bool:
        return len(self.units) > 1


def chart_data(table: CompareTable, indicator_key: str) -> ChartData:
    """The bars of one indicator: only the cells that have a value, in table order."""
    titles = column_titles(table.reports)
    rows, units = [], []
    for report in table.reports:
        cell = table.cell(indicator_key, report.report_id)
        if cell is None:
            continue
        rows.append({"报告": titles[report.report_id], "数值": cell.value, "原文": cell.raw})
        if cell.unit and cell.unit not in units:
            units.append(cell.unit)
    label = f"数值（{' / '.join(units)}）" if units else "数值"
    return ChartData(rows, label, tuple(units), missing_reports(table, indicator_key))
