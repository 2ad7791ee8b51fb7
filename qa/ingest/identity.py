"""Report identity and metadata: title, issuer (and its kind), region as a gazetteer path, level, year
reported on, dates, 文号, 索引号 — from the header block, title line, wrapper sentences (关于…的报告,
现将…报告如下), the body (我县 / 本区 / 全市 resolved to the report's own place) and the sign-off.
Pure functions over text; the gazetteer (qa.genre.gazetteer) is the only data they use."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from qa.core.schemas import Document, ReportMeta
from qa.genre import gazetteer, kinds
from qa.genre.gazetteer import COUNTY, LEVEL_NAMES, PREFECTURE, PROVINCE, Division, Gazetteer
from qa.genre.kinds import report_kind
from qa.genre.parts import UNDER_LEAD

_SEP = r"\s*[:：]?\s*\|?\s*"  # "key:value", "key: | value |" (header tables) and "key value"
_VALUE = r"([^\s|]+)"
_DATE = r"(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*日?"
_TITLE_WORDS = re.compile(r"报告|总结|情况|公报")
_NEXT_KEY = re.compile(r"\s+[\u4e00-\u9fff](?:\s*[\u4e00-\u9fff]){1,5}\s*[:：]")  # "… 主   题   词:"
# A year that is not the year reported on: inside 《…》, a span (2021—2025年), a date (2025年1月5日).
_NOT_REPORT_YEAR = re.compile(
    r"《[^》]{0,80}》|[(（]?(?:19|20)\d{2}\s*[-—–~至到]\s*(?:19|20)?\d{2}\s*年?[)）]?|(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月"
)
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
# The body that issues a report: a government, a party committee, a department, a zone's committee.
_ORGAN = r"(?:人民政府办公室|人民政府|政府办公室|政府|委员会|管理委员会|管委会|党委|[县区市州旗省]委|局|厅|办公室|委|办|署|中心)"
_ISSUER = re.compile(r"((?:中共)?[\u4e00-\u9fff]{2,24}?" + _ORGAN + r")(?![\u4e00-\u9fff]{0,2}[:：])")
# "区政府坚持…", "县委、县政府…", "我局…": the report speaking of itself.
_SELF_ORGAN = re.compile(
    r"^(?:[县区市州旗省盟]委[、和及]?)?[县区市州旗省盟](?:人民)?政府|^[县区市州旗省盟]委|^(?:我|本)[县区市州旗省盟](?!委)"
)
_SELF_WORDS = re.compile(r"(?:我|本|全)([县区市省旗州盟])")
# The report's own organs by their level in its opening: 县委 / 区政府 (a government's report), 区教育局 /
# 县市场监督管理局 (a department's), at a clause start or after 在 (在区委区政府的领导下).
_LEVEL_ORGAN = re.compile(
    r"(?:^|(?<=[,，。；、\n在]))([县区市旗州省])(?:委|政府|[\u4e00-\u9fff]{1,8}?(?:局|厅|委员会|办公室))"
)
_ZONE = re.compile(
    r"([\u4e00-\u9fff]{2,8}?(?:经济技术开发区|高新技术产业开发区|经济开发区|高新区|开发区|新区|试验区|示范区))"
)
_DEPARTMENT = re.compile(r"(?:局|厅|委员会|委|办公室|办|署|中心)$")
_HEADING = re.compile(r"^(?:[一二三四五六七八九十]+、|[(（][一二三四五六七八九十]+[)）])[^。，,]{0,30}$")
# A place below the county speaking as its own organ (礼让街街道办事处在区委、区政府的领导下…, 下洋镇人民政府):
# the gazetteer stops at counties, so such a report's place is the name its organ gives.
_LOCAL = r"([\u4e00-\u9fff]{2,8}?(?:街道|镇|乡))"
_LOCAL_ORGAN = re.compile(r"(?:^|[,，。；、\n]|现将)" + _LOCAL + r"(?:办事处|人民政府|政府|党工委|党委)")
_LOCAL_TITLE = re.compile(r"^" + _LOCAL + r"(?=(?:19|20)\d{2}|关于|办事处|人民政府)")  # 下洋镇2023年…报告


# The genre's opening clause under whose lead the report's organ worked (2025年,在市委、市政府的正确领导下,
# 沈阳市司法局坚持…): skipped to reach the organ that speaks
_UNDER_LEAD = rf"(?:{UNDER_LEAD}\s*[,，]\s*)?"


def _field(text: str, *names: str) -> str:
    for name in names:
        spaced = r"\s*".join(name)  # "索 引 号"
        match = re.search(spaced + _SEP + _VALUE, text)
        if match and not re.fullmatch(r"[|:：]+", match.group(1)):
            value = match.group(1)
            # "文号: | |" → the next table key, not a value
            if not re.search(r"[:：]$", value):
                return value
    return ""


def _date(text: str, *names: str) -> str | None:
    """The date a field gives; a name is a whole field name (时间 is not the tail of 收录时间, the date a
    site that copied the report took it)."""
    for name in names:
        match = re.search(r"(?<![\u4e00-\u9fff])" + r"\s*".join(name) + r"\s*[:：]?\s*\|?\s*" + _DATE, text)
        if match:
            return _iso(match)
    return None


def _iso(match: re.Match) -> str:
    year, month, day = match.group(1), int(match.group(2)), int(match.group(3))
    return f"{year}-{month:02d}-{day:02d}"


def _front(header: str, body: str, lines: int = 8) -> list[str]:
    """The page header and the first lines of the body: where titles, sources and addressees sit."""
    out = [ln.strip() for ln in header.splitlines() if ln.strip()]
    out += [ln.strip() for ln in body.splitlines()[:lines] if ln.strip()]
    return out


def _is_addressee(line: str) -> bool:
    """区人大常委会： / 中共红河州委、红河州人民政府： — the body a report is sent to, not its author."""
    return bool(re.fullmatch(r"[^。，,]{2,40}[:：]", line.strip()))


# ---- title ---------------------------------------------------------------------------------------


def find_title(header: str, body: str, fallback: str = "") -> str:
    """Header-table title, else a title line, else one derived from the body (现将…报告如下) when it is
    a title on its own (names a year or a place); else fallback ("" = 未识别)."""
    table_title = re.search(r"标\s*题" + _SEP + r"([^|\n]+)", header + "\n" + body[:600])
    if table_title:
        return _NEXT_KEY.split(table_title.group(1))[0].strip()
    for line in _front(header, body, lines=4):
        if (
            _TITLE_WORDS.search(re.sub(r"\s+", "", line))
            and len(line) <= 80
            and not re.match(r"^[•·|]|^(?:来源|发布|时间|当前位置|文章来源)", line)
            and re.search(r"\d{4}", line)
            and not re.match(r"^\d{4}\s*年\s*[,，]", line)  # the first sentence of the body
            and not re.search(r"[。,，;；]|现将|如下", line)
        ):
            title = re.split(r"[_\-—|]{1,2}(?=[^_\-—|]*$)", line)[0].strip() if "_" in line else line
            # a page's date or year printed after the title (…统计公报 2021): not the title's words
            return re.sub(r"\s+(?:\d{4}(?:[-./年]\d{1,2}(?:[-./月]\d{1,2}日?)?)?)$", "", title)
    derived = re.search(r"现将(.{4,60}?报告)如下", body[:2000])
    if derived and not derived.group(1).startswith(("我区", "我县", "我市", "本区", "我局", "有关", "工作")):
        title = derived.group(1)
        if _YEAR.search(title) and gazetteer.load().mentions(title):
            return title
    return fallback


# ---- place ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where a report is from: a gazetteer division, optionally a zone inside it (蓉江新区)."""

    division: Division | None
    zone: str = ""

    def path(self, g: Gazetteer) -> tuple[str, ...]:
        names = tuple(d.name for d in g.path(self.division.code)) if self.division else ()
        return (*names, self.zone) if self.zone else names

    @property
    def name(self) -> str:
        return self.zone or (self.division.name if self.division else "")


