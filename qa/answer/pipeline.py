"""question → Answer, in four steps with one job each:

plan     the question's scope (places, issuers, years; inherited by a follow-up that names none) and the
         reports it may use (qa.question.scope.route) — or a refusal that says why;
gather   numbered sources from those reports only: retrieved passages, a whole part (problems, plans),
         or the page header (文号, 发文日期);
answer   an `Answerer`: the offline extractive engine or an LLM;
verify   keep citations to given sources only, drop sentences that cite a report outside the scope,
         check every number against the passages its sentence cites (passages addressed to a model
         support nothing).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from qa.answer import extractive
from qa.core.naming import labels as report_labels
from qa.core.schemas import Answer, Citation, Hit, ReportRecord, Source, UnverifiedNumber
from qa.core.text import normalize, without_footnote_marks
from qa.genre import kinds, measures, parts, tables
from qa.genre.numbers import find_numbers, ungrounded
from qa.index.retriever import Retriever
from qa.ingest.chunking import sections
from qa.question import scope
from qa.question.query import Query, read

if TYPE_CHECKING:
    from qa.question.ranking import Ranking

REFUSAL = extractive.REFUSAL
HEADER_SECTION = "报告信息（网页页眉）"
SIGN_OFF = 400  # characters at the end of a report where its sign-off (organ, date) stands
_MARKER = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_ONE_MARKER = re.compile(r"\[(\d+)\]")
_CLAIM_END = re.compile(r"(?<=[。！？!?；\n])")


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    content: str


# ---- context -----------------------------------------------------------------------------------


def build_sources(
    hits: Sequence[Hit], budget_chars: int = 3500, labels: dict[str, str] | None = None
) -> list[Source]:
    """Numbered sources: hits taken in rank order within the budget, overlapping chunks of a report
    merged, then put in report + section order (so the model reads passages as the report runs)."""
    taken: list[tuple[int, Hit]] = []
    used = 0
    for rank, hit in enumerate(hits):
        if taken and used + len(hit.chunk.text) > budget_chars:
            break
        taken.append((rank, hit))
        used += len(hit.chunk.text)
    taken.sort(key=lambda item: (item[1].chunk.report_id, item[1].chunk.start))
    merged: list[dict] = []
    for rank, hit in taken:
        chunk = hit.chunk
        last = merged[-1] if merged else None
        if last and last["report_id"] == chunk.report_id and chunk.start <= last["end"]:
            if chunk.end > last["end"]:
                last["text"] += chunk.text[last["end"] - chunk.start :]
                last["end"] = chunk.end
            last["chunk_ids"].append(chunk.id)
            last["rank"] = min(last["rank"], rank)
            continue
        merged.append(
            {
                "report_id": chunk.report_id,
                "title": chunk.title,
                "section": chunk.section,
                "start": chunk.start,
                "end": chunk.end,
                "text": chunk.text,
                "chunk_ids": [chunk.id],
                "region": chunk.region,
                "label": labels.get(chunk.report_id, "") if labels else "",
                "rank": rank,
            }  # fmt: skip
        )
    return [Source(n=i, **{**m, "chunk_ids": tuple(m["chunk_ids"])}) for i, m in enumerate(merged, start=1)]


def prompt_sources(sources: Sequence[Source]) -> list[dict]:
    """Sources as prompt variables; a passage cannot close the sources block early, and its own footnote
    marks are taken out (a model would copy [2] as a citation)."""

    def safe(text: str) -> str:
        return re.sub(
            r"</?\s*sources\s*>", lambda m: m.group().replace("<", "＜").replace(">", "＞"),
            without_footnote_marks(text), flags=re.I,
        )  # fmt: skip

    return [
        {"n": s.n, "title": safe(s.title or s.label), "section": safe(s.section), "text": safe(s.text)}
        for s in sources
    ]


# ---- citations and numbers ---------------------------------------------------------------------


def parse_citations(text: str, allowed: Sequence[int]) -> tuple[str, list[int], list[int]]:
    """Keep [n] markers that point at given sources; remove the others from the text.

    Returns (cleaned text, cited numbers in order of first use, dropped numbers)."""
    allowed_set = set(allowed)
    cited: list[int] = []
    dropped: list[int] = []

    def keep(match: re.Match) -> str:
        numbers = [int(x) for x in re.split(r"\s*[,，、]\s*", match.group(1))]
        good = [n for n in numbers if n in allowed_set]
        dropped.extend(n for n in numbers if n not in allowed_set)
        cited.extend(n for n in good if n not in cited)
        return "".join(f"[{n}]" for n in good)

    cleaned = _MARKER.sub(keep, text)
    return cleaned, cited, sorted(set(dropped))


def claims(text: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with the sources each cites. A sentence without markers takes those of the next
    sentence on its line (a citation at the end of a run of sentences covers the run)."""
    out: list[tuple[str, list[int]]] = []
    for line in text.split("\n"):
        pieces = [p for p in _CLAIM_END.split(line) if p.strip()]
        # a marker right after 。 belongs to the sentence before it
        merged: list[str] = []
        for piece in pieces:
            if merged and _MARKER.match(piece.strip()):
                marker = _MARKER.match(piece.strip()).group()
                merged[-1] += marker
                rest = piece.strip()[len(marker) :]
                if rest:
                    merged.append(rest)
            else:
                merged.append(piece)
        line_claims = [
            (p, [int(x) for m in _MARKER.findall(p) for x in re.split(r"\s*[,，、]\s*", m)]) for p in merged
        ]
        inherited: list[int] = []
        for i in range(len(line_claims) - 1, -1, -1):
            sentence, refs = line_claims[i]
            if refs:
                inherited = refs
            else:
                line_claims[i] = (sentence, inherited)
        out.extend(line_claims)
    return out


