"""报告体检 as documents people hand on: one report's check-up in Markdown, and one table across reports
(CSV with BOM and Excel, the same rows). Chinese labels only; the chunk ids stay in the JSON record
(Checkup.to_dict). Pure: bytes and text out, the CLI and the app write or hand them out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qa.core.office import csv_bytes, xlsx_bytes
from qa.genre import regulation
from qa.summary.checkup import Checkup, Finding

TABLE_SHEET = "报告体检"


def _where(finding: Finding) -> str:
    """Where the report gives a content: its heading, or the sentence that mentions it."""
    evidence = finding.evidence
    if evidence is None:
        return finding.note
    if evidence.by == "标题":
        return f"标题「{evidence.quote}」"
    inside = f"（在「{evidence.section}」中）" if evidence.section else ""
    return f"正文{inside}：“{evidence.quote}”"


def _cell(text: str) -> str:
    return text.replace("|", "｜").replace("\n", " ")


def checkup_markdown(checkup: Checkup) -> str:
    """One report's check-up, in Chinese, every judgement with the passage it rests on or why it could not
    be made."""
    year = f"（{checkup.year}年度）" if checkup.year else ""
    lines = [f"# 报告体检：{checkup.label}{year}", ""]
    if not checkup.applicable:
        return "\n".join(lines + [checkup.note, ""])
    basis = checkup.basis
    lines += [f"依据：{basis.cited}对法治政府建设年度报告内容和公开时限的要求。{basis.note}。", ""]
    if checkup.note:
        lines += [f"> 注意：{checkup.note}。", ""]
    lines += [
        "## 内容是否齐全",
        "",
        "| 规定要求的内容 | 结论 | 依据（报告原文） | 数字（个） | 说明 |",
        "|---|---|---|---|---|",
    ]
    for f in checkup.findings:
        note = f.note if f.present else ""
        lines.append(f"| {f.asks} | {f.status} | {_cell(_where(f))} | {f.figures} | {_cell(note)} |")
    lines += [
        "",
        verdict(checkup),
        "",
    ]
    timing = checkup.timeliness
    if timing is not None:
        due = f"{timing.due}（含当天）" if timing.due else "无法确定"
        lines += ["## 是否按时公开", "", f"时限：{due}（{basis.rule}）。", "",
                  f"结论：**{timing.status}**。{timing.note}。", ""]  # fmt: skip
    lines += [
        "## 具体程度",
        "",
        f"全文 {checkup.chars} 字，{checkup.figures} 个数字，每千字 {checkup.per_thousand} 个。",
        "",
    ]
    bare = [
        f.name for f in checkup.findings if f.present and f.key in ("measures", "leaders") and f.figures == 0
    ]
    if bare:
        lines += [f"没有具体数字的部分：{'、'.join(bare)}。", ""]
    return "\n".join(lines)


def verdict(checkup: Checkup) -> str:
    """One line on the contents: what is missing, and what could not be judged (a page cut short)."""
    missing = "、".join(checkup.missing)
    unjudged = "、".join(f.name for f in checkup.findings if not f.judged)
    said = f"缺少的内容：{missing}。" if missing else ("" if unjudged else "规定要求的内容，报告中都能找到。")
    return said + (f"无法判断（文本不完整）：{unjudged}。" if unjudged else "")


# ---- one table across reports ---------------------------------------------------------------------------

TABLE_COLUMNS = ("报告", "报告文件", "类型", "年度", "页面发布日期", "公开时限", "是否按时公开",
                 *(c.name for c in regulation.CONTENTS), "缺少的内容", "数字（个）", "每千字数字", "说明")  # fmt: skip


def table_row(checkup: Checkup) -> list:
    by_key = {f.key: f for f in checkup.findings}
    timing = checkup.timeliness
    contents = [by_key[c.key].status if c.key in by_key else "不适用" for c in regulation.CONTENTS]
    notes = [checkup.note] + [f"{f.name}：{f.note}" for f in checkup.findings if f.present and f.note]
    return [
        checkup.label, checkup.report_id, checkup.kind or "未识别", checkup.year,
        timing.published if timing else None, timing.due if timing else None,
        timing.status if timing else "不适用", *contents,
        "、".join(checkup.missing), checkup.figures if checkup.applicable else None,
        checkup.per_thousand if checkup.applicable else None, "；".join(n for n in notes if n),
    ]  # fmt: skip


def table_bytes(checkups: Sequence[Checkup]) -> tuple[bytes, bytes]:
    """check.csv and check.xlsx: one row per report, the same rows."""
    rows = [table_row(c) for c in checkups]
    return csv_bytes(TABLE_COLUMNS, rows), xlsx_bytes(TABLE_COLUMNS, rows, sheet=TABLE_SHEET)


def file_names(report_ids: Sequence[str]) -> dict[str, str]:
    """Each report's check-up file name without suffix: its file's name without the extension (淄川.txt →
    淄川, written as 淄川.check.md and 淄川.check.json), the whole file name where two reports share a stem."""
    stems = [Path(r).stem or r for r in report_ids]
    return {r: (s if stems.count(s) == 1 else r) for r, s in zip(report_ids, stems, strict=True)}
