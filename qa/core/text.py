"""Text normalisation for matching (never for display): one definition for every module; and the marks a
source text never carries into an answer (the report's own footnotes)."""

from __future__ import annotations

import re
import unicodedata


def normalize(text: str) -> str:
    """NFKC, lower case, no whitespace: 'ＡＢ 1，2' and 'ab1,2' match."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def nfkc(text: str) -> str:
    """NFKC only (full-width forms folded; case and spaces kept): for patterns that read the words as written."""
    return unicodedata.normalize("NFKC", text)


def folded(text: str) -> str:
    """NFKC and lower case, spaces kept (a tokenizer's or a term list's input: words stay apart)."""
    return unicodedata.normalize("NFKC", text).lower()


def squashed(text: str) -> str:
    """NFKC without whitespace, case kept: a number as written ('1 305 个' and '1305个') found in a text."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


# A report's own footnote marks (地区生产总值[2]69.9亿元, ［1］, [注1]): the report's, never a citation of ours. They
# are taken out of any source text an answer is built from (offline quotes, a model's passages), so no engine
# can turn them into one.
FOOTNOTE_MARK = re.compile(r"\[\d{1,3}\]|［\d{1,3}］|\[注\d{0,2}\]")


def without_footnote_marks(text: str) -> str:
    return FOOTNOTE_MARK.sub("", text)
