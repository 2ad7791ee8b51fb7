"""Which reports a comparison is about, and how its columns are named."""

from __future__ import annotations

from collections.abc import Sequence

from qa.compare.table import ReportColumn
from qa.core.naming import labels
from qa.core.schemas import ReportRecord
from qa.genre.kinds import compared


def report_columns(records: Sequence[ReportRecord]) -> list[ReportColumn]:
    """One column per report, labelled as answers name it (ReportMeta.label: its place, or its department;
    else its title), else the file name."""
    named = labels(records)
    return [ReportColumn(r.report_id, named[r.report_id], r.meta.year) for r in records]


def compared_records(records: Sequence[ReportRecord]) -> list[ReportRecord]:
    """The reports the comparison table is about by default: 法治 reports (qa.genre.kinds.compared)."""
    return [r for r in records if compared(r.meta.kind)]
