"""The offline extractive engine: no generation. It answers by quoting the best-supported sentence(s)
of the given sources verbatim, with [n] citations, and refuses (文中未提及) when support is weak.

Sentences are scored by the question's terms (IDF-weighted CJK bigrams over the candidate pool),
the kind of answer the question expects (多少件 → a count in 件, 比例/率 → %, 金额/资金 → 元), and
the retrieval rank of their passage. Pure functions over Source records.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from qa.core.schemas import Source
from qa.core.text import folded, without_footnote_marks
from qa.genre import measures, parts, tables
from qa.genre.figures import LEAD_VERBS
from qa.genre.numbers import find_numbers
from qa.genre.outline import heading_level, without_level_1
from qa.question.query import MULTI_YEAR, PERCENTS, Query
from qa.question.words import INTERROGATIVES as _INTERROGATIVES

REFUSAL = "文中未提及"
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")
# Text addressed to a model rather than a reader is never quoted as an answer (prompt injection).
_INSTRUCTION = re.compile(
    r"忽略(?:以上|上述|之前|前面|先前|所有)|无视(?:以上|上述|之前)|(?:系统|system)\s*(?:提示|prompt)|你(?:现在)?是一个|"
    r"ignore\s+(?:all\s+)?(?:the\s+)?(?:previous|above|prior)|disregard\s+(?:all|previous|the)|you\s+are\s+now",
    re.I,
)


def addresses_a_model(text: str) -> bool:
    """Text written to steer a model (忽略以上指令…, you are now…): never quoted, never support."""
    return bool(_INSTRUCTION.search(text))


@dataclass(frozen=True)
class Sentence:
    source: Source
    text: str
    start: int  # offsets in the report's clean text
    end: int
    position: int  # order inside the pool (document order)


@dataclass(frozen=True)
class Quote:
    n: int
    text: str
    start: int
    end: int


def source_label(source: Source) -> str:
    """How an answer names a passage's report: its place or title (never its file name)."""
    return source.label or source.region or source.title or "未识别地区的报告"


def split_sentences(source: Source, max_len: int = 160) -> list[str]:
    """Sentences of a passage (。！？ or line ends); very long ones are split at ；."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(source.text):
        if len(sentence) > max_len and "；" in sentence:
            pieces.extend(p for p in re.split(r"(?<=；)", sentence) if p)
        elif sentence:
            pieces.append(sentence)
    return pieces


def sentences_of(sources: Sequence[Source]) -> list[Sentence]:
    out: list[Sentence] = []
    for source in sources:
        cursor = 0
        for piece in split_sentences(source):
            local = source.text.find(piece, cursor)
            cursor = local + len(piece)
            text = piece.strip()
            if len(text) < 4 or _INSTRUCTION.search(text):
                continue
            offset = local + (len(piece) - len(piece.lstrip()))
            out.append(
                Sentence(source, text, source.start + offset, source.start + offset + len(text), len(out))
            )
    return out


def _norm(text: str) -> str:
    return folded(text)


def question_terms(
    question: str, drop: Sequence[str] = (), known: Collection[str] | None = None
) -> list[str]:
    """Content bigrams (and lone characters) of a question, without region names, years and question words.

    known: the library's vocabulary. A term no report uses (那边, 案子, 一共…: colloquial wording, or a
    bigram across two words) cannot tell passages apart, so it is left out; a term some *other* report
    uses stays, so a question about a figure only another report has still finds no support here."""
    text = _norm(question)
    for name in sorted(drop, key=len, reverse=True):
        if name:
            text = text.replace(_norm(name), " ")
    text = re.sub(r"(?:19|20)\d{2}\s*(?:年(?![末底初中]))?", " ", text)  # 2022年末: 年末 is content
    text = _INTERROGATIVES.sub(" ", text)
    terms: list[str] = []
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            terms.append(run)
        terms.extend(run[i : i + 2] for i in range(len(run) - 1))
    terms.extend(re.findall(r"[a-z]+|\d+(?:\.\d+)?", text))
    if known is not None:
        terms = [t for t in terms if t in known or t[0].isdigit()]
    return list(dict.fromkeys(terms))


@dataclass(frozen=True)
class Weights:
    """The offline engine's thresholds and weights. Set by `bench/tune.py` on the development split (its record,
    with the documents tuned on and the check split's score: bench/tuning/extractive.json; a test keeps these
    defaults equal to the record's choice)."""

    min_coverage: float = 0.45  # share of the question's terms a sentence must hold to answer
    number_bonus: float = 0.4  # added when the sentence states the kind of number asked…
    number_penalty: float = 0.5  # …and the factor when it does not
    heading_share: float = 0.6  # a term found only in the sentence's section heading counts this much
    char_weight: float = 0.3  # a lone character's weight against a bigram's 1.0
    digit_weight: float = 2.0  # a number written in the question
    retriever_nudge: float = 0.08  # the retriever's rank, to break near-ties
    second_ratio: float = 0.75  # a second sentence must score this share of the best
    quoted_bonus: float = 0.25  # the sentence holds the name the question puts in quotes