def _zone(texts: list[str], g: Gazetteer) -> Place | None:
    """A development zone / new area named in a title or issuer (赣州蓉江新区): not a division, so it
    hangs under the division written right before it."""
    for text in texts:
        match = _ZONE.search(text)
        if not match:
            continue
        zone = match.group(1)
        scanned = [m for m in g.scan(text) if m.end <= match.start(1) + len(zone)]
        # the division written inside or right before the zone's name: 赣州 + 蓉江新区
        parent = next((m for m in reversed(scanned) if m.start < match.start(1) + 2), None)
        inner = [m for m in scanned if m.start >= match.start(1)]
        if inner and inner[0].start == match.start(1) and not inner[0].weak:
            continue  # 浦东新区, 滨海新区 are divisions themselves
        if parent is not None:
            zone = text[match.start(1) : match.end(1)]
            zone = zone[parent.end - match.start(1) :] if parent.end > match.start(1) else zone
        if len(zone) < 4:
            continue
        division = g.get(parent.codes[0]) if parent is not None else None
        return Place(division, zone)
    return None


def local_place(title: str, body: str) -> tuple[Place, str] | None:
    """A township or street the title or the opening speaks as (礼让街街道办事处…): its place (no gazetteer
    division; the name as written) and that organ as the issuer."""
    named = _LOCAL_TITLE.match(re.sub(r"\s+", "", title))
    speaking = _LOCAL_ORGAN.search(re.sub(r"[ \t\u3000]+", "", body[:200]))
    if named is None and speaking is None:
        return None
    name = named.group(1) if named else speaking.group(1)
    organ = speaking.group(0).lstrip(",，。；、\n").removeprefix("现将") if speaking else ""
    return Place(None, name), organ if organ.startswith(name) else ""