def check_numbers(
    text: str,
    sources: dict[int, Source],
    counted: Sequence[str] = (),
    asked: frozenset[measures.Measure] = frozenset(),
) -> list[UnverifiedNumber]:
    """Every number in the answer must appear in a passage its sentence cites, for the measure the question
    asks (`asked`: 行政诉讼, not the passage's 行政复议 figure). A passage that addresses a model (an injected
    instruction) supports nothing. counted: what the engine itself counted or added up from the cited values
    (how many reports state an indicator), written as such in the answer."""
    problems: list[UnverifiedNumber] = []
    for sentence, refs in claims(text):
        body = _MARKER.sub("", sentence)
        for raw in sorted(counted, key=len, reverse=True):  # "11 份" before "1 份"
            body = body.replace(raw, "")
        if not find_numbers(body):
            continue
        cited = [sources[n].text for n in refs if n in sources]
        trusted = [t for t in cited if not extractive.addresses_a_model(t)]
        # the title shown with a passage is part of what the model read (淄川区…2024年度…报告); a table's
        # figures are read with the units their column headers give (绝对数(万元) 130535 → 130535万元)
        trusted += [sources[n].title for n in refs if n in sources and sources[n].title and trusted]
        trusted += [tables.read_with_units(t) for t in trusted]
        if not cited:
            problems.extend(UnverifiedNumber(n.raw, "no citation") for n in find_numbers(body))
            continue
        if not trusted:
            problems.extend(
                UnverifiedNumber(n.raw, "the cited passage addresses a model") for n in find_numbers(body)
            )
            continue
        problems.extend(
            UnverifiedNumber(n.raw, "not in the cited passages") for n in ungrounded(body, trusted)
        )
        problems.extend(another_measure(body, trusted, asked))
    return problems


def another_measure(
    claim: str, cited: Sequence[str], asked: frozenset[measures.Measure]
) -> list[UnverifiedNumber]:
    """Numbers a claim gives as the measure asked (or without naming one) that every cited passage states
    for another measure of its family: 行政诉讼案件151件 where the passage says 行政复议案件151件."""
    if not asked:
        return []
    out = []
    for number in find_numbers(claim):
        if measures.other_measure(asked, measures.clause_before(claim, number.start)) is not None:
            continue  # the claim itself says which measure it is (a verbatim quote): nothing passed off
        stated = [
            measures.other_measure(asked, measures.clause_before(text, other.start))
            for text in cited for other in find_numbers(text) if other.same_as(number)
        ]  # fmt: skip
        if stated and all(stated):
            want = next(m.name for m in asked if m.family == stated[0].family)
            out.append(UnverifiedNumber(number.raw, "another measure", stated[0].name, want))
    return out


