"""Report → structured Summary over the whole report (map over sections, then reduce; never top-k),
every figure quoted and verified against its chunk, every number in the text checked against the report.

Offline, the summary is filled from the section tree and figure extraction. With an LLM, sections are
mapped to notes and the notes reduced into the template's JSON schema (validated, one repair retry).
"""

from __future__ import annotations

import copy
import json
import queue
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qa.compare.table import report_figures
from qa.core.errors import ConfigError, DegenerateReply, OutputError, QAError
from qa.core.schemas import Chunk, ReportMeta
from qa.core.text import normalize, squashed
from qa.genre.outline import LEVEL_1, LEVEL_2, LEVEL_3, LEVEL_4

if TYPE_CHECKING:
    from qa.models.base import ChatModel
from qa.genre import kinds, parts
from qa.genre.figures import Figure, extract_figures
from qa.genre.numbers import Number, find_numbers, parse_number, whole_at
from qa.ingest.chunking import sections
from qa.models import sanity
from qa.models.prompts import PromptTemplate, all_templates, get_template
from qa.summary import digest

RULE_OF_LAW = "summary_rule_of_law"
GENERIC = "summary_generic"
MAP = "summary_map"
OVERVIEW_MAX = 200
_HEADING = re.compile(rf"^(?:{LEVEL_1}|{LEVEL_2}|{LEVEL_3}|{LEVEL_4})")


# ---- schema -------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyFigure(_Strict):
    indicator: str = Field(description="指标名称，如 行政复议案件")
    value: float | None = Field(default=None, description="数值（已按万/亿换算）")
    unit: str = Field(default="", description="单位，如 件、%、元")
    raw: str = Field(description="原文中的写法，逐字照抄（数字与单位，连同“约”“余”等限定词）")
    quote: str = Field(description="包含该数字的原文句子，逐字照抄")
    chunk_id: str = Field(description="引用段落的编号")
    verified: bool = False
    change: str = (
        ""  # its change as the quote states it right after it (比上年增长5.2%), filled in on checking
    )


class Point(_Strict):
    text: str
    figures: list[str] = Field(default_factory=list, description="句中数字的原文写法")
    citations: list[str] = Field(default_factory=list, description="依据段落编号")
    verified: bool = True


class MeasureArea(_Strict):
    area: str
    points: list[Point] = Field(default_factory=list)


class SummaryContent(_Strict):
    """What an engine writes (also the JSON schema sent to the LLM)."""

    overview: str = Field(description="概况：谁、哪一年、主要数据，不超过200字")
    overview_citations: list[str] = Field(default_factory=list)
    measures: list[MeasureArea] = Field(default_factory=list, description="主要举措，按领域分组")
    key_figures: list[KeyFigure] = Field(default_factory=list, description="关键指标（最多12项）")
    problems: list[Point] = Field(default_factory=list, description="存在的不足")
    plans: list[Point] = Field(default_factory=list, description="下一步计划")


class Summary(SummaryContent):
    report_id: str
    template: str  # template ref (id@version#sha8)
    kind: str = ""  # the report's kind (qa.genre.kinds): how its sections are named
    title: str = ""
    issuer: str = ""
    region: str = ""
    year: int | None = None
    publish_date: str | None = None
    doc_number: str = ""
    engine: str = "extractive"
    model: str | None = None
    prompt_refs: list[str] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    source_hash: str = ""
    created_at: str = ""
    unverified: int = 0
    checks: list[str] = Field(default_factory=list)  # what verification flagged, one line each


@dataclass(frozen=True)
class Labels:
    """What a summary's sections are called for one kind of report (Markdown, Word and the app alike)."""

    overview: str = "概况"
    measures: str = "主要举措"
    figures: str = "关键指标"
    problems: str = "存在的不足"
    plans: str = "下一步计划"


LABELS = {
    kinds.LAW: Labels(),
    kinds.WORK: Labels(
        measures="过去一年工作回顾", figures="主要指标", problems="困难和问题", plans="今后工作安排"
    ),
    kinds.BULLETIN: Labels(
        measures="分领域情况", figures="主要指标及增长", problems="存在的问题", plans="下一步"
    ),
    kinds.DISCLOSURE: Labels(
        measures="公开工作情况", figures="主要数据", problems="存在的问题", plans="改进措施"
    ),
    kinds.OTHER: Labels(measures="主要内容", figures="关键数据", problems="存在的问题", plans="下一步计划"),
}


# what a report of each kind is, for a 概况 when it has no title line
KIND_TOPICS = {kinds.LAW: "法治政府建设情况报告", kinds.WORK: "政府工作报告", kinds.BULLETIN: "国民经济和社会发展统计公报",
               kinds.DISCLOSURE: "政府信息公开工作年度报告"}  # fmt: skip


def labels_of(summary: SummaryContent) -> Labels:
    """The section names for a summary's kind of report (a summary made before kinds: a 法治 report's)."""
    return LABELS.get(getattr(summary, "kind", "") or kinds.LAW, Labels())


