"""A question, read once: what it asks about (the places, departments and years of its scope, or the whole
library), what it asks for (the kind of number and unit, a rate, what is counted, a part of the report such
as its problems or plans, a field of its header such as 文号, a list, a ranking across reports) and, for a
follow-up, the question it stands for. Every stage after this one — routing, retrieval, the engines,
verification — reads the `Query`; none parses the question again.

Pure: the question's words, the report registry (for the names the library itself uses) and the gazetteer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from qa.core.schemas import ReportRecord
from qa.core.text import folded, normalize
from qa.genre import gazetteer, measures, parts
from qa.question import scope

if TYPE_CHECKING:
    from qa.question.ranking import Ranking

# Units that answer "how many X": the unit right after 多少/几, and its family.
_UNIT_FAMILIES = [
    {"件", "起", "宗", "件次", "单"},
    {"人", "名", "人次", "位"},
    {"次", "场", "场次", "期", "轮", "批次"},
    {"项", "条", "类"},
    {"个", "家", "所", "处", "座"},
    {"户", "户次"},
    {"元"},
    {"%"},
    {"吨"},
    {"亩", "公顷"},
    {"公里"},
    {"平方米", "平方公里"},
]
# Units that measure a quantity named before the question word (茶叶产量是多少吨), as 元 measures a sum: the
# number must be stated for that quantity (`Query.amount`), not for another one (粮食产量170855吨).
MEASURED = frozenset({"元", "吨", "亩", "公顷", "公里", "平方米", "平方公里"})
_LIST_QUESTION = re.compile(r"哪些|哪几|有什么|包括|包含|列举|哪[两二三四五六七八九十][个张项类种条所家]?")
_ASKED_UNIT = re.compile(
    r"(?<![哪第])(?:多少|几)\s*(人次|场次|件次|户次|万元|亿元|万吨|平方公里|平方米|公顷|公里|[件起宗人名次场期项条类个家所处户元位座轮单吨亩])"
)


_RATE_CHANGE = re.compile(r"提高|提升|增长|增加|上升|下降|降低|减少|回落|变化|比上年|同比")
PERCENTS = frozenset({"%", "个百分点"})  # a rate, or a change of one


def expected_units(question: str) -> set[str] | None:
    """Units an answer should carry, from the question's wording; None when it asks for no number."""
    q = folded(question)
    units: set[str] = set()
    for match in _ASKED_UNIT.finditer(q):
        unit = match.group(1)
        unit = {"万元": "元", "亿元": "元", "万吨": "吨"}.get(unit, unit)
        units |= next((family for family in _UNIT_FAMILIES if unit in family), {unit})
    if re.search(r"率|比例|占比|百分比|百分之", q):
        units.add("%")
        if _RATE_CHANGE.search(q):  # 破案率比上年提高了多少: a change of a rate is said in 个百分点
            units.add("个百分点")
    if "百分点" in q:
        units.add("个百分点")
    if re.search(r"金额|资金|经费|多少钱|万元|亿元|投入|补贴|罚款", q):
        units.add("元")
    if units:
        return units
    if _GROWTH_ASKED.search(q):  # 居民消费价格涨了多少, 比上年增长多少: growth is said as a rate
        return {"%", "个百分点"}
    if re.search(r"(?<![哪第])(?:多少|几[个件次项名人场家所户])|数量|人数|次数", q):
        return set()  # some number, any unit
    return None


_RATE = re.compile(r"([\u4e00-\u9fff]{2})率")
_GROWTH_ASKED = re.compile(r"(?:上涨|涨|增长|增幅|涨幅|下降|降幅|降|提高|提升|上升|回落)了?(?:多少|几成)")
_COUNTED = re.compile(
    r"(?<![哪第])(?:多少|几)\s*(?:人次|场次|件次|户次|[件起宗人名次场期项条类个家所处户位座轮单])\s*[“\"「]?([\u4e00-\u9fff]{2,6})"
)


_ASKS = re.compile(r"多少|几|什么|哪|是否|如何|怎样|怎么|谁|何时")


# Two things asked at once with one asking word: 年末总人口和城镇常住人口各有多少 / 分别是多少.
_BOTH_ASKED = re.compile(
    r"^(.{2,40}?)(?:和|与|及)([\u4e00-\u9fff]{2,12}?)(?:各|分别)(?:有|是|为|达到|达)?((?:多少|几).*)$"
)


