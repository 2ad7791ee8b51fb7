"""The outline grammar of this genre, defined once: how a report numbers its parts — 一、 (level 1), （一）
(level 2), 1. (level 3), 一是 (level 4) — and the same markers inside a paragraph (一是…二是…, 首先/其次/最后).

The building blocks below are what every module that reads, strips or splits on them composes its pattern
from (chunking: the section tree; parts: a part's points; loaders: where the body starts; summarize and
digest: a bullet's marker; figures: a clause's lead; the offline engine: a section's own title)."""

from __future__ import annotations

import re

NUMERALS = "一二三四五六七八九十"  # the Chinese numerals of outline markers (一 … 十)
LEVEL_1 = rf"[{NUMERALS}]+、"  # 一、
LEVEL_2 = rf"[（(][{NUMERALS}]+[)）]"  # （一）
LEVEL_3 = r"\d{1,2}[.．、]"  # 1. / 1、 — followed by a digit it is a number (1.5), not a marker
LEVEL_4 = rf"[{NUMERALS}]+是"  # 一是
ORDINAL = rf"第[{NUMERALS}]+[，,、]"  # 第一，
SEQUENCE_WORDS = ("首先", "其次", "再次", "最后")  # 首先… 其次… 最后…

HEADING_PATTERNS: tuple[tuple[int, re.Pattern[str]], ...] = (
    (1, re.compile(rf"^{LEVEL_1}")),
    (2, re.compile(rf"^{LEVEL_2}")),
    (3, re.compile(rf"^{LEVEL_3}(?![\d.．])")),
    (4, re.compile(rf"^{LEVEL_4}")),
)


def heading_level(line: str) -> int | None:
    """The outline level a line starts with (1–4), None for a line that is not a heading."""
    for level, pattern in HEADING_PATTERNS:
        if pattern.match(line):
            return level
    return None


def without_level_1(title: str) -> str:
    """一、推进法治政府建设 → 推进法治政府建设."""
    return re.sub(rf"^{LEVEL_1}", "", title)
