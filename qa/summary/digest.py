"""A short summary built from a report's own words: select, trim, de-duplicate. Pure.

The offline summary is extractive-plus: nothing is generated except the 概况 sentence, which is composed
from the report's identity and the catalogue indicators it states, so every figure in it is one the
report states. Items are the report's sentences with their list markers, boilerplate lead clauses and
repeated wording removed, cut at clause boundaries (never inside a number) to a length budget: a summary
is at most `SHARE` of its report's length (text a reader reads; quotes are shown on demand).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from qa.core.text import normalize
from qa.genre import tables
from qa.genre.figures import LEAD_VERBS, Figure, qualified
from qa.genre.indicators import CATALOGUE, candidates, is_catalogued
from qa.genre.numbers import whole_at
from qa.genre.outline import LEVEL_2, NUMERALS, ORDINAL, SEQUENCE_WORDS
from qa.genre.parts import UNDER_LEAD

SHARE = 0.25  # a summary's text is at most this share of its report's
MAX_FIGURES = 12
MAX_FIGURES_FILLED = 24  # with room under the budget, the figure table runs on to this many rows
FIGURES_WANTED = 16  # a summary's text is cut a level shorter when that lets the table reach this many rows
LABEL_MAX = 10  # Chinese characters in a figure's label in the table's first rows
LABEL_MAX_FILLED = (
    14  # …and in the rows that fill the room left (劳动争议调解仲裁案件结案率, 13); longer are clauses
)
MAX_MEASURES = 6
MIN_MEASURES = 3

_MARKER = re.compile(
    rf"^\s*(?:{LEVEL_2}|[{NUMERALS}]+[、是]|\d{{1,2}}[.．、)）](?!\d)|{ORDINAL}|{'|'.join(SEQUENCE_WORDS)})[，,、：:\s]*"
)
# A clause that frames rather than states (坚持以…为指导 / 在…领导下 / 深入贯彻…): dropped when it leads an
# item and carries no figure. These are the genre's formulae, not one report's sentence.
# A clause that only sets the scene for the next — under whose lead (旗政府在旗委统一领导下), with whose
# approval (经省委、省政府同意) — says nothing alone and is dropped the same way.
_FRAMING = re.compile(
    r"^(?:\d{4}年(?:以来|来)?[，,]?)?(?:坚持以|坚持|始终坚持|深入(?:学习)?贯彻|认真(?:学习)?贯彻"
    r"|全面贯彻|以习近平|按照|根据|围绕|聚焦|立足|紧扣|紧紧围绕|为(?:进一步|深入|全面|切实)"
    rf"|[\u4e00-\u9fff]{{0,6}}{UNDER_LEAD}[，,]?$"
    r"|经[^，,；;。]{1,16}(?:同意|批准)[，,]?$)"
)
_PART_OF_LEAD = re.compile(r"^其中[，,：:]?")
_LEAD_YEAR = re.compile(r"^\d{4}年(?:度|以来|来)?")  # the year a clause begins with is not what it counts
_CLAUSE = re.compile(r"[^，,；;。！？]+[，,；;。！？]?")
_NOT_A_LABEL_END = re.compile(r"[等和与及的了并或为达是在对向从把被]$")
# A change said of the thing before it (…亿元，同比增长7% / …93254亩，减少479亩): no subject of its own. As a
# label it names nothing; as a clause it belongs to the clause before it and is never kept without it.
_CHANGE = (
    r"(?:同比去年|同比上年|同比|环比|比上年|较上年|比去年|较去年|比上年末|年均|[两三四五]年平均|分别)?"
    r"(?:增长|下降|减少|增加|提高|降低|提升|上升|回落|下滑|上涨|下跌|增产|减产)"
)
_CHANGE_ONLY = re.compile(rf"^{_CHANGE}了?$")
# an enumeration (…、…) closed by 等 and the class it belongs to
_LISTED_CLASS = re.compile(r"、[^、]*等(?P<cls>[\u4e00-\u9fff（()）]{2,})$")
_DEPENDENT_CLAUSE = re.compile(rf"^(?:{_CHANGE}|其中|占|比重|增速|增幅)")


def strip_marker(text: str) -> str:
    """一是… / （一）… / 1. … / 首先… → the item itself."""
    return _MARKER.sub("", text.strip(), count=1).strip()


def clauses(sentence: str) -> list[str]:
    return [m.group() for m in _CLAUSE.finditer(sentence) if m.group().strip("，,；;。！？ ")]


def _has_figure(text: str) -> bool:
    return bool(re.search(r"\d", text))


# a clause with no comma or 、 to cut at stays whole up to this many times the limit: cut inside a word it
# says nothing (预计全旗地区生产总值累计完…)
WHOLE_CLAUSE = 2


def compress(sentence: str, limit: int, seen: set[str] | None = None, filler: float = 0.6) -> str:
    """One item from one sentence: marker and framing clauses off, clauses already said elsewhere (seen,
    normalised; updated) off, then the first clause and the clauses with figures, in order, while they fit
    (clauses without figures only within `filler` of the limit). Every clause kept is the sentence's own,
    with its own punctuation; the result ends with 。."""
    seen = seen if seen is not None else set()
    parts = _stating_clauses(sentence)
    fresh = [p for p in parts if _key(p) not in seen] or parts[:1]
    kept = _fitting(fresh, limit, filler)
    out = "".join(kept).rstrip("，,、；;：:。！？ ")
    if len(out) > limit and (len(out) > limit * WHOLE_CLAUSE or _stop_within(out, limit)):
        out = _cut(
            out, limit
        )  # at a clause or a 、; a clause with no such stop stays whole up to WHOLE_CLAUSE
    seen.update(_key(k) for k in kept)
    return out if out.endswith("…") else out + "。"


def _stating_clauses(sentence: str) -> list[str]:
    """A sentence's clauses, markers off, without the framing clauses that lead it with no figure."""
    parts = [strip_marker(p) for p in clauses(strip_marker(sentence))]  # 一是… inside a sentence too
    parts = [p for p in parts if p.strip("，,；;。！？ ")]
    if len(parts) > 1 and _PART_OF_LEAD.fullmatch(parts[0].strip()):  # 其中,视频新闻259条…: a part of what
        parts = parts[1:]  # the item no longer says
    elif parts and _PART_OF_LEAD.match(parts[0]):
        parts[0] = _PART_OF_LEAD.sub("", parts[0], count=1)
    while len(parts) > 1 and _FRAMING.match(parts[0]) and not _has_figure(_LEAD_YEAR.sub("", parts[0])):
        parts = parts[1:]
    return parts


