"""Text normalisation for matching (never for display): one definition for every module."""

from __future__ import annotations

import re
import unicodedata


def normalize(text: str) -> str:
    """NFKC, lower case, no whitespace: 'ＡＢ 1，2' and 'ab1,2' match."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()
