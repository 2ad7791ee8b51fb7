"""Files for Office, built in memory and returned as bytes: CSV (UTF-8 with BOM, so Excel on Chinese Windows
reads it) and Excel workbooks, and the local time every document people hand on shows. Pure: the CLI, the
batch runner and the app write or hand out the same bytes."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo

CSV_MIME = "text/csv"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

Value = str | int | float | None


def local_time(iso: str, tz: tzinfo | None = None) -> str:
    """A stored time (ISO 8601, UTC) as '2026-11-29 20:15' in the server's local time zone (TZ respected),
    or in tz. A time without a zone is read as UTC; text that is not a time is returned as it is."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


# ---- tables: CSV and Excel ---------------------------------------------------------------------------


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[Value]]) -> bytes:
    """UTF-8 with a BOM: without it Excel on Chinese Windows reads the file as GBK and shows mojibake."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return buffer.getvalue().encode("utf-8-sig")


def display_width(text: str) -> int:
    """Columns a string takes in a monospaced view: CJK and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


WIDTH_MIN, WIDTH_MAX = 6, 60


def xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence[Value]], sheet: str = "Sheet1") -> bytes:
    """One sheet: the header row bold and frozen, a filter on it, columns as wide as their text (long text
    wraps at WIDTH_MAX). Strings stay text as written (151件, 约1.1亿元, 29.8%); a string that looks like a
    formula is still text."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = sheet[:31]  # Excel's limit
    widths = [display_width(str(h)) for h in headers]
    worksheet.append(list(headers))
    for cell in worksheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(vertical="top")
    for row_number, values in enumerate(rows, start=2):
        for column, value in enumerate(values, start=1):
            cell = worksheet.cell(row=row_number, column=column)
            if isinstance(value, str):
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell.data_type = "s"  # "=…" is text from a report, never a formula
            else:
                cell.value = value
            widths[column - 1] = max(widths[column - 1], display_width("" if value is None else str(value)))
    wrap = Alignment(wrap_text=True, vertical="top")
    for column, width in enumerate(widths, start=1):
        letter = get_column_letter(column)
        worksheet.column_dimensions[letter].width = min(max(width, WIDTH_MIN), WIDTH_MAX) + 2
        if width > WIDTH_MAX:
            for (cell,) in worksheet.iter_rows(min_row=2, min_col=column, max_col=column):
                cell.alignment = wrap
    worksheet.freeze_panes = "A2"
    if worksheet.max_row > 1:
        worksheet.auto_filter.ref = worksheet.dimensions
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