@dataclass(frozen=True)
class PlaceWeights:
    """How much a gazetteer mention counts by where it stands, and the support a place gets from the report
    speaking at its level and from its parents. Set by `bench/tune.py --identity` on the development split's
    true identities (record: bench/tuning/identity.json; tests/test_tuning.py keeps these equal to it)."""

    title: float = 6.0
    issuer: float = 4.0
    front: float = 2.0  # the page header and the first lines
    body: float = 1.0
    body_cap: float = 3.0  # the body at large adds at most this much to one place
    self_level: float = 3.0  # 我县 / 区政府 / 县委: the report speaking at the place's level
    ancestors: float = 0.3  # share of a parent's own score
    addressee_parent: float = 2.0  # the report is sent to its parent (中共红河州委、红河州人民政府:)
    credible: float = 2.0  # a place found only in the body needs this much


PLACE_WEIGHTS = PlaceWeights()


def find_place(title: str, issuer: str, header: str, body: str) -> Place | None:
    """The report's own place: gazetteer mentions weighted by where they stand (title, issuer, header,
    opening, body), supported by the report speaking of itself at that level (我县 / 区政府 / 全市) and by
    its parent being named too (红河州 for 金平县). None when nothing credible is found."""
    g = gazetteer.load()
    zone = _zone([title, issuer], g)
    if zone is not None:
        return zone
    front = [ln for ln in _front(header, body) if not _is_addressee(ln)]
    addressees = " ".join(ln for ln in _front(header, body) if _is_addressee(ln))
    w = PLACE_WEIGHTS
    weighted = [(title, w.title, True), (issuer, w.issuer, True), ("\n".join(front), w.front, True),
                (body, w.body, False)]  # fmt: skip
    scores: Counter[str] = Counter()
    strong: Counter[str] = Counter()  # support from anything but the body at large
    for text, weight, stands_out in weighted:
        for mention in g.mentions(text):
            share = weight / len(mention.codes)
            for code in mention.codes:
                scores[code] += (
                    share if stands_out else min(share, w.body_cap - min(w.body_cap, scores[code]))
                )
                if stands_out:
                    strong[code] += share
    if not scores:
        return None
    self_level = Counter(m.group(1) for m in _SELF_WORDS.finditer(body))
    self_level.update(m.group(1) for m in _LEVEL_ORGAN.finditer(body[:400]))
    parents = {c for m in g.mentions(addressees) for c in m.codes}

    def score(code: str) -> float:
        division = g.divisions[code]
        total = scores[code]
        suffix = "区" if division.name.endswith("自治区") else division.name[-1]
        if self_level and suffix in self_level:
            total += w.self_level * self_level[suffix] / sum(self_level.values())
        ancestors = [d.code for d in g.path(code)[:-1]]
        total += w.ancestors * sum(scores[a] for a in ancestors)
        return total + (w.addressee_parent if parents & set(ancestors) else 0.0)

    ranked = sorted(scores, key=lambda c: (-score(c), -g.divisions[c].level, c))
    best = ranked[0]
    suffix = g.divisions[best].name[-1]
    credible = strong[best] > 0 or scores[best] >= w.credible or suffix in self_level
    return Place(g.divisions[best]) if credible else None


