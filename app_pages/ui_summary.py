"""The 摘要 page without Streamlit: the summary card as HTML, the app's on-disk summary cache and the zip of a
batch.

The cache is <QA_DATA_DIR>/summaries/<engine>/<report>.json + .md + .docx (a folder per engine, so switching engines
reuses each one's summaries), the same layout and reuse rules as `qa summarize` (qa/batch.py): a summary is
reused while the report's bytes, the template (and prompts), the engine and the model are unchanged; the Markdown
and Word files are written first and the JSON last, each atomically.
Everything that puts report or model text into HTML escapes it.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from app_pages.ui import OFFLINE_ENGINE_LABEL, local_time, row_message
from qa.engines.base import Engine
from qa.genre.numbers import whole_at
from qa.summary.batch import (
    BatchItem,
    SummaryIndex,
    complete_outputs,
    index_tables,
    output_paths,
    up_to_date,
    write_summary,
)
from qa.summary.summarize import Point, ReportView, Summary, labels_of, summarize_report

SUMMARY_DIR = "summaries"
STATUS_LABELS = {
    "ok": "已生成",
    "skipped": "沿用缓存",
    "failed": "失败",
    "stopped": "未运行",
    "pending": "未开始",
}
CHECKS_MAX = 20
MAP_CALLS = 4  # a summary's section maps sent at once (as `qa summarize --concurrency` defaults to)

CSS = """
<style>
div.qa-summary { line-height: 1.8; }
div.qa-summary h4 { margin: 1.1rem 0 0.4rem; padding: 0; font-size: 1.1rem; }
div.qa-summary ul { margin: 0 0 0.4rem 1.2rem; padding: 0; }
div.qa-summary table.qa-figures { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
table.qa-figures th, table.qa-figures td { border: 1px solid rgba(128, 128, 128, 0.25); padding: 0.25rem 0.5rem;
                                           vertical-align: top; text-align: left; }
table.qa-figures th { background: rgba(128, 128, 128, 0.08); white-space: nowrap; }
table.qa-figures td.qa-num { white-space: nowrap; font-weight: 600; }
table.qa-figures span.qa-change { font-weight: 400; color: #555; font-size: .85em; }
td.qa-ok { color: #237804; font-weight: 700; text-align: center; white-space: nowrap; }
td.qa-bad, span.qa-flag { color: #cf1322; font-weight: 700; white-space: nowrap; }
tr.qa-unverified-row { background: #fff1f0; }
sup.qa-ref { color: #1c83e1; font-size: 0.75em; cursor: help; }
span.qa-engine { display: inline-block; padding: 0 0.5em; border-radius: 0.3em; background: rgba(28, 131, 225, 0.12);
                 font-weight: 600; }
div.qa-summary-meta { color: rgba(49, 51, 63, 0.75); font-size: 0.92rem; }
ol.qa-sources { font-size: 0.88rem; color: rgba(49, 51, 63, 0.8); }
</style>
"""


# ---- the cache ---------------------------------------------------------------------------------------


def summary_dir(data_dir: Path, engine: Engine | None = None) -> Path:
    """The cache folder of one engine (summaries/offline, summaries/llm-<model>): switching engines back and
    forth reuses each engine's summaries instead of overwriting one with the other."""
    model = engine.model if engine is not None else None
    folder = "offline" if model is None else "llm-" + re.sub(r"[^\w.-]+", "_", model)
    return data_dir / SUMMARY_DIR / folder


def cached_paths(data_dir: Path, report_id: str) -> list[Path]:
    """A report's cached summary files under every engine's folder (what deleting the report removes)."""
    root = data_dir / SUMMARY_DIR
    return [path for folder in sorted(root.glob("*/")) for path in output_paths(folder, report_id)]


def cached_summary(view: ReportView, out_dir: Path, engine: Engine) -> Summary | None:
    """The summary on disk when it is still current for this report and engine (qa.summary.batch's rule); its Word
    file is written from it if missing."""
    if not up_to_date(view, out_dir, None, engine):
        return None
    return complete_outputs(view, out_dir)


def make_summary(view: ReportView, out_dir: Path, engine: Engine) -> Summary:
    """Summarize the whole report and cache it. Raises QAError for the page to show."""
    summary = summarize_report(view, engine.limited(MAP_CALLS), map_workers=MAP_CALLS)
    write_summary(summary, view, out_dir)
    return summary


def summary_files(out_dir: Path, report_id: str) -> tuple[str, str, bytes]:
    """The cached JSON and Markdown texts and the Word file of one report (what the download buttons hand
    out: the very files `qa summarize` writes)."""
    json_path, md_path, docx_path = output_paths(out_dir, report_id)
    return json_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8"), docx_path.read_bytes()


def preloaded(load_view: Callable[[], ReportView]) -> Callable[[], ReportView]:
    """Read a view now (on the calling thread) and hand it to a batch worker later; a failure to read is
    raised in the worker, so it becomes that report's failed row."""
    try:
        view = load_view()
    except Exception as ex:
        error = ex

        def fail() -> ReportView:
            raise error

        return fail
    return lambda: view


def batch_rows(items: Sequence[BatchItem]) -> list[dict]:
    """One table row per report of a batch: status in Chinese, figures, time, why it failed."""
    rows = []
    for item in items:
        rows.append(
            {
                "报告": item.report_id or item.path,
                "结果": STATUS_LABELS.get(item.status, item.status),
                "未核实": item.unverified if item.status != "failed" else None,
                "用时（秒）": round(item.seconds, 2),
                "原因": row_message(item.reason, item.code, item.fields).text if item.reason else "",
            }
        )
    return rows


def batch_counts(items: Sequence[BatchItem]) -> str:
    """'已生成 2 份 · 沿用缓存 1 份 · 失败 1 份' (only the statuses that occur)."""
    counts = [
        (STATUS_LABELS[s], sum(i.status == s for i in items)) for s in ("ok", "skipped", "failed", "stopped")
    ]
    return " · ".join(f"{label} {n} 份" for label, n in counts if n)


def summaries_zip(out_dir: Path, report_ids: Iterable[str]) -> bytes:
    """A zip of the reports' cached JSON, Markdown and Word files plus index.csv and index.xlsx of just
    those reports. The folder's own index is rewritten first, as `qa summarize` does."""
    wanted = [r for r in dict.fromkeys(report_ids) if output_paths(out_dir, r)[0].is_file()]
    index = SummaryIndex(out_dir)
    index.write()
    csv_data, xlsx_data = index_tables([row for row in index.rows.values() if row["report_id"] in wanted])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for report_id in wanted:
            for path in output_paths(out_dir, report_id):
                if path.is_file():
                    archive.writestr(path.name, path.read_bytes())
        archive.writestr("index.csv", csv_data)
        archive.writestr("index.xlsx", xlsx_data)
    return buffer.getvalue()


# ---- the card ----------------------------------------------------------------------------------------


def engine_text(summary: Summary) -> str:
    """Which engine wrote a summary: the offline extractive engine, or 'LLM：model'."""
    return OFFLINE_ENGINE_LABEL if summary.engine != "llm" else f"LLM：{summary.model}"


def meta_items(summary: Summary) -> list[tuple[str, str]]:
    """The report's metadata as (label, value) pairs, the empty ones left out."""
    pairs = [
        ("发布单位", summary.issuer),
        ("地区", summary.region),
        ("年度", summary.year),
        ("发布日期", summary.publish_date),
        ("文号", summary.doc_number),
    ]
    return [(label, str(value)) for label, value in pairs if value not in (None, "")]


def made_text(summary: Summary) -> str:
    """When the summary was made (local time) and, for an LLM, tokens and cost; the template ref is an
    internal id, shown under 详细信息."""
    parts = [f"生成于 {local_time(summary.created_at)}"]
    if summary.engine == "llm":
        parts.append(f"tokens {summary.prompt_tokens} 输入 / {summary.completion_tokens} 输出")
        parts.append("费用未知" if summary.cost_usd is None else f"费用 ${summary.cost_usd:.4f}")
    return " · ".join(parts)


def unverified_text(summary: Summary) -> str | None:
    if not summary.unverified:
        return None
    return f"⚠ {summary.unverified} 处内容未能在原文中核实，已在摘要中标注“⚠ 未核实”。"


def check_lines(summary: Summary, limit: int = CHECKS_MAX) -> list[str]:
    """What verification flagged, one line each (at most `limit`, then how many more)."""
    lines = list(summary.checks[:limit])
    if len(summary.checks) > limit:
        lines.append(f"……另有 {len(summary.checks) - limit} 处")
    return lines


def _e(text: object) -> str:
    return html.escape(str(text)).replace("\n", " ")


class _Refs:
    """Numbers the cited passages in order of first citation, as the Markdown summary does."""

    def __init__(self, sections: dict[str, str]) -> None:
        self.sections = sections
        self.numbers: dict[str, int] = {}

    def cite(self, chunk_ids: Sequence[str]) -> str:
        marks = []
        for chunk_id in chunk_ids:
            n = self.numbers.setdefault(chunk_id, len(self.numbers) + 1)
            where = self.sections.get(chunk_id) or "（正文开头）"
            marks.append(f'<sup class="qa-ref" title="{_e(where)}">[{n}]</sup>')
        return "".join(marks)


_FLAG = '<span class="qa-flag" title="未能在原文中核实">⚠ 未核实</span>'


def _points(points: Sequence[Point], refs: _Refs) -> str:
    items = "".join(
        f"<li>{_e(p.text)}{refs.cite(p.citations)}{'' if p.verified else ' ' + _FLAG}</li>" for p in points
    )
    return f"<ul>{items}</ul>"


def _quote_html(quote: str, raw: str) -> str:
    """The quote with the figure marked (its first occurrence)."""
    at = whole_at(quote, raw)
    if at < 0:
        return _e(quote)
    return f'{_e(quote[:at])}<mark class="qa-quote">{_e(raw)}</mark>{_e(quote[at + len(raw) :])}'


def summary_card_html(summary: Summary, sections: dict[str, str] | None = None) -> str:
    """The summary as one HTML block: 概况 / 主要举措 / 关键指标 (quote + ✓ or ⚠) / 存在的不足 / 下一步计划 / 来源.

    sections: chunk id → section path, for the 来源 list and the [n] tooltips. One line, so Markdown leaves
    it alone."""
    refs = _Refs(sections or {})
    names = labels_of(summary)
    out = ['<div class="qa-summary">']
    # a section the report does not have is left out, not shown empty
    if summary.overview.strip():
        out.append(
            f"<h4>{names.overview}</h4><p>{_e(summary.overview)}{refs.cite(summary.overview_citations)}</p>"
        )
    if any(area.points for area in summary.measures):
        out.append(f"<h4>{names.measures}</h4>")
    for area in (a for a in summary.measures if a.points):
        out.append(f"<p><strong>{_e(area.area)}</strong></p>{_points(area.points, refs)}")
    if summary.key_figures:
        out.append(f"<h4>{names.figures}（{len(summary.key_figures)} 项）</h4>")
        rows = []
        for figure in summary.key_figures:
            mark = (
                '<td class="qa-ok" title="数值见于引文，引文见于原文">✓</td>'
                if figure.verified
                else '<td class="qa-bad" title="未能在原文中核实">⚠ 未核实</td>'
            )
            css = "" if figure.verified else ' class="qa-unverified-row"'
            change = f'<br><span class="qa-change">{_e(figure.change)}</span>' if figure.change else ""
            rows.append(
                f'<tr{css}><td>{_e(figure.indicator)}</td><td class="qa-num">{_e(figure.raw)}{change}</td>'
                f'<td><details class="qa-figure-quote"><summary>原文{refs.cite([figure.chunk_id])}</summary>'
                f"{_quote_html(figure.quote, figure.raw)}</details></td>{mark}</tr>"
            )
        out.append(
            '<table class="qa-figures"><tr><th>指标</th><th>数值</th><th>原文（点开查看）</th><th>核实</th></tr>'
            + "".join(rows)
            + "</table>"
        )
    for heading, points in ((names.problems, summary.problems), (names.plans, summary.plans)):
        if points:
            out.append(f"<h4>{heading}</h4>{_points(points, refs)}")
    if refs.numbers:
        out.append("<h4>来源</h4>")
        items = "".join(
            f"<li>{_e(refs.sections.get(chunk_id) or '（正文开头）')}</li>" for chunk_id in refs.numbers
        )
        out.append(f'<ol class="qa-sources">{items}</ol>')
    out.append("</div>")
    return "".join(out)


def summary_header_html(summary: Summary) -> str:
    """Title, metadata and the engine badge above the card."""
    meta = " · ".join(f"{label}：{_e(value)}" for label, value in meta_items(summary))
    return (
        f'<div class="qa-summary-meta">'
        f'<div><span class="qa-engine">{_e(engine_text(summary))}</span></div>'
        f"<div>{meta or '（报告元数据缺失）'}</div>"
        f"<div>{_e(made_text(summary))}</div></div>"
    )
