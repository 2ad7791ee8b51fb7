"""Measures the genre reports side by side that must not stand in for one another: a figure of 行政复议 does
not answer a question about 行政诉讼, a 纠错率 is not a 败诉率, 依申请公开 counts are not 主动公开 counts. Each
family lists the measures of one kind of figure, each measure by the words that name it in a clause.

The families are the genre's own distinctions — the 行政复议法 and the 行政诉讼法 are two procedures; the
政府信息公开条例 reports 主动公开 and 依申请公开 in separate tables; a review decision is 纠错 (撤销, 变更,
确认违法), a court's is 败诉 — not words picked for a sentence. Pure: text in, names out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.core.text import folded

# family → measure → the words that name it (first: the name shown)
FAMILIES: tuple[dict[str, tuple[str, ...]], ...] = (
    {"行政复议": ("行政复议", "复议"), "行政诉讼": ("行政诉讼", "行政应诉", "诉讼", "应诉")},
    {"败诉": ("败诉",), "纠错": ("纠错",)},
    {"依申请公开": ("依申请", "申请公开"), "主动公开": ("主动公开",)},
)
_CLAUSE_STOP = re.compile(r"[,，;；。:：！？!?\n]")


@dataclass(frozen=True)
class Measure:
    family: int
    name: str


def named(text: str) -> frozenset[Measure]:
    """The measures a text names (a question, or the clause that leads up to a number)."""
    t = folded(text)
    return frozenset(
        Measure(i, name) for i, family in enumerate(FAMILIES) for name, words in family.items() if any(w in t for w in words)
    )  # fmt: skip


def clause_before(text: str, at: int, limit: int = 40) -> str:
    """The clause leading up to position `at` (from the last , ; 。 : within `limit` characters)."""
    start = max(0, at - limit)
    stops = [m.end() for m in _CLAUSE_STOP.finditer(text, start, at)]
    return text[stops[-1] if stops else start : at]


def other_measure(asked: frozenset[Measure], clause: str) -> Measure | None:
    """The measure a number's clause states instead of the one asked: same family, another measure, and the
    asked one not named there (行政复议案件151件 for 行政诉讼…多少件); None when it fits or says nothing."""
    stated = named(clause)
    for want in asked:
        family = {m for m in stated if m.family == want.family}
        if family and want not in family:
            return sorted(family, key=lambda m: m.name)[0]
    return None