def _support_span(claim: str, source: Source) -> tuple[str, int, int]:
    """The sentence of a source that best supports a claim (shared numbers first, then shared bigrams)."""
    sentences = extractive.sentences_of([source])
    if not sentences:
        return source.text, source.start, source.end
    claim_norm = normalize(_MARKER.sub("", claim))
    claim_numbers = {n.key for n in find_numbers(claim)}
    bigrams = {claim_norm[i : i + 2] for i in range(len(claim_norm) - 1)}

    def score(sentence: extractive.Sentence) -> tuple[int, int]:
        norm = normalize(sentence.text)
        shared_numbers = len(claim_numbers & {n.key for n in find_numbers(sentence.text)})
        return shared_numbers, sum(b in norm for b in bigrams)

    best = max(sentences, key=score)
    return best.text, best.start, best.end


def make_citations(text: str, cited: Sequence[int], sources: dict[int, Source],
                   quotes: Sequence[extractive.Quote] = ()) -> list[Citation]:  # fmt: skip
    by_n: dict[int, extractive.Quote] = {}
    for quote in quotes:  # several quotes from one passage: highlight the stretch they span
        first = by_n.get(quote.n, quote)
        start, end = min(first.start, quote.start), max(first.end, quote.end)
        source = sources[quote.n]
        by_n[quote.n] = extractive.Quote(
            quote.n, source.text[start - source.start : end - source.start], start, end
        )
    claims_by_n: dict[int, str] = {}
    for sentence, refs in claims(text):
        for n in refs:
            claims_by_n.setdefault(n, sentence)
    citations = []
    for n in cited:
        source = sources[n]
        if n in by_n:
            quote, q_start, q_end = by_n[n].text, by_n[n].start, by_n[n].end
        else:
            quote, q_start, q_end = _support_span(claims_by_n.get(n, text), source)
        citations.append(
            Citation(
                n,
                source.report_id,
                source.title,
                source.section,
                source.chunk_ids,
                source.text,
                source.start,
                source.end,
                quote,
                q_start,
                q_end,
                source.part,
            )  # fmt: skip
        )
    return citations


_REFUSAL_WORDS = re.compile(
    r"文中未提及|未提及|没有提及|未提到|没有提到|没有相关(?:信息|内容|数据|记载)|无相关(?:信息|内容|数据|记载)|"
    r"未涉及|没有涉及|无法回答|无法确定|not mentioned|no information",
    re.I,
)


def looks_like_refusal(text: str) -> bool:
    """Empty, or says the sources do not tell (文中未提及 and the ways models phrase it)."""
    stripped = _MARKER.sub("", text).strip()
    return not stripped or bool(_REFUSAL_WORDS.search(stripped))


def is_refusal(text: str, cited: Sequence[int]) -> bool:
    """A refusal is an answer that says so and cites nothing (a partial answer with citations is not)."""
    return looks_like_refusal(text) and not cited


# ---- plan: scope, follow-ups, routing ----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    question: str
    query: Query  # the question read once (qa.question.query): scope, what it asks for, follow-up made whole
    route: scope.Route

    @property
    def standalone(self) -> str:
        """The question as retrieval and the engine see it."""
        return self.query.text

    @property
    def scope(self) -> scope.Scope:
        return self.query.scope


def plan(
    question: str,
    records: Sequence[ReportRecord],
    history: Sequence[Turn] = (),
    *,
    report_ids: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    condensed: str | None = None,
    text_of: Callable[[str], str] | None = None,
) -> Plan:
    """The question read (its scope inherited only by a turn that names none) and the reports it may use."""
    earlier = [turn.content for turn in history if turn.role == "user"]
    query = read(question, records, earlier, condensed)
    routed = scope.route(query.scope, query.text, records, report_ids=report_ids, regions=regions,
                         years=years, text_of=text_of)  # fmt: skip
    return Plan(question, query, routed)


