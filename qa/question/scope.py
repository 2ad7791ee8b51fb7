"""What a question is about (places, issuers, years, "across reports", national) and which stored
reports may answer it. One parsed `Scope` serves both engines; `route` is the only place that decides
which reports an answer may cite, and why it must refuse instead.

Pure functions over the question, the report registry and the gazetteer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qa.core.naming import label_of as _label
from qa.core.schemas import ReportRecord
from qa.core.text import nfkc, normalize
from qa.genre import gazetteer, kinds, parts
from qa.genre.gazetteer import Gazetteer

# A year that is not the one asked about: inside 《…》, a span (2021—2025年).
_NOT_ASKED_YEAR = re.compile(r"《[^》]{0,80}》|(?:19|20)\d{2}\s*[-—–~至到]\s*(?:19|20)?\d{2}\s*年?")
# A year asked about; a year that is part of a date (截至2023年3月15日) dates a figure, it does not choose a report.
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年(?!\s*\d{1,2}\s*月)")
# An organ named in a report's opening (2021年,司法厅坚持…; 区教育局认真…): the report speaking of itself.
_ORGAN = re.compile(r"[\u4e00-\u9fff]{1,14}?(?:分局|局|厅|委员会|委|办公室|办)")
OPENING = 200  # characters of a report's text where it names itself
# A place below the county (a township, a street, a zone) named in a report's title or label.
_LOCAL_PLACE = re.compile(r"[\u4e00-\u9fff]{2,8}?(?:镇|乡|街道|新区|开发区|高新区)")
# A department named right after a place: 泾源县公安局, 福建省人社厅, 镇江市司法局.
_DEPARTMENT = re.compile(r"^([^\W\d_的和与及、]{1,8}?(?:局|厅|委员会|办公室))")
_NATIONAL = re.compile(r"^(?:请问)?\s*(?:全国|我国|中国)|(?:全国|我国)(?:范围|总|一共|合计|共|的|各地)")
# "哪些地区…", "各区…", "A和B分别…": the answer is spread over reports, so each report gets a turn.
_ACROSS = re.compile(
    r"哪(?:些|几个|个|一个)(?:地区|区县|区|县|市|地方|单位)|哪(?:一|几)?份报告|各(?:个)?(?:地区|区县|区|县|市|报告)"
    r"|(?:[几多两二三四五六七八九十]|\d+)份报告|所有报告|分别|对比|比较|相比|异同"
)


# The forms among those that ask over the whole library (哪个区县…最高, 各地区…分别): a follow-up in this form
# starts afresh instead of inheriting the previous turn's place ("分别" or "对比" alone may mean that place).
_LIBRARY_WIDE = re.compile(
    r"哪(?:些|几个|个|一个)(?:地区|区县|区|县|市|地方|单位)|哪(?:一|几)?份报告|各(?:个)?(?:地区|区县|区|县|市|报告)"
    r"|所有(?:的)?报告|全部报告"
)


def asks_across_reports(question: str) -> bool:
    return bool(_ACROSS.search(nfkc(question)))


def asks_across_library(question: str) -> bool:
    return bool(_LIBRARY_WIDE.search(nfkc(question)))


@dataclass(frozen=True)
class PlaceRef:
    """A place a question names: as written, the gazetteer divisions it may be, and/or the reports whose
    own name it is (a development zone such as 蓉江新区 is not a division)."""

    text: str
    codes: tuple[str, ...] = ()
    reports: tuple[str, ...] = ()
    issuer: str = ""  # a department named with it: 公安局


@dataclass(frozen=True)
class Scope:
    places: tuple[PlaceRef, ...] = ()
    years: tuple[int, ...] = ()
    national: bool = False
    across: bool = False
    reports: tuple[str, ...] = ()  # reports named by their file name
    inherited: bool = False  # taken from the previous turn (the question named no scope of its own)

    @property
    def empty(self) -> bool:
        return not (self.places or self.years or self.national or self.reports)

    def describe(self) -> str:
        parts = [p.text + p.issuer for p in self.places]
        if self.national:
            parts.append("全国")
        parts += [f"{y}年" for y in self.years]
        return "、".join(parts)


@dataclass(frozen=True)
class Route:
    """Which reports an answer may use, and why; `refusal` set means: do not answer, say this."""

    reports: tuple[str, ...]
    reason: str  # all | filter | named
    refusal: str = ""
    scope: Scope = field(default_factory=Scope)


# ---- parsing ----------------------------------------------------------------------------------------


def _library_names(record: ReportRecord) -> set[str]:
    """Names a question may use for a report that the gazetteer does not know: a zone (蓉江新区, 蓉江)
    or a place the gazetteer lacks, and the file name."""
    meta = record.meta
    names: set[str] = set()
    division = gazetteer.load().get(meta.region_code) if meta.region_code else None
    if meta.region and (division is None or division.name != meta.region):
        names |= {meta.region, meta.issuer, re.sub(r"(新区|开发区|高新区|街道)$", "", meta.region)}
    if not meta.region:  # no place read: the one its title names (下洋镇2023年法治政府建设年度报告)
        found = _LOCAL_PLACE.match(normalize(meta.title or ""))
        names |= {found.group(0)} if found else set()
    stem = record.report_id.rsplit(".", 1)[0]
    return {normalize(n) for n in names if n and len(n) >= 2} | (
        {normalize(stem)} if len(stem) >= 4 else set()
    )


def parse(question: str, records: Sequence[ReportRecord], g: Gazetteer | None = None) -> Scope:
    """The scope a question names (not inherited; see `for_turn`)."""
    g = g or gazetteer.load()
    q = normalize(question)
    places = _with_departments(q, _divisions_named(q, records, g))
    more, named_reports = _library_names_in(q, records, "".join(p.text for p in places))
    # 徐闻县下洋镇: the division written right before a library's own place is where that place is, not a scope
    places = [p for p in places if not any(q.find(p.text) + len(p.text) == q.find(o.text) for o in more)]
    places = sorted([*places, *more], key=lambda p: q.find(p.text))
    years = tuple(dict.fromkeys(int(y) for y in _YEAR.findall(_NOT_ASKED_YEAR.sub(" ", q))))
    return Scope(
        places=tuple(places),
        years=years,
        national=not places and bool(_NATIONAL.search(q)),
        across=asks_across_reports(question),
        reports=tuple(named_reports),
    )


def _divisions_named(q: str, records: Sequence[ReportRecord], g: Gazetteer) -> list[PlaceRef]:
    """The divisions a (normalised) question names, a place written with its parent as one (北京市朝阳区);
    a place that contains another named place is context (2022年云南省政府授予丽江市…), not a scope."""
    known = {r.meta.region_code for r in records if r.meta.region_code}
    places: list[PlaceRef] = []
    for mention in g.mentions(q, known):
        previous = places[-1] if places else None
        inside = tuple(c for c in mention.codes if previous and any(g.within(c, p) for p in previous.codes))
        if previous and inside and q.find(previous.text) + len(previous.text) == mention.start:
            places[-1] = PlaceRef(previous.text + mention.text, inside)  # 北京市朝阳区, 青岛城阳
        else:
            places.append(PlaceRef(mention.text, mention.codes))
    return [p for p in places
            if not any(o is not p and all(any(g.within(c, pc) and c != pc for pc in p.codes) for c in o.codes)
                       for o in places if o.codes and p.codes)]  # fmt: skip


def _with_departments(q: str, places: Sequence[PlaceRef]) -> list[PlaceRef]:
    """Each place with the department named right after it (泾源县公安局), if any."""
    out = []
    for place in places:
        at = q.find(place.text) + len(place.text)
        department = _DEPARTMENT.match(q[at:])
        issuer = department.group(1) if department and not re.match(r"^(?:人民)?政府", q[at:]) else ""
        out.append(PlaceRef(place.text, place.codes, place.reports, issuer))
    return out


def _library_names_in(
    q: str, records: Sequence[ReportRecord], covered: str
) -> tuple[list[PlaceRef], list[str]]:
    """Names of the library's own reports the gazetteer does not know (zones, file names) in the question,
    outside the places already read (`covered`): as places, and the reports named by their file name."""
    places: list[PlaceRef] = []
    named_reports: list[str] = []
    for record in records:
        for name in sorted(_library_names(record), key=len, reverse=True):
            if name in q and name not in covered:
                if name == normalize(record.report_id.rsplit(".", 1)[0]):
                    named_reports.append(record.report_id)
                else:
                    places.append(PlaceRef(name, (), (record.report_id,)))
                break
    return places, named_reports


def for_turn(question: str, previous: Scope | None, records: Sequence[ReportRecord]) -> Scope:
    """A turn that names its own place/year/report is never merged with the previous one; only a turn
    without any (其中刑事案件多少？) inherits the previous turn's scope, unless it asks over the whole library
    (各地区…分别是多少？ after a 洛江区 turn is about every region)."""
    own = parse(question, records)
    if own.empty and previous is not None and not previous.empty and not asks_across_library(question):
        return Scope(previous.places, previous.years, previous.national, own.across or previous.across,
                     previous.reports, inherited=True)  # fmt: skip
    return own


# ---- routing ---------------------------------------------------------------------------------------


def _place_reports(place: PlaceRef, records: Sequence[ReportRecord], g: Gazetteer,
                   text_of: Callable[[str], str] | None = None) -> list[ReportRecord]:  # fmt: skip
    out = []
    for record in records:
        meta = record.meta
        own_division = (
            meta.region_code in place.codes
            and g.get(meta.region_code) is not None
            and (g.divisions[meta.region_code].name == meta.region)
        )
        if own_division or record.report_id in place.reports:
            if place.issuer and not issued_by(place.issuer, record, text_of):
                continue
            out.append(record)
    return out


def issued_by(department: str, record: ReportRecord, text_of: Callable[[str], str] | None = None) -> bool:
    """Is the report the department's? Its issuer as read, by the genre's abbreviations (人社厅 for
    人力资源和社会保障厅, 市场监管局 for 市场监督管理局); or, when no issuer was read, the organ its opening
    speaks as (2021年,司法厅坚持…; 区教育局认真…)."""
    if record.meta.issuer:
        return _abbreviates(department, record.meta.issuer)
    if text_of is None:
        return False
    opening = normalize(text_of(record.report_id)[:OPENING])
    return any(_abbreviates(department, organ) or _abbreviates(organ, department)
               for organ in _ORGAN.findall(opening) if len(organ) >= 2)  # fmt: skip


def _using_the_name(
    place: PlaceRef,
    question: str,
    records: Sequence[ReportRecord],
    g: Gazetteer,
    text_of: Callable[[str], str] | None,
    context: int = 4,
) -> list[ReportRecord]:
    """Reports of places inside the named one that use the place, with the words after it, as a name
    (a province's training platform, a city's court in a county report): the question is about them."""
    q = normalize(question)
    at = q.find(place.text)
    phrase = q[at : at + len(place.text) + context]
    if text_of is None or not place.codes or at < 0 or len(phrase) < len(place.text) + context:
        return []
    inside = [r for r in records if r.meta.region_code
              and any(g.within(r.meta.region_code, c) and r.meta.region_code != c for c in place.codes)]  # fmt: skip
    return [r for r in inside if phrase in normalize(text_of(r.report_id))]


def _abbreviates(short: str, full: str) -> bool:
    """人社厅 for 人力资源和社会保障厅, 市场监管局 for 市场监督管理局: the characters in order."""
    position = 0
    for char in short:
        position = full.find(char, position)
        if position < 0:
            return False
        position += 1
    return True


def covers_year(
    record: ReportRecord, year: int, question: str, text_of: Callable[[str], str] | None = None
) -> bool:
    """A report covers the year it reports on, the year it was published in, the year after when its kind is
    delivered then (a work report) or when asked about its plans; a report whose year is unknown covers a
    year it mentions. An answer from a report of another year than asked says so (pipeline.year_note)."""
    meta = record.meta
    if meta.year is None:
        return text_of is not None and f"{year}年" in text_of(record.report_id)
    published = int(meta.publish_date[:4]) if meta.publish_date and meta.publish_date[:4].isdigit() else None
    next_year = meta.kind in kinds.DELIVERED_THE_YEAR_AFTER or bool(parts.PLANS.search(question))
    return year in (meta.year, published) or (year == meta.year + 1 and next_year)


def route(
    scope: Scope,
    question: str,
    records: Sequence[ReportRecord],
    *,
    report_ids: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    text_of: Callable[[str], str]
    | None = None,  # a report's text: for an unknown year, a place used as a name
) -> Route:
    """The reports inside the question's scope and the user's filters — or a refusal that says why."""
    selected, reason = _filtered(records, report_ids, regions, years)
    if scope.national and not scope.places:
        return Route((), reason, "资料库中没有全国的报告，各地报告的数字不能代表全国", scope)
    named, refusal = _named(scope, question, records, selected, reason == "filter", text_of)
    if refusal:
        return Route((), reason, refusal, scope)
    pool = named if (scope.places or scope.reports) else selected
    if scope.years:
        covered = [r for r in pool
                   if any(covers_year(r, y, question, text_of) for y in scope.years)]  # fmt: skip
        if not covered:
            return Route((), reason, _no_report_for_the_year(scope, pool, reason == "filter"), scope)
        pool = covered
    if scope.places or scope.reports or (scope.years and len(pool) < len(selected)):
        return Route(tuple(r.report_id for r in pool), "named", scope=scope)
    return Route(tuple(r.report_id for r in selected), reason, scope=scope)


def _filtered(records: Sequence[ReportRecord], report_ids: Sequence[str] | None, regions: Sequence[str] | None,
              years: Sequence[int] | None) -> tuple[list[ReportRecord], str]:  # fmt: skip
    """The reports the user's filters leave, and the reason: 'filter' when any filter is set, else 'all'."""
    selected = list(records)
    reason = "all"
    if report_ids:
        selected = [r for r in selected if r.report_id in set(report_ids)]
        reason = "filter"
    if regions:
        wanted = {normalize(x) for x in regions}
        selected = [r for r in selected
                    if wanted & {normalize(n) for n in (r.meta.region, r.meta.issuer, *r.meta.region_path) if n}]  # fmt: skip
        reason = "filter"
    if years:
        selected = [r for r in selected if r.meta.year in set(years)]
        reason = "filter"
    return selected, reason