# ---- issuer ----------------------------------------------------------------------------------------


def _organ(text: str) -> str:
    """The first organ a text names; a 年 left from the year before it (2020年辽阳县人民政府) is not its name."""
    match = _ISSUER.search(text)
    return re.sub(r"^年度?", "", match.group(1)) if match else ""


def find_issuer(title: str, body: str, header: str = "") -> str:
    """Who issued the report: the body the title names (text before 关于 / the year), the sign-off,
    the opening sentence (2025年,鹤岗市人民政府坚持…), a byline, or the page's 来源/发布机构."""
    match = re.match(r"^(.{2,30}?)(?:关于|\d{4}\s*年)", title)
    if match and re.search("(?:" + _ORGAN + "|" + _ZONE.pattern + r")$", match.group(1).strip()):
        return match.group(1).strip()
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    if len(lines) >= 2 and re.fullmatch(_DATE, lines[-1]) and len(lines[-2]) <= 30:
        return lines[-2]
    first = next((ln.strip() for ln in lines if not _HEADING.match(ln.strip())), "")  # past 一、总体情况
    opening = re.match(r"^(?:(?:19|20)\d{2}\s*年度?\s*[,，]?\s*)?" + _UNDER_LEAD + r"([^,，。]{2,30}?)"
                       r"(?:在|坚持|认真|全面|始终|深入|紧紧|以|按照|本着|聚焦|围绕|政务公开|政府信息公开)", first)  # fmt: skip
    if opening and re.search(_ORGAN + r"$", opening.group(1)) and gazetteer.load().mentions(opening.group(1)):
        return opening.group(1)
    for line in _front(header, body):
        if _is_addressee(line) or len(line) > 40 or re.search(r"[。,，;；《]", line):
            continue
        source = re.match(r"^(?:来源|发布机构|发文机关|发\s*布\s*机\s*构)\s*[:：]\s*(\S+)", line)
        candidate = source.group(1) if source else _organ(line)
        if candidate and re.search(_ORGAN + r"$", candidate) and gazetteer.load().mentions(candidate):
            return candidate
    if match and gazetteer.load().mentions(match.group(1)):
        return match.group(1).strip()  # 闵行区2018年…报告: the place itself
    return ""


