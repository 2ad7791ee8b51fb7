"""question → Answer: condense follow-ups, retrieve, build numbered sources within a budget, answer with
the LLM or the offline extractive engine, keep only citations to given sources, check every number
against the passages its sentence cites."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from qa import extractive, parts
from qa.chunking import sections
from qa.llm import ChatLLM
from qa.numbers import find_numbers, ungrounded
from qa.prompts import get_template
from qa.retrieve import (
    Retriever,
    SearchResult,
    asks_across_reports,
    named_reports,
    normalize,
    region_aliases,
    unknown_places,
)
from qa.schemas import Answer, Citation, Hit, ReportRecord, Source, UnverifiedNumber

REFUSAL = extractive.REFUSAL
HEADER_SECTION = "报告信息（网页页眉）"
_MARKER = re.compile(r"\[(\d+(?:\s*[,，、]\s*\d+)*)\]")
_CLAIM_END = re.compile(r"(?<=[。！？!?；\n])")


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    content: str


# ---- context -----------------------------------------------------------------------------------


def build_sources(hits: Sequence[Hit], budget_chars: int = 3500) -> list[Source]:
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
                "rank": rank,
            }  # fmt: skip
        )
    return [Source(n=i, **{**m, "chunk_ids": tuple(m["chunk_ids"])}) for i, m in enumerate(merged, start=1)]


def prompt_sources(sources: Sequence[Source]) -> list[dict]:
    """Sources as prompt variables; a passage cannot close the sources block early."""

    def safe(text: str) -> str:
        return re.sub(
            r"</?\s*sources\s*>", lambda m: m.group().replace("<", "＜").replace(">", "＞"), text, flags=re.I
        )

    return [
        {"n": s.n, "title": safe(s.title), "section": safe(s.section), "text": safe(s.text)} for s in sources
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


def check_numbers(text: str, sources: dict[int, Source]) -> list[UnverifiedNumber]:
    """Every number in the answer must appear in a passage its sentence cites."""
    problems: list[UnverifiedNumber] = []
    for sentence, refs in claims(text):
        body = _MARKER.sub("", sentence)
        if not find_numbers(body):
            continue
        cited = [sources[n].text for n in refs if n in sources]
        if not cited:
            problems.extend(UnverifiedNumber(n.raw, "no citation") for n in find_numbers(body))
            continue
        problems.extend(UnverifiedNumber(n.raw, "not in the cited passages") for n in ungrounded(body, cited))
    return problems


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


# ---- follow-ups ----------------------------------------------------------------------------------


def condense_offline(question: str, history: Sequence[Turn], records: Sequence[ReportRecord]) -> str:
    """Make a follow-up standalone without an LLM: carry over or swap the region of the last question."""
    previous = next((t.content for t in reversed(history) if t.role == "user"), None)
    if not previous:
        return question
    before = named_reports(previous, records)
    now = named_reports(question, records)
    if not before:
        return question
    if not now:
        region = before[0].meta.region or before[0].meta.issuer
        return f"{region}{question}" if len(before) == 1 else question
    core = re.sub(r"[那呢吗？?，,。\s]|那么|的情况|情况", "", question)
    if len(core) <= 8 and all(normalize(core) in region_aliases(r) or r in now for r in now):
        swapped = previous
        for record in before:
            for alias in sorted({record.meta.region, record.meta.issuer} - {""}, key=len, reverse=True):
                swapped = swapped.replace(alias, now[0].meta.region)
        return swapped
    return question


def condense(question: str, history: Sequence[Turn], records: Sequence[ReportRecord],
             llm: ChatLLM | None, prompts_dir: Path | None = None) -> str:  # fmt: skip
    if not history:
        return question
    if llm is None:
        return condense_offline(question, history, records)
    template = get_template("condense", prompts_dir)
    messages = template.render(
        question=question, history=[{"role": t.role, "content": t.content} for t in history]
    )
    rewritten = llm.complete(messages, prompt_ref=template.ref).text.strip()
    return rewritten.splitlines()[0].strip() if rewritten else question


# ---- whole parts (problems, plans) -------------------------------------------------------------


def part_reports(question: str, result: SearchResult) -> list[str]:
    """Whose part to read: the reports in scope when few or asked across, else the best hit's report."""
    scoped = list(result.scope.reports)
    if len(scoped) <= 3 or asks_across_reports(question):
        return scoped
    return [result.hits[0].chunk.report_id] if result.hits else []


def part_sources(retriever: Retriever, report_ids: Sequence[str], part: str) -> list[Source]:
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
            region=record.meta.region, rank=len(sources),
        ))  # fmt: skip
    return sources