WEIGHTS = Weights()

_QUOTES = '“”"「」『』 '


@dataclass(frozen=True)
class Asked:
    """What a question asks for, read once: its content terms, the kind of number, and what is counted."""

    question: str
    terms: tuple[str, ...]
    units: frozenset[str] | None  # None: no number asked for; empty: some number, any unit
    rate: str | None = None  # "败诉率" in "败诉率是多少": a percentage must be that rate
    counted: str | None = None  # "法律明白人" in "多少名法律明白人": a count must be of that
    part: str | None = None  # plans | problems: the question is about that part of a report
    wants_list: bool = False
    amount: str | None = (
        None  # 城镇居民人均可支配收入 in 城镇居民人均可支配收入是多少元: the sum must be of that
    )
    one_year: bool = False  # about one year: a figure over several (累计, 年均) does not answer it
    measures: frozenset[measures.Measure] = frozenset()  # 行政诉讼: not a 行政复议 figure
    quoted: tuple[str, ...] = ()  # “四张清单”: a name in quotes, matched whole


def parse_question(query: Query, drop: Sequence[str] = (), known: Collection[str] | None = None) -> Asked:
    """What the offline engine looks for, from the question as read (qa.question.query).
    drop: names (regions, issuers) that select a report rather than describe the answer.
    known: the library's vocabulary; the counted noun is only kept when reports use it."""
    noun = query.counted
    if noun and known is not None and noun[:2] not in known:
        noun = None  # 几件“案子”: a colloquial word no report uses names nothing to attach to
    return Asked(
        question=query.text,
        terms=tuple(question_terms(query.text, drop, known)),
        units=query.units,
        rate=query.rate,
        counted=noun,
        part=query.part,
        wants_list=query.wants_list,
        amount=query.amount,
        one_year=query.one_year,
        measures=query.measures,
        quoted=tuple(q for q in _QUOTED.findall(_norm(query.text)) if len(q) >= 2),
    )


_QUOTED = re.compile(r"[“\"「『]([^”\"」』]{2,20})[”\"」』]")


def states_asked_number(sentence: str, asked: Asked) -> bool:
    """Does the sentence state the kind of number asked for — and, when the question names a rate or
    what is counted, a number attached to it (not 出庭应诉率 for 败诉率, not 1名法律顾问 for 法律明白人)?"""
    if asked.units is None:
        return True
    candidates = _candidates(sentence, asked)
    if not candidates:  # 本年度未收到…申请 answers 收到多少件: none, in words
        return not (asked.units & (PERCENTS | {"元"})) and _states_none(sentence, asked.question)
    # offsets of find_numbers point into the sentence; the focus words are CJK, which NFKC leaves alone
    if asked.rate and "%" in asked.units:
        percents = [n for n in candidates if n.unit in PERCENTS]
        if percents and not any(asked.rate in sentence[max(0, n.start - 15) : n.start] for n in percents):
            return False
    counts = [n for n in candidates if n.unit not in PERCENTS]
    return not (asked.counted and counts and not _counting(sentence, counts, asked.counted))


