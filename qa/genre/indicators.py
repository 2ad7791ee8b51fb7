"""The catalogue of indicators common in 法治政府建设年度报告, and matching figures to them. Pure.

An indicator matches a figure when its `name` pattern matches the figure's indicator phrase (or, with
`context`, the sentence around it) and the unit fits. A report that does not state an indicator gets
no value for it — never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.genre.figures import Figure


@dataclass(frozen=True)
class Indicator:
    key: str
    label: str  # shown in tables
    group: str
    phrase: str  # regex on the figure's indicator phrase
    units: frozenset[str]
    context: str = ""  # regex the sentence must also match
    exclude: str = "^$"  # regex on the phrase that rules a figure out
    prefer: str = ""  # regex on the phrase: among matches, the first one that also matches this wins


def _u(*units: str) -> frozenset[str]:
    return frozenset(units)


CATALOGUE: tuple[Indicator, ...] = (
    Indicator(
        "admin_review_received",
        "行政复议 收案",
        "行政复议",
        r"行政复议(?:案件|申请)|复议案件|复议申请",
        _u("件", "宗"),
        exclude=r"审结|办结|结案|纠错|调解",
        prefer=r"收到|受理|新收|办理|收案|共",
    ),
    Indicator(
        "admin_review_closed",
        "行政复议 办结",
        "行政复议",
        r"审结|办结|结案",
        _u("件", "宗"),
        context="复议",
        exclude=r"调解",
    ),
    Indicator("admin_review_correction", "行政复议 纠错率", "行政复议", r"纠错率", _u("%")),
    Indicator(
        "admin_litigation_cases",
        "行政诉讼 案件数",
        "行政诉讼",
        r"行政诉讼案件|行政应诉案件|应诉案件|行政诉讼",
        _u("件", "起", "宗"),
        exclude=r"败诉|出庭",
    ),
    Indicator("admin_litigation_loss_rate", "行政诉讼 败诉率", "行政诉讼", r"败诉率", _u("%")),
    Indicator("head_appearance_rate", "负责人出庭应诉率", "行政诉讼", r"出庭应诉率|出庭率", _u("%")),
    Indicator(
        "legal_aid_cases",
        "法律援助案件",
        "公共法律服务",
        r"法律援助(?:案件)?",
        _u("件", "宗"),
        exclude=r"咨询|值班律师",
    ),
    Indicator(
        "mediation_cases",
        "人民调解 案件",
        "矛盾纠纷化解",
        r"调解.*(?:纠纷|案件)|调处.*纠纷|矛盾纠纷|调解案件",
        _u("件", "宗", "起"),
        context="调",
        exclude=r"化解中|复议",
    ),
    Indicator(
        "mediation_success_rate",
        "人民调解 成功率",
        "矛盾纠纷化解",
        r"调解成功率|调处成功率|化解成功率|成功率|化解率",
        _u("%"),
        context="调",
    ),
    Indicator(
        "legality_reviews",
        "合法性审查 件数",
        "依法决策",
        r"合法性审查|合法性审核|审查|审核",
        _u("件", "份", "件次"),
        context="合法性",
        # a sentence that also names other reviews (审查方案、合同19件次;开展事前合法性审查…12件次): the figure
        # whose own words say 合法性 is the one
        prefer=r"合法性",
    ),
    Indicator(
        "normative_filing",
        "规范性文件 备案",
        "规范性文件",
        r"备案|报备",
        _u("件", "份"),
        context="规范性文件",
    ),
    Indicator(
        "normative_cleanup",
        "规范性文件 清理",
        "规范性文件",
        r"清理|梳理|废止|失效",
        _u("件", "份"),
        context="规范性文件|政策文件",
    ),
    Indicator(
        "publicity_events",
        "普法活动 场次",
        "普法",
        r"普法|法治宣传|宣传活动|宣讲|法治讲座|讲座",
        _u("场", "场次", "次", "期"),
        context=r"普法|法治宣传|宣讲",
        exclude=r"法律服务|咨询|资料|信息|培训",
    ),
    Indicator(
        "legal_understanding_people",
        "法律明白人",
        "普法",
        r"法律明白人",
        _u("名", "人"),
        exclude=r"骨干|培训",
    ),
    Indicator(
        "enforcement_certificates",
        "行政执法 证件/持证人数",
        "行政执法",
        r"执法证|持证|证件|执法资格",
        _u("人", "名", "个", "本"),
    ),
    Indicator(
        "enforcement_training",
        "行政执法 培训人次",
        "行政执法",
        r"培训",
        _u("人次", "人", "名"),
        context="执法",
    ),
)


def matches(indicator: Indicator, figure: Figure) -> bool:
    """The unit fits, the sentence has the context, and the phrase names it: its indicator phrase, or the
    whole clause before the number (the phrase stops at 、 and quotes: "审查…文件、协议等46件"), or, when
    nothing precedes the number but a verb, the rest of its clause."""
    if figure.number.unit not in indicator.units:
        return False
    named = [p for p in (figure.indicator, figure.clause) if p]
    if (
        len(re.findall(r"[\u4e00-\u9fff]", figure.clause)) <= 2
    ):  # "组织1027名行政执法人员…培训": named after it
        named.append(figure.after)
    if any(re.search(indicator.exclude, p) for p in named):
        return False
    if indicator.context and not re.search(indicator.context, figure.quote):
        return False
    return any(re.search(indicator.phrase, p) for p in named)


def candidates(indicator: Indicator, figures: list[Figure]) -> list[Figure]:
    """Every figure that states this indicator, best first: the preferred ones, then the rest, each in
    document order."""
    found = [f for f in figures if matches(indicator, f)]
    if not indicator.prefer:
        return found
    preferred = [f for f in found if re.search(indicator.prefer, f"{f.indicator} {f.clause} {_lead_up(f)}")]
    return preferred + [f for f in found if f not in preferred]


def _lead_up(figure: Figure) -> str:
    """The words of the figure's ；-segment before its own clause (开展事前合法性审查, for 审查规范性文件送审稿
    12件次): what the report says it is doing when it gives the figure."""
    at = figure.quote.find(figure.clause + figure.raw) if figure.clause else -1
    head = figure.quote[: max(at, 0)]
    return head[max(head.rfind(ch) for ch in "；;。") + 1 :]


def find(indicator: Indicator, figures: list[Figure]) -> Figure | None:
    """The figure that states this indicator (the first preferred match, else the first match, in document
    order); None when the report does not state it."""
    found = candidates(indicator, figures)
    return found[0] if found else None


def is_catalogued(figure: Figure) -> bool:
    return any(matches(indicator, figure) for indicator in CATALOGUE)


def catalogue_rank(figure: Figure) -> int:
    """The position of the first catalogue indicator the figure states; len(CATALOGUE) when none."""
    return next((n for n, indicator in enumerate(CATALOGUE) if matches(indicator, figure)), len(CATALOGUE))