def citation_numbers(text: str, cited: Iterable[int]) -> dict[int, int]:
    """Source number → the number shown: 1..n in the order the answer first cites them ([3] then [1] is
    shown as [1] then [2]); a cited source the text never marks comes after, in its own order."""
    cited_list = list(dict.fromkeys(cited))
    cited_set = set(cited_list)
    order = [n for n in dict.fromkeys(int(m.group(1)) for m in _ONE_MARKER.finditer(text)) if n in cited_set]
    order += [n for n in cited_list if n not in order]
    return {n: shown for shown, n in enumerate(order, start=1)}


def renumbered(text: str, numbers: dict[int, int]) -> str:
    """The text with each [n] shown as numbers[n] (citation_numbers): what the CLI prints, as the app shows."""
    return _ONE_MARKER.sub(lambda m: f"[{numbers.get(int(m.group(1)), int(m.group(1)))}]", text)


# ---- gather: sources from the reports in scope ---------------------------------------------------------


def part_reports(query: Query, report_ids: Sequence[str], hits: Sequence[Hit]) -> list[str]:
    """Whose part to read: the reports in scope when few or asked across, else the best hit's report."""
    if len(report_ids) <= 3 or query.across:
        return list(report_ids)
    return [hits[0].chunk.report_id] if hits else []


def part_sources(retriever: Retriever, report_ids: Sequence[str], part: str,
                 labels: dict[str, str] | None = None) -> list[Source]:  # fmt: skip
    """A question about a whole part (shortcomings, next year's plans) reads that whole part of each
    report, not the top-k passages: lists taken from top-k miss points."""
    sources: list[Source] = []
    for report_id in report_ids:
        record = retriever.store.get_report(report_id)
        if record is None:
            continue
        text = retriever.store.report_text(report_id)
        tops = [(s.title, s.start) for s in sections(text) if s.level == 1]
        found = parts.locate(report_id, text, tops, part)
        if found is None:
            continue
        chunk_ids = tuple(c.id for c in retriever.store.report_chunks(report_id)
                          if c.start < found.end and c.end > found.start)  # fmt: skip
        sources.append(Source(
            n=len(sources) + 1, report_id=report_id, title=record.meta.title, section=found.section,
            start=found.start, end=found.end, text=text[found.start : found.end], chunk_ids=chunk_ids,
            region=record.meta.region, rank=len(sources), label=(labels or {}).get(report_id, record.meta.label),
        ))  # fmt: skip
    return sources


def field_places(header: str, body: str, field: str) -> list[tuple[str, str, int, str, parts.Span]]:
    """Where a report states a field, as (part, section, offset, text, span): its page header, else a header
    table left at the top of the body (发 布 机 构: …), else the sign-off at the end (organ, then date). A
    speech's byline of one line (the meeting, no speaker's line under it) is joined by the opening sentence that
    names whom it speaks for (我代表…向大会报告)."""
    cut = body.find("\n", 600)
    opening = body[: cut if cut > 0 else len(body)]
    tail = max(0, len(body) - SIGN_OFF)
    places = [("header", HEADER_SECTION, 0, header), ("body", "报告开头（报告信息）", 0, opening),
              ("body", "报告落款", tail, body[tail:])]  # fmt: skip
    for part, section, offset, text in places:
        span = parts.header_line(text, field) if text else None
        if span is None:
            continue
        found = [(part, section, offset, text, span)]
        # a byline of one line names the meeting only; its speaker is the opening's 我代表… sentence
        one_line = "\n" not in text[span.start : span.end].strip()
        speaker = parts.speaker(opening) if field == "delivery" and part == "header" and one_line else None
        if speaker is not None:
            found.append(("body", "报告开头", 0, opening, speaker))
        return found
    return []


