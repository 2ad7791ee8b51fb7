"""Eval datasets (the DESIGN.md JSONL contract) → runs → metrics. Scoring functions are pure."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qa.answer.pipeline import looks_like_refusal
from qa.core.errors import InputError, OutputError, ProviderError, QAError
from qa.core.schemas import Answer, Chunk
from qa.core.text import normalize
from qa.genre.numbers import find_numbers, parse_number, ungrounded
from qa.summary.summarize import summary_length

AnswerType = Literal["number", "text", "list", "unanswerable"]
M = TypeVar("M", bound=BaseModel)
REFUSAL = "文中未提及"


class EvalTurn(BaseModel):
    """One turn of a conversation case, asked after the turns before it in the same session."""

    model_config = ConfigDict(extra="allow")

    question: str = Field(min_length=1)
    answer: str
    answer_type: AnswerType
    evidence: list[str] = []


class EvalFilters(BaseModel):
    """Filters the question is asked under (as `qa ask --report/--region/--year` or the app's sidebar)."""

    model_config = ConfigDict(extra="forbid")

    report: list[str] = []
    region: list[str] = []
    year: list[int] = []


class EvalCase(BaseModel):
    """A question (or, with `turns`, a conversation) and its gold. See DESIGN.md *Eval dataset*."""

    model_config = ConfigDict(extra="allow")

    id: str
    doc: str
    question: str = ""
    answer: str = ""
    answer_type: AnswerType | None = None
    evidence: list[str] = []
    turns: list[EvalTurn] = []
    filters: EvalFilters | None = None

    @field_validator("doc")
    @classmethod
    def _doc_is_a_name(cls, value: str) -> str:
        if value != "*" and ("/" in value or "\\" in value or value in ("", ".", "..")):
            raise ValueError("doc must be a file name inside the docs folder, or '*'")
        return value

    @model_validator(mode="after")
    def _question_or_turns(self) -> EvalCase:
        if not self.turns and (not self.question or self.answer_type is None):
            raise ValueError("a case needs question, answer and answer_type — or turns")
        return self

    def units(self) -> list[EvalCase]:
        """The scored questions: the case itself, or one per turn (ids `<id>#1`, `<id>#2`…)."""
        if not self.turns:
            return [self]
        return [
            EvalCase(id=f"{self.id}#{i}", doc=self.doc, question=t.question, answer=t.answer,
                     answer_type=t.answer_type, evidence=t.evidence, filters=self.filters)
            for i, t in enumerate(self.turns, start=1)
        ]  # fmt: skip


def read_jsonl(path: Path, model: type[M], what: str) -> list[tuple[int, M]]:
    """(line number, validated record) for each non-blank line; errors name the file and the line."""
    if not path.is_file():
        raise InputError(f"{what} file not found", str(path))
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as ex:
        raise InputError(f"cannot read the {what} file as UTF-8 JSONL ({ex})", str(path)) from ex
    records: list[tuple[int, M]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append((number, model.model_validate(json.loads(line))))
        except json.JSONDecodeError as ex:
            raise InputError(f"line {number}: not valid JSON ({ex.msg})", str(path)) from ex
        except ValidationError as ex:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in ex.errors())
            raise InputError(f"line {number}: {problems}", str(path)) from ex
    if not records:
        raise InputError(f"{what} file has no records", str(path))
    return records


def load_dataset(path: Path, docs_dir: Path | None = None) -> list[EvalCase]:
    """Read and validate a JSONL dataset; errors name the line. Checks docs exist when docs_dir is given."""
    records = read_jsonl(path, EvalCase, "dataset")
    seen: set[str] = set()
    for number, case in records:
        if case.id in seen:
            raise InputError(f"line {number}: duplicate id {case.id!r}", str(path))
        if docs_dir is not None and case.doc != "*" and not (docs_dir / case.doc).is_file():
            raise InputError(f"line {number}: doc {case.doc!r} is not a file in {docs_dir}", str(path))
        seen.add(case.id)
    return [case for _, case in records]


# ---- pure scoring ------------------------------------------------------------------------------


def merged_spans(chunks: Sequence[Chunk]) -> dict[str, list[tuple[int, int]]]:
    """Per report, the union of the retrieved chunks' spans (neighbouring chunks join up)."""
    by_report: dict[str, list[tuple[int, int]]] = {}
    for chunk in sorted(chunks, key=lambda c: (c.report_id, c.start)):
        spans = by_report.setdefault(chunk.report_id, [])
        if spans and chunk.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], chunk.end))
        else:
            spans.append((chunk.start, chunk.end))
    return by_report