def _named(scope: Scope, question: str, records: Sequence[ReportRecord], selected: Sequence[ReportRecord],
           filtered: bool, text_of: Callable[[str], str] | None) -> tuple[list[ReportRecord], str]:  # fmt: skip
    """The reports of the places and files the question names, inside the filters; or the refusal (no report
    of a named place, or one outside the filters)."""
    g = gazetteer.load()
    selected_ids = {r.report_id for r in selected}

    def conflict(named: str, found: Sequence[ReportRecord]) -> str:
        chosen = "、".join(_label(r) for r in selected) or "（没有报告）"
        have = "、".join(_label(r) for r in found)
        return (
            f"问题问的是{named}（资料库中有：{have}），但当前筛选的是{chosen}；请取消筛选或改问筛选内的报告"
        )

    named: list[ReportRecord] = []
    for report_id in scope.reports:
        record = next(r for r in records if r.report_id == report_id)
        if filtered and report_id not in selected_ids:
            return [], conflict(_label(record), [record])
        named.append(record)
    for place in scope.places:
        # 山东省行政执法人员培训云平台 asked of a 淄川区 report: a name that report uses, not a place without one
        found = _place_reports(place, records, g, text_of) or _using_the_name(
            place, question, records, g, text_of
        )
        if not found:
            return [], _no_report_for(place, records, g)
        inside = [r for r in found if r.report_id in selected_ids]
        if filtered and not inside:
            return [], conflict(place.text + place.issuer, found)
        named.extend(r for r in inside if r not in named)
    return named, ""


def _no_report_for(place: PlaceRef, records: Sequence[ReportRecord], g: Gazetteer) -> str:
    """No report of the place (and department) asked: what the library holds for the place instead."""
    refusal = f"资料库中没有{place.text}{place.issuer}的报告"
    if not place.issuer:
        return refusal
    held = _place_reports(PlaceRef(place.text, place.codes, place.reports), records, g)
    return refusal + (f"；{place.text}有：{'、'.join(_label(r) for r in held)}的报告" if held else "")


def _no_report_for_the_year(scope: Scope, pool: Sequence[ReportRecord], filtered: bool) -> str:
    """Why no report answers for the years asked: what the named reports cover instead."""
    asked = "、".join(f"{y}年" for y in scope.years)
    if scope.places or scope.reports:
        have = "；".join(f"{_label(r)}的报告是{r.meta.year}年度的" if r.meta.year else f"{_label(r)}的报告未识别年度"
                        for r in pool)  # fmt: skip
        where = "、".join(p.text + p.issuer for p in scope.places) or "、".join(_label(r) for r in pool)
        return f"资料库中没有{where}{asked}的报告；{have}"
    return f"资料库中没有{asked}的报告" + ("（当前筛选内）" if filtered else "")
