"""A summary as a Word document (python-docx), built in memory and returned as bytes, and the lines every
summary document shares (which engine, when). Pure: the CLI, the batch runner and the app write or hand
out the same bytes."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from qa.core.office import local_time
from qa.core.schemas import Chunk, ReportMeta
from qa.core.text import normalize
from qa.genre.numbers import whole_at

if TYPE_CHECKING:
    from qa.summary.summarize import Point, Summary


# ---- what every document people hand on says the same way (Markdown, Word, the index tables) -----------


def engine_line(engine: str, model: str | None) -> str:
    """Which engine wrote a summary, as its readers say it."""
    return "抽取式（离线，逐字引用原文）" if engine == "extractive" else f"大模型 {model or ''}".strip()


def made_line(summary: Summary) -> str:
    """The footer of a document: when (local time) and by which engine."""
    return f"由 reportqa 生成于 {local_time(summary.created_at) or '—'}，生成方式：{engine_line(summary.engine, summary.model)}"


# ---- summaries: Word ---------------------------------------------------------------------------------

BODY_FONT, HEADING_FONT = "宋体", "黑体"
GREY = (0x59, 0x59, 0x59)
RED = (0xCF, 0x13, 0x22)
NOT_FOUND = "未识别"


def identity_line(summary: Summary, meta: ReportMeta | None = None) -> str:
    """地区 (the region path when known: 山东省 › 淄博市 › 淄川区) · 发布单位 · 年度; 未识别 where not found."""
    region = " › ".join(meta.region_path) if meta and meta.region_path else summary.region
    issuer = summary.issuer or (meta.issuer if meta else "")
    year = summary.year or (meta.year if meta else None)
    return " · ".join([
        f"地区：{region or NOT_FOUND}",
        f"发布单位：{issuer or NOT_FOUND}",
        f"年度：{f'{year}年' if year else NOT_FOUND}",
    ])  # fmt: skip


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[。！？；])|\n", text) if s and s.strip()]


def source_quotes(
    summary: Summary, chunk_ids: Sequence[str], chunks: Sequence[Chunk]
) -> dict[str, list[str]]:
    """chunk id → what the summary quotes from it: the sentences of the items citing it that stand in the
    passage verbatim; a passage only paraphrased (an LLM's point) is quoted whole. Unknown ids get []."""
    by_id = {c.id: c for c in chunks}
    cited: list[tuple[str, list[str]]] = [(summary.overview, summary.overview_citations)]
    points: list[Point] = (
        [p for area in summary.measures for p in area.points] + summary.problems + summary.plans
    )
    cited += [(p.text, p.citations) for p in points]
    cited += [(f.quote, [f.chunk_id]) for f in summary.key_figures]
    quotes: dict[str, list[str]] = {}
    for chunk_id in chunk_ids:
        chunk = by_id.get(chunk_id)
        if chunk is None:
            quotes[chunk_id] = []
            continue
        # the passage's own sentences that hold a clause of an item citing it (an item is the report's
        # clauses, compressed: its source sentence is what a reader checks it against)
        said = [normalize(c.strip("，,；;。！？、 ")) for text, ids in cited if chunk_id in ids
                for c in re.split(r"[，,；;。！？]", text)]  # fmt: skip
        said = [c for c in said if len(c) >= 6]
        found = [s for s in _sentences(chunk.text) if any(c in normalize(s) for c in said)]
        quotes[chunk_id] = list(dict.fromkeys(found)) or [chunk.text.strip()]
    return quotes


def _set_fonts(style, east_asian: str) -> None:
    """A style's font for Chinese text (w:eastAsia; python-docx sets only the Latin name)."""
    from docx.oxml.ns import qn

    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    fonts.set(qn("w:eastAsia"), east_asian)


def summary_docx(summary: Summary, meta: ReportMeta | None = None, chunks: Sequence[Chunk] = ()) -> bytes:
    """The summary as a Word document with the Markdown's content (qa.summary.render): title, identity line, 概况 /
    主要举措 / 关键指标 (指标, 数值, 原文) / 存在的不足 / 下一步计划, cited [n]; an appendix lists each source n
    with its place in the report and the words quoted from it. meta adds the region path, chunks the quotes."""
    from qa.summary.summarize import labels_of  # here: the tables alone never load the summarizer

    doc = _Doc(summary)
    names = labels_of(summary)
    doc.heading(summary, meta)
    # a section the report does not have is left out, not shown empty
    if summary.overview.strip():
        doc.document.add_heading(names.overview, level=1)
        doc.cite(doc.document.add_paragraph(" ".join(summary.overview.split())), summary.overview_citations)
    if any(area.points for area in summary.measures):
        doc.document.add_heading(names.measures, level=1)
    for area in (a for a in summary.measures if a.points):
        doc.document.add_heading(" ".join(area.area.split()), level=2)
        doc.points(area.points)
    if summary.key_figures:
        doc.document.add_heading(names.figures, level=1)
        doc.figures_table(summary.key_figures)
    for heading, items in ((names.problems, summary.problems), (names.plans, summary.plans)):
        if items:
            doc.document.add_heading(heading, level=1)
            doc.points(items)
    doc.appendix(summary, chunks)
    doc.grey(doc.document.add_paragraph(), made_line(summary), 8)
    buffer = io.BytesIO()
    doc.document.save(buffer)
    return buffer.getvalue()


class _Doc:
    """A summary's Word document as it is written: its fonts and properties, and the sources it cites,
    numbered [n] in the order first cited."""

    def __init__(self, summary: Summary) -> None:
        from docx import Document

        from qa.summary.summarize import summary_heading

        self.document = document = Document()
        self.refs: dict[str, int] = {}  # chunk id → n
        styles = document.styles
        _set_fonts(styles["Normal"], BODY_FONT)
        for name in ("Title", "Heading 1", "Heading 2"):
            _set_fonts(styles[name], HEADING_FONT)
        properties = document.core_properties
        properties.title = summary_heading(summary)
        properties.subject = "报告摘要"
        properties.author = properties.last_modified_by = "reportqa"
        with contextlib.suppress(ValueError):  # an old or hand-edited summary without a valid time
            properties.created = properties.modified = datetime.fromisoformat(summary.created_at)

    def cite(self, paragraph, chunk_ids: Sequence[str]) -> None:
        for chunk_id in chunk_ids:
            n = self.refs.setdefault(chunk_id, len(self.refs) + 1)
            paragraph.add_run(f"[{n}]").font.superscript = True

    @staticmethod
    def flag(paragraph, text: str = " ⚠ 未核实") -> None:
        from docx.shared import RGBColor

        run = paragraph.add_run(text)
        run.bold = True
        run.font.color.rgb = RGBColor(*RED)

    @staticmethod
    def grey(paragraph, text: str, size: float = 9) -> None:
        from docx.shared import Pt, RGBColor

        run = paragraph.add_run(text)
        run.font.size = Pt(size)
        run.font.color.rgb = RGBColor(*GREY)

    def points(self, items: Sequence[Point]) -> None:
        for point in items:
            paragraph = self.document.add_paragraph(" ".join(point.text.split()), style="List Bullet")
            self.cite(paragraph, point.citations)
            if not point.verified:
                self.flag(paragraph)

    def heading(self, summary: Summary, meta: ReportMeta | None) -> None:
        """The title, the identity line, the details line (date, 文号, engine), and the unverified warning."""
        from qa.summary.summarize import summary_heading

        document = self.document
        document.add_heading(summary_heading(summary), level=0)
        document.add_paragraph(identity_line(summary, meta))
        details = [
            ("发布日期", summary.publish_date),
            ("文号", summary.doc_number),
            ("生成方式", engine_line(summary.engine, summary.model)),
        ]
        self.grey(
            document.add_paragraph(), " · ".join(f"{label}：{value}" for label, value in details if value), 10
        )
        if summary.unverified:
            self.flag(
                document.add_paragraph(), f"⚠ {summary.unverified} 处内容未能在原文中核实，已标注“未核实”。"
            )

    def figures_table(self, figures: Sequence) -> None:
        """关键指标: 指标, 数值, 原文 (the figure in bold inside its sentence, cited), 核实."""
        from docx.shared import Cm

        changes = any(f.change for f in figures)  # a bulletin's growth: in the value's cell, on its own line
        table = self.document.add_table(rows=1, cols=4)
        table.style = "Table Grid"
        titles = ("指标", "数值（增减）" if changes else "数值", "原文", "核实")
        for cell, title in zip(table.rows[0].cells, titles, strict=True):
            cell.paragraphs[0].add_run(title).bold = True
        for figure in figures:
            indicator, value, quote, mark = table.add_row().cells
            indicator.text = figure.indicator
            value.text = figure.raw + (f"\n{figure.change}" if figure.change else "")
            _quote_with_figure(quote.paragraphs[0], figure.quote, figure.raw)
            self.cite(quote.paragraphs[0], [figure.chunk_id])
            if figure.verified:
                mark.text = "✓"
            else:
                self.flag(mark.paragraphs[0], "⚠ 未核实")
        for column, width in zip(table.columns, (3.5, 2.5, 9.0, 1.5), strict=True):
            for cell in column.cells:
                cell.width = Cm(width)

    def appendix(self, summary: Summary, chunks: Sequence[Chunk]) -> None:
        """附录：来源: each source n, its place in the report, and the report's words quoted from it."""
        from docx.shared import Pt

        from qa.summary.summarize import summary_heading

        document = self.document
        if self.refs:
            document.add_heading("附录：来源", level=1)
            self.grey(
                document.add_paragraph(),
                f"摘要中的 [n] 指向《{summary_heading(summary)}》的下列原文段落。",
                10,
            )
        quotes = source_quotes(summary, list(self.refs), chunks)
        sections = {c.id: c.section for c in chunks}
        for chunk_id, n in self.refs.items():
            paragraph = document.add_paragraph()
            paragraph.add_run(f"[{n}] ").bold = True
            paragraph.add_run(sections.get(chunk_id) or "（正文开头）")
            for quote in quotes.get(chunk_id, []):  # the report's words, as a block under their place
                line = document.add_paragraph()
                line.paragraph_format.left_indent = Pt(21)
                line.add_run(" ".join(quote.split())).font.size = Pt(10)


def _quote_with_figure(paragraph, quote: str, raw: str) -> None:
    """The figure in bold inside its sentence, as the app marks it (the sentence plain when it is not there)."""
    at = whole_at(quote, raw)
    if at < 0:
        paragraph.add_run(quote)
    else:
        paragraph.add_run(quote[:at])
        paragraph.add_run(raw).bold = True
        paragraph.add_run(quote[at + len(raw) :])