def evidence_found(evidence: Sequence[str], chunks: Sequence[Any], texts: dict[str, str]) -> bool:
    """True when every evidence string lies inside the retrieved passages (after NFKC + whitespace
    removal). Neighbouring body passages join up; a page-header source (part="header") is its own text."""
    if not evidence:
        return True
    body = [c for c in chunks if getattr(c, "part", "body") == "body"]
    passages = [
        normalize(texts[report_id][start:end]) if report_id in texts else ""
        for report_id, spans in merged_spans(body).items()
        for start, end in spans
    ]
    if not texts:  # no report texts at hand: fall back to the chunk texts themselves
        passages = [normalize(c.text) for c in body]
    passages += [normalize(c.text) for c in chunks if getattr(c, "part", "body") != "body"]
    return all(any(normalize(e) in p for p in passages) for e in evidence)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return float(ordered[index])


def mean(values: Sequence[float | bool]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def is_refusal(answer: str | None) -> bool:
    """An empty answer, or one that says the sources do not tell."""
    return looks_like_refusal(answer or "")


def gold_items(gold: str) -> list[str]:
    return [item.strip() for item in re.split(r"[；;]", gold) if item.strip()]


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def item_covered(answer: str, item: str, min_recall: float = 0.8) -> bool:
    """A text item is covered when it appears (normalised) or most of its bigrams do."""
    a, g = normalize(answer), normalize(item)
    if not g:
        return True
    if g in a:
        return True
    grams = _bigrams(g)
    return sum(b in a for b in grams) / len(grams) >= min_recall


def number_correct(answer: str, gold: str) -> bool:
    """Every gold number (any notation: 一百五十一件 ≡ 151件, 1.1亿元 ≡ 11000万元) is in the answer."""
    items = gold_items(gold)
    if not items:
        return False
    for item in items:
        number = parse_number(item)
        if number is None:
            if not item_covered(answer, item):
                return False
        elif not any(n.same_as(number) for n in find_numbers(answer)):
            return False
    return True


def list_coverage(answer: str, gold: str) -> float:
    items = gold_items(gold)
    return mean([item_covered(answer, item) for item in items]) if items else 0.0


def score_answer(case: EvalCase, answer: str, refused: bool | None = None) -> tuple[bool, bool]:
    """(correct, refused) for one answer against its gold; refused defaults to a reading of the text."""
    refused = is_refusal(answer) if refused is None else refused
    if case.answer_type == "unanswerable":
        return refused, refused
    if refused:
        return False, True
    if case.answer_type == "number":
        return number_correct(answer, case.answer), False
    if case.answer_type == "list":
        return list_coverage(answer, case.answer) == 1.0, False
    return all(item_covered(answer, item) for item in gold_items(case.answer)), False


# An echo: a reply that repeats what the model was given instead of answering (a weak model, a wrong chat
# template). It can "contain" the gold number, so scoring must not credit it.
ECHO_WINDOW = 10  # characters: a shared 10-character window is copying, not a shared phrase
ECHO_SHARE = 0.6  # copied windows over all of the answer's windows
ECHO_RUN_SENTENCES = 3  # sentence ends inside one copied run with no [n] in it: more than a quote or two
ECHO_RUN_CHARS = 100
ECHO_MAX_CHARS = 20_000  # a runaway reply is judged on its start (bounded time)
_MARKER = re.compile(r"\[\d+\]")
_SENTENCE_END = re.compile(r"[。！？!?]")
_BREAK = "\x00"  # where a citation marker stood: a copied run never crosses it


def _copied_share(text: str, given_windows: set[str]) -> float | None:
    """Share of the text's windows (those not crossing a citation) found in what the model was given;
    None when the text has no whole window."""
    windows = [text[i : i + ECHO_WINDOW] for i in range(len(text) - ECHO_WINDOW + 1)]
    windows = [w for w in windows if _BREAK not in w]
    return sum(w in given_windows for w in windows) / len(windows) if windows else None


def _copied_runs(text: str, given: str) -> list[str]:
    """The text cut greedily into the longest pieces found verbatim in `given` (pieces never cross a citation)."""
    runs, start = [], 0
    while start < len(text):
        end = start
        while end < len(text) and text[end] != _BREAK and text[start : end + 1] in given:
            end += 1
        if end > start:
            runs.append(text[start:end])
        start = max(end, start + 1)
    return runs


def is_echo(answer: str, question: str, passages: Sequence[str], instructions: Sequence[str] = ()) -> bool:
    """True when an answer only repeats its prompt instead of answering: it restates the question verbatim
    and the rest is mostly (≥ 60 % of its 10-character windows) copied from the passages or instructions it
    was given (or there is no rest); or it is mostly copied and holds one verbatim run, uncited, spanning at
    least three sentences of the passages — far more than the one or two sentences an extractive answer
    quotes, each followed by its [n]. Compared after normalize(); citation markers break a run."""
    text = normalize(_MARKER.sub(_BREAK, answer[:ECHO_MAX_CHARS]))
    given = "\x01".join(normalize(t) for t in (*passages, *instructions, question) if t)
    given_windows = {given[i : i + ECHO_WINDOW] for i in range(len(given) - ECHO_WINDOW + 1)}
    asked = normalize(question).rstrip("?")  # NFKC turns ？ into ?
    if len(asked) >= 8 and asked in text:
        rest = text.replace(asked, _BREAK)
        if not re.sub(r"[\W_]", "", rest):  # nothing but the question (and punctuation)
            return True
        share = _copied_share(rest, given_windows)
        if share is not None and share >= ECHO_SHARE:
            return True
    share = _copied_share(text, given_windows)
    if share is None or share < ECHO_SHARE:
        return False
    return any(
        len(run) >= ECHO_RUN_CHARS and len(_SENTENCE_END.findall(run)) >= ECHO_RUN_SENTENCES
        for run in _copied_runs(text, given)
    )


def citation_hits(evidence: Sequence[str], passages: Sequence[str]) -> list[bool]:
    """For each cited passage: does it contain any of the evidence?"""
    normed = [normalize(e) for e in evidence]
    return [any(e in normalize(p) for e in normed) for p in passages]


# ---- runs --------------------------------------------------------------------------------------

SearchFn = Callable[[EvalCase], list[Chunk]]


def run_retrieval(
    cases: Sequence[EvalCase],
    search: SearchFn,
    texts: dict[str, str],
    k: int,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Retrieval-only eval: recall@k and latency per question."""
    rows: list[dict[str, Any]] = []
    for case in (unit for c in cases for unit in c.units()):
        started = time.perf_counter()
        chunks = search(case)[:k]
        ms = (time.perf_counter() - started) * 1000
        rows.append(
            {
                "id": case.id,
                "question": case.question,
                "doc": case.doc,
                "gold": case.answer,
                "answer_type": case.answer_type,
                "answer": None,
                "correct": None,
                "refused": None,
                "retrieval_hit": evidence_found(case.evidence, chunks, texts) if case.evidence else None,
                "citations": [],
                "retrieved": [c.id for c in chunks],
                "retrieved_reports": sorted({c.report_id for c in chunks}),
                "ms": round(ms, 1),
            }
        )
        if progress:
            progress()
    return summarize_rows(rows, k)


def summarize_rows(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    hits = [r["retrieval_hit"] for r in rows if r["retrieval_hit"] is not None]
    latencies = [r["ms"] for r in rows]
    return {
        "n": len(rows),
        "k": k,
        "retrieval_recall_at_k": round(mean(hits), 4),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "rows": rows,
    }


# (question, the turns before it in its conversation as (question, answer text) pairs) → Answer
AnswerFn = Callable[[EvalCase, list[tuple[str, str]]], Answer]


def error_row(case: EvalCase, error: QAError, ms: float) -> dict[str, Any]:
    """The row of a question whose answer failed (a provider or output error): wrong, not a refusal, and the
    message kept so the report can say what happened."""
    return {
        "id": case.id, "question": case.question, "doc": case.doc, "answer_type": case.answer_type,
        "gold": case.answer, "answer": "", "correct": False, "refused": False, "retrieval_hit": None,
        "citations": [], "citations_with_evidence": 0, "numbers": 0, "unverified_numbers": [], "retrieved": [],
        "passages": [], "engine": None, "model": None, "prompt_ref": None, "ms": round(ms, 1), "echo": False,
        "error": str(error),
    }  # fmt: skip


def run_qa(
    cases: Sequence[EvalCase],
    answer_fn: AnswerFn,
    texts: dict[str, str],
    k: int,
    progress: Callable[[], None] | None = None,
    instructions: Sequence[str] = (),
) -> dict[str, Any]:
    """Full QA eval: answers, refusals, citations and number grounding per question (each turn of a
    conversation case in order, with the turns before it as history), then metrics.

    A provider or output error fails that question only (its row carries `error`) and the run goes on; a
    configuration error or an unreachable endpoint (stops_batch) would fail every question, so it is raised.
    An answer that only echoes its prompt (is_echo; `instructions` are the prompt's own texts) scores wrong."""
    rows: list[dict[str, Any]] = []
    for parent in cases:
        said: list[tuple[str, str]] = []  # the conversation so far: (question, answer text)
        for case in parent.units():
            started = time.perf_counter()
            try:
                answer = answer_fn(case, list(said))
            except (ProviderError, OutputError) as ex:
                if ex.stops_batch:
                    raise
                said.append((case.question, ""))
                rows.append(error_row(case, ex, (time.perf_counter() - started) * 1000))
                if progress:
                    progress()
                continue
            said.append((case.question, answer.text))
            ms = (time.perf_counter() - started) * 1000
            # an echo is never credited, also when it reads as a refusal (an echoed rule says “文中未提及”)
            given = [t for s in answer.sources for t in (s.title, s.section, s.text)]
            echo = is_echo(answer.text, case.question, given, instructions)
            correct, refused = (False, False) if echo else score_answer(case, answer.text, answer.refused)
            precise = (
                citation_hits(case.evidence, [c.passage for c in answer.citations]) if case.evidence else []
            )
            numbers = 0 if answer.refused else len(find_numbers(re.sub(r"\[\d+\]", "", answer.text)))
            rows.append(
                {
                    "id": case.id,
                    "question": case.question,
                    "doc": case.doc,
                    "answer_type": case.answer_type,
                    "gold": case.answer,
                    "answer": answer.text,
                    "correct": correct,
                    "refused": refused,
                    "retrieval_hit": evidence_found(case.evidence, answer.sources, texts)
                    if case.evidence
                    else None,
                    "citations": [
                        {"n": c.n, "report": c.report_id, "chunk_ids": list(c.chunk_ids), "quote": c.quote}
                        for c in answer.citations
                    ],
                    "citations_with_evidence": sum(precise),
                    "numbers": numbers,
                    "unverified_numbers": [u.raw for u in answer.unverified_numbers],
                    "retrieved": [cid for s in answer.sources for cid in s.chunk_ids],
                    "passages": [
                        {"n": s.n, "report": s.report_id, "section": s.section, "text": s.text}
                        for s in answer.sources
                    ],  # fmt: skip
                    "engine": answer.engine,
                    "model": answer.model,
                    "prompt_ref": answer.prompt_ref,
                    "ms": round(ms, 1),
                    "echo": echo,
                    "error": None,
                }
            )
            if progress:
                progress()
    return summarize_qa(rows, k)


def summarize_qa(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    metrics = summarize_rows(rows, k)
    answerable = [r for r in rows if r["answer_type"] != "unanswerable"]
    # an errored question was neither refused nor answered: wrong either way
    refused_right = [r["refused"] == (r["answer_type"] == "unanswerable") and not r["error"] for r in rows]
    metrics.update(
        {
            "answer_accuracy": round(mean([bool(r["correct"]) for r in answerable]), 4),
            "refusal_accuracy": round(mean(refused_right), 4),
            "citation_precision": citation_precision(rows),
            # an answer was given (not a refusal, not an error) and it is wrong: the worst outcome, over all
            # questions
            "confidently_wrong": round(
                mean([not r["refused"] and not r["correct"] and not r.get("error") for r in rows]), 4
            ),
            "errors": sum(bool(r.get("error")) for r in rows),  # questions that failed (each counted wrong)
            "false_refusals": round(mean([bool(r["refused"]) for r in answerable]), 4) if answerable else 0.0,
            "number_grounding": number_grounding(rows),
            "by_type": accuracy_by_type(rows),
        }
    )
    keys = ["n", "k", "retrieval_recall_at_k", "answer_accuracy", "refusal_accuracy", "citation_precision",
            "number_grounding", "confidently_wrong", "false_refusals", "errors", "p50_ms", "p95_ms", "by_type",
            "rows"]  # fmt: skip
    return {key: metrics[key] for key in keys}


def citation_precision(rows: list[dict[str, Any]]) -> float:
    """Of the citations in answers given to answerable questions, the share whose passage holds the evidence."""
    answered = [r for r in rows if r["answer_type"] != "unanswerable" and not r["refused"]]
    cited = sum(len(r["citations"]) for r in answered)
    precise = sum(r["citations_with_evidence"] for r in answered)
    return round(precise / cited, 4) if cited else 1.0


def number_grounding(rows: list[dict[str, Any]]) -> float:
    """Of the numbers in all answers, the share found in the passages they cite."""
    numbers = sum(r["numbers"] for r in rows)
    unverified = sum(len(r["unverified_numbers"]) for r in rows)
    return round((numbers - unverified) / numbers, 4) if numbers else 1.0


def accuracy_by_type(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Questions and accuracy per answer type (number, text, list, unanswerable), for the types asked."""
    return {
        t: {"n": len(group), "correct": round(mean([bool(r["correct"]) for r in group]), 4)}
        for t in ("number", "text", "list", "unanswerable")
        if (group := [r for r in rows if r["answer_type"] == t])
    }


# ---- summary checks ------------------------------------------------------------------------------

SUMMARY_META = ("title", "issuer", "region", "year", "publish_date", "doc_number", "kind")
SUMMARY_SECTIONS = ("problems", "plans")


class KeyFact(BaseModel):
    """A fact a reader must find in a report's summary: the figure, and what it counts (the label a
    reader would give it: 行政复议收案, 调解成功率)."""

    model_config = ConfigDict(extra="forbid")

    label: str
    value: str


class SummaryGold(BaseModel):
    """What a report's summary must contain (evals/datasets/summary_gold.jsonl, one report a line).

    A metadata field left out (or null) is not checked; `must_sections` lists the parts the report has."""

    model_config = ConfigDict(extra="allow")

    doc: str
    title: str | None = None
    issuer: str | None = None
    region: str | None = None
    year: int | None = None
    publish_date: str | None = None
    doc_number: str | None = None
    kind: str | None = None  # qa.genre.kinds: 法治报告, 政府工作报告, 统计公报, 信息公开年报, 其他
    must_figures: list[str] = []
    must_sections: list[Literal["problems", "plans"]] = []
    problems_min: int = Field(default=1, ge=0)
    plans_min: int = Field(default=1, ge=0)
    key_facts: list[KeyFact] = []

    @field_validator("doc")
    @classmethod
    def _doc_is_a_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or value in ("", ".", "..", "*"):
            raise ValueError("doc must be a file name inside the docs folder")
        return value


def load_summary_gold(path: Path, docs_dir: Path | None = None) -> list[SummaryGold]:
    """Read and validate a summary gold JSONL file; errors name the line."""
    records = read_jsonl(path, SummaryGold, "summary gold")
    for number, gold in records:
        if docs_dir is not None and not (docs_dir / gold.doc).is_file():
            raise InputError(f"line {number}: doc {gold.doc!r} is not a file in {docs_dir}", str(path))
    return [gold for _, gold in records]


def summary_texts(summary: Any) -> list[str]:
    """Every free-text field of a summary (overview, measure points, problems, plans)."""
    texts = [summary.overview]
    texts += [p.text for area in summary.measures for p in area.points]
    texts += [p.text for p in summary.problems] + [p.text for p in summary.plans]
    return [t for t in texts if t]


def figure_present(figure: str, summary: Any) -> bool:
    """A must-have figure is in the summary: as a key figure, or stated in one of its texts
    (same quantity in any notation: 151件 ≡ 一百五十一件)."""
    wanted = parse_number(figure)
    stated = [f.raw for f in summary.key_figures] + summary_texts(summary)
    if wanted is None:
        return any(normalize(figure) in normalize(text) for text in stated)
    return any(n.same_as(wanted) and n.unit == wanted.unit for text in stated for n in find_numbers(text))


def label_matches(gold: str, label: str, share: float = 0.75) -> bool:
    """A figure's label names what the gold label names: most of the gold's character pairs are in it
    (行政复议收案 ≈ 行政复议 收案; 调解成功率 ≈ 人民调解 成功率), never a sentence fragment (协议等)."""
    wanted, got = _bigrams(normalize(gold)), _bigrams(normalize(label))
    return sum(b in got for b in wanted) / len(wanted) >= share


def key_fact_rows(gold: SummaryGold, summary: Any) -> tuple[list[str], int, list[str]]:
    """(facts missing from the summary, facts shown as a key-figure row, of those the ones whose label does
    not name the fact), each fact as 'label value'."""
    missing, shown, mislabelled = [], 0, []
    for fact in gold.key_facts:
        if not figure_present(fact.value, summary):
            missing.append(f"{fact.label} {fact.value}")
        wanted = parse_number(fact.value)
        rows = [
            f for f in summary.key_figures if wanted and any(n.same_as(wanted) for n in find_numbers(f.raw))
        ]
        if rows:
            shown += 1
            if not any(label_matches(fact.label, f.indicator) for f in rows):
                mislabelled.append(f"{fact.label} {fact.value}（标为 {rows[0].indicator}）")
    return missing, shown, mislabelled


def summary_grounding(summary: Any, report_text: str) -> tuple[int, list[str]]:
    """(numbers stated, those not traceable to the report): key figures must sit verbatim in their quote
    and the quote in the report; numbers in the texts must occur in the report. Checked independently of
    the summary's own `verified` flags."""
    report = normalize(report_text)
    total, bad = 0, []
    for figure in summary.key_figures:
        total += 1
        if normalize(figure.raw) not in normalize(figure.quote) or normalize(figure.quote) not in report:
            bad.append(figure.raw)
    for text in summary_texts(summary):
        total += len([n for n in find_numbers(text) if n.unit != "date"])
        bad += [n.raw for n in ungrounded(text, [report_text]) if n.unit != "date"]
    return total, bad


def score_summary(gold: SummaryGold, summary: Any, report_text: str) -> dict[str, Any]:
    """One report's summary against its gold: metadata, figures, grounding, sections. Pure."""
    metadata = {}
    for name in SUMMARY_META:
        expected = getattr(gold, name)
        if expected is None:
            continue
        got = getattr(summary, name)
        metadata[name] = normalize(str(expected)) == normalize(str(got if got is not None else ""))
    missing = [f for f in gold.must_figures if not figure_present(f, summary)]
    numbers, unfounded = summary_grounding(summary, report_text)
    facts_missing, facts_shown, mislabelled = key_fact_rows(gold, summary)
    counts = {"problems": len(summary.problems), "plans": len(summary.plans)}
    minimum = {"problems": max(1, gold.problems_min), "plans": max(1, gold.plans_min)}
    sections = {part: counts[part] >= minimum[part] for part in gold.must_sections}
    return {
        "doc": gold.doc,
        "metadata": metadata,
        "metadata_wrong": {n: str(getattr(summary, n)) for n, ok in metadata.items() if not ok},
        "must_figures": len(gold.must_figures),
        "figures_missing": missing,
        "numbers": numbers,
        "numbers_ungrounded": unfounded,
        "sections": sections,
        "section_counts": counts,
        "length": summary_length(summary),
        "report_length": len(report_text),
        "key_facts": len(gold.key_facts),
        "key_facts_missing": facts_missing,
        "key_facts_shown": facts_shown,
        "labels_wrong": mislabelled,
        "ok": all(metadata.values())
        and not missing
        and not unfounded
        and all(sections.values())
        and not facts_missing
        and not mislabelled,
    }


def summarize_summary_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate summary metrics over reports (all in [0, 1])."""
    meta_checks = [ok for r in rows for ok in r["metadata"].values()]
    must = sum(r["must_figures"] for r in rows)
    found = must - sum(len(r["figures_missing"]) for r in rows)
    numbers = sum(r["numbers"] for r in rows)
    unfounded = sum(len(r["numbers_ungrounded"]) for r in rows)
    section_checks = [ok for r in rows for ok in r["sections"].values()]
    facts = sum(r.get("key_facts", 0) for r in rows)
    facts_missing = sum(len(r.get("key_facts_missing", [])) for r in rows)
    shown = sum(r.get("key_facts_shown", 0) for r in rows)
    labels_wrong = sum(len(r.get("labels_wrong", [])) for r in rows)
    return {
        "n": len(rows),
        "metadata_accuracy": round(mean(meta_checks), 4) if meta_checks else 1.0,
        "figure_recall": round(found / must, 4) if must else 1.0,
        "number_grounding": round((numbers - unfounded) / numbers, 4) if numbers else 1.0,
        "section_completeness": round(mean(section_checks), 4) if section_checks else 1.0,
        # the summary's reading length over its report's, mean over reports (lower is shorter)
        "compression": round(
            mean([r["length"] / r["report_length"] for r in rows if r.get("report_length")]), 4
        ),
        "key_fact_coverage": round(1 - facts_missing / facts, 4) if facts else 1.0,
        "label_quality": round(1 - labels_wrong / shown, 4) if shown else 1.0,
        "rows": rows,
    }


SummaryFn = Callable[[SummaryGold], tuple[Any, str]]  # gold → (Summary, the report's clean text)


def run_summaries(
    golds: Sequence[SummaryGold], summarize_fn: SummaryFn, progress: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Summarize each gold report and score it; a report that fails to summarize scores as a failure (a
    configuration error is raised instead)."""
    rows: list[dict[str, Any]] = []
    for gold in golds:
        started = time.perf_counter()
        try:
            summary, text = summarize_fn(gold)
            row = score_summary(gold, summary, text)
            row["prompt_refs"] = list(summary.prompt_refs)
        except QAError as ex:
            if ex.stops_batch:  # a bad key or an unreachable endpoint: every report would fail; say it once
                raise
            row = {
                "doc": gold.doc, "metadata": {n: False for n in SUMMARY_META if getattr(gold, n) is not None},
                "metadata_wrong": {}, "must_figures": len(gold.must_figures),
                "figures_missing": list(gold.must_figures), "numbers": 0, "numbers_ungrounded": [],
                "key_facts": len(gold.key_facts), "key_facts_shown": 0, "labels_wrong": [],
                "key_facts_missing": [f"{f.label} {f.value}" for f in gold.key_facts],
                "sections": {p: False for p in gold.must_sections}, "section_counts": {}, "ok": False,
                "error": str(ex), "prompt_refs": [],
            }  # fmt: skip
        row["ms"] = round((time.perf_counter() - started) * 1000, 1)
        rows.append(row)
        if progress:
            progress()
    return summarize_summary_rows(rows)
