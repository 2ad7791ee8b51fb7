"""Summaries as Markdown (概况 / 主要举措 / 关键指标 / 存在的不足 / 下一步计划 / 来源). Pure. Like the Word and
Excel files (qa.summary.exports), it carries no chunk ids, hashes or template refs: those stay in the JSON record."""

from __future__ import annotations

from qa.summary.exports import engine_line, made_line
from qa.summary.summarize import Point, Summary, labels_of, summary_heading


def _cite(ids: list[str], refs: dict[str, int]) -> str:
    marks = []
    for chunk_id in ids:
        refs.setdefault(chunk_id, len(refs) + 1)
        marks.append(f"[^{refs[chunk_id]}]")
    return "".join(marks)


def _one_line(text: str) -> str:
    """Model output may carry newlines or pipes; a list item or table cell must stay one line."""
    return " ".join(str(text).split()).replace("|", "｜")


def _point_line(point: Point, refs: dict[str, int]) -> str:
    flag = "" if point.verified else " ⚠ 未核实"
    return f"- {_one_line(point.text)}{_cite(point.citations, refs)}{flag}"


def _figures_table(summary: Summary, refs: dict[str, int], quotes: dict[str, list[str]]) -> list[str]:
    """The 关键指标 table's lines; a figure's quote is kept for the 来源 list. A figure's change as the report
    states it (a bulletin's growth) gets a column of its own when any figure has one."""
    changes = any(f.change for f in summary.key_figures)
    lines = (["| 指标 | 数值 | 增减（原文） | 核实 |", "| --- | --- | --- | --- |"] if changes
             else ["| 指标 | 数值 | 核实 |", "| --- | --- | --- |"])  # fmt: skip
    for figure in summary.key_figures:
        mark = "✓" if figure.verified else "⚠ 未核实"
        quotes.setdefault(figure.chunk_id, [])
        if figure.quote not in quotes[figure.chunk_id]:
            quotes[figure.chunk_id].append(figure.quote)
        change = f" {_one_line(figure.change)} |" if changes else ""
        value = f"{_one_line(figure.raw)}{_cite([figure.chunk_id], refs)}"
        lines.append(f"| {_one_line(figure.indicator)} | {value} |{change} {mark} |")
    return lines


def summary_markdown(summary: Summary, passages: dict[str, str] | None = None) -> str:
    """passages: chunk id → section path (where each source sits in the report, for the 来源 list); optional."""
    refs: dict[str, int] = {}
    meta = [
        ("发布单位", summary.issuer), ("地区", summary.region), ("年度", summary.year),
        ("发布日期", summary.publish_date), ("文号", summary.doc_number),
    ]  # fmt: skip
    engine = engine_line(summary.engine, summary.model)
    names = labels_of(summary)
    lines = [f"# {summary_heading(summary)}", ""]
    lines += [f"- {label}：{value}" for label, value in meta if value]
    lines += [f"- 生成方式：{engine}", ""]
    if summary.unverified:
        lines += [f"> ⚠ {summary.unverified} 处内容未能在原文中核实，已标注“未核实”。", ""]
    # a section the report does not have is left out, not shown empty
    if summary.overview.strip():
        lines += [
            f"## {names.overview}",
            "",
            _one_line(summary.overview) + _cite(summary.overview_citations, refs),
            "",
        ]
    if any(area.points for area in summary.measures):
        lines += [f"## {names.measures}", ""]
    for area in summary.measures:
        if area.points:
            lines += [f"### {_one_line(area.area)}", "", *(_point_line(p, refs) for p in area.points), ""]
    quotes: dict[str, list[str]] = {}  # chunk id → the sentences figures are quoted from (shown under 来源)
    if summary.key_figures:
        lines += [f"## {names.figures}", "", *_figures_table(summary, refs, quotes), ""]
    for heading, points in ((names.problems, summary.problems), (names.plans, summary.plans)):
        if points:
            lines += [f"## {heading}", "", *(_point_line(p, refs) for p in points), ""]
    if refs:
        lines += ["## 来源", ""]
    for chunk_id, n in refs.items():
        where = (passages or {}).get(chunk_id, "")
        quoted = "".join(f"“{_one_line(q)}”" for q in quotes.get(chunk_id, []))
        lines.append(f"[^{n}]: {where or '正文开头'}" + (f" · 原文：{quoted}" if quoted else ""))
    lines += ["", f"*{made_line(summary)}*", ""]
    return "\n".join(lines)
