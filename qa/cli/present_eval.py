"""How `qa eval` and `qa history` show a run: the metrics against the baseline, then what went wrong."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from qa.cli.console import err, out
from qa.cli.present import cost_total

# the answer metrics in the order the table shows them, then the summary checks
ANSWER_METRICS = ("retrieval_recall_at_k", "answer_accuracy", "refusal_accuracy", "citation_precision",
                  "number_grounding", "confidently_wrong", "false_refusals", "judge_accuracy")  # fmt: skip
SUMMARY_METRICS = ("metadata_accuracy", "figure_recall", "number_grounding", "section_completeness")
RUN_FIGURES = ("n", "errors", "p50_ms", "p95_ms", "wall_s")


def eval_run(metrics: dict[str, Any], comparison: Any, dataset: str, k: int, baseline: str | None) -> None:
    """The whole of `qa eval`'s report: metrics table, judge costs, misses, wrong answers, errors, summary
    problems, and the verdict against the baseline."""
    out.print(
        f"[bold]{escape(str(metrics['engine']))}[/] on {escape(str(dataset))} ({metrics['n']} questions)"
    )
    out.print(metrics_table(metrics, comparison, k))
    if metrics.get("judge"):
        _judge_costs(metrics["judge"])
    _misses(metrics["rows"], k)
    _wrong_answers(metrics["rows"])
    _errored(metrics["rows"])
    for row in (metrics.get("summary") or {}).get("rows", []):
        if not row["ok"]:
            out.print(f"[yellow]summary {escape(row['doc'])}:[/] {escape('; '.join(summary_problems(row)))}")
    if comparison is not None:
        _against_baseline(comparison, baseline)


def metrics_table(metrics: dict[str, Any], comparison: Any, k: int) -> Table:
    """Each metric the run has, its baseline value and the change (red: a regression; green: better)."""
    table = Table("metric", "value", "baseline", "Δ", box=None, header_style="bold")
    deltas = {d.name: d for d in comparison.deltas} if comparison else {}
    summary = metrics.get("summary") or {}
    values = {n: metrics.get(n) for n in ANSWER_METRICS} | {
        f"summary.{n}": summary.get(n) for n in SUMMARY_METRICS
    }
    for name, value in values.items():
        if value is None:
            continue
        d = deltas.get(name)
        label = f"retrieval_recall_at_{k}" if name == "retrieval_recall_at_k" else name
        style = _delta_style(name, d)
        table.add_row(label, f"[{style}]{value}[/]" if style else str(value),
                      "" if not d or d.baseline is None else str(d.baseline),
                      "" if not d or d.delta is None else f"{d.delta:+.4f}")  # fmt: skip
    for name in RUN_FIGURES:
        value = str(metrics.get(name))
        if name == "errors" and name not in metrics:  # a retrieval-only run answers nothing
            continue
        table.add_row(name, f"[red]{value}[/]" if name == "errors" and metrics[name] else value, "", "")
    return table


def _delta_style(name: str, d: Any) -> str:
    from qa.evals import gate

    better = d and (d.delta or 0) != 0 and ((d.delta or 0) < 0) == (name in gate.LOWER_IS_BETTER)
    return "red" if d and d.regressed else ("green" if better else "")


def _judge_costs(judged: dict[str, Any]) -> None:
    cost = cost_total(judged["known_cost_usd"], judged["unpriced"])
    out.print(
        f"judge ({escape(judged['model'])}): {judged['n']} answers × {judged['runs']} runs, {judged['calls']} calls "
        f"({judged['cached']} cached, {judged['errors']} failed), {judged['prompt_tokens']:,}+"
        f"{judged['completion_tokens']:,} tokens, {cost}, {judged['wall_s']} s"
    )


def _misses(rows: Sequence[dict], k: int) -> None:
    misses = [r for r in rows if r["retrieval_hit"] is False]
    if misses:
        out.print(f"[yellow]{len(misses)} questions without all their evidence in the top {k}:[/] "
                  + escape(", ".join(str(r["id"]) for r in misses)))  # fmt: skip


def _wrong_answers(rows: Sequence[dict]) -> None:
    wrong = [r for r in rows if r["correct"] is False and not r.get("error")]
    if wrong:
        out.print(f"[yellow]{len(wrong)} questions answered wrongly:[/]")
        for r in wrong:
            got = (r["answer"] or "").replace("\n", " ")[:80]
            line = f"  {escape(str(r['id']))} {escape(r['question'])}  gold {escape(r['gold'])} | got {escape(got)}"
            out.print(line + (" [yellow](an echo of the prompt: not credited)[/]" if r.get("echo") else ""))


def _errored(rows: Sequence[dict]) -> None:
    errored = [r for r in rows if r.get("error")]
    if errored:
        out.print(f"[red]{len(errored)} questions failed with an error (counted wrong):[/]")
        for r in errored:
            out.print(f"  {escape(str(r['id']))} {escape(r['question'])}: {escape(r['error'])}")


def summary_problems(row: dict[str, Any]) -> list[str]:
    """What a summary checked against its gold got wrong, in words."""
    problems = [f"{k}={v}" for k, v in row["metadata_wrong"].items()]
    problems += [f"missing {', '.join(row['figures_missing'])}"] if row["figures_missing"] else []
    problems += [f"not in report {', '.join(row['numbers_ungrounded'])}"] if row["numbers_ungrounded"] else []
    problems += [f"no {k}" for k, v in row["sections"].items() if not v]
    problems += [row["error"]] if row.get("error") else []
    return problems


def _against_baseline(comparison: Any, baseline: str | None) -> None:
    for warning in comparison.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    if comparison.newly_passing:
        out.print(
            f"[green]newly passing ({len(comparison.newly_passing)}):[/] {escape(', '.join(comparison.newly_passing))}"
        )
    if comparison.newly_failing:
        out.print(
            f"[red]newly failing ({len(comparison.newly_failing)}):[/] {escape(', '.join(comparison.newly_failing))}"
        )
    if comparison.regressed:
        worse = ", ".join(
            [f"{d.name} {d.baseline} → {d.current} (tolerance {d.tolerance})" for d in comparison.regressions]
            + ([f"{len(comparison.newly_failing)} question(s) that passed now fail (accept them only with "
                "--update-baseline --why …)"] if comparison.newly_failing else [])
        )  # fmt: skip
        out.print(f"[bold red]REGRESSION against {escape(baseline)}:[/] {escape(worse)}")
    else:
        out.print(f"[green]no regression against {escape(baseline)}[/]")


def history(runs: Sequence[dict]) -> None:
    """Past eval runs, one row each."""
    table = Table("time", "commit", "engine", "n", "recall", "accuracy", "refusal", "grounding", "p95 ms",
                  "failing", box=None, header_style="bold")  # fmt: skip
    for run in runs:
        m = run["metrics"]
        table.add_row(escape(str(run["time"])[:19]), escape(run.get("git_commit") or ""), escape(run.get("engine") or ""),
                      str(run.get("n")),
                      *(str(m.get(k, "")) for k in ("retrieval_recall_at_k", "answer_accuracy", "refusal_accuracy",
                                                    "number_grounding")),
                      str(run.get("p95_ms")), str(len(run.get("failing", []))))  # fmt: skip
    out.print(table)