def sub_questions(question: str) -> list[str]:
    """A question that asks several things (年末常住人口有多少？城镇化率是多少？; 年末总人口和城镇常住人口各有多少):
    each part that asks."""
    parts_ = [p.strip() for p in re.split(r"[？?]", question) if len(p.strip()) >= 3]
    asking = [p for p in parts_ if _ASKS.search(p)]
    if len(asking) > 1:
        return asking
    both = _BOTH_ASKED.match(question.strip())
    if both and not gazetteer.load().mentions(both.group(2)):  # 交城县和中宁县各…: places, not two things
        first, second, asked = both.groups()
        return [f"{first}有{asked}", f"{second}有{asked}"]
    return [question]


# The amount asked about, in the words right before the asking word: 城镇居民人均可支配收入 in
# 城镇居民人均可支配收入是多少元.
_AMOUNT_ASKED = re.compile(
    r"([\u4e00-\u9fff]{2,16}?)(?:大概|大约|大致|约|总计|合计|累计|一共|总共|共)?(?:是|为|达到|达|有)?(?:多少|几)"
)
# 哪一类涨幅最大, 哪个行业增长最快: the row of a table with the extreme figure in the column named.
_SUPERLATIVE = re.compile(
    r"哪(?:一|个|几)?(?:类|项|个|种|行业|产业|方面|领域|部分)?的?([\u4e00-\u9fff]{0,6}?)最(高|大|多|快|低|小|少|慢)"
)
# A figure over several years (累计完成…, 年均增长…, 五年来…) does not answer a question about one year.
MULTI_YEAR = re.compile(r"累计|年均|五年来|近五年|过去五年")


@dataclass(frozen=True)
class Query:
    """asked: the words as typed; text: the question as retrieval and the engines read it (a follow-up
    made whole: 那洛江区呢？ → the previous question about 洛江区); scope: what it is about (qa.question.scope).
    What it asks for is read from `text` on first use."""

    asked: str
    text: str
    scope: scope.Scope

    @cached_property
    def units(self) -> frozenset[str] | None:
        """Units an answer should carry; None: it asks for no number; empty: some number, any unit."""
        units = expected_units(self.text)
        return frozenset(units) if units is not None else None

    @cached_property
    def rate(self) -> str | None:
        """败诉率 in 败诉率是多少: a percentage must be that rate."""
        rates = [m.group(0) for m in _RATE.finditer(folded(self.text)) if m.group(1)[-1] not in "比效频概"]
        return rates[0] if rates else None

    @cached_property
    def counted(self) -> str | None:
        """法律明白人 in 多少名法律明白人: a count must be of that (as written; an engine checks it is a word
        the reports use)."""
        match = _COUNTED.search(folded(self.text))
        # 多少件人大建议和政协提案: the first thing counted ends at the conjunction
        noun = re.split(r"[和及与、或]", match.group(1))[0] if match else ""
        return noun if len(noun) >= 2 else None

    @cached_property
    def amount(self) -> str | None:
        """For a question about a sum of money (units 元): the amount it names (城镇居民人均可支配收入), as
        written before 是多少/多少, without place and year; a number must be stated for it."""
        if not self.units or not self.units <= MEASURED:
            return None
        # the time is the question's scope, not part of the amount's name
        text = re.sub(r"(?:19|20)\d{2}\s*年(?:度)?|当年|全年|今年|去年|上年|本年", " ", folded(self.text))
        text = MULTI_YEAR.sub(" ", text)
        for place in self.scope.places:
            text = text.replace(place.text + place.issuer, " ").replace(place.text, " ")
        match = _AMOUNT_ASKED.search(text)
        noun = re.split(r"[的了]", match.group(1))[-1] if match else ""  # 给企业兑现的惠企资金 → 惠企资金
        return noun if len(noun) >= 2 else None

    @cached_property
    def superlative(self) -> tuple[str, bool] | None:
        """哪一类涨幅最大 / 哪个行业增长最快 (within one report): (the measure named before 最, highest?)."""
        match = _SUPERLATIVE.search(folded(self.text))
        if match is None:
            return None
        falling = bool(re.search(r"降|减|跌|回落", match.group(1)))  # 下降最多: the most negative
        return match.group(1), (match.group(2) in "高大多快") != falling

    @cached_property
    def measures(self) -> frozenset[measures.Measure]:
        """行政诉讼 / 行政复议, 败诉 / 纠错, 依申请 / 主动公开…: a number must be of the measure asked."""
        return measures.named(self.text)

    @cached_property
    def one_year(self) -> bool:
        """About one year (淄川区2024年…), not a total or average over several (累计, 年均, 五年来…)."""
        return bool(self.scope.years) and not MULTI_YEAR.search(self.text)

    @cached_property
    def part(self) -> str | None:
        """plans | problems: the question is about that part of a report."""
        return parts.asked_part(self.text)

    @cached_property
    def field(self) -> str | None:
        """文号 / 发文日期 / 索引号…: the question asks a field of the report's header."""
        return parts.asked_field(self.text)

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """All the header fields asked, in order (索引号和发文日期): each answered from its own line."""
        return parts.asked_fields(self.text)

    @cached_property
    def wants_list(self) -> bool:
        return bool(_LIST_QUESTION.search(self.text))

    @cached_property
    def across(self) -> bool:
        """Worded across reports (哪些地区…, 各区…, A和B分别…), whether or not its scope names places."""
        return scope.asks_across_reports(self.text)

    @cached_property
    def ranking(self) -> Ranking | None:
        """哪个…最高 / 各…分别 / 合计 over a catalogue indicator: answered from the comparison table."""
        from qa.question import ranking  # here: a question about one report never loads the catalogue

        return ranking.parse(self.text)

    @cached_property
    def subs(self) -> tuple[Query, ...]:
        """The parts of a question that asks several things (年末常住人口有多少？城镇化率是多少？), each read on
        its own with the whole question's scope; () for a question that asks one thing."""
        texts = sub_questions(self.text)
        return tuple(Query(t, t, self.scope) for t in texts) if len(texts) > 1 else ()


