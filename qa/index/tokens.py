"""BM25's terms: CJK unigrams and bigrams, ASCII words and numbers, without question scaffolding."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from qa.core.text import folded

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?")
# Question scaffolding that says nothing about the passage sought.
_STOP = frozenset(
    "的 了 是 在 和 与 及 对 把 被 吗 呢 吧 啊 请 问 多少 什么 哪些 哪个 哪里 如何 怎么 怎样 是否 有没有 几 个 分别 情况 方面 "
    "请问 一下 主要 具体 哪 些 有 有哪 哪些 年度 报告 其中".split()
)


def tokenize(text: str) -> list[str]:
    """CJK unigrams + bigrams, ASCII words and numbers (decimals kept whole): BM25's terms."""
    text = folded(text)
    tokens: list[str] = []
    for run in _CJK_RUN.findall(text):
        tokens.extend(ch for ch in run if ch not in _STOP)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1) if run[i : i + 2] not in _STOP)
    tokens.extend(_WORD.findall(text))
    return tokens
