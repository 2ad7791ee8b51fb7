"""The words a question is scaffolded with (多少, 哪些, 是否, 情况…): they say nothing about the passage sought.
One vocabulary, read two ways, both defined here:

STOP_TOKENS   BM25 drops these as tokens (index.tokens): single characters and bigrams of a question;
INTERROGATIVES the offline engine cuts these out of a question before taking its content terms
              (answer.extractive.question_terms): longest forms first, with the counting words (几件, 几个…).

They differ in members (BM25 also drops 把/被/吧/啊/个/方面/其中; the engine also cuts 有无/共/为/等/该/其/我/今年/
去年/全年); making them one set changes retrieval and answers, which is tuning work with a record, not a refactor.
"""

from __future__ import annotations

import re

STOP_TOKENS = frozenset(
    "的 了 是 在 和 与 及 对 把 被 吗 呢 吧 啊 请 问 多少 什么 哪些 哪个 哪里 如何 怎么 怎样 是否 有没有 几 个 分别 情况 方面 "
    "请问 一下 主要 具体 哪 些 有 有哪 哪些 年度 报告 其中".split()
)

INTERROGATIVES = re.compile(
    r"多少|几[个件次项名人场家所户年]?|什么|哪些|哪个|哪几|哪里|哪|如何|怎么|怎样|是否|有没有|有无|吗|呢|请问|"
    r"具体|分别|情况|主要|一下|请|是|的|了|有|在|共|为|对|和|与|及|等|该|其|我|年度|报告|今年|去年|全年"
)
