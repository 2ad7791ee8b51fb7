"""The parts of an annual report (opening, measures, problems, plans) and the points each part lists.

Reports put their shortcomings and next-year plans in their own top-level sections (二、存在的不足 /
三、2025年工作安排), sometimes in one (存在的问题及下步打算), and list points as （一）… headings, as
一是…二是… inside a paragraph, or as 1. lines. Pure functions over text and chunks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.genre.outline import LEVEL_2, LEVEL_3, NUMERALS

_CN = NUMERALS
PROBLEMS = re.compile(r"不足|问题|短板|差距|困难|薄弱")
PLANS = re.compile(r"安排|计划|下一步|下步|打算|思路|展望|工作重点")
# A question asks for a whole part: its shortcomings, or what comes next.
_ASKS_PROBLEMS = re.compile(r"不足|存在(?:哪些|什么|的)?问题|哪些问题|什么问题|短板|差距|困难|薄弱环节")
_ASKS_PLANS = re.compile(
    r"(?:下一步|下步|今后|明年|来年|\d{4}\s*年)(?:的|有|将|要)?(?:哪些|什么)?(?:主要|重点)?(?:工作)?"
    r"(?:计划|安排|打算|思路|重点|部署)|工作(?:计划|安排|打算|思路|重点)|(?:主要|重点)(?:计划|安排)"
    r"|有何(?:计划|打算)|打算怎么|将如何|计划(?:安排)?(?:有哪些|是什么|包括)|安排(?:有哪些|是什么|包括)"
)
_PLANS_START = re.compile(r"(?:^|(?<=[。\n]))\s*(?:下一步|下步|今后|明年)")


def classify(section_title: str) -> str:
    """A top-level section title → opening | measures | problems | plans | problems+plans."""
    if not section_title:
        return "opening"
    problems, plans = bool(PROBLEMS.search(section_title)), bool(PLANS.search(section_title))
    if problems and plans:
        return "problems+plans"
    return "plans" if plans else "problems" if problems else "measures"


def asked_part(question: str) -> str | None:
    """'plans' or 'problems' when a question asks for that whole part of a report, else None."""
    if _ASKS_PLANS.search(question):
        return "plans"
    if _ASKS_PROBLEMS.search(question):
        return "problems"
    return None


def top_section(section_path: str) -> str:
    return section_path.split(" > ")[0]


@dataclass(frozen=True)
class Span:
    start: int  # offsets into the text given
    end: int


def part_span(text: str, kind: str, part: str) -> Span | None:
    """Where a part lies inside a section's text; a combined section splits at 下一步/下步/今后."""
    if kind == part:
        return Span(0, len(text))
    if kind != "problems+plans":
        return None
    turn = _PLANS_START.search(text, 1)
    split = turn.start() if turn else len(text)
    return Span(split, len(text)) if part == "plans" else Span(0, split)


_HEAD_LINE = re.compile(rf"(?m)^[ \t\u3000]*{LEVEL_2}")
_NUM_LINE = re.compile(rf"(?m)^[ \t\u3000]*{LEVEL_3}(?!\d)")
_INLINE = re.compile(rf"(?:^|(?<=[\n。；;：:，,]))[ \t\u3000]*([{_CN}])是")
_POINT_END = re.compile(r"[。；;！？\n]")
MAX_POINT = 60


def points(text: str) -> list[Span]:
    """The points a part lists, each as the span of its opening clause: （一）… headings first, else
    一是/二是… in order (inline or at line starts), else 1./2. lines. [] when it lists none."""
    for pattern in (_HEAD_LINE, _NUM_LINE):
        starts = [m.end() - len(m.group().lstrip(" \t\u3000")) for m in pattern.finditer(text)]
        if len(starts) >= 2:
            return [_headline(text, s) for s in starts]
    ordered: list[int] = []
    for match in _INLINE.finditer(text):
        if _CN.index(match.group(1)) == len(ordered):  # 一是, 二是, 三是… in sequence only
            ordered.append(match.start(1))
    return [_headline(text, s) for s in ordered] if len(ordered) >= 2 else []


_LISTING = re.compile(r"(?:主要是|主要表现在|主要表现为|具体表现为|主要有|包括)[:：]?")
_SENTENCE = re.compile(r"[^。！？\n]+[。！？]?")


