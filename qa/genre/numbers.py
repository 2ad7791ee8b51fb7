"""Find and normalise numbers in Chinese report text: 151件, 1.1亿元, 29.8%, 517 宗, 2079余万元,
百分之百, 十二件. One normaliser for retrieval hints, grounding checks and evals. Pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from qa.core.text import nfkc, squashed

# Longest first so 人次 wins over 人 and 万元 over 万.
UNITS = sorted(
    """个百分点 百分点 平方米 平方公里 公里 千米 小时 分钟 个月 课时 学时 人次 户次 件次 场次 余次 批次 元 %
    件 人 名 次 项 个 场 家 宗 户 所 处 份 条 篇 期 批 支 类 张 本 册 天 日 年 月 倍 位 座 间 套 台 辆 起 单 笔 门 节 堂
    部 轮 组 支 队 块 栋 亩 吨 米 村 镇 周 届 季 级 号 岁 字""".split(),
    key=len,
    reverse=True,
)
_UNIT_RE = "|".join(re.escape(u) for u in UNITS)
_MULT = {"万": Decimal(10_000), "亿": Decimal(100_000_000), "千": Decimal(1000), "百": Decimal(100)}
_APPROX = "余多近约超逾"
_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_SCALE = {"十": 10, "百": 100, "千": 1000}

_ARABIC = re.compile(
    r"(?<![\d.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<approx1>[余多])?(?P<mult>[万亿千])?(?P<approx2>[余多])?"
    rf"(?:\s?(?P<unit>{_UNIT_RE}))?"
)
_CN_NUM = "零〇一二两三四五六七八九十百千万亿"
_CHINESE = re.compile(
    rf"(?P<pct>百分之(?P<pctnum>[{_CN_NUM}]+(?:点[{_CN_NUM}]+)?))"
    rf"|(?<![第是{_CN_NUM}])(?P<cn>[{_CN_NUM}]+(?:点[{_CN_NUM}]+)?)(?P<cnapprox>[余多])?(?P<cnunit>{_UNIT_RE})"
)
_CITATION = re.compile(r"\[\d+(?:\s*[,，、]\s*\d+)*\]")
_LIST_MARK = re.compile(r"(?m)^\s*\d{1,2}[.、)）](?!\d)\s*")
_DATE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?|\d{4}-\d{1,2}-\d{1,2}")


@dataclass(frozen=True)
class Number:
    raw: str  # exactly as written in the text
    value: Decimal  # with 万/亿 applied: 1.1亿元 → 110000000
    unit: str  # canonical: 元, %, 件, 人次… ("" when none)
    approx: bool = False  # 余/多: "2079余万元"
    start: int = 0
    end: int = 0

    @property
    def key(self) -> tuple[Decimal, str]:
        return (self.value.normalize(), self.unit)

    def same_as(self, other: Number) -> bool:
        """Same quantity: equal value and unit (a unitless mention matches any unit)."""
        if self.value.normalize() != other.value.normalize():
            return False
        return self.unit == other.unit or not self.unit or not other.unit


def chinese_to_int(text: str) -> Decimal | None:
    """一百五十一 → 151, 十二 → 12, 两万三千 → 23000, 二十九点八 → 29.8; None if not a numeral."""
    if not text:
        return None
    if "点" in text:
        whole, _, frac = text.partition("点")
        head = chinese_to_int(whole) if whole else Decimal(0)
        digits = "".join(str(_CN_DIGITS[c]) for c in frac if c in _CN_DIGITS)
        if head is None or len(digits) != len(frac):
            return None
        return Decimal(f"{head}.{digits}")
    yi, wan, section, digit = 0, 0, 0, None  # parts above 亿, between 万 and 亿, below 万
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        elif char in _CN_SCALE:
            section += (1 if digit is None else digit) * _CN_SCALE[char]
            digit = None
        elif char == "万":
            wan = (section + (digit or 0)) * 10_000
            section, digit = 0, None
        elif char == "亿":
            yi = (yi + wan + section + (digit or 0)) * 100_000_000
            wan, section, digit = 0, 0, None
        else:
            return None
    return Decimal(yi + wan + section + (digit or 0))


def _canonical_unit(mult: str | None, unit: str | None) -> tuple[Decimal, str]:
    factor = _MULT.get(mult or "", Decimal(1))
    unit = unit or ""
    if unit in ("万", "亿"):  # "2.3万" with no further unit
        factor *= _MULT[unit]
        unit = ""
    # 个百分点 is a difference of two rates, not a rate: "提升3个百分点" never supports "3%" (nor the reverse)
    return factor, "个百分点" if unit in ("百分点", "个百分点") else unit


def find_numbers(text: str) -> list[Number]:
    """Every number mention in text, in order, with offsets into text (citation markers skipped)."""
    masked = _CITATION.sub(lambda m: " " * len(m.group()), text)
    masked = _LIST_MARK.sub(lambda m: " " * len(m.group()), masked)
    masked = nfkc(masked) if len(nfkc(masked)) == len(masked) else masked
    found: list[Number] = []
    taken: list[tuple[int, int]] = []
    for match in _DATE.finditer(masked):
        digits = re.findall(r"\d+", match.group())
        value = Decimal("".join(d.zfill(2) for d in digits))
        found.append(
            Number(text[match.start() : match.end()], value, "date", False, match.start(), match.end())
        )
        taken.append(match.span())
    for match in _ARABIC.finditer(masked):
        if any(s <= match.start() < e for s, e in taken):
            continue
        try:
            base = Decimal(match.group("num").replace(",", ""))
        except InvalidOperation:
            continue
        factor, unit = _canonical_unit(match.group("mult"), match.group("unit"))
        end = match.end()
        raw = text[match.start() : end].rstrip()
        approx = bool(match.group("approx1") or match.group("approx2"))
        found.append(Number(raw, base * factor, unit, approx, match.start(), match.start() + len(raw)))
    for match in _CHINESE.finditer(masked):
        if any(s <= match.start() < e for s, e in taken) or any(
            n.start <= match.start() < n.end for n in found
        ):
            continue
        if match.group("pct"):
            value = chinese_to_int(match.group("pctnum"))
            unit = "%"
            approx = False
        else:
            numeral = match.group("cn")
            if (
                numeral == "一" or not re.search(r"[零〇一二两三四五六七八九十]", numeral)
            ) and not match.group("cnapprox"):
                # a bare 一 is an article in set phrases (高效办成一件事, 一站式, 一批), and 万元 / 百 alone
                # name no quantity: neither is a figure to check
                continue
            value = chinese_to_int(numeral)
            factor, unit = _canonical_unit(None, match.group("cnunit"))
            value = value * factor if value is not None else None
            approx = bool(match.group("cnapprox"))
        if value is None:
            continue
        found.append(
            Number(text[match.start() : match.end()], value, unit, approx, match.start(), match.end())
        )
    return sorted(found, key=lambda n: n.start)


def parse_number(text: str) -> Number | None:
    """The single number in a short string like '151件' or '1.1亿元'; None when there is none."""
    numbers = find_numbers(text)
    return numbers[0] if numbers else None


def _squash(text: str) -> str:
    return squashed(text)


def ungrounded(answer: str, sources: list[str]) -> list[Number]:
    """Numbers in an answer that appear in none of the sources (verbatim, or as the same quantity)."""
    squashed = [_squash(s) for s in sources]
    source_numbers = [n for s in sources for n in find_numbers(s)]
    missing = []
    for number in find_numbers(answer):
        if any(_squash(number.raw) in s for s in squashed):
            continue
        if any(number.same_as(other) and number.unit != "date" for other in source_numbers):
            continue
        if number.unit == "date" and any(number.value == o.value for o in source_numbers if o.unit == "date"):
            continue
        missing.append(number)
    return missing


def contains_number(text: str, gold: Number) -> bool:
    """Does text state the gold quantity (any notation: 151件, 一百五十一件, 1.1亿元 ≡ 11000万元)?"""
    return any(n.same_as(gold) for n in find_numbers(text))


def whole_at(text: str, raw: str, start: int = 0) -> int:
    """Where a number as written (9亿元) stands whole in a text, not as the tail of another (39.9亿元): the
    first such offset from start, -1 when there is none."""
    if not raw[:1].isdigit():  # 约1.1亿元, 百分之百: nothing can precede it as part of another number
        return text.find(raw, start) if raw else -1
    found = re.compile(rf"(?<![\d.．]){re.escape(raw)}").search(text, start)
    return found.start() if found else -1
