"""What kind of report a text is, from its own words: a 法治政府建设 report, a 政府工作报告, a 统计公报, a
政府信息公开工作年度报告, or something else. Pure.

The title (or a title-like first line) names the kind when it names one; otherwise the opening says it by
the genre's fixed forms: a work report is delivered to 各位代表 at a 人民代表大会; a disclosure report follows
the 政府信息公开条例 with its 主动公开 / 依申请公开 parts; a bulletin opens with 初步核算 and a run of 比上年
growth figures; a 法治 report speaks of 法治政府建设 / 依法行政 / 法治建设. The cues are the genre's
vocabulary, each kind's in one table below, not any one report's sentences.
"""

from __future__ import annotations

import re

from qa.core.text import normalize

LAW, WORK, BULLETIN, DISCLOSURE, OTHER = "法治报告", "政府工作报告", "统计公报", "信息公开年报", "其他"
KINDS = (LAW, WORK, BULLETIN, DISCLOSURE, OTHER)
OPENING = 1500  # characters of the body read for the cues (after NFKC and whitespace removal)
TITLE_LINE = (
    60  # a first line this short may be a title (a body sentence that mentions 政府工作报告 is longer)
)

# A title that names its kind, checked in this order: a bulletin's or a disclosure report's title is
# specific; a work report's may mention 法治 in passing, a 法治 report's never says 政府工作报告.
_TITLE = (
    (BULLETIN, re.compile(r"统计公报")),
    (DISCLOSURE, re.compile(r"(?:政府)?信息公开(?:工作)?(?:年度)?报告|政务公开工作年度报告")),
    (WORK, re.compile(r"政府工作报告")),
    (LAW, re.compile(r"法治(?:政府)?建设|依法行政|法治政府|依法治(?:省|市|县|区|旗|州|镇|乡)")),
)
# Each kind's fixed forms in an opening; a kind counts how many different cues it meets.
_OPENING = {
    WORK: (r"各位代表", r"向大会报告|报告(?:政府)?工作|请予审议", r"人民代表大会"),
    DISCLOSURE: (r"政府信息公开条例", r"主动公开", r"依申请公开", r"政务公开"),
    BULLETIN: (r"初步核算", r"比上年(?:增长|下降)|同比(?:增长|下降)", r"地区生产总值|增加值", r"统计局"),
    LAW: (r"法治政府建设", r"依法行政", r"法治思想", r"法治建设", r"行政复议|行政执法"),
}
_OPENING_RE = {kind: tuple(re.compile(cue) for cue in cues) for kind, cues in _OPENING.items()}
# A work report is dated by the year it reviews (过去一年: qa.ingest.identity.reviewed_year) and is delivered
# early the year after, whose targets it sets: it covers both years.
DELIVERED_THE_YEAR_AFTER = frozenset({WORK})
MIN_CUES = 2  # one cue is a mention (a 法治 report speaks of 政务公开 too); two are the genre's frame


def report_kind(title: str, text: str) -> str:
    """The kind of report (one of KINDS) a title and text are."""
    lines = [normalize(line) for line in text.splitlines()[:6]]
    head = normalize(title) + "\n" + "\n".join(line for line in lines if len(line) <= TITLE_LINE)
    for kind, pattern in _TITLE:
        if pattern.search(head):
            return kind
    opening = normalize(text[: OPENING * 2])[:OPENING]
    met = {kind: sum(1 for cue in cues if cue.search(opening)) for kind, cues in _OPENING_RE.items()}
    best = max(met, key=lambda kind: met[kind])
    return best if met[best] >= MIN_CUES else OTHER


def compared(kind: str) -> bool:
    """Is a report of this kind in the comparison table? Its catalogue (行政复议, 普法, 合法性审查…) is a 法治
    report's: a work report or a bulletin would only add empty columns. A kind not read (a store from before
    kinds) counts as one."""
    return kind in ("", LAW)


def kind_label(kind: str, issuer_kind: str = "") -> str:
    """How lists show the kind: a 法治 report says whose it is (a department's, a party body's)."""
    if kind == LAW and issuer_kind in ("部门", "党委"):
        return f"{LAW}（{issuer_kind}）"
    return kind or "未识别"
