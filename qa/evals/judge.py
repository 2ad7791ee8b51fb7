"""An optional LLM judge for text and list answers (where string matching is too strict or too lax):
each answer judged N times (default 3), votes aggregated by majority, calls cached so reruns cost
nothing. Kept apart from the pure scoring in qa/evaluate.py; never used in CI."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from qa.core.errors import QAError
from qa.models.llm import ChatLLM, cost_of
from qa.models.prompts import get_template

JUDGED_TYPES = ("text", "list")
# Ties go to the worse verdict: a judge that cannot make up its mind has not confirmed the answer.
_ORDER = {"incorrect": 0, "partial": 1, "correct": 2}


class Verdict(BaseModel):
    verdict: Literal["correct", "partial", "incorrect"]
    reason: str = ""


def majority(votes: Sequence[str]) -> str:
    counts = Counter(votes)
    best = max(counts.values())
    return min((v for v, c in counts.items() if c == best), key=lambda v: _ORDER[v])


def judged_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("answer_type") in JUDGED_TYPES]


def estimate(rows: Sequence[dict[str, Any]] | int, runs: int, model: str, prices: dict) -> dict[str, Any]:
    """Calls, tokens and cost before the judge runs (≈ 450 prompt tokens a call, 40 out)."""
    n = rows if isinstance(rows, int) else len(judged_rows(rows))
    calls = n * runs
    prompt, completion = calls * 450, calls * 40
    return {"calls": calls, "prompt_tokens": prompt, "completion_tokens": completion,
            "cost_usd": cost_of(model, prompt, completion, prices)}  # fmt: skip


def _one(llm: ChatLLM, messages: list[dict[str, str]], ref: str, schema: dict, run: int,
         usage: dict[str, Any]) -> str:  # fmt: skip
    completion = llm.complete(messages, prompt_ref=ref, json_schema=schema, params={"seed": run})
    usage["calls"] += 1
    usage["cached"] += int(completion.cached)
    usage["prompt_tokens"] += completion.prompt_tokens
    usage["completion_tokens"] += completion.completion_tokens
    if completion.cost_usd is not None:
        usage["known_cost_usd"] += completion.cost_usd
    elif not completion.cached:
        usage["unpriced"] += 1  # no price for the model: the total is unknown, not the priced part
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", completion.text.strip())
    try:
        return Verdict.model_validate_json(text).verdict
    except ValidationError:
        return "invalid"


def judge(
    rows: list[dict[str, Any]], llm: ChatLLM, runs: int = 3, progress: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Judge the text/list rows in place (row['judge'] = verdict, votes, agreement); returns totals."""
    template = get_template("judge")
    schema = template.json_schema or Verdict.model_json_schema()
    usage: dict[str, Any] = {"calls": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0,
                             "known_cost_usd": 0.0, "unpriced": 0, "errors": 0}  # fmt: skip
    started = time.perf_counter()
    targets = judged_rows(rows)
    for row in targets:
        if row.get("refused") or not (row.get("answer") or "").strip():
            votes = ["incorrect"] * runs  # nothing to judge: no call spent
        else:
            messages = template.render(question=row["question"], gold=row["gold"], answer=row["answer"])
            votes = []
            for run in range(runs):
                try:
                    votes.append(_one(llm, messages, template.ref, schema, run, usage))
                except QAError as ex:
                    if ex.stops_batch:  # every other call would fail the same way
                        raise
                    usage["errors"] += 1
                    votes.append("invalid")
        valid = [v for v in votes if v != "invalid"] or ["incorrect"]
        verdict = majority(valid)
        row["judge"] = {"verdict": verdict, "votes": votes, "agreement": round(valid.count(verdict) / len(votes), 3),
                        "prompt_ref": template.ref}  # fmt: skip
        if progress:
            progress()
    correct = [r["judge"]["verdict"] == "correct" for r in targets]
    return {
        "n": len(targets),
        "runs": runs,
        "model": llm.model,
        "judge_accuracy": round(sum(correct) / len(correct), 4) if correct else None,
        "wall_s": round(time.perf_counter() - started, 2),
        **usage,
        "cost_usd": None if usage["unpriced"] else round(usage["known_cost_usd"], 6),  # None: unknown
    }