# A department speaking of itself at the opening without its place (2021年,司法厅坚持…; 区教育局认真…), or a
# speech's speaker (现在,我代表县人民政府向大会报告工作): the organ, to be named with the report's place.
_SELF_DEPARTMENT = re.compile(
    r"^[县区市州旗省盟]?([\u4e00-\u9fff]{1,10}?(?:局|厅|委员会|办公室))(?:党组|党委)?"
    r"(?:坚持|认真|在|以|始终|全面|深入|紧紧|按照|聚焦|紧扣|高度)"
)
_SPEAKS_FOR = re.compile(r"我代表([\u4e00-\u9fff]{0,10}?[县区市州旗省盟])(?:人民)?政府")


def _self_issuer(body: str, place: Place) -> str:
    """区政府坚持… / 县委、县政府… / 司法厅坚持… at the opening, or 我代表县人民政府 in a speech: the report's own
    government or department, named by its place."""
    lines = [ln for ln in body.splitlines() if ln.strip() and not _is_addressee(ln)]
    opening = re.sub(
        r"^(?:(?:19|20)\d{2}\s*年度?\s*[,，]?\s*)?" + _UNDER_LEAD, "", lines[0].lstrip() if lines else ""
    )
    if place.division is None:
        return ""
    department = _SELF_DEPARTMENT.match(opening)
    if department and not re.match(r"^(?:人民)?政府", department.group(1)):
        return place.division.name + department.group(1)
    speaks_for = _SPEAKS_FOR.search(body[:600])
    if speaks_for and not _SELF_ORGAN.match(opening):
        named = speaks_for.group(1)
        return f"{place.division.name if len(named) == 1 else named}人民政府"
    match = _SELF_ORGAN.match(opening)
    if not match:
        return ""
    division = place.division
    short = division.alias if division.alias.endswith(division.suffix) else division.alias + division.suffix
    short = short if len(division.alias) >= 2 else division.name
    phrase = match.group()
    if re.fullmatch(r"[县区市州旗省盟](?:人民)?政府|[我本][县区市州旗省盟]", phrase):
        return f"{division.name}人民政府"
    return short + phrase[1:]


def issuer_kind(issuer: str) -> str:
    if not issuer:
        return ""
    if re.search(r"(?:党委|[县区市州旗省]委|中共).*政府", issuer):
        return "党委和政府"
    if re.search(r"管理委员会$|管委会$", issuer) or _ZONE.search(issuer):
        return "管委会"
    if re.search(r"政府(?:办公室)?$", issuer):
        return "人民政府" if issuer.endswith("政府") else "部门"
    if issuer.startswith("中共") or re.search(r"[县区市州旗省]委$|党委$", issuer):
        return "党委"
    if _DEPARTMENT.search(issuer):
        return "部门"
    return ""


def level_of(place: Place | None, kind: str) -> str:
    if place is not None and place.division is None and re.search(r"(?:街道|镇|乡)$", place.zone):
        return "乡镇（街道）"
    if place is None or place.division is None:
        return ""
    level = LEVEL_NAMES[min(COUNTY, place.division.level + bool(place.zone))]
    if kind == "部门":
        return {PROVINCE: "部门（省级）", PREFECTURE: "部门（地市级）", COUNTY: "部门（县级）"}[
            place.division.level
        ]
    return level


# ---- year and dates ----------------------------------------------------------------------------------


def find_year(title: str, body: str) -> int | None:
    """The year reported on: in the title, else in 现将…年…报告如下, else at the opening of the body —
    never a year inside 《…》, a span (2021—2025年) or a date."""
    wrapper = re.search(r"现将(.{0,40}?)报告如下", body[:2000])
    for text in (title, wrapper.group(1) if wrapper else "", body[:300]):
        match = _YEAR.search(_NOT_REPORT_YEAR.sub(" ", text))
        if match:
            return int(match.group(1))
    match = re.match(r"\s*((?:19|20)\d{2})(?=\s*[\u4e00-\u9fff])", body)  # "2025坚持以…": 年 dropped
    return int(match.group(1)) if match else None