_YES_NO = re.compile(r"吗[？?]?$|是否|有没有|有无")
# A count the genre states as none: 未收到行政复议申请, 没有发生行政诉讼案件, 无新增…
_NONE = re.compile(r"(?:未|没有|无)(?:再)?(收到|发生|受理|办理|出现|产生|接到|新增|发现|开展)")


def _states_none(sentence: str, question: str) -> bool:
    """The sentence says the thing asked about (by the question's own verb) did not happen."""
    return any(match.group(1) in question for match in _NONE.finditer(sentence))


def _candidates(sentence: str, asked: Asked) -> list:
    """The sentence's numbers of the kind asked: the unit, for the year asked (not a figure over several),
    for the amount asked."""
    numbers = [n for n in find_numbers(sentence) if n.unit != "date"]
    # "有多少" with no unit: any count or amount — but a percentage does not say how many
    candidates = [n for n in numbers if (n.unit in asked.units if asked.units else n.unit not in PERCENTS)]
    if asked.one_year:  # 2021年当年的收入 is not 累计完成25.32亿元 (five years together)
        candidates = [n for n in candidates if not MULTI_YEAR.search(_clause_before(sentence, n.start))]
    if asked.measures:  # 行政诉讼…多少件 is not answered by 行政复议案件151件
        candidates = [n for n in candidates
                      if measures.other_measure(asked.measures, measures.clause_before(sentence, n.start)) is None]  # fmt: skip
    if asked.amount:  # a sum stated for the amount asked (城镇居民…收入), not another (农村居民…收入)
        head, tail = asked.amount[:2], asked.amount[-4:]  # tail in the number's clause, head before it
        candidates = [
            n for n in candidates if tail in _clause_before(sentence, n.start) and head in sentence[: n.start]
        ]
    return candidates


def _counting(sentence: str, counts: Sequence, noun: str) -> list:
    """The counts attached to what is counted: the thing right after the number (its first word, or its head:
    3个片区 for 联合执法片区; a verb may stand between, 16次召开厅党委会), or named just before it (培养“法律明白人”105人), or in the clause leading up to
    it, whole or by its head (法治专题讲座2次 for 法治讲座)."""
    return [
        n for n in counts
        if LEAD_VERBS.sub("", sentence[n.end :].lstrip(_QUOTES)).startswith((noun[:2], noun[-2:]))
        or noun in _clause_before(sentence, n.start) or noun[-2:] in _clause_before(sentence, n.start)
        or _coordinated(sentence[n.end :], noun)
    ]  # fmt: skip


def _coordinated(after: str, noun: str) -> bool:
    """A count of several things at once (9个地区和项目, 12家企业及个体户): the noun is one of them."""
    phrase = re.split(r"[^\u4e00-\u9fff、]", after, maxsplit=1)[0][:16]
    members = re.split(r"[和及与、]", phrase)
    return len(members) > 1 and any(m.startswith((noun[:2], noun[-2:])) for m in members[1:])


def _clause_before(sentence: str, at: int, limit: int = 40) -> str:
    """The clause that leads up to a number (学习培训、宣传宣讲、政治轮训100余场次): from the last , ; 。."""
    start = max(0, at - limit)
    stops = [m.end() for m in re.finditer(r"[,，;；。:：]", sentence[start:at])]
    return sentence[start + stops[-1] if stops else start : at]


