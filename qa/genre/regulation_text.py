"""The regulation's own text, when a user gives it: 《法治政府建设与责任落实督察工作规定》 read into its
articles (第…条), the article that lists what an annual report contains (its items in its own words) and the
article that sets the day it must be public by. Pure: text in, a `Basis` out — what a check-up cites.

No article number comes from memory: without the text a check-up cites the regulation by name and says
so (`UNREAD`, rules.SOURCE_NOTE); with it, every number and every content's wording is the text's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from difflib import SequenceMatcher

from qa.core.text import normalize
from qa.genre import regulation as rules
from qa.genre.numbers import find_numbers

# an article starts a line (or follows a sentence): 第二十五条 …
_ARTICLE = re.compile(r"(?:^|(?<=[\s。；;]))(第[一二三四五六七八九十百零〇]+条)")
_ITEM = re.compile(r"[（(][一二三四五六七八九十]+[)）]")
# the day a report must be public by: 每年4月1日之前 / 4月1日前, written in digits or numerals
_DAY = re.compile(
    r"([0-9０-９]{1,2}|[一二三四五六七八九十]{1,2})月([0-9０-９]{1,2}|[一二三四五六七八九十]{1,3})日(?:之前|以前|前)"
)
SIMILAR = 0.75  # an item of the text is a content when its wording is this close to the wording we know
CONTENTS_NEEDED = 4  # …and the article that lists at least this many of the five is the one on contents


@dataclass(frozen=True)
class Basis:
    """What a check-up cites: the regulation, and, when its text was read, the article on contents, the
    article on the deadline and the day it sets, and each content in the text's words."""

    regulation: str = rules.REGULATION
    contents_article: str = ""  # 第…条 as the text numbers it; "" = the text was not read
    deadline_article: str = ""
    due_month: int = rules.DUE_MONTH
    due_day: int = rules.DUE_DAY
    asks: tuple[tuple[str, str], ...] = ()  # (content key, the article's own words for it)
    source: str = ""  # the file the text was read from

    @property
    def cited(self) -> str:
        """《…规定》第…条、第…条: the regulation with the articles read from its text, or its name alone."""
        numbers = [a for a in dict.fromkeys((self.contents_article, self.deadline_article)) if a]
        return self.regulation + "、".join(numbers)

    @property
    def note(self) -> str:
        if not self.contents_article:
            return rules.SOURCE_NOTE
        said = f"条款号和各项内容的原文读自所给规定文本（{self.source}）"
        if not self.deadline_article:
            said += f"；文本中没有找到规定公开时限的条款，时限按{self.due_month}月{self.due_day}日"
        return said

    @property
    def rule(self) -> str:
        """The deadline as a sentence: 每年4月1日（含）之前向社会公开上一年度报告."""
        where = f"（{self.deadline_article}）" if self.deadline_article else ""
        return f"每年{self.due_month}月{self.due_day}日（含）之前向社会公开上一年度报告{where}"

    def deadline(self, year: int) -> date:
        """The day by which the report on `year` must be public: the set day of the year after."""
        return date(year + 1, self.due_month, self.due_day)

    def asks_for(self, content: rules.Content) -> str:
        return dict(self.asks).get(content.key, content.asks)


UNREAD = Basis()


def articles(text: str) -> list[tuple[str, str]]:
    """(第…条, its text) in order; text before the first article (title, chapters' names) is left out."""
    starts = list(_ARTICLE.finditer(text))
    return [
        (m.group(1), text[m.end() : starts[n + 1].start() if n + 1 < len(starts) else len(text)].strip())
        for n, m in enumerate(starts)
    ]


def _items(body: str) -> list[str]:
    """An article's enumerated items （一）…；（二）…, each without its marker and closing stop."""
    marks = list(_ITEM.finditer(body))
    return [
        body[m.end() : marks[n + 1].start() if n + 1 < len(marks) else len(body)].strip().rstrip("；;。，,")
        for n, m in enumerate(marks)
    ]


def _similar(a: str, b: str) -> float:
    return SequenceMatcher(None, normalize(a), normalize(b)).ratio()


def _contents(items: list[str]) -> dict[str, str]:
    """Which of the regulation's contents the items are: each content the item closest to its wording, when
    close enough."""
    found = {}
    for content in rules.CONTENTS:
        scored = [(_similar(item, content.asks), item) for item in items]
        best = max(scored, default=(0.0, ""))
        if best[0] >= SIMILAR:
            found[content.key] = best[1]
    return found


def _numeral(text: str) -> int:
    return next((int(n.value) for n in find_numbers(text + "个") if n.unit == "个"), 0)


class NotTheRegulation(ValueError):
    """The text given is not the regulation, or not the whole of it. code: no_articles (no 第…条 at all) |
    no_contents (no article lists an annual report's contents)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def read_basis(text: str, source: str) -> Basis:
    """The Basis the text gives; NotTheRegulation when no article lists the contents."""
    read = articles(text)
    if not read:
        raise NotTheRegulation("no_articles")
    listed = [(number, _contents(_items(body))) for number, body in read]
    number, asks = max(listed, key=lambda pair: len(pair[1]))
    if len(asks) < CONTENTS_NEEDED:
        raise NotTheRegulation("no_contents")
    deadline = next(
        ((n, m) for n, body in read if "公开" in body and "报告" in body for m in [_DAY.search(body)] if m),
        None,
    )
    basis = Basis(contents_article=number, asks=tuple(asks.items()), source=source)
    if deadline is None:
        return basis
    month, day = _numeral(deadline[1].group(1)), _numeral(deadline[1].group(2))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return basis
    return Basis(contents_article=number, deadline_article=deadline[0], due_month=month, due_day=day,
                 asks=basis.asks, source=source)  # fmt: skip
