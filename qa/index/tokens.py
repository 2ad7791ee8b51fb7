"""BM25's terms: CJK unigrams and bigrams, ASCII words and numbers, without question scaffolding."""

from __future__ import annotations

import re

from qa.core.text import folded
from qa.question.words import STOP_TOKENS as _STOP  # question scaffolding that says nothing about a passage

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?")


def tokenize(text: str) -> list[str]:
    """CJK unigrams + bigrams, ASCII words and numbers (decimals kept whole): BM25's terms."""
    text = folded(text)
    tokens: list[str] = []
    for run in _CJK_RUN.findall(text):
        tokens.extend(ch for ch in run if ch not in _STOP)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1) if run[i : i + 2] not in _STOP)
    tokens.extend(_WORD.findall(text))
    return tokens
