"""What 《法治政府建设与责任落实督察工作规定》 (中共中央办公厅、国务院办公厅, 厅字〔2019〕28号) asks of a
法治政府建设 annual report: the contents it must have and when it must be public. Data only, and the cues by
which a report's headings and sentences show each content.

The wording of the five contents is the regulation's as county 司法局 pages quote it when they pass the
requirement on ("细化明确《法治政府建设年度报告》五项基本内容，一是上一年度推进法治政府建设的主要举措和成效；
二是…存在的不足和原因；三是…党政主要负责人履行推进法治建设第一责任人职责…；四是下一年度推进法治政府建设的
主要安排；五是其他需要报告的情况", e.g. scfzw.net/sifa/36/6427.html), and the deadline is the one provincial
guides repeat (报告应当于每年4月1日之前向社会公开). No article number is written here: the official text
could not be read from this machine, and a number from memory is a number invented. Given the text
(`qa check --regulation FILE`, QA_REGULATION_TEXT), qa.genre.regulation_text reads the article numbers, the
contents' own wording and the deadline from it; without it, documents cite the regulation by name and say
so (SOURCE_NOTE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.genre.parts import PLANS, PROBLEMS

REGULATION = "《法治政府建设与责任落实督察工作规定》"
SOURCE_NOTE = "条款号未能与正式文本核对，按规定名称引用；内容依各地司法行政部门转述的五项基本内容"
# …and how to have the articles cited, said where the tool is used (the CLI, the app), not in the documents
CITE_CLI = "给出规定全文即可引用条款号：qa check --regulation 文件（或设置 QA_REGULATION_TEXT）"
CITE_APP = "管理员把设置项 QA_REGULATION_TEXT 指向规定全文后，即可引用条款号"


@dataclass(frozen=True)
class Content:
    """One content the regulation asks of every annual report."""

    key: str  # measures | leaders | problems | plans | other
    name: str  # short, for table headings
    asks: str  # the regulation's words
    required: bool  # 其他需要报告的情况 is there only when there is something else to report
    heading: re.Pattern[str] | None  # a heading that announces it (None: any part that is none of the others)
    sentence: re.Pattern[str]  # a sentence that gives it where no heading does


CONTENTS: tuple[Content, ...] = (
    Content(
        "measures",
        "主要举措和成效",
        "上一年度推进法治政府建设的主要举措和成效",
        True,
        None,
        # a sentence that counts what was done (收到行政复议申请168件, 培训3200人次)
        re.compile(r"\d+(?:\.\d+)?\s*(?:万|亿)?(?:件|项|次|人|家|个|场|份|起|条|所|名|期|批|%)"),
    ),
    Content(
        "problems",
        "不足和原因",
        "上一年度推进法治政府建设存在的不足和原因",
        True,
        PROBLEMS,
        re.compile(r"(?:存在|仍有|还有)[^。]{0,30}(?:不足|问题|短板|差距|薄弱)"),
    ),
    Content(
        "leaders",
        "第一责任人职责",
        "上一年度党政主要负责人履行推进法治建设第一责任人职责，加强法治政府建设的有关情况",
        True,
        re.compile(r"第一责任人|主要负责(?:人|同志)[^。]{0,12}职责"),
        re.compile(r"第一责任人"),
    ),
    Content(
        "plans",
        "下一年度主要安排",
        "下一年度推进法治政府建设的主要安排",
        True,
        PLANS,
        re.compile(
            r"(?:^|[。\n])\s*(?:下一步|下步|今后|\d{4}年[，,]?[^。，,；;\d]{0,8}将)"  # 2025年，县政府将…
        ),
    ),
    Content(
        "other",
        "其他需要报告的情况",
        "其他需要报告的情况",
        False,
        re.compile(r"其他(?:需要)?(?:报告|说明)"),
        re.compile(r"其他需要报告"),
    ),
)
BY_KEY = {c.key: c for c in CONTENTS}

# The 不足 must come with their 原因: words that give a cause
CAUSE = re.compile(r"原因|究其|根源|由于|主要是因为|缘于|源于")


# the day of the year after by which the report must be public, as provincial guides repeat it: 4月1日
DUE_MONTH, DUE_DAY = 4, 1
