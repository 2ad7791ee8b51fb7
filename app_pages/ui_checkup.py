"""报告体检 in the app without Streamlit: the rows of the across-reports table (the 对比 page's column set, the
same columns as `qa check`'s check.xlsx) and one report's check-up as HTML, every judgement with the
passage it rests on (the quote marked inside its paragraph) or why it could not be made."""

from __future__ import annotations

import html
from collections.abc import Sequence

from qa.core.schemas import Chunk
from qa.genre import regulation
from qa.summary.checkup import Checkup, Finding
from qa.summary.checkup_docs import TABLE_COLUMNS, table_row, verdict

# plain signs every CJK font has (emoji are boxes where no emoji font is installed)
MARKS = {"有": "✓", "有（正文提及，未单列）": "△", "缺": "✗", "无法判断": "？", "未写（可选）": "—"}
TIMING_MARKS = {"按时": "✓", "逾期": "✗", "无法判断": "？"}
# the columns of the across-reports table the app shows (the file keeps them all)
SHOWN = (
    "报告",
    "年度",
    "是否按时公开",
    *(c.name for c in regulation.CONTENTS if c.required),
    "缺少的内容",
    "每千字数字",
)

CSS = """<style>
.qa-check li { margin-bottom: .5rem; }
.qa-check .qa-where { color: #666; font-size: .85rem; }
.qa-check mark { background: #fff3b0; }
</style>"""


def table_rows(checkups: Sequence[Checkup]) -> list[dict]:
    """One row per report, the check-up's columns with a mark before each judgement."""
    rows = []
    for checkup in checkups:
        row = dict(zip(TABLE_COLUMNS, table_row(checkup), strict=True))
        for name in (c.name for c in regulation.CONTENTS):
            row[name] = f"{MARKS.get(row[name], '')} {row[name]}".strip()
        row["是否按时公开"] = f"{TIMING_MARKS.get(row['是否按时公开'], '')} {row['是否按时公开']}".strip()
        row["年度"] = str(row["年度"] or "")  # text, as written: a table shows a number as 2,024 or 19.8000
        row["每千字数字"] = "" if row["每千字数字"] is None else str(row["每千字数字"])
        rows.append({key: row[key] if row[key] is not None else "" for key in SHOWN})
    return rows


def _e(text: object) -> str:
    return html.escape(str(text)).replace("\n", " ")


def _passage(finding: Finding, chunks: dict[str, Chunk]) -> str:
    """The paragraph the evidence sits in, the quote marked; the quote alone when the paragraph is not known."""
    evidence = finding.evidence
    if evidence is None:
        return ""
    chunk = chunks.get(evidence.chunk_id)
    quote = evidence.quote.rstrip("…")
    if chunk is None or quote not in chunk.text:
        return f"“{_e(evidence.quote)}”"
    at = chunk.text.find(quote)
    start, end = max(0, at - 60), at + len(quote) + 120
    before, after = chunk.text[start:at], chunk.text[at + len(quote) : end]
    # an ellipsis only where the passage goes on (never after the text's own ……, nor before its start)
    lead = "…" if start > 0 else ""
    tail = "…" if end < len(chunk.text) and not (quote + after).rstrip().endswith("…") else ""
    return f"{lead}{_e(before)}<mark>{_e(quote)}</mark>{_e(after)}{tail}"


def _finding_html(finding: Finding, chunks: dict[str, Chunk]) -> str:
    mark = MARKS.get(finding.status, "")
    head = f"<strong>{mark} {_e(finding.asks)}：{_e(finding.status)}</strong>"
    if finding.evidence is None:
        return f'<li>{head}<br><span class="qa-where">{_e(finding.note)}</span></li>'
    where = "标题" if finding.evidence.by == "标题" else "正文"
    section = f" · 所在部分 {_e(finding.evidence.section)}" if finding.evidence.section else ""
    note = f"<br>⚠ {_e(finding.note)}" if finding.note else ""
    return (
        f'<li>{head}<br>{_passage(finding, chunks)}<br><span class="qa-where">依据：报告{where}{section} · '
        f"本部分 {finding.figures} 个数字</span>{note}</li>"
    )


def checkup_html(checkup: Checkup, chunks: Sequence[Chunk]) -> str:
    """One report's check-up: the contents with their passages, the deadline, how concrete it is."""
    if not checkup.applicable:
        return f'<div class="qa-check"><p>{_e(checkup.note)}。</p></div>'
    by_id = {c.id: c for c in chunks}
    items = "".join(_finding_html(f, by_id) for f in checkup.findings)
    said = _e(verdict(checkup))
    timing = checkup.timeliness
    timing_html = ""
    if timing is not None:
        due = f"{timing.due}（含当天）" if timing.due else "无法确定"
        timing_html = (
            f"<p><strong>{TIMING_MARKS[timing.status]} 是否按时公开：{_e(timing.status)}</strong>"
            f"（时限：{_e(due)}，{_e(checkup.basis.rule)}）。{_e(timing.note)}。</p>"
        )
    concrete = f"<p>具体程度：全文 {checkup.chars} 字，{checkup.figures} 个数字，每千字 {checkup.per_thousand} 个。</p>"
    return f'<div class="qa-check"><p>{said}</p><ul>{items}</ul>{timing_html}{concrete}</div>'