def score_sentences(
    asked: Asked, sentences: Sequence[Sentence], min_section_coverage: float = 0.5
) -> list[tuple[float, float, Sentence]]:
    """(score, term coverage, sentence) for each sentence, best first."""
    if not asked.terms or not sentences:
        return []
    w = WEIGHTS
    normed = [_norm(s.text) for s in sentences]
    total = len(sentences)
    idf = {t: math.log(1 + total / (1 + sum(t in s for s in normed))) + 0.5 for t in asked.terms}
    # Lone characters count for little; numbers named in the question count double.
    weight = {
        t: idf[t]
        * (w.char_weight if len(t) == 1 and not t.isdigit() else w.digit_weight if t[0].isdigit() else 1.0)
        for t in asked.terms
    }
    denominator = sum(weight.values())
    scored = []
    for sentence, text in zip(sentences, normed, strict=True):
        section = _norm(sentence.source.section)
        # Terms found only in the section heading count for less than terms in the sentence itself.
        coverage = (
            sum(v if t in text else w.heading_share * v if t in section else 0.0 for t, v in weight.items())
            / denominator
        )
        score = coverage
        if asked.units is not None:
            score = (
                score + w.number_bonus
                if states_asked_number(sentence.text, asked)
                else score * w.number_penalty
            )
        if asked.quoted and any(q in text for q in asked.quoted):  # the name the question quotes, whole
            score += w.quoted_bonus  # (“四张清单”): the sentence is about what was asked
            coverage = max(coverage, min_section_coverage)
        elif (
            asked.units is None
            and _YES_NO.search(asked.question)
            and _states_none(sentence.text, asked.question)
        ):
            score += w.number_bonus  # 收到过…吗: 未收到… says it, as a figure would
        if asked.part and asked.part in parts.classify(parts.top_section(sentence.source.section)):
            coverage = max(coverage, min_section_coverage)  # a sentence of the asked-for part of the report
            score = max(score, coverage)
        score += w.retriever_nudge / (1 + sentence.source.rank)  # the retriever's opinion breaks near-ties
        scored.append((score, coverage, sentence))
    scored.sort(key=lambda item: (-item[0], item[2].position))
    return scored


def answer(
    asked: Asked,
    sources: Sequence[Source],
    *,
    per_report: Sequence[str] = (),
    only_supported: bool = False,
    min_coverage: float | None = None,
    asked_of: dict[str, Asked] | None = None,
) -> tuple[str, list[Quote]]:
    """Quote the best-supported sentence(s). per_report: answer for each of these reports separately
    (only_supported: leave out the reports that do not say, as for "哪些地区…"); asked_of: the part of the
    question a report is asked (杭锦旗…几件规范性文件？同年汤原县…几件行政规范性文件？), else the whole."""
    sentences = sentences_of(sources)
    min_coverage = WEIGHTS.min_coverage if min_coverage is None else min_coverage
    if len(per_report) > 1:
        lines: list[str] = []
        quotes: list[Quote] = []
        for report_id in per_report:
            own = [s for s in sentences if s.source.report_id == report_id]
            its = (asked_of or {}).get(report_id, asked)
            text, found = _best(its, own, min_coverage)
            row = named_row(its, list({s.source.n: s.source for s in own}.values())) if not found else None
            if row is not None:  # no sentence says it; a table row the part names may
                text, found = table_row(row)
                text = text.split("：", 1)[1]
            label = next((source_label(s.source) for s in own), "未识别地区的报告")
            if found or not only_supported:
                lines.append(f"{label}：{text}" if found else f"{label}：{REFUSAL}")
            quotes.extend(found)
        if not quotes:
            return REFUSAL, []
        return "\n".join(lines), quotes
    text, quotes = _best(asked, sentences, min_coverage)
    if not quotes:
        return REFUSAL, []
    source = next(s.source for s in sentences if s.source.n == quotes[0].n)
    return f"{source_label(source)}：" + text, quotes