def items(text: str) -> list[Span]:
    """What a part lists, for answers and summaries alike: its points; else the items of an inline
    listing ("主要是A;B"); else its sentences (a heading line left out)."""
    found = points(text)
    if found:
        return found
    listing = _LISTING.search(text)
    if listing:
        stop = _POINT_END.search(text, listing.end())
        while stop and stop.group() in "；;":  # the listing runs on through its semicolons
            stop = _POINT_END.search(text, stop.end())
        end = stop.start() if stop else len(text)
        pieces = [m for m in re.finditer(r"[^；;]+", text[listing.end() : end])]
        if len(pieces) >= 2:
            base = listing.end()
            return [Span(base + m.start(), base + m.end()) for m in pieces if len(m.group().strip()) >= 4]
    sentences = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group().strip()
        if len(sentence) >= 4 and not re.match(rf"^[{_CN}]+、", sentence):
            lead = len(match.group()) - len(match.group().lstrip())
            sentences.append(Span(match.start() + lead, match.start() + lead + len(sentence)))
    return sentences


def _headline(text: str, start: int) -> Span:
    stop = _POINT_END.search(text, start)
    end = stop.end() if stop and stop.group() in "。；;！？" else (stop.start() if stop else len(text))
    if end - start > MAX_POINT:  # a long first sentence: cut at the last comma inside the limit
        commas = [m.start() for m in re.finditer(r"[，,]", text[start : start + MAX_POINT])]
        end = start + commas[-1] if commas else start + MAX_POINT
    return Span(start, end)


@dataclass(frozen=True)
class PartText:
    """A part of one report as one contiguous stretch of its clean text."""

    report_id: str
    kind: str  # problems | plans
    section: str  # the top-level section it sits in
    start: int  # offsets into the report's clean text
    end: int


def locate(
    report_id: str, text: str, section_starts: Sequence[tuple[str, int]], part: str
) -> PartText | None:
    """Find a part in a report from its top-level sections [(title, start offset)] in order."""
    for i, (title, start) in enumerate(section_starts):
        kind = classify(title)
        end = section_starts[i + 1][1] if i + 1 < len(section_starts) else len(text)
        span = part_span(text[start:end], kind, part)
        if span is not None and span.end > span.start:
            return PartText(report_id, part, title, start + span.start, start + span.end)
    return None


# ---- the page header: 文号, 索引号, dates, issuing body ------------------------------------------------

_FIELD_QUESTIONS = (
    ("doc_number", re.compile(r"文号|发文字号|发文号")),
    ("index_no", re.compile(r"索引号")),
    (
        "issue_date",
        # 印发 alone is content (印发了哪些文件); its date is asked with a when-word, maybe words apart
        re.compile(
            r"发文日期|成文日期|生成日期|印发(?:日期|时间)|(?:哪天|哪一天|何时|什么时候|几号)[^，,。？?]{0,16}?(?:发文|印发|成文)"
        ),
    ),
    (
        "publish_date",
        re.compile(
            r"发布日期|发布时间|(?:哪天|哪一天|何时|什么时候|几号)(?:发布|公布|公开)|(?:发布|公布)的?(?:日期|时间)"
        ),
    ),
    (
        "publisher",
        re.compile(
            r"发布机构|发文机关|发布单位|哪个(?:部门|单位|机关|机构)(?:发布|印发|发的)"
            # the document itself: 这份年报是哪个单位的, 统计公报是哪个部门…发布的, 以哪个单位的名义作的
            r"|(?:公报|年报|报告|汇报)(?:是|由)(?:哪个|哪家)(?:部门|单位|机关|机构)|以哪个(?:部门|单位|机关|机构)的名义"
        ),
    ),
    # whom to ask about the report (a disclosure report's preface: 如对本报告有疑问,请联系…; 地址、电话)
    (
        "contact",
        re.compile(r"有疑问|联系(?:方式|电话|人|地址)|咨询电话|(?:找|联系)哪个(?:单位|部门|机构)|电话是多少"),
    ),
    # a speech (政府工作报告, a report to the 人大): who delivered it, at which meeting
    (
        "delivery",
        re.compile(
            r"(?:谁|哪位|什么人).{0,12}[作做]的|(?:哪次|哪个|什么|哪届)(?:会议|大会|人代会)|以谁的名义"
        ),
    ),
)
# Header labels that hold each field, best first.
_FIELD_LABELS = {
    "doc_number": ("备注/文号", "发文字号", "文号"),
    "index_no": ("索引号",),
    "issue_date": ("发文日期", "成文日期", "公文生成日期", "印发日期"),
    "publish_date": ("发布日期", "发布时间", "发文日期", "成文日期", "公文生成日期", "时间"),
    "publisher": ("发布机构", "发文机关", "来源"),
}