def header_sources(
    retriever: Retriever, report_ids: Sequence[str], field: str
) -> list[tuple[Source, parts.Span]]:
    """For a question about 文号 / 索引号 / dates / the issuing body: each report's page header (kept
    verbatim at ingest) as a source, with the line that states the field."""
    found: list[tuple[Source, parts.Span]] = []
    for report_id in report_ids:
        record = retriever.store.get_report(report_id)
        text = retriever.store.report_header(report_id) if record else ""
        line = parts.header_line(text, field) if text else None
        if record is None or line is None:
            continue
        source = Source(
            n=len(found) + 1, report_id=report_id, title=record.meta.title, section=HEADER_SECTION, start=0,
            end=len(text), text=text, chunk_ids=(), region=record.meta.region, rank=len(found), part="header",
        )  # fmt: skip
        found.append((source, line))
    return found


# ---- the chain -----------------------------------------------------------------------------------


def ask(
    question: str,
    retriever: Retriever,
    *,
    llm: ChatLLM | None = None,
    k: int = 6,
    report_ids: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    history: Sequence[Turn] = (),
    on_token: Callable[[str], None] | None = None,
    context_chars: int = 3500,
    prompts_dir: Path | None = None,
) -> Answer:
    """Answer a question with citations; offline extractive engine unless an LLM is given."""
    started = time.perf_counter()
    engine = "llm" if llm is not None else "extractive"
    records = retriever.store.reports()
    standalone = condense(question, history, records, llm, prompts_dir)
    template = get_template("answer", prompts_dir) if llm is not None else None
    common = {
        "question": question, "engine": engine, "model": llm.model if llm else None,
        "prompt_ref": template.ref if template else None, "standalone_question": standalone,
    }  # fmt: skip

    def refuse(reason: str = "", scope: tuple[str, ...] = ()) -> Answer:
        text = REFUSAL + (f"（{reason}）" if reason else "")
        if on_token:
            on_token(text)
        return Answer(text=text, citations=[], unverified_numbers=[], refused=True, scope=scope,
                      latency_ms=(time.perf_counter() - started) * 1000, **common)  # fmt: skip

    if not report_ids:
        missing = unknown_places(standalone, records)
        if missing and not named_reports(standalone, records):
            return refuse(f"资料库中没有{'、'.join(missing)}的报告")
    result = retriever.search(standalone, k=k, report_ids=report_ids, regions=regions, years=years)
    if not result.hits:
        return refuse("没有找到相关段落", result.scope.reports)
    part = parts.asked_part(standalone)
    field = parts.asked_field(standalone)
    header = header_sources(retriever, part_reports(standalone, result), field) if field else []
    sources = part_sources(retriever, part_reports(standalone, result), part) if part else []
    from_part = bool(sources)
    sources = sources or build_sources(result.hits, context_chars)
    if header:  # 文号 / 发文日期…: the page header first, then the passages (renumbered after it)
        sources = [s for s, _ in header] + [replace(s, n=len(header) + s.n) for s in sources]
    by_n = {s.n: s for s in sources}
    quotes: list[extractive.Quote] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
    if llm is None and header:
        raw, quotes = extractive.header_lines(header)
        if on_token:
            on_token(raw)
    elif llm is None and from_part:
        raw, quotes = extractive.list_points([s for s in sources if s.part == "body"])
        if on_token:
            on_token(raw)
    elif llm is None:
        drop = [a for r in records for a in (r.meta.region, r.meta.issuer, *region_aliases(r))]
        several = len(result.scope.reports) > 1
        per_report: tuple[str, ...] = ()
        if several and result.scope.reason == "named":
            per_report = result.scope.reports
        elif several and asks_across_reports(standalone):  # "哪些地区…": only the reports that say so
            per_report = tuple(dict.fromkeys(h.chunk.report_id for h in result.hits))
        asked = extractive.parse_question(standalone, drop, retriever.vocabulary())
        raw, quotes = extractive.answer(asked, sources, per_report=per_report,
                                        only_supported=result.scope.reason != "named")  # fmt: skip
        if on_token:
            on_token(raw)
    else:
        messages = template.render(
            question=standalone, sources=prompt_sources(sources),
            history=[{"role": t.role, "content": t.content} for t in history],
        )  # fmt: skip
        completion = llm.complete(messages, prompt_ref=template.ref, on_token=on_token)
        raw = completion.text
        usage = {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                 "cost_usd": completion.cost_usd}  # fmt: skip
    text, cited, dropped = parse_citations(raw, list(by_n))
    refused = is_refusal(text, cited)
    citations = [] if refused else make_citations(text, cited, by_n, quotes)
    return Answer(
        text=text.strip(),
        citations=citations,
        unverified_numbers=[] if refused else check_numbers(text, by_n),
        refused=refused,
        scope=result.scope.reports,
        dropped_citations=tuple(dropped),
        sources=sources,
        latency_ms=(time.perf_counter() - started) * 1000,
        **usage,
        **common,
    )
