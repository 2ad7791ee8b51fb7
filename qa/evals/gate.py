"""Baselines: a committed snapshot of an eval run (metrics, per-metric tolerances, each question's
outcome) and the comparison that decides whether a new run regressed. `compare` is pure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa.core.errors import InputError

KIND = "reportqa-eval-baseline"
# Quality metrics gate a change; latency is shown, never gated (it depends on the machine).
QA_METRICS = ("retrieval_recall_at_k", "answer_accuracy", "refusal_accuracy", "citation_precision",
              "number_grounding", "confidently_wrong", "false_refusals")  # fmt: skip
# For these a rise is the regression: a wrong number with a citation is the worst outcome.
LOWER_IS_BETTER = frozenset({"confidently_wrong", "false_refusals", "summary.compression"})
SUMMARY_METRICS = ("metadata_accuracy", "figure_recall", "number_grounding", "section_completeness",
                   "compression", "key_fact_coverage", "label_quality")  # fmt: skip
INFO_METRICS = ("p50_ms", "p95_ms")
# How far a metric may drop before it is a regression. 0.01 is less than one question in 90: any
# lost answer fails; grounding must never drop. Edit them in the baseline file, deliberately.
DEFAULT_TOLERANCES = {
    "retrieval_recall_at_k": 0.0, "answer_accuracy": 0.0, "refusal_accuracy": 0.0,
    "citation_precision": 0.01, "number_grounding": 0.0, "judge_accuracy": 0.05,
    "confidently_wrong": 0.0, "false_refusals": 0.0,
    "summary.metadata_accuracy": 0.0, "summary.figure_recall": 0.0, "summary.number_grounding": 0.0,
    "summary.section_completeness": 0.0, "summary.compression": 0.02, "summary.key_fact_coverage": 0.0,
    "summary.label_quality": 0.0,
}  # fmt: skip


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The gated metrics of a run, summary metrics prefixed with 'summary.'."""
    out = {
        name: float(metrics[name])
        for name in (*QA_METRICS, "judge_accuracy")
        if metrics.get(name) is not None
    }
    for name in SUMMARY_METRICS:
        value = (metrics.get("summary") or {}).get(name)
        if value is not None:
            out[f"summary.{name}"] = float(value)
    return out


def _passed(row: dict[str, Any]) -> bool | None:
    """A question's outcome: answered correctly (or refused when it should), else its retrieval hit."""
    return row["correct"] if row.get("correct") is not None else row.get("retrieval_hit")


def outcomes(metrics: dict[str, Any]) -> dict[str, bool | None]:
    outcome = {str(r["id"]): _passed(r) for r in metrics.get("rows", [])}
    for row in (metrics.get("summary") or {}).get("rows", []):
        outcome[f"summary:{row['doc']}"] = bool(row["ok"])
    return outcome


def make_baseline(metrics: dict[str, Any], *, dataset: str, dataset_sha: str, git_commit: str | None,
                  tolerances: dict[str, float] | None = None,
                  accepted: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """accepted: the questions earlier updates let fail, each update with its reason (kept across updates)."""
    return {
        "kind": KIND,
        "version": 1,
        "engine": metrics.get("engine"),
        "model": metrics.get("model"),
        "dataset": dataset,
        "dataset_sha": dataset_sha,
        "k": metrics.get("k"),
        "config_hash": metrics.get("config_hash"),
        "prompt_refs": metrics.get("prompt_refs", []),
        "git_commit": git_commit,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": scalar_metrics(metrics),
        "info": {name: metrics.get(name) for name in INFO_METRICS},
        "tolerances": {**DEFAULT_TOLERANCES, **(tolerances or {})},
        "outcomes": outcomes(metrics),
        "accepted": list(accepted or []),
    }


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError("baseline file not found; create it with --update-baseline", str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as ex:
        raise InputError(
            f"not a readable baseline ({ex}); recreate it with --update-baseline", str(path)
        ) from ex
    if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(data.get("metrics"), dict):
        raise InputError("not a reportqa eval baseline; recreate it with --update-baseline", str(path))
    return data


def save_baseline(path: Path, baseline: dict[str, Any]) -> None:
    from qa.core.files import atomic_write

    atomic_write(path, json.dumps(baseline, ensure_ascii=False, indent=2, sort_keys=False) + "\n")


@dataclass(frozen=True)
class MetricDelta:
    name: str
    baseline: float | None
    current: float | None
    tolerance: float

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return round(self.current - self.baseline, 4)

    @property
    def regressed(self) -> bool:
        if self.delta is None:
            return False
        if self.name in LOWER_IS_BETTER:
            return self.delta > self.tolerance + 1e-9
        return self.delta < -self.tolerance - 1e-9


@dataclass(frozen=True)
class Comparison:
    deltas: list[MetricDelta]
    newly_failing: list[str]
    newly_passing: list[str]
    new_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.regressed]

    @property
    def regressed(self) -> bool:
        """A metric beyond its tolerance, or any single question that passed in the baseline and fails now
        (a swap — one question fixed, another broken — leaves the averages alone but is a regression). A
        question is accepted as failing only by a baseline update that says why (`--why`)."""
        return bool(self.regressions) or bool(self.newly_failing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "regressed": self.regressed,
            "deltas": [
                {
                    "metric": d.name,
                    "baseline": d.baseline,
                    "current": d.current,
                    "delta": d.delta,
                    "tolerance": d.tolerance,
                    "regressed": d.regressed,
                }
                for d in self.deltas
            ],  # fmt: skip
            "newly_failing": self.newly_failing,
            "newly_passing": self.newly_passing,
            "new_ids": self.new_ids,
            "removed_ids": self.removed_ids,
            "warnings": self.warnings,
        }


def compare(baseline: dict[str, Any], metrics: dict[str, Any], dataset_sha: str = "") -> Comparison:
    """Metric by metric against the baseline's tolerances, and question by question."""
    tolerances = {**DEFAULT_TOLERANCES, **baseline.get("tolerances", {})}
    current = scalar_metrics(metrics)
    base = baseline["metrics"]
    names = [n for n in (*QA_METRICS, "judge_accuracy", *(f"summary.{m}" for m in SUMMARY_METRICS))
             if n in base or n in current]  # fmt: skip
    deltas = [MetricDelta(n, base.get(n), current.get(n), float(tolerances.get(n, 0.0))) for n in names]
    before, now = baseline.get("outcomes", {}), outcomes(metrics)
    warnings = []
    if baseline.get("engine") != metrics.get("engine") or baseline.get("model") != metrics.get("model"):
        warnings.append(
            f"baseline is for engine {baseline.get('engine')} / model {baseline.get('model')}, this run is "
            f"{metrics.get('engine')} / {metrics.get('model')}: keep one baseline per engine"
        )
    if dataset_sha and baseline.get("dataset_sha") and dataset_sha != baseline["dataset_sha"]:
        warnings.append("the dataset changed since the baseline: new and removed questions are listed apart")
    if baseline.get("k") is not None and metrics.get("k") is not None and baseline["k"] != metrics["k"]:
        warnings.append(f"baseline was run with k={baseline['k']}, this run with k={metrics['k']}")
    return Comparison(
        deltas=deltas,
        newly_failing=sorted(i for i, ok in now.items() if ok is False and before.get(i) is True),
        newly_passing=sorted(i for i, ok in now.items() if ok is True and before.get(i) is False),
        new_ids=sorted(set(now) - set(before)),
        removed_ids=sorted(set(before) - set(now)),
        warnings=warnings,
    )