def header_sources(
    retriever: Retriever,
    report_ids: Sequence[str],
    fields: Sequence[str],
    labels: dict[str, str] | None = None,
) -> list[tuple[Source, parts.Span]]:
    """For a question about 文号 / 索引号 / dates / the issuing body / a speech's delivery: the lines of each
    report that state each field asked (`field_places`), each line once, as a source with its span."""
    found: list[tuple[Source, parts.Span]] = []
    for report_id in report_ids:
        record = retriever.store.get_report(report_id)
        if record is None:
            continue
        header = retriever.store.report_header(report_id)
        body = retriever.store.report_text(report_id)
        places = [place for field in fields for place in field_places(header or "", body, field)]
        for part, section, offset, text, span in dict.fromkeys(places):
            source = Source(
                n=len(found) + 1, report_id=report_id, title=record.meta.title, section=section, start=offset,
                end=offset + len(text), text=text, chunk_ids=(), region=record.meta.region, rank=len(found),
                part=part, label=(labels or {}).get(report_id, record.meta.label),
            )  # fmt: skip
            found.append((source, span))
    return found


@dataclass(frozen=True)
class Gathered:
    sources: list[Source]
    kind: str  # passages | part | header
    header_spans: list[tuple[Source, parts.Span]] = field(default_factory=list)
    hit_reports: tuple[str, ...] = ()  # reports in retrieval order (for "哪些地区…")


