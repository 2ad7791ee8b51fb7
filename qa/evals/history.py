"""The eval run history: one JSON line per run (metrics without rows, what identifies the run, the
questions that failed), appended under QA_DATA_DIR so trends over prompt/model/chunker changes show."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa.core.redact import redact
from qa.evals.gate import scalar_metrics


def git_commit() -> str | None:
    """The commit the running code is at (with -dirty for uncommitted changes); None outside git."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None


def run_record(metrics: dict[str, Any], *, dataset: str, dataset_sha: str, git_commit: str | None,
               regressed: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """What the history keeps of one run (small: no rows, only the ids that failed)."""
    failing = [str(r["id"]) for r in metrics.get("rows", []) if r.get("correct") is False]
    failing += [f"summary:{r['doc']}" for r in (metrics.get("summary") or {}).get("rows", []) if not r["ok"]]
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit,
        "dataset": dataset,
        "dataset_sha": dataset_sha,
        "engine": metrics.get("engine"),
        "model": metrics.get("model"),
        "prompt_refs": metrics.get("prompt_refs", []),
        "config_hash": metrics.get("config_hash"),
        "n": metrics.get("n"),
        "k": metrics.get("k"),
        "metrics": scalar_metrics(metrics),
        "p50_ms": metrics.get("p50_ms"),
        "p95_ms": metrics.get("p95_ms"),
        "wall_s": metrics.get("wall_s"),
        "judge_cost_usd": (metrics.get("judge") or {}).get("cost_usd"),
        "errors": metrics.get("errors"),  # questions that failed with an error (None: retrieval only)
        "regressed": regressed,
        "failing": failing,
    }


def append_run(path: Path, record: dict[str, Any]) -> None:
    """Append one run; a history that cannot be written warns and never fails the eval."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(redact(json.dumps(record, ensure_ascii=False)) + "\n")
    except OSError as ex:
        warnings.warn(f"eval history {path} not written ({ex})", stacklevel=2)


def read_runs(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Runs oldest first; unreadable lines are skipped (a crash mid-append leaves at most one)."""
    if not path.is_file():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "metrics" in record:
            runs.append(record)
    return runs[-limit:] if limit else runs