def _fitting(fresh: list[str], limit: int, filler: float) -> list[str]:
    """The first clause, then the clauses with figures while they fit the limit (others within `filler` of
    it); a change (减少3304亩) only with the clause before it that says what changed."""
    kept: list[str] = []
    for n, part in enumerate(fresh):
        if n and _DEPENDENT_CLAUSE.match(part) and (not kept or kept[-1] is not fresh[n - 1]):
            continue  # 减少3304亩 without the clause that says what decreased
        size = sum(len(k) for k in kept) + len(part)
        if n == 0 or (_has_figure(part) and size <= limit) or size <= limit * filler:
            if size > limit + 1 and kept:
                break
            kept.append(part)
    return kept


def _key(clause: str) -> str:
    return normalize(clause.strip("，,；;。！？ "))


def _stop_within(text: str, limit: int) -> bool:
    """Can the text be cut at a clause or a 、 in its second half up to the limit (as _cut does)?"""
    head = text[:limit]
    return max(head.rfind(ch) for ch in "，,；;、") >= limit // 2


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, cut after a 、 or a clause, never inside a number or a quoted name."""
    head = text[:limit]
    for stops in ("，,；;", "、"):
        at = max(head.rfind(ch) for ch in stops)
        if at >= limit // 2:
            return head[:at] + "…"
    cut = limit - 1
    while cut > 0 and (re.match(r"[\d.％%]", text[cut - 1]) or re.match(r"[\d.％%余万亿]", text[cut])):
        cut -= 1
    return text[:cut] + "…"


def short_title(title: str, limit: int = 16) -> str:
    """A section title as an area label: marker off, its first clause, at most `limit` characters."""
    first = clauses(strip_marker(title)) or [title]
    text = first[0].strip("，,；;。！？ ")
    return text if len(text) <= limit else text[:limit] + "…"


# ---- figures -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stated:
    """A figure a summary shows: its label (the counted thing), the value as written with its qualifier
    (约1.1亿元, 300余场次, 100%以上), the sentence it is quoted from, and where that is."""

    label: str
    raw: str
    quote: str
    where: str  # the chunk id
    catalogued: bool


def counted_label(figure: Figure, longest: int = LABEL_MAX, after: bool = False) -> str | None:
    """What a figure outside the catalogue counts, when the report names it just before the number and
    the number ends its clause (调处矛盾纠纷2632件。 → 矛盾纠纷); None when that is not a clean noun
    phrase (a verb alone, a phrase ending in 等/和…). after: also the thing named right after the number
    when nothing but a lead word comes before it (共1305个电子证明证照免提交 → 电子证明证照免提交, 为1421名
    工人追回欠薪 → 工人追回欠薪)."""
    tail = figure.after.strip()
    before = _label(figure.clause or figure.indicator, longest)
    if not tail or re.match(r"^[，,；;。！？、（()）]", tail):
        return before
    if not after or _label_words(figure.clause or figure.indicator):
        return None
    return _label(re.split(r"[，,；;。！？、（()）]", tail, maxsplit=1)[0], longest)


def _label_words(text: str) -> str:
    """A clause without its lead: quotes, a leading 全区/我县, a closing 约/共/为, lead verbs (组织, 完成…)."""
    # a campaign's quoted name before what it did names the campaign, not what was counted: “高效办成一件事”
    # 成功办理联办事项 → 成功办理联办事项 (a quoted name before a noun stays: “好差评”非常满意)
    named = re.match(r"^\s*[“\"「][^”\"」]{2,20}[”\"」]", text)
    if named and LEAD_VERBS.match(text[named.end() :]):
        text = text[named.end() :]
    label = re.sub(r"[“”\"「」\s]", "", text).lstrip("、，,；;：:")  # (31次)、中心组理论学习 → 中心组理论学习
    # a list closed by 等 and a noun names the class it exemplifies: 政策文件、财政、教育等重点领域信息 1323条 →
    # 重点领域信息 (文件、协议等46件, with no class after 等, names nothing and stays a fragment)
    listed = _LISTED_CLASS.search(label)
    if listed:
        label = listed.group("cls")
    label = re.sub(r"^(?:预计|初步核算)[，,]?", "", label)  # 预计全旗地区生产总值… → 全旗地区生产总值…
    label = re.sub(r"^(?:本年度|本年|今年|年内)", "", label)  # the year reported on, not what was counted
    # a closing 完成 / 实现 says it was done, not what was counted (一般公共预算收入累计完成 → 一般公共预算收入累计:
    # 累计 stays, a four years' total is not one year's)
    label = re.sub(r"(?:完成|实现)$", "", label)
    label = re.sub(
        r"^(?:我|全|本)[区县市省旗州盟]|(?:约|近|突破|超过|超|逾|达到|达|为|共计|合计|共|(?<![累合])计)$",
        "",
        label,
    )
    label = re.sub(
        r"^年?度(?=[\u4e00-\u9fff])", "", label
    )  # the tail of a date the clause began after (2022年|度向…)
    label = _PART_OF.sub("", LEAD_VERBS.sub("", _PART_OF.sub("", label)))  # 其中行政检查 → 行政检查
    return re.sub(r"^(?:我|全|本)[区县市省旗州盟]$", "", label)  # 组织全区 → 全区 → nothing


# Words that say a figure is part of another or already so (其中刑事案件, 已化解), not what was counted
_PART_OF = re.compile(r"^(?:其中|已经|已|并|还|均|同时|另有|另)")
# A label of two characters names too little to tell a figure from the report's others (厘清, 通报, 投资, 案件)
LABEL_MIN = 3


def _label(text: str, longest: int) -> str | None:
    label = _label_words(text)
    if not LABEL_MIN <= len(re.findall(r"[\u4e00-\u9fff]", label)) <= longest or _NOT_A_LABEL_END.search(
        label
    ):
        return None
    if _CHANGE_ONLY.match(label):  # 同比增长 7%: a change of something the label does not name
        return None
    if re.search(r"[\d，,、：:]", label):
        return None
    return label


def _weight(figure: Figure) -> tuple[bool, bool, Decimal]:
    """Which figures a table of a report's other figures shows first: amounts of money, then rates, then the
    largest counts (a year's totals — 10326人次, 1305个 — before the details of one step: 2条, 1次)."""
    unit = figure.number.unit
    return (unit != "元", unit != "%", -figure.number.value if unit != "%" else Decimal(0))


def key_figures(
    figures: Sequence[tuple[Figure, str]],
    limit: int = MAX_FIGURES,
    fill_to: int = 10,
    longest: int = LABEL_MAX,
    catalogued: tuple[list[Stated], set[int]] | None = None,
    lead: frozenset[int] = frozenset(),
) -> list[Stated]:
    """The catalogue indicators the report states (the same catalogue and choice as the comparison table),
    in catalogue order; then, up to `fill_to` rows, other figures with a clean label: those in `lead` (ids:
    the figures of the part that states a report's headline indicators) in the order stated, then the rest
    by _weight (amounts of money first, 惠企资金约1.1亿元, then rates, then the largest counts). catalogued:
    catalogue_rows(figures), when the caller has it already (the catalogue is the slow part)."""
    where = {id(f): chunk for f, chunk in figures}
    plain = [f for f, _ in figures]
    found, used = catalogued if catalogued is not None else catalogue_rows(figures)
    rows = list(found)
    shown = {r.raw for r in rows}
    stated_first = [f for f in plain if id(f) in lead]  # in document order
    for figure in stated_first + sorted((f for f in plain if id(f) not in lead), key=_weight):
        if len(rows) >= max(fill_to, len([r for r in rows if r.catalogued])):
            break
        label = counted_label(figure, longest, after=longest > LABEL_MAX)
        if label and id(figure) not in used and qualified(figure) not in shown:
            rows.append(
                Stated(flagged(label, figure), qualified(figure), figure.quote, where[id(figure)], False)
            )
            shown.add(qualified(figure))
    return rows[:limit]


# A figure its sentence states as an estimate (预计,全年地区生产总值实现127亿元): shown as one, never as a result
_ESTIMATE = re.compile(r"预计|预期|估计|预测")
ESTIMATE_MARK = "（预计）"


def flagged(label: str, figure: Figure) -> str:
    """The label, marked （预计） when the figure's sentence says 预计/预期/估计 before it."""
    at = whole_at(figure.quote, figure.raw)
    return label + ESTIMATE_MARK if at > 0 and _ESTIMATE.search(figure.quote[:at]) else label


def catalogue_rows(figures: Sequence[tuple[Figure, str]]) -> tuple[list[Stated], set[int]]:
    """The catalogue indicators a report states, in catalogue order, and the figures (by id) they took."""
    where = {id(f): chunk for f, chunk in figures}
    plain = [f for f, _ in figures]
    rows: list[Stated] = []
    used: set[int] = set()
    for indicator in CATALOGUE:
        found = candidates(indicator, plain)
        if found:
            hit = found[0]
            used.add(id(hit))
            rows.append(
                Stated(flagged(indicator.label, hit), qualified(hit), hit.quote, where[id(hit)], True)
            )
    return rows, used


def salience(sentence: str, figures: Iterable[Figure], lead: bool) -> float:
    """How much a sentence says: its catalogued figures most, other figures, and being a section's lead."""
    found = [f for f in figures if (f.quote and f.quote in sentence) or sentence in f.quote]
    return (
        sum(3.0 if is_catalogued(f) else 1.0 for f in found) + (1.0 if lead else 0.0) - len(sentence) / 1000
    )


def composed_overview(who: str, year: int | None, topic: str, headline: Sequence[Stated]) -> str:
    """概况: who reports on which year, and the headline figures — composed, every figure the report's."""
    kind = "" if re.search(r"(?:报告|公报|通报|总结|白皮书)$", topic) else "报告"
    when = (f"{year}年" if "年度" in topic else f"{year}年度") if year else ""  # never 2023年度…年度报告
    first = f"{who}{when}{topic}{kind}。"
    if not headline:
        return first
    said = "，".join(f"{s.label.replace(' ', '')}{s.raw}" for s in headline)
    return first + f"主要数据：{said}。"


def topic_of(title: str, names: Sequence[str]) -> str:
    """What a report is about, from its title without the issuer, places and year: 法治政府建设情况."""
    topic = re.sub(r"\s+", "", title)
    for name in sorted((n for n in names if n), key=len, reverse=True):
        topic = topic.replace(name, "")
    topic = re.sub(r"[（(]\d{4}年?[)）]|\d{4}年度?|关于|^[的之]", "", topic).strip("《》")
    topic = re.sub(r"的?(?:年度)?报告$", "报告", topic)  # 法治政府建设年度报告 → 法治政府建设报告
    topic = re.sub(r"的$", "", topic)
    return topic if len(re.sub(r"报告$", "", topic)) >= 2 else "工作"


# A figure's change as the genre states it right after the figure: 2673224万元,按可比价格计算,比上年增长5.2%
# built from the change words above (_CHANGE), with the value and its unit
_STATED_CHANGE = re.compile(rf"{_CHANGE}了?\s*-?\d+(?:\.\d+)?\s*(?:%|个百分点|倍)")
_BETWEEN_MAX = 12  # characters between the figure and its change (按可比价格计算); more is another clause


def change_after(quote: str, raw: str) -> str:
    """The change the quote states for a figure right after it (比上年增长5.2%), verbatim; "" when none, when
    another number comes between, or when the figure is itself a rate (食品烟酒类上涨2.2%,衣着类上涨1.8%:
    the next change is another item's)."""
    if raw.rstrip().endswith(("%", "个百分点")):
        return ""
    # the figure as a whole number (9亿元 is not the tail of 39.9亿元); written twice, the changes must agree
    places, at = [], whole_at(quote, raw)
    while at >= 0:
        places.append(at + len(raw))
        at = whole_at(quote, raw, at + 1)
    changes = {_change_at(quote, end) for end in places}
    return changes.pop() if len(changes) == 1 else ""


def _change_at(quote: str, end: int) -> str:
    clause = re.split(r"[；;。]", quote[end:], maxsplit=1)[0]
    found = _STATED_CHANGE.search(clause)
    if found is None:
        return ""
    between = re.sub(r"[，,、\s]", "", clause[: found.start()])
    if re.search(r"\d", between) or len(between) > _BETWEEN_MAX:
        return ""
    return found.group().strip()


def table_figures(text: str, chunks: Sequence[tuple[int, int, str]]) -> list[Stated]:
    """The figures of a report's tables (qa.genre.tables) as figure rows: each cell named by its row and
    column, the unit in the column's name as the table gives it (行政规范性文件 本年制发件数 3, 房地产业
    绝对数(万元) 130535), quoted as its row's line. A disclosure
    report's standard tables (主动公开, 依申请, 复议和诉讼) are its main data. chunks: (start, end, id)."""
    out: list[Stated] = []
    for row in tables.rows(text):
        where = next((chunk_id for start, end, chunk_id in chunks if start <= row.start < end), "")
        line = text[row.start : row.end]
        for header, value in row.cells:
            if (
                where and whole_at(line, value) >= 0
            ):  # the value as written; its unit stays in the column's name
                out.append(Stated(f"{row.label} {header}".strip(), value, line, where, False))
    return out
