"""How answers, tables and documents name a report: by its place or department, told apart from the
library's other reports of the same place by issuer, year or file name."""

from __future__ import annotations

from collections.abc import Sequence

from qa.core.schemas import ReportRecord


def label_of(record: ReportRecord) -> str:
    """A report by its place or department (ReportMeta.label)."""
    return record.meta.label or "未识别地区的报告"


def labels(records: Sequence[ReportRecord]) -> dict[str, str]:
    """How answers and tables name each report: its label (place, or department). Where the library holds
    several reports under one label, what tells them apart follows it: the issuer (洛江区（区委）beside
    洛江区（人民政府）), the year, else the file name — so an answer never says one place twice for two reports."""
    base = {r.report_id: r.meta.label or r.meta.title or r.report_id for r in records}
    groups: dict[str, list[ReportRecord]] = {}
    for record in records:
        groups.setdefault(base[record.report_id], []).append(record)
    out: dict[str, str] = {}
    for label, group in groups.items():
        if len(group) == 1:
            out[group[0].report_id] = label
            continue
        issuers = {r.meta.issuer for r in group}
        years = {r.meta.year for r in group}
        for record in group:
            said = []
            if len(issuers) > 1 and record.meta.issuer:
                said.append(record.meta.issuer.removeprefix(label) or record.meta.issuer)
            if len(years) > 1 and record.meta.year:
                said.append(f"{record.meta.year}年")
            out[record.report_id] = f"{label}（{'，'.join(said)}）" if said else label
        named = [out[r.report_id] for r in group]
        for record in group:  # still alike: the file name
            if named.count(out[record.report_id]) > 1:
                out[record.report_id] = f"{label}（{record.report_id}）"
    return out