def answer_parts(asked_parts: Sequence[Asked], sources: Sequence[Source], min_coverage: float | None = None
                 ) -> tuple[str, list[Quote]]:  # fmt: skip
    """The whole question first (asked_parts[0]), then each part of a several-part question answered on its own; the quotes merged in document order
    under one label. A part nothing supports is left out (the answer is then partial, not invented)."""
    sentences = sentences_of(sources)
    min_coverage = WEIGHTS.min_coverage if min_coverage is None else min_coverage
    chosen: dict[tuple[int, int], Quote] = {}
    for asked in asked_parts:
        # only a part asking for a kind of number no sentence chosen so far states gets its own sentence
        if chosen and (
            asked.units is None or any(states_asked_number(q.text, asked) for q in chosen.values())
        ):
            continue
        _, quotes = _best(asked, sentences, min_coverage)
        for quote in quotes:
            chosen.setdefault((quote.n, quote.start), quote)
    if not chosen:
        return REFUSAL, []
    quotes = sorted(chosen.values(), key=lambda q: (q.n, q.start))
    source = next(s for s in sources if s.n == quotes[0].n)
    joiner = "\n" if len(quotes) > 2 else ""
    return f"{source_label(source)}：" + joiner.join(
        f"{without_footnote_marks(q.text)}[{q.n}]" for q in quotes
    ), quotes


def header_lines(found: Sequence[tuple[Source, parts.Span]]) -> tuple[str, list[Quote]]:
    """Quote, per report, the page-header line that states what was asked (文号, 发文日期…)."""
    lines, quotes = [], []
    for source, span in found:
        quote = Quote(
            source.n, source.text[span.start : span.end], source.start + span.start, source.start + span.end
        )
        shown = re.sub(r"\s*\n\s*", " ", without_footnote_marks(quote.text))  # a byline over lines: one claim
        lines.append(f"{source_label(source)}：{shown}[{quote.n}]")
        quotes.append(quote)
    return ("\n".join(lines), quotes) if quotes else (REFUSAL, [])


def named_row(asked: Asked, sources: Sequence[Source]) -> tuple[Source, tables.Row] | None:
    """The table row a question that asks for a number names (行政规范性文件 制发、废止了几件; 房地产业增加值是多少):
    the longest row name written in the question, else None."""
    if asked.units is None:
        return None
    question = _norm(asked.question)
    best: tuple[Source, tables.Row] | None = None
    for source in sources:
        for row in tables.rows(source.text):
            name = re.sub(r"^全[省市区县旗州]", "", _norm(row.label))
            if len(name) >= 2 and name in question and (best is None or len(row.label) > len(best[1].label)):
                best = (source, row)
    return best


def table_row(found: tuple[Source, tables.Row]) -> tuple[str, list[Quote]]:
    """A table row quoted, each figure shown with its column's name and the unit its header gives
    (房地产业：绝对数 130535万元，比上年增长 -14.6%)."""
    source, row = found
    quote = Quote(
        source.n, source.text[row.start : row.end], source.start + row.start, source.start + row.end
    )
    return f"{source_label(source)}：{tables.shown(row)}[{source.n}]", [quote]


def table_extreme(
    question: str, superlative: tuple[str, bool], sources: Sequence[Source]
) -> tuple[str, list[Quote]]:
    """哪一类涨幅最大: the row of a table with the extreme figure in the column the question names, quoted, the
    comparison said as ours (按表中数字比较). A table with a row the question names comes first (居民消费价格…哪一类
    涨幅最大: its breakdown)."""
    hint, highest = superlative
    q = _norm(question)
    found = []
    for source in sources:
        grouped: dict[int, list[tables.Row]] = {}
        for row in tables.rows(source.text):
            grouped.setdefault(row.table, []).append(row)
        for rows in grouped.values():
            result = tables.extreme(rows, hint, highest)
            if result is not None:
                named = any(len(r.label) >= 2 and _norm(r.label) in q for r in rows)
                found.append((not named, source.rank, source, *result))
    if not found:
        return REFUSAL, []
    _, _, source, row, column = min(found, key=lambda f: (f[0], f[1]))
    quote = Quote(
        source.n, source.text[row.start : row.end], source.start + row.start, source.start + row.end
    )
    said = f"{'最高' if highest else '最低'}（按表中{tables.figure(column, '')[0]}比较）"
    return f"{source_label(source)}：{tables.shown(row)}，{said}[{source.n}]", [quote]