# A work report's review heading (一、2019年工作回顾) or its byline's delivery date (——2019年12月26日在…).
_REVIEW_HEADING = re.compile(r"((?:19|20)\d{2})\s*年(?:工作)?回顾")
_DELIVERED = re.compile(r"[—\-－―]{1,2}\s*((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月")


def reviewed_year(title: str, body: str) -> int | None:
    """The year a 政府工作报告 reviews — the year it is dated by: its review heading (2019年工作回顾), else the
    byline's date (delivered in its last quarter: that year; else the year before), else the year before the
    one its title names (2020年…政府工作报告 is delivered early in 2020 and reviews 2019)."""
    heading = _REVIEW_HEADING.search(body[:4000])
    if heading:
        return int(heading.group(1))
    delivered = _DELIVERED.search(body[:600])
    if delivered:
        return int(delivered.group(1)) - (int(delivered.group(2)) < 10)
    titled = _YEAR.search(_NOT_REPORT_YEAR.sub(" ", title))
    return int(titled.group(1)) - 1 if titled else None


def find_publish_date(header: str, body: str) -> str | None:
    """Issue date (发文/成文 date) over the sign-off date over the web publish date."""
    front = header + "\n" + "\n".join(body.splitlines()[:3])
    issued = _date(front, "发文日期", "成文日期", "公文生成日期")
    if issued:
        return issued
    tail = "\n".join(body.strip().splitlines()[-3:])
    sign_off = re.search(r"(?m)^\s*" + _DATE + r"\s*$", tail)
    if sign_off:
        return _iso(sign_off)
    return _date(front, "发布日期", "发布时间", "时间")


def find_made_public(header: str, body: str) -> str:
    """The date the page says it published the report (发布日期 / 发布时间, or the 时间 of its 来源…时间 line),
    "" when it does not say: what the regulation's publication deadline is judged by (a sign-off date is
    when it was signed; a 收录时间 when another site copied it)."""
    front = header + "\n" + "\n".join(body.splitlines()[:3])
    said = _date(front, "发布日期", "发布时间")
    if said:
        return said
    page_line = next(
        (ln for ln in front.splitlines() if re.search(r"(?<![\u4e00-\u9fff])来源\s*[:：]", ln)), ""
    )
    return _date(page_line, "时间") or ""


def extract(document: Document) -> ReportMeta:
    """All metadata for a loaded document; a field that cannot be found is empty (shown as 未识别)."""
    header, body = document.header, document.text
    g = gazetteer.load()
    title = find_title(header, body)
    issuer = find_issuer(title, body, header)
    place = find_place(title, issuer, header, body)
    if place is not None and (not issuer or not re.search(_ORGAN + r"$", issuer)):
        issuer = _self_issuer(body, place) or issuer
    local = local_place(title, body) if place is None else None
    if local is not None:
        place, issuer = local[0], issuer or local[1]
    publisher = _field(header + "\n" + "\n".join(body.splitlines()[:3]), "发布机构", "发文机关")
    if not issuer and re.search(_ORGAN + r"$", publisher):  # the page's 发布机构, when nothing else names one
        issuer = publisher
    kind = issuer_kind(issuer)
    report = report_kind(title, body)
    year = (reviewed_year(title, body) if report == kinds.WORK else None) or find_year(title, body)
    return ReportMeta(
        title=title,
        issuer=issuer,
        publisher=publisher if publisher and publisher != issuer else "",
        region=place.name if place else "",
        year=year,
        publish_date=find_publish_date(header, body),
        made_public=find_made_public(header, body),
        doc_number=_field(header, "备注/文号", "文号", "发文字号"),
        index_no=_field(header + "\n" + body[:300], "索引号"),
        region_path=place.path(g) if place else (),
        region_code=place.division.code if place and place.division else "",
        level=level_of(place, kind),
        issuer_kind=kind,
        kind=report,
    )