def asked_field(question: str) -> str | None:
    """The header field a question asks of the report itself (文号 → doc_number, 哪天发文 → issue_date…),
    else None — also when the field is asked of another document the report names (《…实施方案》的发文字号,
    工作安排意见是以什么文号印发的, 印发了哪些文件): the passages that mention it answer that."""
    for field, pattern in _FIELD_QUESTIONS:
        match = pattern.search(question)
        if match:
            return None if _of_another_document(question, match) else field
    return None


def asked_fields(question: str) -> tuple[str, ...]:
    """Every header field a question asks of the report itself, in the order asked (索引号和发文日期)."""
    if asked_field(question) is None:
        return ()
    found = []
    for field, pattern in _FIELD_QUESTIONS:
        match = pattern.search(question)
        if match and not _of_another_document(question, match):
            found.append((match.start(), field))
    return tuple(field for _, field in sorted(found))


# What a field may belong to: the report itself (报告, 年报, 公报, 汇报) or a document it names.
_DOCUMENT = re.compile(
    r"《[^》]*》|报告|年报|公报|汇报|文件|规划|方案|意见|通知|办法|规定|条例|决定|安排|计划|纲要|细则"
)
_ITSELF = frozenset({"报告", "年报", "公报", "汇报"})


def _of_another_document(question: str, match: re.Match) -> bool:
    """The document written nearest before the field word, or right after it (印发了哪些文件), is not the report."""
    before = _DOCUMENT.findall(question[: match.start()])
    after = _DOCUMENT.findall(question[match.end() : match.end() + 12])
    return bool(before and before[-1] not in _ITSELF) or any(noun not in _ITSELF for noun in after)


# The byline under a speech's title: "——(2019年12月26日)在××第十六届人民代表大会第一次会议上" (the meeting's
# name may run onto the next line), then the speaker ("××人民政府代旗长 周玉龙") and the date on short lines
# of their own. Or the meeting in brackets after the title — 政府工作报告(第十七届人民代表大会第三次会议) — with
# the speaker in the opening sentence (现在,我代表闽清县人民政府,向大会报告政府工作).
_BYLINE = re.compile(
    r"^[—\-－―]{1,2}\s*(?:(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日\s*)?在.{2,60}(?:会议|大会|会)上?"
)
_BYLINE_MORE = re.compile(r"^[^，,。；;！？!?：:]{2,40}$")
_MEETING_TITLE = re.compile(r"^[^，,。；;]{0,20}报\s*告\s*[(（][^()（）]{2,40}(?:会议|大会)[)）]$")
_SPEAKER = re.compile(r"我代表[^，,。；;]{2,24}[,，]?\s*(?:向大会|向各位代表)")


def _byline(lines: Sequence[tuple[int, str]]) -> Span | None:
    for i, (start, line) in enumerate(lines):
        if _BYLINE.match(line.strip()):
            end = start + len(line)
            for more_start, more in lines[i + 1 : i + 3]:
                if not _BYLINE_MORE.match(more.strip()):
                    break
                end = more_start + len(more)
            return Span(start, end)
        if _MEETING_TITLE.match(line.strip()):
            return Span(start, start + len(line))
    return None


# The genre's opening clause: under whose lead the report's organ worked (在市委、市政府的正确领导下,
# 在旗委统一领导下). Identity skips it to reach the organ that speaks; a summary drops it when it leads an item.
UNDER_LEAD = r"在[^，,；;。]{0,30}(?:领导|指导|支持|带领)下"


# A disclosure report's preface says whom to ask (如对本报告有疑问,请联系吴起县政府政务服务中心), then the
# contact's lines (地址: …; 电话: …).
_ASK_WHOM = re.compile(r"(?:有疑问|有异议|咨询)[^。；;\n]{0,12}?(?:请|可)?(?:联系|咨询|致电)[^。；;\n]{2,40}")
_CONTACT_LINE = re.compile(
    r"^\s*(?:地\s*址|邮\s*编|邮政编码|联系电话|电\s*话|传\s*真|电子邮箱|邮\s*箱|联系人)\s*[:：]"
)


def _contact(lines: Sequence[tuple[int, str]]) -> Span | None:
    """From the sentence that says whom to ask through the contact lines right after it."""
    for i, (start, line) in enumerate(lines):
        match = _ASK_WHOM.search(line)
        if match is None:
            continue
        begin = max(line.rfind("。", 0, match.start()), line.rfind(",", 0, match.start()),
                    line.rfind("，", 0, match.start())) + 1  # fmt: skip
        end = start + match.end()
        for more_start, more in lines[i + 1 : i + 8]:
            if not _CONTACT_LINE.match(more):
                break
            end = more_start + len(more.rstrip())
        return Span(start + begin, end)
    return None