# ---- reading a question, and a follow-up ------------------------------------------------------------

_FILLER = re.compile(r"[那呢吗？?，,。！!\s]|那么|的情况|情况|怎么样|如何|又|同样")


def read(question: str, records: Sequence[ReportRecord], earlier: Sequence[str] = (),
         condensed: str | None = None) -> Query:  # fmt: skip
    """The question read with the user's earlier questions of the conversation (`earlier`, oldest first): a
    turn that names no scope of its own inherits the previous one; a turn that names only a new place or year
    (那洛江区呢？) asks the previous question about it. condensed: a model's rewrite of the follow-up — only
    its wording is used; the scope is read here."""
    previous: scope.Scope | None = None
    previous_text = ""
    for turn in earlier:
        own = scope.parse(turn, records)
        swapped = _swap(turn, own, previous_text, previous) if previous and not own.empty else None
        previous_text = swapped or (turn if not own.empty or previous is None else previous_text)
        previous = scope.parse(swapped, records) if swapped else scope.for_turn(turn, previous, records)
    own = scope.parse(question, records)
    swapped = _swap(question, own, previous_text, previous) if previous and not own.empty else None
    if swapped:  # the scope is the swapped one; a model's rewrite is only the wording
        return Query(question, condensed or swapped, scope.parse(swapped, records))
    asked = scope.for_turn(question, previous, records)
    standalone = condensed or question
    if asked.inherited and condensed is None:
        # the engine reads the question; retrieval also gets the place it inherited
        standalone = "".join(p.text for p in asked.places) + question
    return Query(question, standalone, asked)


def _swap(question: str, own: scope.Scope, previous_text: str, previous: scope.Scope) -> str | None:
    """那洛江区呢？ / 那2023年呢？: a turn that names only a new place or year asks the previous question
    about it — the new place/year *replaces* the old one (never both)."""
    core = normalize(question)
    for place in own.places:
        core = core.replace(place.text, "")
    core = re.sub(r"(?:19|20)\d{2}年?", "", core)
    if len(_FILLER.sub("", core)) > 2 or not previous_text:
        return None
    swapped = previous_text
    if own.places:
        old = [p.text for p in previous.places] or []
        if not old:
            return None
        for i, text in enumerate(sorted(old, key=len, reverse=True)):
            swapped = swapped.replace(text, own.places[0].text if i == 0 else "")
    if own.years:
        swapped = (
            re.sub(r"(?:19|20)\d{2}(?=\s*年)", str(own.years[0]), swapped)
            if previous.years
            else (f"{own.years[0]}年{swapped}")
        )
    return swapped