def summary_heading(summary: Summary) -> str:
    """A summary's title: the report's own, else one composed from who and what (交城县2022年政府工作报告),
    never a file name unless nothing else is known."""
    if summary.title:  # a title printed spaced out (政 府 工 作 报 告) reads as one word
        return re.sub(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])", "", summary.title)
    who = summary.issuer or summary.region
    if not who:
        return summary.report_id
    year = f"{summary.year}年" if summary.year else ""
    if summary.kind == kinds.WORK:  # dated by the year it reviews, delivered the year after
        place = summary.region or re.sub(r"(?:人民)?政府$", "", who)
        return f"{place}政府工作报告" + (f"（{year}工作回顾）" if year else "")
    return f"{who}{year}{KIND_TOPICS.get(summary.kind, '报告')}"


@dataclass(frozen=True)
class ReportView:
    """Everything a summary needs about one report (from the store or straight from a file)."""

    report_id: str
    meta: ReportMeta
    text: str
    chunks: list[Chunk]
    source_hash: str


# ---- templates ----------------------------------------------------------------------------------


def summary_templates(prompts_dir: Path | None = None) -> list[PromptTemplate]:
    return [t for t in all_templates(prompts_dir) if t.id.startswith("summary_") and t.id != MAP]


def template_by_name(name: str, prompts_dir: Path | None = None) -> PromptTemplate:
    """The summary template `name` (rule_of_law or summary_rule_of_law); a ConfigError listing the choices."""
    template_id = name if name.startswith("summary_") else f"summary_{name}"
    choices = [t.id.removeprefix("summary_") for t in summary_templates(prompts_dir)]
    if template_id == MAP or template_id.removeprefix("summary_") not in choices:
        raise ConfigError(f"no summary template {name!r}; choose one of {', '.join(choices)} "
                          f"(or add prompts/summary_NAME.yaml)")  # fmt: skip
    return get_template(template_id, prompts_dir)


def choose_template(
    report: ReportView, name: str | None = None, prompts_dir: Path | None = None
) -> PromptTemplate:
    """--template wins; otherwise the first template whose `match` fits the title/opening, else generic."""
    if name:
        return template_by_name(name, prompts_dir)
    head = report.meta.title + "\n" + report.text[:500]
    for template in summary_templates(prompts_dir):
        if template.match and re.search(template.match, head):
            return template
    return get_template(GENERIC, prompts_dir)


# ---- offline engine -----------------------------------------------------------------------------


