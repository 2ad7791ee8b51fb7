"""Secrets out of text: the one function every message, log row, label and report goes through.

What it hides: API keys (sk-…, and the other common key shapes), the value of an `Authorization` header
(Bearer / Basic / a bare token, as a header line, in JSON or in a Python dict's repr), a URL's
user:password, key-like query parameters and fields (`api_key=`, `"access_token": …`), and any literal
secret the caller knows (the configured API keys). Pure and idempotent: redact(redact(t)) == redact(t).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
# A value ends at whitespace, a quote, a separator or a backslash (the JSON escape of a quote stays whole).
_VALUE = r"[^\s\"'`,;&}\]\\]+"
# A quote around a name or a value, also as HTML writes it (an eval report's HTML is escaped).
_Q = r"(?:[\"'`]|&#3[49];|&#x2[27];|&quot;|&apos;)?"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token> / "authorization": "Basic <b64>" / Authorization=<token>
    (re.compile(rf"(?i)(\b(?:proxy-)?authorization{_Q}\s*[:=]\s*{_Q}(?:(?:bearer|basic|token|digest)\s+)?)"
                + _VALUE), r"\1" + MASK),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{6,}"), r"\1" + MASK),
    # scheme://user:password@host → scheme://***@host (the user name too: it is often the key)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"'<>]+@"), r"\1" + MASK + "@"),
    # api_key=…, x-api-key: …, "access_token": "…", ?key=… (a query parameter named key)
    (re.compile(r"(?i)((?:\b(?:x-)?api[_-]?key|\b(?:access|auth|refresh|id)[_-]?token|\bclient[_-]?secret|"
                rf"\bpassword|\bpasswd|\bsecret|(?:[?&]|&amp;)(?:key|token|sig)){_Q}\s*[:=]\s*{_Q})" + _VALUE),
     r"\1" + MASK),
    # key shapes that are secrets wherever they stand
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"), MASK),  # OpenAI, Anthropic, DeepSeek, Moonshot…
    (re.compile(r"\bhf_[A-Za-z0-9]{16,}"), MASK),  # Hugging Face
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MASK),  # GitHub
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), MASK),  # Google
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), MASK),  # Slack
)  # fmt: skip
_MIN_LITERAL = 6  # a shorter "secret" (a local server's "x") would mask ordinary text


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every secret it holds replaced by ***; `secrets`: literal values to hide as well."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_LITERAL}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