def speaker(text: str) -> Span | None:
    """The sentence of a speech that names whom it speaks for (现在,我代表闽清县人民政府,向大会报告政府工作…)."""
    match = _SPEAKER.search(text)
    if match is None:
        return None
    start = max(text.rfind("\n", 0, match.start()) + 1, 0)
    ends = [i for i in (text.find("。", match.end()), text.find("\n", match.end())) if i >= 0]
    return Span(start, min(ends) + (text[min(ends)] == "。") if ends else len(text))


def header_line(header: str, field: str) -> Span | None:
    """The header line that states a field with a value ("• 备注/文号:泉洛政文〔2025〕14号"), stripped of
    table pipes and bullets at its ends; None when no line has it (or the value is blank)."""
    lines: list[tuple[int, str]] = []
    offset = 0
    for line in header.split("\n"):
        lines.append((offset, line))
        offset += len(line) + 1
    if field == "delivery":
        return _byline(lines)
    if field == "contact":
        return _contact(lines)
    labelled = _labelled_line(lines, field)
    if labelled is None and field in _SIGNED_FIELDS:
        labelled = _signature(lines)
    if labelled is None and field == "publisher":  # 现将下洋镇人民政府2023年法治政府建设情况报告如下
        wrapper = _WRAPPER.search(header)
        labelled = Span(wrapper.start(), wrapper.end()) if wrapper else _speaking_organ(lines)
    return labelled


def _speaking_organ(lines: Sequence[tuple[int, str]], first: int = 3) -> Span | None:
    """The report's first sentence with its own organ as subject (2022年度,汤原县人民政府办公室政务公开工作…;
    2024年以来,礼让街街道办事处在区委…): the clause up to the organ's name and what follows to the comma."""
    body = [(start, line) for start, line in lines if line.strip() and not _HEADING.match(line.strip())]
    for start, line in body[:first]:
        match = _OPENING_ORGAN.match(line)
        if match:
            comma = re.search(r"[,，。]", line[match.end() :])
            return Span(start, start + match.end() + (comma.start() if comma else len(line) - match.end()))
    return None


# Who issued a document and when, where no label says so: its organ on a line of its own, the date on the
# next (巴林右旗统计局 / (2023年3月31日)) — under the title of a bulletin, or as the sign-off at the end.
_SIGNED_FIELDS = frozenset({"publisher", "publish_date", "issue_date"})
# The wrapper sentence a report introduces itself with, naming the organ it speaks for.
_WRAPPER = re.compile(
    r"现将[^。\n]{0,30}?(?:人民政府|(?<!法治)政府|局|厅|办公室|委员会|办事处|街道|镇|乡)[^。\n]{0,40}?(?:报告|汇报|总结)如下"
)
# A report's opening naming its own organ as subject, after the year it speaks of (2024年以来, 2022年度,).
_OPENING_ORGAN = re.compile(
    r"\s*(?:(?:19|20)\d{2}\s*年(?:度|以来)?\s*[,，]\s*)?(?:一年来\s*[,，]\s*)?"
    r"[\u4e00-\u9fff]{2,20}?(?:人民政府办公室|人民政府|政府办公室|办事处|委员会|办公室|局|厅)"
)
_HEADING = re.compile(r"^(?:[一二三四五六七八九十]+、|[(（][一二三四五六七八九十]+[)）])[^。]{0,30}$")
_ORGAN_LINE = re.compile(
    r"^[\u4e00-\u9fff（）()]{2,30}(?:局|厅|委员会|办公室|人民政府|政府|办事处|中心|委|办)$"
)
_DATE_LINE = re.compile(r"^[(（]?\s*(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日\s*[)）]?$")


def _signature(lines: Sequence[tuple[int, str]]) -> Span | None:
    for (start, line), (date_start, date) in zip(lines, lines[1:], strict=False):
        if _ORGAN_LINE.match(line.strip()) and _DATE_LINE.match(date.strip()):
            return Span(start + len(line) - len(line.lstrip()), date_start + len(date.rstrip()))
    return None


def _labelled_line(lines: Sequence[tuple[int, str]], field: str) -> Span | None:
    """The line whose label states the field with a value."""
    for label in _FIELD_LABELS[field]:
        spaced = r"\s*".join(map(re.escape, label))
        value = re.compile(rf"(?<![\u4e00-\u9fff/]){spaced}\s*[:：]?\s*\|?\s*([^|\s][^|]*)")
        for start, line in lines:
            match = value.search(line)
            if match and match.group(1).strip(" |:："):
                left = len(line) - len(line.lstrip(" |•·\t"))
                right = len(line.rstrip(" |\t"))
                return Span(start + left, start + right)
    return None
