"""报告体检: a 法治政府建设 annual report against what 《法治政府建设与责任落实督察工作规定》 asks of it
(qa.genre.regulation): which of the contents it has, each linked to the heading or sentence that gives it,
or named as missing with where we looked; whether it was public by the deadline; how concrete each part is
(figures per part). Pure: a ReportView in, a Checkup out; documents are qa.summary.checkup_docs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date

from qa.core.schemas import Chunk
from qa.genre import kinds, parts, regulation
from qa.genre.figures import extract_figures
from qa.genre.regulation_text import UNREAD, Basis
from qa.ingest.chunking import Section, sections
from qa.summary.summarize import ReportView

QUOTE_MAX = 80  # a heading or sentence quoted as evidence, cut at this many characters
_SENTENCE = re.compile(r"[^。！？\n]+[。！？]?")


@dataclass(frozen=True)
class Evidence:
    """Where a content is: a heading of the report, or a sentence of its text where no heading names it."""

    by: str  # 标题 | 正文
    section: str  # the top-level part it sits in ("" before the first heading)
    quote: str  # the heading line or the sentence, verbatim (cut at QUOTE_MAX)
    start: int  # offset into the report's text
    chunk_id: str = ""  # internal reference, in the JSON record only


@dataclass(frozen=True)
class Finding:
    """One content the regulation asks for, judged for one report."""

    key: str
    name: str
    asks: str
    required: bool
    present: bool
    evidence: Evidence | None
    figures: int  # figures in the part (its section, or its sentence when no heading names it)
    chars: int
    note: str  # why it counts as missing, or what a reviewer should look at
    judged: bool = True  # False: absent from a text that is cut short, so it may be in the part not given

    @property
    def status(self) -> str:
        if self.present:
            return "有" if self.evidence and self.evidence.by == "标题" else "有（正文提及，未单列）"
        if not self.judged:
            return "无法判断"
        return "缺" if self.required else "未写（可选）"


@dataclass(frozen=True)
class Timeliness:
    due: str | None  # YYYY-MM-DD, the day it had to be public by
    published: str | None
    on_time: bool | None  # None: could not be judged (note says why)
    note: str

    @property
    def status(self) -> str:
        return {True: "按时", False: "逾期", None: "无法判断"}[self.on_time]


@dataclass(frozen=True)
class Checkup:
    report_id: str
    label: str
    kind: str
    year: int | None
    applicable: bool  # a 法治 report; other kinds get a note and no judgements
    findings: tuple[Finding, ...] = ()
    timeliness: Timeliness | None = None
    figures: int = 0
    chars: int = 0
    note: str = ""
    basis: Basis = field(
        default=UNREAD
    )  # what it cites: the regulation, and its articles when its text was read

    @property
    def missing(self) -> list[str]:
        return [f.name for f in self.findings if f.required and f.judged and not f.present]

    @property
    def per_thousand(self) -> float:
        """Figures per 1,000 characters of the report: how concrete it is as a whole."""
        return round(1000 * self.figures / self.chars, 1) if self.chars else 0.0

    def to_dict(self) -> dict:
        record = asdict(self)
        record["missing"] = self.missing
        record["per_thousand"] = self.per_thousand
        return record


# A page that shows only the opening of a report marks the cut (……): what is not in the text may be in the
# part not given, so it is not judged missing.
_CUT = re.compile(r"(?:……|…|\.\.\.)\s*$")
CUT_NOTE = "文本以“……”结尾，是节选，其后的部分无法判断"


def cut_short(text: str) -> bool:
    return bool(_CUT.search(text))


# ---- finding each content -------------------------------------------------------------------------------


def _end_of(tree: Sequence[Section], index: int, text_length: int) -> int:
    """Where a section ends: the next heading of its level or above."""
    level = tree[index].level
    for later in tree[index + 1 :]:
        if later.level <= level:
            return later.start
    return text_length


def _line(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start : end if end >= 0 else len(text)].strip()


def _cut(quote: str) -> str:
    return quote if len(quote) <= QUOTE_MAX else quote[: QUOTE_MAX - 1].rstrip("…") + "…"


def _chunk_at(chunks: Sequence[Chunk], start: int) -> str:
    return next((c.id for c in chunks if c.start <= start < c.end), "")


def _top_title(tree: Sequence[Section], start: int) -> str:
    tops = [s for s in tree if s.level == 1 and s.start <= start]
    return tops[-1].title if tops else ""


def _count(text: str) -> int:
    return len(extract_figures(text))


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    by: str  # 标题 | 正文


def _heading_spans(report: ReportView, tree: Sequence[Section], content: regulation.Content) -> list[_Span]:
    """The parts whose heading announces the content: for 主要举措和成效, every top-level part that is none
    of the others (its headings rarely say 举措; 一、坚持党的领导… is one)."""
    text = report.text
    tops = [(s.title, s.start) for s in tree if s.level == 1]
    if content.key in ("problems", "plans"):
        found = parts.locate(report.report_id, text, tops, content.key)
        return [_Span(found.start, found.end, "标题")] if found else []
    spans = []
    for index, section in enumerate(tree):
        if content.key == "measures":
            if section.level != 1 or parts.classify(section.title) != "measures":
                continue
            if regulation.BY_KEY["leaders"].heading.search(section.title):
                continue
        elif not (content.heading and content.heading.search(section.title)):
            continue
        spans.append(_Span(section.start, _end_of(tree, index, len(text)), "标题"))
    return spans


def _sentence_span(
    text: str, content: regulation.Content, after: int, outside: Sequence[_Span]
) -> _Span | None:
    """The first sentence (after the opening, outside the given spans) that gives the content where no
    heading does."""
    for match in _SENTENCE.finditer(text, after):
        if any(s.start <= match.start() < s.end for s in outside):
            continue
        if content.key != "plans" and _EXHORTS.search(match.group()):
            continue  # what must be done (主要负责人要切实履行…职责) is not a report of what was done
        if content.sentence.search(match.group()):
            lead = len(match.group()) - len(match.group().lstrip())
            return _Span(match.start() + lead, match.end(), "正文")
    return None


# A sentence that says what must be done, not what was: …要切实履行… / 应当落实… / 必须做到…
_EXHORTS = re.compile(
    r"(?:要|应当|必须|务必)(?:切实|认真|严格|全面|进一步|坚决)?(?:履行|落实|做到|做好|加强|推进|担负|扛起)"
)


def _paragraph(text: str, span: _Span) -> tuple[int, int]:
    """The paragraph (line) a sentence sits in: where a report without headings gives a content, what its
    figures and causes are counted over (究其原因… follows the sentence that names the 不足)."""
    start = text.rfind("\n", 0, span.start) + 1
    end = text.find("\n", span.end)
    return start, end if end >= 0 else len(text)


_LOOKED = {
    "measures": "没有讲工作举措的部分，正文也没有一句写明做了多少（如“办理…件”）",
    "problems": "没有标题含“不足/问题/短板/差距”的部分，正文也没有“存在…不足/问题”的句子",
    "leaders": "没有标题或句子讲上一年度党政主要负责人履行推进法治建设第一责任人职责（下一年度安排中的提及不算）",
    "plans": "没有标题含“安排/计划/下一步/打算”的部分，正文也没有“下一步/今后…将”的句子",
    "other": "报告没有“其他需要报告的情况”一节（可选）",
}


def _finding(
    report: ReportView, tree: Sequence[Section], content: regulation.Content, body_start: int, asks: str
) -> Finding:
    text = report.text
    # the year reported on is not in next year's plans: a heading or mention there does not give a past content
    plans = [] if content.key == "plans" else _heading_spans(report, tree, regulation.BY_KEY["plans"])
    spans = [
        s for s in _heading_spans(report, tree, content) if not any(p.start <= s.start < p.end for p in plans)
    ]
    if not spans and content.key != "other":
        sentence = _sentence_span(text, content, body_start, plans)
        spans = [sentence] if sentence else []
    if not spans:
        if cut_short(text):
            return Finding(content.key, content.name, asks, content.required, False, None, 0, 0,
                           f"{_LOOKED[content.key]}；{CUT_NOTE}", judged=False)  # fmt: skip
        return Finding(content.key, content.name, asks, content.required, False, None, 0, 0,
                       _LOOKED[content.key])  # fmt: skip
    first = spans[0]
    if (
        first.by == "标题"
    ):  # the heading of the part; a part inside one (下一步… in 存在的问题及下步打算): its heading
        at = max(s.start for s in tree if s.start <= first.start)
        quote = _line(text, at)
    else:
        at, quote = first.start, text[first.start : first.end].strip()
    evidence = Evidence(first.by, _top_title(tree, at), _cut(quote), at, _chunk_at(report.chunks, at))
    if first.by == "正文":  # counted over its paragraph: the sentence names it, the paragraph gives it
        body = text[slice(*_paragraph(text, first))]
    else:
        body = "".join(text[s.start : s.end] for s in spans)
    figures = _count(body)
    notes = []
    if first.by == "正文":
        notes.append("正文提及，未单列成部分")
    said = body if first.by == "正文" else "".join(text[s.start : s.end].split("\n", 1)[-1] for s in spans)
    if content.key == "problems" and not regulation.CAUSE.search(said):  # a heading promising 原因 is not one
        notes.append("写了不足，未写原因")
    if content.key in ("measures", "leaders") and first.by == "标题" and figures == 0:
        notes.append("本部分没有具体数字")
    return Finding(content.key, content.name, asks, content.required, True, evidence, figures,
                   len(body), "；".join(notes))  # fmt: skip


# ---- the deadline ---------------------------------------------------------------------------------------


def timeliness(
    year: int | None, made_public: str | None, signed: str | None = None, basis: Basis = UNREAD
) -> Timeliness:
    """Public by the day the regulation sets (4月1日, that day included) of the year after the one reported
    on? Judged by the date the page says it published the report; a report known only by its issue or
    sign-off date is late when that date is past the deadline (it cannot be public before it is signed), and
    not judged on time from it."""
    if year is None:
        return Timeliness(None, made_public or None, None, "报告没有写明年度，无法确定公开时限")
    due = basis.deadline(year)
    day = _day(made_public)
    if day is not None:
        if day < due:
            return Timeliness(due.isoformat(), made_public, True, f"页面发布日期{made_public}，在时限之前")
        if day == due:
            return Timeliness(
                due.isoformat(), made_public, True, f"页面发布日期{made_public}，正是时限当天（按含当天计）"
            )
        late = (day - due).days
        return Timeliness(due.isoformat(), made_public, False, f"页面发布日期{made_public}，晚于时限{late}天")
    if made_public:
        return Timeliness(due.isoformat(), made_public, None, f"发布日期“{made_public}”不是日期，无法判断")
    day = _day(signed)
    if day is not None and day > due:
        late = (day - due).days
        return Timeliness(due.isoformat(), None, False,
                          f"页面没有写发布日期；成文（落款）日期{signed}已晚于时限{late}天，公开只会更晚")  # fmt: skip
    if day is not None:
        return Timeliness(due.isoformat(), None, None,
                          f"页面没有写发布日期；成文（落款）日期{signed}在时限之前，但无法确认何时公开")  # fmt: skip
    return Timeliness(due.isoformat(), None, None, "页眉和落款都没有日期，无法判断是否按时公开")


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


# ---- the check-up -----------------------------------------------------------------------------------------


def check_report(report: ReportView, basis: Basis = UNREAD) -> Checkup:
    """The check-up of one report against the regulation as `basis` cites it (its text read, or by name). A
    report of another kind (a work report, a bulletin…) is not judged against it: its Checkup says so."""
    meta = report.meta
    label = meta.label or report.report_id
    if not kinds.compared(meta.kind):
        what = (
            f"本报告是{meta.kind}"
            if meta.kind != kinds.OTHER
            else "本报告不是法治政府建设年度报告（也不是其他已知类型）"
        )
        return Checkup(report.report_id, label, meta.kind, meta.year, False,
                       note=f"{what}，报告体检只适用于法治政府建设年度报告", basis=basis)  # fmt: skip
    tree = sections(report.text)
    body_start = tree[0].start if tree else 0
    findings = tuple(
        _finding(report, tree, content, body_start, basis.asks_for(content))
        for content in regulation.CONTENTS
    )
    return Checkup(
        report.report_id, label, meta.kind, meta.year, True, findings,
        timeliness(meta.year, meta.made_public, meta.publish_date, basis), _count(report.text),
        len(report.text), note=CUT_NOTE if cut_short(report.text) else "", basis=basis,
    )  # fmt: skip
