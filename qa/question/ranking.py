"""Questions across reports about one catalogue indicator — 哪个/哪些…最高/最低/超过…, 各…分别…, 一共/合计 —
answered from the comparison table (the catalogue and quotes of `qa compare`), never from top-k passages.
Pure: the question's parse, and the answer's text from the cells.

Every value listed cites the passage it is quoted from; the answer says how many reports in scope do not
state the indicator. A total is the sum of the cited values and is said to be one (计算值), with the count
it adds up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from qa.compare.table import Cell
from qa.core.text import nfkc
from qa.genre.indicators import CATALOGUE, Indicator
from qa.genre.numbers import find_numbers, parse_number

_MAX = re.compile(r"最高|最多|最大|排名?第一|排名?前\s*\d*|领先")
_MIN = re.compile(r"最低|最少|最小|排名?最后|末位")
_ABOVE = re.compile(r"超过|高于|多于|大于|以上|不少于|不低于|达到")
_BELOW = re.compile(r"低于|少于|小于|不足|不到|以下|未达到")
_EACH = re.compile(r"各.{0,12}分别|分别是多少|分别为多少|分别有多少|逐一列出|列出各")
_SUM = re.compile(r"一共|合计|总共|总计|共计|加起来|总数")
_WHICH = re.compile(r"哪个|哪些|哪几个|哪一|哪里|谁")
_TOP = re.compile(r"前\s*(\d+)")
LIST_AT_MOST = 10
CASE_UNITS = frozenset({"件", "宗", "起"})  # counting cases, written either way (法律援助案件517宗)


@dataclass(frozen=True)
class Ranking:
    indicator: Indicator
    op: str  # max | min | above | below | each | sum
    threshold: Decimal | None = None
    top: int = 1  # max/min: how many to list
    threshold_text: str = ""  # as the question writes it (5%, 一百件)


def parse(question: str) -> Ranking | None:
    """The indicator and what to do with it, when the question asks across reports about a catalogue
    indicator; None otherwise (the passages answer it)."""
    text = nfkc(question)
    indicator = _indicator(text)
    if indicator is None:
        return None
    top = _TOP.search(text)
    if _SUM.search(text):
        return Ranking(indicator, "sum")
    if _EACH.search(text):
        return Ranking(indicator, "each")
    if _MAX.search(text) and (_WHICH.search(text) or top):
        return Ranking(indicator, "max", top=int(top.group(1)) if top else 1)
    if _MIN.search(text) and (_WHICH.search(text) or top):
        return Ranking(indicator, "min", top=int(top.group(1)) if top else 1)
    number = next((n for n in find_numbers(text) if n.unit in indicator.units), None)
    if number is not None and _WHICH.search(text):
        if _BELOW.search(text):
            return Ranking(indicator, "below", number.value, threshold_text=number.raw)
        if _ABOVE.search(text):
            return Ranking(indicator, "above", number.value, threshold_text=number.raw)
    return None


def _indicator(text: str) -> Indicator | None:
    """The catalogue indicator the question names (the longest phrase match whose context and exclusions
    fit)."""
    best: tuple[int, Indicator] | None = None
    for indicator in CATALOGUE:
        match = re.search(indicator.phrase, text)
        if match is None or re.search(indicator.exclude, text):
            continue
        if indicator.context and not re.search(indicator.context, text):
            continue
        if best is None or len(match.group(0)) > best[0]:
            best = (len(match.group(0)), indicator)
    return best[1] if best else None


@dataclass(frozen=True)
class Line:
    report_id: str
    cell: Cell


def select(ranking: Ranking, cells: Mapping[str, Cell]) -> list[Line]:
    """The cells the answer lists, in its order (ties in report order)."""
    lines = [Line(report_id, cell) for report_id, cell in sorted(cells.items())]
    if ranking.op == "above":
        lines = [line for line in lines if Decimal(str(line.cell.value)) > ranking.threshold]
    elif ranking.op == "below":
        lines = [line for line in lines if Decimal(str(line.cell.value)) < ranking.threshold]
    reverse = ranking.op != "min" and ranking.op != "below"
    lines.sort(key=lambda line: -line.cell.value if reverse else line.cell.value)
    if ranking.op in ("max", "min"):
        best = lines[: max(ranking.top, 1)]
        if best:  # every report tied with the last one listed is listed too
            lines = [line for line in lines if line in best or line.cell.value == best[-1].cell.value]
    return lines


def other_measures(ranking: Ranking, cells: Mapping[str, Cell], listed: Sequence[Line]) -> list[str]:
    """Reports left out whose other value for the indicator (另有, another measure such as the court's 83件
    against the government's 9件) would pass the threshold: named in a note, so nothing is dropped unsaid."""
    if ranking.op not in ("above", "below"):
        return []
    shown = {line.report_id for line in listed}
    out = []
    for report_id, cell in sorted(cells.items()):
        values = [n.value for n in (parse_number(o.raw) for o in cell.others) if n is not None]
        if report_id not in shown and any(v > ranking.threshold if ranking.op == "above" else v < ranking.threshold
                                          for v in values):  # fmt: skip
            out.append(report_id)
    return out


def write(ranking: Ranking, lines: Sequence[Line], numbers: Mapping[str, int], labels: Mapping[str, str],
          in_scope: int, stated: int, none_match: bool = False,
          others: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:  # fmt: skip
    """The answer: a lead saying what was compared over how many reports (and how many do not state it),
    then one cited line per report (at most LIST_AT_MOST, then how many more); and the numbers it counted
    itself (report counts, the question's threshold, a total marked 计算值) — not claims from a report."""
    label = ranking.indicator.label
    missing = in_scope - stated
    basis = f"{stated} 份报告写明了“{label}”" + (f"，{missing} 份未写明（不计入）" if missing else "")
    counted = [f"{stated} 份", f"{missing} 份", f"{in_scope} 份"]
    if ranking.threshold is not None:
        counted += [ranking.threshold_text, _plain(ranking.threshold)]
    what = {"above": f"高于 {ranking.threshold_text}", "below": f"低于 {ranking.threshold_text}"}
    if not lines:
        text = f"在范围内的 {in_scope} 份报告中，没有报告写明“{label}”。"
        return text, tuple(counted)
    listed = list(lines[:LIST_AT_MOST])
    rows = [f"{i}. {labels.get(line.report_id) or '未识别地区的报告'}：{line.cell.raw} [{numbers[line.report_id]}]"
            + ("（该报告另写了其他口径的数值，见 `qa compare` 的“另有”）" if line.cell.others else "")
            for i, line in enumerate(listed, 1)]  # fmt: skip
    more = f"\n另有 {len(lines) - len(listed)} 份报告符合，未逐一列出。" if len(lines) > len(listed) else ""
    counted += [f"{len(lines)} 份", f"{len(lines) - len(listed)} 份"]
    lead = {
        "max": f"按各报告所写的“{label}”从高到低",
        "min": f"按各报告所写的“{label}”从低到高",
        "above": f"“{label}”{what['above']} 的报告有 {len(lines)} 份",
        "below": f"“{label}”{what['below']} 的报告有 {len(lines)} 份",
        "each": f"各报告所写的“{label}”",
        "sum": f"各报告所写的“{label}”",
    }[ranking.op]
    if none_match:  # nothing passes the threshold: what the reports do state, so the answer is checkable
        lead = f"没有报告的“{label}”{what[ranking.op]}；各报告所写的数值"
    text = f"{lead}（{basis}）：\n" + "\n".join(rows) + more
    if others:
        names = "、".join(labels.get(r) or "未识别地区的报告" for r in others[:LIST_AT_MOST])
        text += (f"\n另有 {len(others)} 份报告（{names}）写了另一口径的数值{what[ranking.op]}，未列入；"
                 "各口径见 `qa compare` 的“另有”。")  # fmt: skip
        counted.append(f"{len(others)} 份")
    if ranking.op == "sum":
        units = sorted({line.cell.unit for line in lines})
        cases = set(units) <= CASE_UNITS  # 件, 宗, 起 all count cases
        if len(units) == 1 or cases:
            unit = units[0] if len(units) == 1 else "件"
            total = f"{_plain(sum(Decimal(str(line.cell.value)) for line in lines))}{unit}"
            same = "" if len(units) == 1 else f"，{'、'.join(u for u in units if u != '件')}按件计"
            text += f"\n以上 {len(lines)} 份报告的数值相加为 {total}（计算值，不是报告原文{same}）。"
            counted.append(total)
        else:
            text += f"\n各报告的单位不同（{'、'.join(units)}），未相加。"
    return text, tuple(counted)


def _plain(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)
