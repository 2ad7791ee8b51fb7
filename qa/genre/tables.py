"""Tables as the genre's pages leave them in text, in the two forms copying a web page gives: one row per line
with cells between pipes ("信息内容 | 本年制发件数 | 本年废止件数 | 现行有效件数 |" then "行政规范性文件 | 3 | 3 |
20 |"), or one cell per line — a header block that starts with the genre's first column name (指标, 项目) and
its column names, then each row's name and its figures ("指    标 / 绝对数(万元) / 比上年增长(%) / 房地产业 /
130535 / -14.6"). A row's figures are read with the column headers above them, which carry their units
(件数, (万元), (%)). Pure: text in, rows out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VALUE = re.compile(r"[-+−]?\d[\d,，]*(?:\.\d+)?\s*%?")


@dataclass(frozen=True)
class Row:
    label: str  # the row's first cell (行政规范性文件)
    cells: tuple[tuple[str, str], ...]  # (column header, value as written), blank cells left out
    start: int  # offsets of the row's line in the text
    end: int
    table: int = 0  # rows of one table share it (its header's offset)
    part: bool = False  # a breakdown row: from the first "其中:" row of its table on, not the total above


_UNIT = re.compile(r"^(.*?)\s*[(（]\s*([^()（）\d]{1,4})\s*[)）]\s*$")  # 绝对数(万元), 比重(%)


def figure(header: str, value: str) -> tuple[str, str]:
    """A cell as read with its column: (the column's name, the value with the unit its header gives) —
    (绝对数(万元), 130535) → (绝对数, 130535万元)."""
    match = _UNIT.match(header)
    return (match.group(1), value + match.group(2)) if match else (header, value)


def shown(row: Row) -> str:
    """A row as a line of text: 房地产业：绝对数 130535万元，比上年增长 -14.6%."""
    cells = [figure(header, value) for header, value in row.cells]
    return f"{row.label}：" + "，".join(f"{name} {value}" if name else value for name, value in cells)


def read_with_units(text: str) -> str:
    """Every table row of the text as `shown` lines: what a figure with its header's unit is checked against."""
    return "\n".join(shown(row) for row in rows(text))


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _is_value(cell: str) -> bool:
    return bool(_VALUE.fullmatch(cell))


def rows(text: str) -> list[Row]:
    """Every data row of the text's tables, in either form."""
    return sorted(pipe_rows(text) + cell_rows(text), key=lambda r: r.start)


# The first column's name in the genre's statistical tables, heading a header block of one cell per line.
_FIRST_COLUMN = re.compile(r"^\s*(?:指\s*标|项\s*目|指标名称)\s*$")
_MAX_COLUMNS = 4


def cell_rows(text: str) -> list[Row]:
    """Rows of tables written one cell per line: 指标, then 1–4 column names (no figures), then row name and one
    figure per column, repeated; the table ends where that pattern breaks."""
    lines: list[tuple[int, str]] = []
    offset = 0
    for line in text.split("\n"):
        lines.append((offset, line.strip()))
        offset += len(line) + 1
    out: list[Row] = []
    for i, (_, line) in enumerate(lines):
        if not _FIRST_COLUMN.match(line):
            continue
        header = []
        for _, cell in lines[i + 1 : i + 1 + _MAX_COLUMNS + 1]:
            if _is_value(cell) or not cell:
                break
            header.append(cell)
        width = len(header) - 1  # the last header line names a column only if figures follow it
        for columns in (width + 1, width):
            if columns < 1:
                continue
            found = _cell_block(lines, i + 1 + columns, header[:columns])
            if found:
                out.extend(found)
                break
    return out


def _cell_block(lines: list[tuple[int, str]], at: int, header: list[str]) -> list[Row]:
    out = []
    k = len(header)
    table = lines[at - k - 1][0]
    breakdown = False
    while at + k < len(lines):
        (start, name), values = lines[at], lines[at + 1 : at + 1 + k]
        if not name or _is_value(name) or not all(_is_value(v) for _, v in values):
            break
        end = values[-1][0] + len(values[-1][1])
        breakdown = breakdown or bool(_BREAKDOWN.match(name))
        cells = tuple(zip(header, (v for _, v in values), strict=True))
        out.append(Row(_BREAKDOWN.sub("", name), cells, start, end, table, breakdown))
        at += 1 + k
    return out


_BREAKDOWN = re.compile(r"^其中\s*[:：]\s*")


def pipe_rows(text: str) -> list[Row]:
    """The data rows of the text's pipe tables, each with the header row that stands above it in its table
    (a row of names, no figures); a line without pipes ends a table."""
    out: list[Row] = []
    header: list[str] = []
    table, breakdown = 0, False
    offset = 0
    for line in text.split("\n"):
        start, offset = offset, offset + len(line) + 1
        if line.count("|") < 2:
            header = []
            continue
        cells = _cells(line)
        named = [c for c in cells[1:] if c]
        if named and not any(_is_value(c) for c in named):
            header, table, breakdown = cells, start, False  # 信息内容 | 本年制发件数 | …
            continue
        if not cells[0] or _is_value(cells[0]) or not any(_is_value(c) for c in cells[1:]):
            continue
        pairs = tuple(
            (header[i] if i < len(header) else "", value) for i, value in enumerate(cells) if i and value
        )  # fmt: skip
        left = len(line) - len(line.lstrip(" |"))
        breakdown = breakdown or bool(_BREAKDOWN.match(cells[0]))
        out.append(Row(_BREAKDOWN.sub("", cells[0]), pairs, start + left, start + len(line.rstrip(" |")),
                       table, breakdown))  # fmt: skip
    return out


def value_of(cell: str) -> float | None:
    try:
        return float(cell.replace(",", "").replace("，", "").replace("−", "-").rstrip("%").strip())
    except ValueError:
        return None


def extreme(rows: list[Row], column_hint: str, highest: bool) -> tuple[Row, str] | None:
    """The row of one table with the highest (lowest) figure in the column the question names (涨幅 → 涨跌幅度(%),
    增长 → 比上年增长(%)), or its only column; among the breakdown rows (其中:…) when the table has them, so the
    total above is not one of the kinds compared. Returns the row and the column; None without a clear column."""
    if len(rows) < 2:
        return None
    columns = [h for h, _ in rows[0].cells]
    shared = [c for c in columns if set(c) & set(column_hint)]
    column = columns[0] if len(columns) == 1 else (shared[0] if len(shared) == 1 else None)
    if column is None:
        return None
    compared = [r for r in rows if r.part] or rows
    valued = [(value_of(dict(r.cells).get(column, "")), r) for r in compared]
    valued = [(v, r) for v, r in valued if v is not None]
    if len(valued) < 2:
        return None
    best = max(valued, key=lambda vr: vr[0]) if highest else min(valued, key=lambda vr: vr[0])
    return best[1], column
