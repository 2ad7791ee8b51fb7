"""Eval datasets (the DESIGN.md JSONL contract) → runs → metrics. Scoring functions are pure."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qa.errors import InputError
from qa.retrieve import normalize
from qa.schemas import Chunk

AnswerType = Literal["number", "text", "list", "unanswerable"]
REFUSAL = "文中未提及"


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    doc: str
    question: str = Field(min_length=1)
    answer: str
    answer_type: AnswerType
    evidence: list[str] = []

    @field_validator("doc")
    @classmethod
    def _doc_is_a_name(cls, value: str) -> str:
        if value != "*" and ("/" in value or "\\" in value or value in ("", ".", "..")):
            raise ValueError("doc must be a file name inside the docs folder, or '*'")
        return value


def load_dataset(path: Path, docs_dir: Path | None = None) -> list[EvalCase]:
    """Read and validate a JSONL dataset; errors name the line. Checks docs exist when docs_dir is given."""
    if not path.is_file():
        raise InputError("dataset file not found", str(path))
    cases: list[EvalCase] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = EvalCase.model_validate(json.loads(line))
        except json.JSONDecodeError as ex:
            raise InputError(f"line {number}: not valid JSON ({ex.msg})", str(path)) from ex
        except ValidationError as ex:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in ex.errors())
            raise InputError(f"line {number}: {problems}", str(path)) from ex
        if case.id in seen:
            raise InputError(f"line {number}: duplicate id {case.id!r}", str(path))
        if docs_dir is not None and case.doc != "*" and not (docs_dir / case.doc).is_file():
            raise InputError(f"line {number}: doc {case.doc!r} is not a file in {docs_dir}", str(path))
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise InputError("dataset has no questions", str(path))
    return cases


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


def evidence_found(evidence: Sequence[str], chunks: Sequence[Chunk], texts: dict[str, str]) -> bool:
    """True when every evidence string lies inside the retrieved chunks (after NFKC + whitespace removal)."""
    if not evidence:
        return True
    passages = [
        normalize(texts[report_id][start:end]) if report_id in texts else ""
        for report_id, spans in merged_spans(chunks).items()
        for start, end in spans
    ]
    if not texts:  # no report texts at hand: fall back to the chunk texts themselves
        passages = [normalize(c.text) for c in chunks]
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
    for case in cases:
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
