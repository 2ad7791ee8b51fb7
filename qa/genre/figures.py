"""Figures in report sentences: (indicator phrase, number, unit, raw text, quote). Pure.

"办理行政复议案件151件,审结67件,综合纠错率达29.8%" → 办理行政复议案件 151件 · 审结 67件 · 综合纠错率 29.8%.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.genre.numbers import Number, find_numbers, whole_at
from qa.genre.outline import LEVEL_4

# Units that make a figure (counts, people, money, rates…); years, dates, ordinals and bare numbers do not.
FIGURE_UNITS = frozenset(
    "件 起 宗 件次 单 人 名 人次 位 次 场 场次 期 轮 批次 批 项 条 类 个 家 所 处 座 户 户次 元 % 倍 份 篇 部 支 队 "
    "个百分点 小时 天 平方米 公里 亩 吨 村 镇 堂 节 课时 学时 张 本 册 套 台 辆 笔 块".split()
)
_CLAUSE_BREAK = re.compile(r"[，,。；;：:、！？!?\n（）()“”\"《》]")
_COMMA_BREAK = re.compile(r"[，,。；;：:！？!?\n]")
# a footnote's mark between a name and its number (全旗地区生产总值[2]69.9亿元) is neither
_FOOTNOTE = re.compile(r"[\[［]\d{1,2}[\]］]")
_NUMBER_SPLIT = re.compile(r"\d+(?:\.\d+)?[^\d\u4e00-\u9fff]?[余多]?[万亿]?\S?")
_LEAD = re.compile(
    rf"^(?:{LEVEL_4}|其中|共计|共|累计|全年|全区|全市|全县|截至目前|截至|目前|已经|已|并|同时|另外|此外|还|均|分别|先后|合计|总计|组织|帮助)+"
)
_TRAIL = re.compile(
    r"(?:达到|达|为|共计|共|计|约|近|超过|超|逾|累计|合计|总计|均|分别|已|有|是|占|提供|增长|下降)+$"
)
_BRACKETS = re.compile(
    r"《[^》]*》|〔[^〕]*〕|\[[^\]]*\]|【[^】]*】|\([^)]*\d{4}[^)]*\)|（[^）]*\d{4}[^）]*）"
)


@dataclass(frozen=True)
class Figure:
    indicator: str  # the phrase naming what is counted ("" when the clause has none)
    number: Number
    quote: str  # the sentence it was found in, verbatim
    start: int  # offsets of the number inside the text given to extract_figures
    end: int
    clause: str = ""  # the words between the previous comma-level break (or number) and the number
    after: str = ""  # the words after the number up to the next comma-level break ("名行政执法人员…培训")

    @property
    def raw(self) -> str:
        return self.number.raw


def indicator_phrase(text: str, start: int, end: int) -> str:
    """What a figure counts: the clause before the number ("办理行政复议案件151件"), or, when that is
    empty, the noun after it ("为1421名工人…")."""
    head = _FOOTNOTE.sub("", text[:start])
    cut = max((m.end() for m in _CLAUSE_BREAK.finditer(head)), default=0)
    before = _NUMBER_SPLIT.split(head[cut:])[-1].strip()
    before = _TRAIL.sub("", _LEAD.sub("", before)).strip()
    if len(re.findall(r"[\u4e00-\u9fff]", before)) >= 2:
        return before[-24:]
    tail = text[end:].lstrip("“”\"'「」")
    stops = (_CLAUSE_BREAK.search(tail), re.search(r"[\d+＋]", tail))
    stop = min([m.start() for m in stops if m] + [len(tail)])
    return _TRAIL.sub("", tail[:stop].strip())[:16]


def clause_before(text: str, start: int) -> str:
    """The words that lead up to a number within its clause, kept whole across 、 and quotes
    ("审查区政府重大行政决策、文件、协议等" for 46件; "全区培养“法律明白人”" for 105人); titles in 《》 dropped."""
    head = _FOOTNOTE.sub("", text[:start])
    cut = max((m.end() for m in _COMMA_BREAK.finditer(head)), default=0)
    clause = _NUMBER_SPLIT.split(head[cut:])[-1]
    return re.sub(r"《[^》]*》", "", clause).strip()


def clause_after(text: str, end: int) -> str:
    """The rest of the number's clause ("行政执法人员完成…培训云平台" after 组织1027名)."""
    tail = text[end:]
    stops = (_COMMA_BREAK.search(tail), re.search(r"[\d+＋]", tail))  # another count starts a new phrase
    stop = min([m.start() for m in stops if m] + [len(tail)])
    return re.sub(r"《[^》]*》", "", tail[:stop]).strip()


def extract_figures(text: str) -> list[Figure]:
    """Every figure in a passage with its indicator phrase and the sentence around it."""
    masked = _BRACKETS.sub(lambda m: "\0" * len(m.group()), text)  # numbers in titles/文号 are not figures
    # slogans in quotes (“高效办成一件事”) are not figures either; quoted arabic numbers may be
    masked = re.sub(
        r"“[^”]{0,20}”", lambda m: re.sub(r"[一二两三四五六七八九十百千]", "\0", m.group()), masked
    )
    figures: list[Figure] = []
    for number in find_numbers(text):
        if number.unit not in FIGURE_UNITS or "\0" in masked[number.start : number.end]:
            continue
        sentence_start = max(text.rfind(ch, 0, number.start) for ch in "。！？\n") + 1
        ends = [i for i in (text.find(ch, number.end) for ch in "。！？\n") if i != -1]
        sentence_end = min(ends) + 1 if ends else len(text)
        quote = text[sentence_start:sentence_end].strip()
        figures.append(
            Figure(
                indicator_phrase(text, number.start, number.end),
                number,
                quote,
                number.start,
                number.end,
                clause_before(text, number.start),
                clause_after(text, number.end),
            )
        )
    return figures


# Words the genre puts around a figure that say how exact it is (近1.1万场, 约1.1亿元, 300余场次 keeps its 余 in
# the figure itself, 100件以上): they stay with the figure wherever it is shown.
_QUALIFIER_BEFORE = re.compile(r"(?:约|近|超过|超|逾|达到|达)$")
_QUALIFIER_AFTER = re.compile(r"^(?:以上|左右)")


def qualified(figure: Figure) -> str:
    """The value as written, with a qualifier the report puts around it (约 / 近 / 超过 / 以上…)."""
    at = whole_at(figure.quote, figure.raw)
    if at < 0:
        return figure.raw
    before = _QUALIFIER_BEFORE.search(figure.quote[:at])
    after = _QUALIFIER_AFTER.match(figure.quote[at + len(figure.raw) :])
    lead = before.group() if before and before.group() not in ("达", "达到") else ""
    return lead + figure.raw + (after.group() if after else "")


# Verbs that lead the phrase before a figure (调处矛盾纠纷2632件) or stand between a count and what it counts
# (先后16次召开厅党委会): the counted thing is what follows them. One list for summaries and answers.
LEAD_VERBS = re.compile(
    r"^(?:累计|全年|共计|共|成功|新增|新|办理|开展|组织|完成|受理|审查|审核|举办|召开|发放|设立|配备|提供|接待|培养|建立|建成|打造"
    r"|推动|推进|实现|化解|调处|处理|解决|清理|修订|制定|出台|印发|收到|新收|办结|审结|查处|立案|帮助|挽回|追回"
    r"|公布|公开|编制|梳理|排查|开通|发布|培训|举行|进行|召集|研究|审议|听取)+"
)