def clip(text: str, limit: int = OVERVIEW_MAX) -> str:
    """At most `limit` characters, cut after a sentence or else a clause, never inside a number."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    sentence_end = max(head.rfind(ch) for ch in "。！？；;")
    if sentence_end >= limit // 3:
        return head[: sentence_end + 1]
    clause_end = max(head.rfind(ch) for ch in "，,、：:")
    if clause_end >= limit // 3:
        return head[:clause_end] + "…"
    cut = limit - 1
    while cut > 0 and re.match(r"[\d.．,%]", text[cut - 1]) and re.match(r"[\d.．,%]", text[cut]):
        cut -= 1
    return text[:cut] + "…"


def _unique_chunks(chunks: Sequence[Chunk]) -> list[tuple[Chunk, str]]:
    """Each chunk with only the text it adds beyond the previous one (chunks overlap)."""
    out: list[tuple[Chunk, str]] = []
    covered = 0
    for chunk in sorted(chunks, key=lambda c: c.start):
        fresh = chunk.text[max(0, covered - chunk.start) :] if chunk.start < covered else chunk.text
        covered = max(covered, chunk.end)
        out.append((chunk, fresh))
    return out


def _figures_in(text: str) -> list[str]:
    return [f.raw for f in extract_figures(text)]


def part_points(report: ReportView, part: str, limit: int = 8, cap: int | None = None,
                seen: set[str] | None = None) -> list[Point]:  # fmt: skip
    """A report's problems or plans as the items that part lists (qa.genre.parts: the same items a chat answer
    lists), each citing the chunk it sits in. cap: compress each item to about that many characters; an
    item that is only a heading (（一）学习质效有待提高) takes the sentence after it, so it says something."""
    tops = [(s.title, s.start) for s in sections(report.text) if s.level == 1]
    found = parts.locate(report.report_id, report.text, tops, part)
    if found is None:
        return []
    body = report.text[found.start : found.end]
    spans = parts.items(body)[:limit]
    points = []
    for n, span in enumerate(spans):
        start, end = found.start + span.start, found.start + span.end
        text = report.text[start:end].strip().rstrip("；;，,")
        if cap is not None and text.rstrip("。；;！？").count("。") == 0 and len(text) <= 30:
            stop = found.start + spans[n + 1].start if n + 1 < len(spans) else found.end
            following = report.text[end:stop].strip()
            content = re.match(r"[^。！？]*[。！？]?", following)
            if content and len(content.group()) >= 4:
                text = f"{text.rstrip('。；;！？')}。{content.group()}"
                end = end + following.find(content.group()) + len(content.group()) if following else end
        holding = [c for c in report.chunks if c.start <= start and c.end >= end]
        touching = [c for c in report.chunks if c.start < end and c.end > start]
        cited = (holding or touching)[:1]
        if cap is not None:
            text = digest.compress(text, cap, seen, filler=1.0)
        if not says_nothing(text):
            points.append(Point(text=text, figures=_figures_in(text), citations=[c.id for c in cited]))
    return points


# 《法治政府建设与责任落实督察工作规定》 asks every annual report for the 党政主要负责人's performance of their
# duty as 推进法治建设第一责任人: where a report gives it a part of its own, its summary covers it.
MANDATED_AREA = re.compile(r"第一责任人")
MANDATED_NAME = "党政主要负责人履行第一责任人职责"  # the part's name as the regulation says it, whole


def _bare(text: str) -> str:
    """A sentence or heading without its list marker and closing punctuation, for telling one from the other."""
    return normalize(_HEADING.sub("", text.strip())).rstrip("。；;，,！？:：")


# a bullet that kept only when (2018年。过去的四年。2025年7月30日。): compressing cut off what was done
_TIME_ONLY = re.compile(
    r"^(?:过去的?|近|这|今|去|前|全)?[\d一二三四五六七八九十百两几]*个?(?:年度?|月份?|日|季度|年来|以来)"
    r"(?:[\d一二三四五六七八九十]*[年月日])*(?:以来|来)?$"
)


def says_nothing(text: str) -> bool:
    """A compressed bullet that kept only a time or a word or two: dropped rather than shown."""
    bare = _bare(text)
    return len(bare) <= 2 or bool(_TIME_ONLY.match(bare))


@dataclass(frozen=True)
class _Candidate:
    sentence: str
    chunk: Chunk
    score: float


def _measure_candidates(
    report: ReportView, figures: Sequence[tuple[Figure, Chunk]]
) -> dict[str, list[_Candidate]]:
    """The sentences of the report's measures part by area (its second-level section, else its first), in
    reading order, each with its salience (qa.summary.digest.salience). figures: report_figures(chunks)."""
    by_chunk: dict[str, list] = {}
    for figure, chunk in figures:
        by_chunk.setdefault(chunk.id, []).append(figure)
    areas: dict[str, list[_Candidate]] = {}
    headings = {_bare(s.title) for s in sections(report.text)}
    for chunk, fresh in _unique_chunks(report.chunks):
        if parts.classify(parts.top_section(chunk.section)) != "measures":
            continue
        path = chunk.section.split(" > ")
        # a part the regulation asks of every report stays one area, however it is divided
        area = path[0] if MANDATED_AREA.search(path[0]) or len(path) == 1 else path[1]
        mine = by_chunk.get(chunk.id, [])
        for sentence in [x.strip() for x in re.split(r"(?<=[。！？])|\n", fresh) if x.strip()]:
            if _HEADING.match(sentence) and len(sentence) <= 40 and not re.search(r"[。，,]", sentence):
                continue  # a heading line: its words are the area's name
            if _bare(sentence) in headings or (len(_bare(sentence)) <= 8 and not _figures_in(sentence)):
                continue  # a heading written as a sentence (收到政府信息公开申请情况。), or too short to say anything
            if re.search(r"[|｜]", sentence):
                continue  # a table's row (信息内容 ｜ 本年制发件数 ｜ …): its figures are read as a table, not a sentence
            if not re.search(r"[。！？；;]$", sentence) and len(sentence) <= 30 and not _figures_in(sentence):
                continue  # a heading line without a number (强化组织保障,发挥法治引领作用): no full stop, nothing counted
            lead = area not in areas
            areas.setdefault(area, []).append(
                _Candidate(sentence, chunk, digest.salience(sentence, mine, lead))
            )
    return areas


def _measures(areas: dict[str, list[_Candidate]], count: int, cap: int, seen: set[str]) -> list[MeasureArea]:
    """The most salient sentence of the most salient areas (in reading order), compressed; with fewer
    areas than MIN_MEASURES, an area gives its next best sentences too."""
    ranked = sorted(areas, key=lambda a: -max(c.score for c in areas[a]))[:count]
    mandated = [a for a in areas if MANDATED_AREA.search(a) and a not in ranked]
    if mandated and ranked:  # the part on the leaders' duty is in every summary that has it
        ranked[-1] = mandated[0]
    per_area = {a: 1 for a in ranked}
    spare = digest.MIN_MEASURES - len(ranked)
    for area in ranked:
        while spare > 0 and per_area[area] < len(areas[area]):
            per_area[area] += 1
            spare -= 1
    out = []
    for area in [a for a in areas if a in per_area]:
        best = sorted(areas[area], key=lambda c: -c.score)[: per_area[area]]
        best.sort(key=lambda c: areas[area].index(c))
        points = []
        for candidate in best:
            text = digest.compress(candidate.sentence, cap, seen)
            if not says_nothing(text) and not _only_a_heading(text):
                points.append(Point(text=text, figures=_figures_in(text), citations=[candidate.chunk.id]))
        if points:
            name = MANDATED_NAME if MANDATED_AREA.search(area) else digest.short_title(area)
            out.append(MeasureArea(area=name, points=points))
    return out


def _only_a_heading(text: str) -> bool:
    """A measure cut down to a heading's few words (加大简政放权力度。强化组织保障。): no figure and at most
    HEADING_ONLY characters say what was to be done, not what was done."""
    return len(_bare(text)) <= HEADING_ONLY and not _figures_in(text)


HEADING_ONLY = 8


def _who(meta: ReportMeta) -> str:
    """The issuer with the places above it that its name leaves out: 山东省淄博市淄川区人民政府."""
    name = meta.issuer or meta.region or meta.title
    # a place above is left out when the name already says it, in full or short (赣州 in 赣州蓉江新区)
    above = [p for p in meta.region_path[:-1] if p and p not in name and p[:2] not in name]
    return "".join(above) + name if name else "本报告"


# Budget levels, loosest first: (measure item chars, measures, part item chars, part items, figures)
_LEVELS = ((70, 6, 50, 5, 12), (55, 5, 40, 4, 10), (45, 4, 32, 4, 8), (36, 3, 26, 3, 6), (28, 3, 20, 3, 5))
# …and for a short text (a page's opening of 600–900 characters) that none of those fit: the 概况 says who and
# what without repeating the headline figures the table right below it shows, and fewer, shorter items
_SHORT_LEVELS = ((24, 2, 18, 2, 4), (20, 2, 16, 2, 3), (18, 1, 14, 1, 3))


def summary_length(content: SummaryContent) -> int:
    """The characters a reader reads: 概况, each area and item, each figure's label and value, shortcomings
    and plans. Quotes are shown on demand (the 来源 list, the figure's quote) and are not counted."""
    return (
        len(content.overview)
        + sum(len(a.area) + sum(len(p.text) for p in a.points) for a in content.measures)
        + sum(_label_length(f.indicator) + len(f.raw) for f in content.key_figures)
        + sum(len(p.text) for p in [*content.problems, *content.plans])
    )


def _label_length(label: str) -> int:
    """A figure's label as read: its （预计） mark is a flag on the value, not more to read."""
    return len(label.removesuffix(digest.ESTIMATE_MARK))


def budget(report: ReportView) -> int:
    return int(len(report.text) * digest.SHARE)


def offline_content(report: ReportView) -> SummaryContent:
    """A short summary from the report's own words (qa.summary.digest): 概况 composed from the report's identity
    and headline indicators; the catalogue indicators it states; the most salient sentence of its main
    areas, compressed; its shortcomings and plans as items with content — at the loosest budget level
    that keeps the summary within `budget(report)` characters."""
    in_chunks = report_figures(report.chunks)  # read once: the catalogue and the areas share it
    figures = [(f, c.id) for f, c in in_chunks]
    catalogued = digest.catalogue_rows(figures)
    lead = _headline_part(in_chunks) if report.meta.kind == kinds.BULLETIN else frozenset()
    stated = digest.key_figures(figures, catalogued=catalogued, lead=lead)
    areas = _measure_candidates(report, in_chunks)
    meta = report.meta
    topic = digest.topic_of(meta.title, [meta.issuer, meta.region, *meta.region_path])
    if not meta.title:  # no title to read the topic from: the report's kind says what it is
        topic = KIND_TOPICS.get(meta.kind, topic)
    more = digest.key_figures(figures, limit=digest.MAX_FIGURES_FILLED, fill_to=digest.MAX_FIGURES_FILLED,
                              longest=digest.LABEL_MAX_FILLED, catalogued=catalogued, lead=lead)  # fmt: skip
    in_tables = digest.table_figures(report.text, [(c.start, c.end, c.id) for c in report.chunks])
    # a disclosure report's data is its standard tables (主动公开, 依申请, 复议和诉讼); others' tables come after
    more = in_tables + more if meta.kind == kinds.DISCLOSURE else more + in_tables
    limit = budget(report)
    best: SummaryContent | None = None
    for item_cap, n_measures, part_cap, n_items, n_figures in _LEVELS + _SHORT_LEVELS:
        rows = stated[:n_figures]
        headline = [r for r in rows if r.catalogued][:3] or rows[:3]
        shown = headline if n_figures >= _LEVELS[-1][-1] else []
        seen: set[str] = set()
        content = SummaryContent(
            overview=_work_report_overview(meta, report.text, shown)
            if meta.kind == kinds.WORK
            else digest.composed_overview(_who(meta), meta.year, topic, shown),
            overview_citations=list(dict.fromkeys(r.where for r in shown)),
            measures=_measures(areas, n_measures, item_cap, seen),
            key_figures=[_key_figure(r) for r in rows],
            problems=part_points(report, "problems", n_items, part_cap, seen),
            plans=part_points(report, "plans", n_items, part_cap, seen),
        )
        if summary_length(content) > limit:
            continue
        # the figures are what a reader checks first: the loosest level whose text leaves the most room for
        # the table, up to FIGURES_WANTED rows (or all the report has)
        filled = _more_figures(content, more, limit)
        if best is None or _rows(filled) > _rows(best):
            best = filled
        if _rows(filled) >= min(digest.FIGURES_WANTED, len(more)):
            break
    return best or _more_figures(content, more, limit)


def _headline_part(in_chunks: Sequence[tuple[Figure, Chunk]]) -> frozenset[int]:
    """A statistics bulletin states its headline indicators in its first part (一、综合: the economy's total
    and its industries, population, employment, prices — the genre's standard order): the ids of the
    figures of the first numbered part that states any, to lead its table in the order stated. None when
    the text has no parts (a page flattened to one line)."""
    top = [c.section.split(" > ")[0] for _, c in in_chunks if c.section]
    return frozenset(id(f) for f, c in in_chunks if top and c.section.split(" > ")[0] == top[0])


def _rows(content: SummaryContent) -> int:
    return min(len(content.key_figures), digest.FIGURES_WANTED)


def _work_report_overview(meta: ReportMeta, text: str, headline: Sequence[digest.Stated]) -> str:
    """A work report is dated by the year it reviews and delivered the year after: its 概况 names the year its
    text states — the year it is delivered (2022年政府工作报告), else the year it reviews (2018年工作回顾) —
    never a year the report does not write."""
    said = normalize(text)
    place = re.sub(r"(?:人民)?政府$", "", _who(meta))  # 交城县人民政府 → 交城县政府工作报告, not …政府政府…
    first = digest.composed_overview(place, None, "政府工作报告", headline)
    if meta.year and f"{meta.year + 1}年" in said:
        return first.replace("政府工作报告", f"{meta.year + 1}年政府工作报告", 1)
    if meta.year and f"{meta.year}年" in said:
        return first.replace("政府工作报告。", f"政府工作报告（{meta.year}年工作回顾）。", 1)
    return first


def _more_figures(content: SummaryContent, stated: list[digest.Stated], limit: int) -> SummaryContent:
    """The room the text leaves under the budget goes to more figure rows (a row is its label and value,
    a few characters each), in the order key_figures gives them, up to MAX_FIGURES_FILLED; a row that
    restates a shown one (_Said) is not shown again."""
    rows = list(content.key_figures)
    shown = {(f.indicator, f.raw) for f in rows} | {f.raw for f in rows}
    said = _Said(rows)
    length = summary_length(content)  # a row adds its label and value (summary_length counts them so)
    for row in stated:
        if (row.label, row.raw) in shown or row.raw in shown or said.restates(row):
            continue
        if len(rows) >= digest.MAX_FIGURES_FILLED or length + _label_length(row.label) + len(row.raw) > limit:
            break
        rows.append(_key_figure(row))
        said.add(rows[-1])
        length += _label_length(row.label) + len(row.raw)
    return content.model_copy(update={"key_figures": rows})


def _digits(raw: str) -> str:
    return re.sub(r"[^\d.]", "", raw)


class _Said:
    """The shown rows by their digits — a value's and its change's — with their quotes and names: a row
    restates a shown one when it has the same digits and one's name is inside the other's (a table's
    地区生产总值 绝对数(万元) 2673224 and 地区生产总值 比上年增长(%) 5.2 restate the text's 生产总值 2673224万元,
    比上年增长5.2%; 第一产业 绝对数(万元) 298071 its 第一产业增加值), and is not in the same line (one line's
    cells, 本年制发 3 and 本年废止 3, are two figures)."""

    def __init__(self, rows: Sequence[KeyFigure]) -> None:
        self._by_digits: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            self.add(row)

    def add(self, row: KeyFigure) -> None:
        for digits in {_digits(row.raw), _digits(digest.change_after(row.quote, row.raw))} - {""}:
            self._by_digits.setdefault(digits, []).append((row.quote, normalize(row.indicator)))

    def restates(self, row: digest.Stated) -> bool:
        label, name = normalize(row.label), normalize((row.label.split() or [""])[0])  # a table cell: its row
        return any(
            quote != row.quote and (indicator in label or (name and name in indicator))
            for quote, indicator in self._by_digits.get(_digits(row.raw), ())
        )


def _key_figure(row: digest.Stated) -> KeyFigure:
    number = parse_number(row.raw)
    return KeyFigure(indicator=row.label, value=float(number.value) if number else None,
                     unit=number.unit if number else "", raw=row.raw, quote=row.quote, chunk_id=row.where)  # fmt: skip


def fit(content: SummaryContent, limit: int) -> SummaryContent:
    """The same budget for a model's summary: at most MAX_FIGURES figures and MAX_MEASURES areas, then
    items compressed at clause boundaries (qa.summary.digest.compress) level by level until it fits."""
    for item_cap, n_measures, part_cap, n_items, n_figures in _LEVELS:
        seen: set[str] = set()

        def squeeze(points: list[Point], cap: int, keep: int, seen: set[str] = seen) -> list[Point]:
            out = []
            for point in points[:keep]:
                text = digest.compress(point.text, cap, seen)
                out.append(
                    point.model_copy(
                        update={"text": text, "figures": [f for f in point.figures if f in text]}
                    )
                )
            return out

        fitted = content.model_copy(update={
            "measures": [a.model_copy(update={"area": digest.short_title(a.area), "points": squeeze(a.points, item_cap, 2)})
                         for a in content.measures[:n_measures]],
            "key_figures": content.key_figures[:n_figures],
            "problems": squeeze(content.problems, part_cap, n_items),
            "plans": squeeze(content.plans, part_cap, n_items),
        })  # fmt: skip
        if summary_length(fitted) <= limit:
            return fitted
    return fitted


# ---- verification -------------------------------------------------------------------------------


def _grounding(report_text: str) -> Callable[[str], list[Number]]:
    """qa.genre.numbers.ungrounded against one report, with the report's numbers found once (not per field)."""
    in_report = squashed(report_text)
    report_numbers = find_numbers(report_text)
    dates = {n.value for n in report_numbers if n.unit == "date"}

    def missing(text: str) -> list[Number]:
        out = []
        for number in find_numbers(text):
            if squashed(number.raw) in in_report:
                continue
            if number.unit == "date":
                if number.value not in dates:
                    out.append(number)
            elif not any(number.same_as(other) for other in report_numbers):
                out.append(number)
        return out

    return missing


def verify(content: SummaryContent, report: ReportView) -> tuple[SummaryContent, list[str]]:
    """Mark each figure verified iff its raw text is in its quote and the quote in its chunk; flag every
    number in a text field that the report does not contain. Returns the checked copy and the flags."""
    chunks = {c.id: c for c in report.chunks}
    report_norm = normalize(report.text)
    # the report's identity (its title, the year it reports on) is part of what a summary may state
    identity = "\n".join([report.meta.title, f"{report.meta.year}年" if report.meta.year else ""])
    not_in_report = _grounding(identity + "\n" + report.text)
    flags: list[str] = []
    figures = []
    for figure in content.key_figures:
        chunk = chunks.get(figure.chunk_id)
        ok = (
            chunk is not None
            and whole_at(normalize(figure.quote), normalize(figure.raw)) >= 0  # 9亿元 is not in 39.9亿元
            and normalize(figure.quote) in normalize(chunk.text)
        )
        if not ok:
            where = "unknown chunk" if chunk is None else "not in the quoted passage"
            flags.append(f"figure {figure.indicator} {figure.raw}: {where}")
        number = parse_number(figure.raw)
        figures.append(figure.model_copy(update={
            "verified": ok,
            "value": float(number.value) if number else figure.value,
            "unit": number.unit if number else figure.unit,
            "change": digest.change_after(figure.quote, figure.raw) if ok else "",
        }))  # fmt: skip

    def check_point(point: Point, label: str) -> Point:
        bad = [n.raw for n in not_in_report(point.text)]
        bad += [f for f in point.figures if normalize(f) not in report_norm and f not in bad]
        unknown = [c for c in point.citations if c not in chunks]
        if bad:
            flags.append(f"{label}: numbers not in the report: {', '.join(bad)}")
        if unknown:
            flags.append(f"{label}: cites unknown passages {', '.join(unknown)}")
        return point.model_copy(update={"verified": not bad and not unknown})

    for label, text in [("overview", content.overview),
                        *((f"measures/{a.area}: area", a.area) for a in content.measures),
                        *((f"figure {f.indicator}: indicator", f.indicator) for f in content.key_figures)]:  # fmt: skip
        bad = [n.raw for n in not_in_report(text)]
        if bad:
            flags.append(f"{label}: numbers not in the report: {', '.join(bad)}")
    unknown_overview = [c for c in content.overview_citations if c not in chunks]
    if unknown_overview:
        flags.append(f"overview: cites unknown passages {', '.join(unknown_overview)}")
    checked = content.model_copy(
        update={
            "key_figures": figures,
            "measures": [
                area.model_copy(
                    update={"points": [check_point(p, f"measures/{area.area}") for p in area.points]}
                )
                for area in content.measures
            ],
            "problems": [check_point(p, "problems") for p in content.problems],
            "plans": [check_point(p, "plans") for p in content.plans],
        }
    )
    return checked, flags


# ---- LLM engine ---------------------------------------------------------------------------------


def section_batches(chunks: Sequence[Chunk], budget_chars: int = 3000) -> list[list[Chunk]]:
    """Consecutive chunks grouped by top-level section, each group within the budget."""
    batches: list[list[Chunk]] = []
    current: list[Chunk] = []
    size = 0
    for chunk in sorted(chunks, key=lambda c: c.start):
        top = chunk.section.split(" > ")[0]
        same_part = current and current[-1].section.split(" > ")[0] == top
        if current and (not same_part or size + len(chunk.text) > budget_chars):
            batches.append(current)
            current, size = [], 0
        current.append(chunk)
        size += len(chunk.text)
    if current:
        batches.append(current)
    return batches


def _json_text(text: str) -> str:
    """The JSON object in a reply: without ``` fences or a sentence before/after it."""
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    if not text.startswith("{") and "{" in text and "}" in text:
        text = text[text.index("{") : text.rindex("}") + 1]
    return text


def in_parallel(fn: Callable[..., Any], calls: Sequence[tuple], workers: int) -> list[Any]:
    """fn(*args) for each args, up to `workers` at a time, results in input order. After a failure nothing
    new is started and the first failure (in input order) is raised. Daemon threads, not an executor: an
    interrupted batch exits at once instead of waiting for calls in flight."""
    if workers <= 1 or len(calls) <= 1:
        return [fn(*args) for args in calls]
    results: list[Any] = [None] * len(calls)
    errors: dict[int, BaseException] = {}
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for n in range(len(calls)):
        todo.put(n)

    def work() -> None:
        while not errors:
            try:
                n = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[n] = fn(*calls[n])
            except BaseException as ex:  # re-raised on the calling thread below
                errors[n] = ex

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(workers, len(calls)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[min(errors)]
    return results


def _add_usage(total: dict[str, Any], more: dict[str, Any]) -> None:
    """Add token counts and calls; a cost stays None (unknown) until some call has a price."""
    for key in ("prompt_tokens", "completion_tokens", "llm_calls"):
        if key in more:
            total[key] = total.get(key, 0) + more[key]
    if more.get("cost_usd") is not None:
        total["cost_usd"] = (total.get("cost_usd") or 0) + more["cost_usd"]


def writer_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent to the model: only what it writes. Fields the code fills in after checking
    (a figure's `verified`, its parsed `value` and `unit`) are left out, so no model fills them in."""
    schema = copy.deepcopy(model.model_json_schema())
    for part in [schema, *schema.get("$defs", {}).values()]:
        properties = part.get("properties", {})
        for name in CHECKED_FIELDS & set(properties):
            del properties[name]
        if "required" in part:
            part["required"] = [r for r in part["required"] if r not in CHECKED_FIELDS]
    return schema


CHECKED_FIELDS = {"verified", "value", "unit", "change"}


def _empty(reply: BaseModel) -> bool:
    """A reply whose every field is empty: a section (or a report) that silently drops out."""
    return not any(v for v in reply.model_dump().values() if not isinstance(v, bool))


def _json_reply(llm: ChatModel, messages: list[dict[str, str]], template: PromptTemplate, model: type[BaseModel],
                usage: dict[str, Any], what: str) -> BaseModel:  # fmt: skip
    """Ask for JSON, validate it; on failure send the error back once for a repair, then give up with an
    error that names the report and the step (`what`). A reply cut at the token limit, or one that is not
    a reply (an echo, a loop, an empty map), fails at once: a repair request cannot fix those."""
    schema = template.json_schema or writer_schema(model)
    for attempt in (1, 2):
        try:
            completion = llm.complete(messages, prompt_ref=template.ref, json_schema=schema)
        except QAError as ex:  # say which report and which part: "zichuan.txt (map, part 2/5): …"
            raise ex.within(what) from ex
        _add_usage(usage, {"prompt_tokens": completion.prompt_tokens, "llm_calls": 1,
                           "completion_tokens": completion.completion_tokens, "cost_usd": completion.cost_usd})  # fmt: skip
        try:
            reply = model.model_validate_json(_json_text(completion.text))
        except ValidationError as ex:
            problem = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in ex.errors()[:3]
            )
            if attempt == 2:
                raise OutputError(
                    f"{what}: model {llm.model} returned invalid JSON twice (also after a repair request) "
                    f"for {template.ref}: {problem}; retry, or try another model or --engine offline"
                ) from ex
            messages = [*messages, {"role": "assistant", "content": completion.text},
                        {"role": "user", "content": f"上面的输出不是符合要求的 JSON（{problem}）。请只输出修正后的 JSON。"}]  # fmt: skip
            continue
        if _empty(reply):
            raise DegenerateReply(
                f"{what}: model {llm.model} returned an empty JSON reply (every field empty) for passages "
                f"that have content; {sanity.WHAT_TO_TRY}, or use --engine offline"
            )
        return reply
    raise AssertionError("unreachable")


class SectionNotes(_Strict):
    points: list[MeasureArea] = Field(default_factory=list)
    key_figures: list[KeyFigure] = Field(default_factory=list)
    problems: list[Point] = Field(default_factory=list)
    plans: list[Point] = Field(default_factory=list)


def llm_content(report: ReportView, llm: ChatModel, template: PromptTemplate, usage: dict[str, Any],
                prompts_dir: Path | None = None, map_workers: int = 1) -> tuple[SummaryContent, list[str]]:  # fmt: skip
    """Map every section batch to notes (the whole report, never top-k; up to `map_workers` at a time, notes
    kept in document order), then reduce the notes into the template's schema."""
    mapper = get_template(MAP, prompts_dir)
    batches = section_batches(report.chunks)

    def map_one(n: int, batch: list[Chunk]) -> tuple[dict[str, Any], dict[str, Any]]:
        own: dict[str, Any] = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
        passages = [{"id": c.id, "section": c.section, "text": c.text} for c in batch]
        messages = mapper.render(title=report.meta.title or report.report_id, passages=passages)
        what = f"{report.report_id} (map, part {n}/{len(batches)})"
        return _json_reply(llm, messages, mapper, SectionNotes, own, what).model_dump(), own

    mapped = in_parallel(map_one, list(enumerate(batches, 1)), map_workers)
    notes = [note for note, _ in mapped]
    for _, own in mapped:
        _add_usage(usage, own)
    messages = template.render(
        title=report.meta.title or report.report_id,
        meta=report.meta.to_dict(),
        notes=json.dumps(notes, ensure_ascii=False),
        overview_max=OVERVIEW_MAX,
        budget=budget(report),
    )
    content = _json_reply(llm, messages, template, SummaryContent, usage, f"{report.report_id} (reduce)")
    content = content.model_copy(update={"overview": clip(content.overview.strip(), OVERVIEW_MAX)})  # type: ignore[attr-defined]
    # a model's summary keeps the length budget the offline one is made to
    return fit(content, budget(report)), [mapper.ref, template.ref]  # type: ignore[arg-type]


# ---- entry point --------------------------------------------------------------------------------


class SummaryWriter(Protocol):
    """What the summarizer needs of an engine (qa.engines.base.Engine is one)."""

    name: str
    model: str | None

    def summary_content(self, report: ReportView, template: PromptTemplate, usage: dict[str, Any],
                        map_workers: int) -> tuple[SummaryContent, list[str]]: ...  # fmt: skip

    def summary_refs(self, template: PromptTemplate) -> list[str]: ...

    def limited(self, calls: int) -> SummaryWriter: ...


class OfflineWriter:
    """The default writer: the report's own words (offline_content), no model."""

    name, model = "extractive", None

    def summary_content(self, report: ReportView, template: PromptTemplate, usage: dict[str, Any],
                        map_workers: int) -> tuple[SummaryContent, list[str]]:  # fmt: skip
        return offline_content(report), [template.ref]

    def summary_refs(self, template: PromptTemplate) -> list[str]:
        return [template.ref]

    def limited(self, calls: int) -> OfflineWriter:
        return self


OFFLINE_WRITER = OfflineWriter()


def summarize_report(
    report: ReportView,
    engine: SummaryWriter | None = None,
    *,
    template: str | None = None,
    strict: bool = False,
    prompts_dir: Path | None = None,
    map_workers: int = 1,
) -> Summary:
    """A verified structured summary of a whole report, its content written by `engine` (qa.wiring.make_engine
    builds one; default: offline, from the report's own words). map_workers: section maps sent at once
    (bound the calls in flight across threads with the engine's `limited`)."""
    writer = engine or OFFLINE_WRITER
    chosen = choose_template(report, template, prompts_dir)
    usage: dict[str, Any] = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
    try:
        content, refs = writer.summary_content(report, chosen, usage, map_workers)
    except QAError as ex:
        if report.report_id in str(ex):
            raise
        raise ex.within(report.report_id) from ex
    content = content.model_copy(update={"overview": clip(content.overview.strip(), OVERVIEW_MAX)})
    checked, flags = verify(content, report)
    if strict and flags:
        raise OutputError(f"{report.report_id}: {len(flags)} unverified item(s) (--strict): {flags[0]}")
    meta = report.meta
    return Summary(
        **checked.model_dump(),
        report_id=report.report_id,
        template=chosen.ref,
        kind=meta.kind,
        title=meta.title,
        issuer=meta.issuer,
        region=meta.region,
        year=meta.year,
        publish_date=meta.publish_date,
        doc_number=meta.doc_number,
        engine=writer.name,
        model=writer.model,
        prompt_refs=refs,
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        cost_usd=usage["cost_usd"],
        source_hash=report.source_hash,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        unverified=len(flags),
        checks=flags,
    )