def names_the_row(quotes: Sequence[Quote], row: tables.Row) -> bool:
    return any(_norm(row.label) in _norm(q.text) for q in quotes)


def list_points(sources: Sequence[Source], max_points: int = 12) -> tuple[str, list[Quote]]:
    """A whole part of a report (its shortcomings, its plans) as the items it lists (qa.genre.parts.items: the
    same items a summary lists), each quoted with its citation."""
    blocks: list[str] = []
    quotes: list[Quote] = []
    for source in sources:
        spans = [p for p in parts.items(source.text) if not _INSTRUCTION.search(source.text[p.start : p.end])]
        picked = [Quote(source.n, source.text[p.start : p.end], source.start + p.start, source.start + p.end)
                  for p in spans[:max_points]]  # fmt: skip
        if not picked:
            continue
        label = source_label(source)
        section = without_level_1(source.section)
        # the part's own title is quoted from the source too, so it carries the citation
        blocks.append(
            f"{label}（{section}）[{source.n}]：\n"
            + "\n".join(f"{without_footnote_marks(q.text)}[{q.n}]" for q in picked)
        )
        quotes.extend(picked)
    if not quotes:
        return REFUSAL, []
    return "\n".join(blocks), quotes


def _best(asked: Asked, sentences: Sequence[Sentence], min_coverage: float) -> tuple[str, list[Quote]]:
    scored = score_sentences(asked, sentences, min_coverage)
    if not scored:
        return REFUSAL, []
    best_score, best_coverage, best = scored[0]
    if best_coverage < min_coverage or not states_asked_number(best.text, asked):
        return REFUSAL, []
    chosen = [best]
    if asked.wants_list or asked.part:
        chosen = _part_points(scored, best, min_coverage) or chosen
    if len(chosen) == 1:
        second = _second_sentence(asked, scored, best_score, best, min_coverage)
        chosen += [second] if second is not None else []
    chosen.sort(key=lambda s: s.position)
    quotes = [Quote(s.source.n, s.text, s.start, s.end) for s in chosen]
    joiner = "\n" if len(quotes) > 2 else ""
    return joiner.join(f"{without_footnote_marks(q.text)}[{q.n}]" for q in quotes), quotes


def _part_points(scored: Sequence[tuple[float, float, Sentence]], best: Sentence,
                 min_coverage: float) -> list[Sentence]:  # fmt: skip
    """For 有哪些举措: the points (headings, 一是…) of the best sentence's section of the report, in order — the
    part's own title, then its points at the highest level present (（一）… before 一是…); none when fewer
    than two points match."""
    top = parts.top_section(best.source.section)
    points = [s for _, c, s in scored if c >= min_coverage and heading_level(s.text)
              and s.source.report_id == best.source.report_id and parts.top_section(s.source.section) == top]  # fmt: skip
    if len(points) < 2:
        return []
    levels = sorted({heading_level(p.text) for p in points} - {1})
    keep = {1, levels[0]} if levels else {1}
    return sorted((p for p in points if heading_level(p.text) in keep), key=lambda s: s.position)[:9]


def _second_sentence(asked: Asked, scored: Sequence[tuple[float, float, Sentence]], best_score: float,
                     best: Sentence, min_coverage: float) -> Sentence | None:  # fmt: skip
    """A second sentence of the same report when it is nearly as good and adds figures the first lacks
    (两个指标 / 分别)."""
    for score, coverage, sentence in scored[1:4]:
        if coverage < min_coverage or score < WEIGHTS.second_ratio * best_score or sentence.text == best.text:
            continue
        if sentence.source.report_id != best.source.report_id:
            continue
        new_numbers = {n.key for n in find_numbers(sentence.text)} - {n.key for n in find_numbers(best.text)}
        if new_numbers and states_asked_number(sentence.text, asked):
            return sentence
    return None