def _interleave(rankings: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """Round-robin over several rankings, each chunk once: every ranking's best hits make the top k."""
    picked: dict[str, Hit] = {}
    for depth in range(max(map(len, rankings), default=0)):
        for ranked_hits in rankings:
            if depth < len(ranked_hits) and len(picked) < k:
                picked.setdefault(ranked_hits[depth].chunk.id, ranked_hits[depth])
    return list(picked.values())


def gather(
    plan_: Plan, retriever: Retriever, records: Sequence[ReportRecord], k: int, context_chars: int
) -> Gathered:
    """Numbered sources from the reports in scope only."""
    reports = plan_.route.reports
    spread = len(reports) > 1 and (plan_.route.reason == "named" or plan_.scope.across)
    hits = retriever.search_reports(plan_.standalone, reports, k, spread=spread, records=records)
    if plan_.query.subs:  # 常住人口有多少？城镇化率是多少？: each part finds its own passages too
        hits = _interleave([hits, *(retriever.search_reports(q.text, reports, k, spread=spread, records=records)
                                    for q in plan_.query.subs)], k)  # fmt: skip
    if not hits:
        return Gathered([], "passages")
    labels = report_labels(records)
    whose = part_reports(plan_.query, reports, hits)
    part = plan_.query.part
    field_ = plan_.query.field
    header = header_sources(retriever, whose, plan_.query.fields, labels) if field_ else []
    sources = part_sources(retriever, whose, part, labels) if part else []
    kind = "part" if sources else "passages"
    sources = sources or build_sources(hits, context_chars, labels)
    if field_ and (not header or (field_ == "publisher" and len(header) > 1 and not plan_.scope.places)):
        # the document itself (文号, 索引号, dates, who issued or delivered it): from the lines that state it —
        # never the opening paragraph, nor the issuers of several reports when the question names none of them
        return Gathered([], "header")
    if header:  # 文号 / 发文日期…: the page header first, then the passages (renumbered after it)
        sources = [s for s, _ in header] + [replace(s, n=len(header) + s.n) for s in sources]
        kind = "header"
    return Gathered(sources, kind, header, tuple(dict.fromkeys(h.chunk.report_id for h in hits)))


# ---- answer: the engines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """What an engine wrote, before verification."""

    text: str
    quotes: list[extractive.Quote] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    counted: tuple[
        str, ...
    ] = ()  # numbers the engine counted itself (qa.question.ranking), not claims from a report


class Answerer(Protocol):
    """What the chain needs of an engine (qa.engines.base.Engine is one)."""

    name: str
    model: str | None
    prompt_ref: str | None

    def answer(self, plan_: Plan, gathered: Gathered, records: Sequence[ReportRecord],
               vocabulary: frozenset[str], history: Sequence[Turn],
               on_token: Callable[[str], None] | None) -> Draft: ...  # fmt: skip

    def condense(self, question: str, history: Sequence[Turn]) -> str | None: ...


class ExtractiveAnswerer:
    """The offline engine: quotes sentences of the sources verbatim (qa.answer.extractive)."""

    name, model, prompt_ref = "extractive", None, None

    def condense(self, question: str, history: Sequence[Turn]) -> str | None:
        return None  # the plan reads a follow-up's place and years from the turns before it

    def answer(self, plan_: Plan, gathered: Gathered, records: Sequence[ReportRecord],
               vocabulary: frozenset[str], history: Sequence[Turn],
               on_token: Callable[[str], None] | None) -> Draft:  # fmt: skip
        if gathered.kind == "header":
            raw, quotes = extractive.header_lines(gathered.header_spans)
        elif gathered.kind == "part":
            raw, quotes = extractive.list_points([s for s in gathered.sources if s.part == "body"])
        else:
            raw, quotes = self._passages(plan_, gathered, records, vocabulary)
        if on_token:
            on_token(raw)
        return Draft(raw, quotes)

    @staticmethod
    def _passages(plan_: Plan, gathered: Gathered, records: Sequence[ReportRecord],
                  vocabulary: frozenset[str]) -> tuple[str, list[extractive.Quote]]:  # fmt: skip
        drop = [p.text for p in plan_.scope.places] + [
            name for r in records for name in (r.meta.region, r.meta.issuer, *r.meta.region_path) if name
        ]
        several = len(plan_.route.reports) > 1
        per_report: tuple[str, ...] = ()
        if several and plan_.route.reason == "named":
            per_report = plan_.route.reports
        elif several and plan_.scope.across:  # "哪些地区…": only the reports that say so
            per_report = gathered.hit_reports
        query = plan_.query
        asked = extractive.parse_question(query, drop, vocabulary)
        if query.subs and not per_report:  # 有多少？…是多少？: each part answered on its own
            asked_parts = [asked, *(extractive.parse_question(q, drop, vocabulary) for q in query.subs)]
            raw, quotes = extractive.answer_parts(asked_parts, gathered.sources)
        else:
            asked_of = {report_id: extractive.parse_question(sub, drop, vocabulary)
                        for report_id, sub in _part_for_each(query, per_report, records).items()}  # fmt: skip
            raw, quotes = extractive.answer(asked, gathered.sources, per_report=per_report, asked_of=asked_of,
                                            only_supported=plan_.route.reason != "named")  # fmt: skip
        # a table row the question names (行政规范性文件 | 3 | 3 | 20; 房地产业 / 130535 / -14.6) answers when no
        # sentence does, or none of the sentences found names that row
        row = extractive.named_row(asked, gathered.sources) if not per_report else None
        if row is not None and not extractive.names_the_row(quotes, row[1]):
            raw, quotes = extractive.table_row(row)
        return ExtractiveAnswerer._with_extreme(query, gathered, per_report, raw, quotes)

    @staticmethod
    def _with_extreme(query: Query, gathered: Gathered, per_report: Sequence[str], raw: str,
                      quotes: list[extractive.Quote]) -> tuple[str, list[extractive.Quote]]:  # fmt: skip
        """A part asking which row of a table is highest (哪一类涨幅最大) gets that row, after the rest."""
        asked = next((q for q in (query, *query.subs) if q.superlative), None)
        if asked is None or per_report:
            return raw, quotes
        text, found = extractive.table_extreme(asked.text, asked.superlative, gathered.sources)
        if not found or any(q.start == found[0].start and q.n == found[0].n for q in quotes):
            return raw, quotes
        return (f"{raw}\n{text}" if quotes else text), [*quotes, *found]


def _part_for_each(
    query: Query, per_report: Sequence[str], records: Sequence[ReportRecord]
) -> dict[str, Query]:
    """A several-part question whose parts each name one of the reports answered (杭锦旗…？同年汤原县…？): each
    report is asked the part that names it."""
    if not query.subs or len(per_report) < 2:
        return {}
    names = {r.report_id: {normalize(n) for n in (r.meta.region, r.meta.issuer, *r.meta.region_path[-1:]) if n}
             for r in records if r.report_id in per_report}  # fmt: skip
    out = {}
    for sub in query.subs:
        text = normalize(sub.text)
        named = [rid for rid, ns in names.items() if any(n and n in text for n in ns)]
        if len(named) == 1:
            out.setdefault(named[0], sub)
    return out


# ---- verify -------------------------------------------------------------------------------------------


def drop_out_of_scope(text: str, by_n: dict[int, Source], allowed: Sequence[str]) -> tuple[str, list[str]]:
    """Remove every sentence that cites a passage of a report outside the question's scope."""
    allowed_set = set(allowed)
    kept_lines: list[str] = []
    dropped: list[str] = []
    for line in text.split("\n"):
        kept = []
        for sentence, refs in claims(line):
            if any(n in by_n and by_n[n].report_id not in allowed_set for n in refs):
                dropped.append(_MARKER.sub("", sentence).strip())
            else:
                kept.append(sentence)
        if kept or not line.strip():
            kept_lines.append("".join(kept))
    return "\n".join(kept_lines), dropped


def verify(draft: Draft, plan_: Plan, gathered: Gathered) -> dict:
    """Citations to given sources only; sentences citing another report's passage dropped; numbers
    checked against what each sentence cites. Returns the Answer's verified fields."""
    by_n = {s.n: s for s in gathered.sources}
    text, cited, dropped = parse_citations(draft.text, list(by_n))
    text, out_of_scope = drop_out_of_scope(text, by_n, plan_.route.reports)
    if out_of_scope:
        _, cited, _ = parse_citations(text, list(by_n))
    refused = is_refusal(text, cited) or (bool(out_of_scope) and not _MARKER.sub("", text).strip())
    note = ""
    if refused and out_of_scope:
        text = REFUSAL + "（找到的段落来自问题范围以外的报告）"
        note = "out of scope"
    return {
        "text": text.strip(),
        "citations": [] if refused else make_citations(text, cited, by_n, draft.quotes),
        "unverified_numbers": []
        if refused
        else check_numbers(text, by_n, draft.counted, plan_.query.measures),
        "refused": refused,
        "dropped_citations": tuple(dropped),
        "dropped_claims": tuple(out_of_scope),
        "scope_note": note,
    }


def year_note(years: Sequence[int], citations: Sequence[Citation], records: Sequence[ReportRecord]) -> str:
    """When an answer quotes a report of another year than the question asks (a 2024 report published in
    2025, a work report asked about the year it was delivered in): which year each such report is on."""
    if not years:
        return ""
    by_id = {r.report_id: r for r in records}
    names = report_labels(records)
    other = [by_id[c.report_id] for c in citations if c.report_id in by_id]
    said = [f"{names[r.report_id]}的报告是{r.meta.year}年度的" for r in dict.fromkeys(other)
            if r.meta.year and r.meta.year not in years]  # fmt: skip
    asked = "、".join(f"{y}年" for y in years)
    return f"问题问的是{asked}；" + "；".join(said) + f"，所引内容不一定是{asked}的情况" if said else ""


def ranked(asked: Ranking, plan_: Plan, retriever: Retriever,
           records: Sequence[ReportRecord]) -> tuple[Draft, Gathered]:  # fmt: skip
    """The comparison table's cells for the indicator over the routed reports, listed as the question asks;
    each listed value's passage is a source, its quote the cell's."""
    from qa.question import ranking  # here: a question about one report never loads the catalogue

    # the catalogue is a 法治 report's: a work report or a bulletin in scope is neither ranked nor counted
    kind_of = {r.report_id: r.meta.kind for r in records}
    pool = [r for r in plan_.route.reports if kinds.compared(kind_of.get(r, ""))] or list(plan_.route.reports)
    cells = retriever.cells(asked.indicator.key, pool)
    stated = {report_id: cell for report_id, (cell, _) in cells.items()}
    lines = ranking.select(asked, stated)
    none_match = not lines and bool(stated) and asked.op in ("above", "below")
    if none_match:  # nothing passes the threshold: list what is stated, each cited
        lines = ranking.select(
            replace(asked, op="max" if asked.op == "above" else "min", top=len(stated)), stated
        )
    labels = report_labels(records)
    sources, quotes, numbers = [], [], {}
    for line in lines[: ranking.LIST_AT_MOST]:
        chunk = cells[line.report_id][1]
        n = len(sources) + 1
        numbers[line.report_id] = n
        sources.append(Source(n=n, report_id=chunk.report_id, title=chunk.title, section=chunk.section,
                              start=chunk.start, end=chunk.end, text=chunk.text, chunk_ids=(chunk.id,),
                              region=chunk.region, rank=n - 1, label=labels.get(chunk.report_id, "")))  # fmt: skip
        at = chunk.text.find(line.cell.quote)
        if at >= 0:
            quotes.append(extractive.Quote(n, line.cell.quote, chunk.start + at,
                                           chunk.start + at + len(line.cell.quote)))  # fmt: skip
    others = [] if none_match else ranking.other_measures(asked, stated, lines)
    text, counted = ranking.write(asked, lines, numbers, labels, len(pool), len(cells), none_match,
                                  others)  # fmt: skip
    return Draft(text, quotes, counted=counted), Gathered(sources, "table", hit_reports=tuple(numbers))


# ---- the chain -----------------------------------------------------------------------------------------


def ask(
    question: str,
    retriever: Retriever,
    *,
    engine: Answerer | None = None,
    k: int = 6,
    report_ids: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    history: Sequence[Turn] = (),
    on_token: Callable[[str], None] | None = None,
    context_chars: int = 3500,
) -> Answer:
    """Answer a question with citations: plan → gather → answer → verify. `engine` writes the answer
    (qa.wiring.make_engine builds one; default: the offline extractive answerer)."""
    started = time.perf_counter()
    answerer = engine or ExtractiveAnswerer()
    records = retriever.store.reports()
    if not records:
        retriever.search(question)  # raises EmptyIndexError with the message users know
    condensed = answerer.condense(question, history) if history else None
    plan_ = plan(question, records, history, report_ids=report_ids, regions=regions, years=years,
                 condensed=condensed, text_of=retriever.store.report_text)  # fmt: skip
    common = {
        "question": question, "engine": answerer.name, "model": answerer.model,
        "prompt_ref": answerer.prompt_ref, "standalone_question": plan_.standalone,
    }  # fmt: skip

    def refuse(reason: str) -> Answer:
        text = REFUSAL + (f"（{reason}）" if reason else "")
        if on_token:
            on_token(text)
        return Answer(text=text, citations=[], unverified_numbers=[], refused=True, scope=plan_.route.reports,
                      scope_note=reason, latency_ms=(time.perf_counter() - started) * 1000, **common)  # fmt: skip

    if plan_.route.refusal:
        return refuse(plan_.route.refusal)
    table_question = plan_.query.ranking if len(plan_.route.reports) > 1 else None
    if table_question is not None:  # 哪个…最高 / 各…分别 / 合计: from the comparison table, every value cited
        draft, gathered = ranked(table_question, plan_, retriever, records)
        if on_token:
            on_token(draft.text)
        checked = verify(draft, plan_, gathered)
        return Answer(scope=plan_.route.reports, sources=gathered.sources,
                      latency_ms=(time.perf_counter() - started) * 1000, **checked, **common)  # fmt: skip
    gathered = gather(plan_, retriever, records, k, context_chars)
    if not gathered.sources:
        return refuse("报告的页眉、开头和落款都没有写明" if gathered.kind == "header" else "没有找到相关段落")
    draft = answerer.answer(plan_, gathered, records, retriever.vocabulary(), history, on_token)
    checked = verify(draft, plan_, gathered)
    return Answer(
        scope=plan_.route.reports,
        year_note=year_note(plan_.scope.years, checked["citations"], records),
        sources=gathered.sources,
        prompt_tokens=draft.prompt_tokens,
        completion_tokens=draft.completion_tokens,
        cost_usd=draft.cost_usd,
        latency_ms=(time.perf_counter() - started) * 1000,
        **checked,
        **common,
    )
