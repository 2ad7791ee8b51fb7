"""Cross-report indicator table: the catalogue's indicators × reports, each cell quoted and cited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa.core.office import csv_bytes, xlsx_bytes
from qa.core.schemas import Chunk
from qa.genre.figures import Figure, extract_figures, qualified
from qa.genre.indicators import CATALOGUE, Indicator, candidates


@dataclass(frozen=True)
class Other:
    """Another value the same report states for the indicator (e.g. cases against the district government,
    9件, and all cases the court accepted, 83件): shown beside the cell so nobody compares the wrong one."""

    raw: str
    quote: str
    chunk_id: str


@dataclass(frozen=True)
class Cell:
    report_id: str
    indicator: str
    raw: str
    value: float
    unit: str
    quote: str
    chunk_id: str
    section: str
    others: tuple[Other, ...] = ()  # other distinct values stated for it, in document order


@dataclass(frozen=True)
class ReportColumn:
    report_id: str
    label: str  # region or title
    year: int | None


@dataclass(frozen=True)
class CompareTable:
    indicators: tuple[Indicator, ...]
    reports: tuple[ReportColumn, ...]
    cells: dict[tuple[str, str], Cell]  # (indicator key, report id) → cell; missing = not stated

    def cell(self, indicator: str, report_id: str) -> Cell | None:
        return self.cells.get((indicator, report_id))

    def rows(self) -> list[dict]:
        """Long format: one row per stated (indicator, report)."""
        out = []
        for indicator in self.indicators:
            for report in self.reports:
                cell = self.cell(indicator.key, report.report_id)
                if cell:
                    out.append({"indicator": indicator.label, "group": indicator.group, "report": report.report_id,
                                "region": report.label, "year": report.year, "raw": cell.raw, "value": cell.value,
                                "unit": cell.unit, "quote": cell.quote, "chunk_id": cell.chunk_id,
                                "section": cell.section,
                                "other_values": "；".join(o.raw for o in cell.others)})  # fmt: skip
        return out


def report_figures(chunks: Sequence[Chunk]) -> list[tuple[Figure, Chunk]]:
    """Figures of a report in document order, each with the chunk it is quoted from (overlaps once)."""
    found: list[tuple[Figure, Chunk]] = []
    covered = 0
    for chunk in sorted(chunks, key=lambda c: c.start):
        skip = max(0, covered - chunk.start)
        covered = max(covered, chunk.end)
        found.extend((f, chunk) for f in extract_figures(chunk.text) if f.start >= skip)
    return found


def build_table(reports: Sequence[tuple[ReportColumn, Sequence[Chunk]]],
                indicators: Sequence[Indicator] = CATALOGUE) -> CompareTable:  # fmt: skip
    cells: dict[tuple[str, str], Cell] = {}
    for column, chunks in reports:
        figures = report_figures(chunks)
        chunk_of = {id(f): c for f, c in figures}
        for indicator in indicators:
            found = candidates(indicator, [f for f, _ in figures])
            if not found:
                continue
            hit, chunk = found[0], chunk_of[id(found[0])]
            # values as written, their qualifier included (近1.1万场, 约1.1亿元): the quote says so too
            seen = {qualified(hit)}
            others = []
            for figure in sorted(found[1:], key=lambda f: (chunk_of[id(f)].start, f.start)):
                if qualified(figure) not in seen:
                    seen.add(qualified(figure))
                    others.append(Other(qualified(figure), figure.quote, chunk_of[id(figure)].id))
            cells[(indicator.key, column.report_id)] = Cell(
                column.report_id, indicator.key, qualified(hit), float(hit.number.value), hit.number.unit, hit.quote,
                chunk.id, chunk.section, tuple(others),
            )  # fmt: skip
    return CompareTable(tuple(indicators), tuple(c for c, _ in reports), cells)


# rows() key → the column heading of the CSV / Excel export (Chinese: they are read by people in Excel); the
# chunk id stays in rows() (an internal reference), never in a document people hand on
EXPORT_COLUMNS = {
    "indicator": "指标", "group": "分组", "report": "报告文件", "region": "地区", "year": "年度",
    "raw": "原文数值", "value": "数值", "unit": "单位", "quote": "原文引用", "section": "章节",
    "other_values": "另有数值",
}  # fmt: skip


def export_rows(table: CompareTable) -> tuple[list[str], list[list]]:
    """Headings and rows of the export: rows() in EXPORT_COLUMNS order, whole numbers without '.0'."""
    rows = []
    for row in table.rows():
        value = row["value"]
        row["value"] = int(value) if float(value).is_integer() else value
        rows.append([row[key] for key in EXPORT_COLUMNS])
    return list(EXPORT_COLUMNS.values()), rows


def to_csv(table: CompareTable) -> bytes:
    """The long table as CSV, UTF-8 with BOM and Chinese headings (what `qa compare --out` writes)."""
    return csv_bytes(*export_rows(table))


def to_xlsx(table: CompareTable) -> bytes:
    """The same rows and headings as to_csv, as an Excel workbook."""
    return xlsx_bytes(*export_rows(table), sheet="指标对比")


def to_markdown(table: CompareTable) -> str:
    """A wide table (cells cite [n]) followed by the numbered quotes."""
    header = "| 指标 | " + " | ".join(f"{r.label}（{r.year or '—'}）" for r in table.reports) + " |"
    lines = ["# 指标对比", "", header, "|" + " --- |" * (len(table.reports) + 1)]
    notes: list[str] = []
    for indicator in table.indicators:
        row = [indicator.label]
        for report in table.reports:
            cell = table.cell(indicator.key, report.report_id)
            if cell is None:
                row.append("")
                continue
            notes.append(
                f"{len(notes) + 1}. {report.label} · {cell.section or '（开篇）'}：“{cell.quote}”"
                + "".join(f"\n   - 另有 {o.raw}：“{o.quote}”" for o in cell.others)
            )
            row.append(f"{cell.raw} [{len(notes)}]" + (f"（另有 {'、'.join(o.raw for o in cell.others)}）"
                                                      if cell.others else ""))  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "空白 = 报告未提及该指标（不推测）；“另有” = 同一报告对该指标还写了别的数值（口径不同，见来源）。",
              "", "## 来源", "", *notes, ""]  # fmt: skip
    return "\n".join(lines)
