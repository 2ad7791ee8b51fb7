"""`qa eval` (run a dataset, score it, compare with a baseline) and `qa history` (past runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape

from qa.cli import present, present_eval
from qa.cli.console import err, out, progress_bars
from qa.core.config import Settings
from qa.core.errors import InputError


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa.evals import gate
    from qa.evals.evaluate import load_dataset, load_summary_gold
    from qa.evals.run import EvalOptions, conclude, dataset_sha
    from qa.wiring import make_engine

    docs, dataset = Path(args.docs), Path(args.dataset)
    if not docs.is_dir():
        raise InputError("--docs must be a folder of reports", str(docs))
    cases = load_dataset(dataset, docs)
    golds = load_summary_gold(Path(args.summary_gold), docs) if args.summary_gold else None
    baseline = gate.load_baseline(Path(args.baseline)) if args.baseline and not args.update_baseline else None
    if args.update_baseline and not args.baseline:
        raise InputError("--update-baseline needs --baseline FILE (the file to write)")
    engine = make_engine(settings, "offline" if args.retrieval_only else args.engine)
    judge_llm = _judge_llm(args, settings, engine, cases) if args.judge else None
    err.print(
        f"[dim]engine: {escape(present.engine_label(engine) if not args.retrieval_only else 'retrieval only')}[/]"
    )
    options = EvalOptions(k=args.k, mode=args.mode, scope=args.scope, retrieval_only=args.retrieval_only,
                          store_dir=Path(args.store) if args.store else None)  # fmt: skip
    run = _run(args, settings, cases, docs, engine, options, golds, judge_llm)
    metrics = run.metrics
    for r in run.failed_docs:
        err.print(f"[red]failed[/] {escape(r.path)}: {escape(r.reason)}")
    history_path = Path(args.history) if args.history else settings.data_dir / "eval_history.jsonl"
    recorded = conclude(metrics, dataset_sha(dataset), str(dataset), baseline,
                        None if args.no_history else history_path)  # fmt: skip
    comparison = recorded.comparison
    present_eval.eval_run(metrics, comparison, str(args.dataset), args.k, args.baseline)
    _write_reports(args, metrics, recorded, dataset)
    errored = metrics.get("errors") or 0
    _update_baseline(args, metrics, recorded, dataset, errored)
    if errored:
        err.print(f"[red]error:[/] {errored} of {metrics['n']} questions failed with an error (listed above; "
                  "each counted wrong); the other questions were scored")  # fmt: skip
    if run.failed_docs or errored:
        return 1
    return 1 if comparison is not None and comparison.regressed else 0


def _judge_llm(args: argparse.Namespace, settings: Settings, engine: Any, cases: list) -> Any:
    """The LLM judge of text/list answers (verdicts always cached), after saying what it will cost."""
    from qa.evals import judge
    from qa.wiring import make_chat_model

    if engine.model is None:
        raise InputError("--judge needs an LLM: set QA_LLM_MODEL (and QA_LLM_BASE_URL / QA_LLM_API_KEY)")
    judge_llm = make_chat_model(settings.replace(llm_cache=True))  # judge verdicts are always cached
    n_judged = sum(c.answer_type in judge.JUDGED_TYPES for c in cases)
    guess = judge.estimate(n_judged, args.judge_runs, judge_llm.model, dict(settings.prices))
    cost = (
        "unknown cost (no price: set QA_LLM_PRICES)"
        if guess["cost_usd"] is None
        else f"≈${guess['cost_usd']:.4f}"
    )
    err.print(f"judge: {n_judged} text/list answers × {args.judge_runs} runs = {guess['calls']} calls, "
              f"≈{guess['prompt_tokens']:,}+{guess['completion_tokens']:,} tokens, {cost} "
              "(cached verdicts are free)")  # fmt: skip
    return judge_llm


def _run(args: argparse.Namespace, settings: Settings, cases: list, docs: Path, engine: Any, options: Any,
         golds: Any, judge_llm: Any) -> Any:  # fmt: skip
    """The eval run under progress bars, one per stage, then the judge's verdicts when asked for."""
    from qa.evals import judge
    from qa.evals.run import run_eval

    with progress_bars() as progress:
        tasks: dict[str, Any] = {}
        labels = {"ingest": "ingesting docs (chunks)", "questions": "questions", "summaries": "summaries"}

        def on_progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(labels.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        run = run_eval(
            settings, cases, docs, engine=engine, options=options, summary_golds=golds, progress=on_progress
        )
        metrics = run.metrics
        if judge_llm is not None:
            task = progress.add_task("judge", total=len(judge.judged_rows(metrics["rows"])))
            metrics["judge"] = judge.judge(metrics["rows"], judge_llm, args.judge_runs,
                                           progress=lambda: progress.advance(task))  # fmt: skip
            metrics["judge_accuracy"] = metrics["judge"]["judge_accuracy"]
    return run


def _write_reports(args: argparse.Namespace, metrics: dict, recorded: Any, dataset: Path) -> None:
    """--json: metrics and rows; --report DIR: report.md, report.html and report.json."""
    from qa.core.files import atomic_write
    from qa.evals import report as evalreport

    comparison = recorded.comparison
    if args.json:
        payload = {**metrics, "baseline": comparison.to_dict() if comparison else None}
        atomic_write(Path(args.json), evalreport.to_json(payload))
        out.print(f"[dim]wrote {escape(args.json)}[/]")
    if args.report:
        report_dir = Path(args.report)
        meta = {
            "dataset": str(dataset),
            "dataset_sha": recorded.dataset_sha,
            "git_commit": recorded.git_commit,
            "baseline": args.baseline or "",
        }
        atomic_write(report_dir / "report.md", evalreport.to_markdown(metrics, comparison, **meta))
        atomic_write(report_dir / "report.html", evalreport.to_html(metrics, comparison, **meta))
        atomic_write(report_dir / "report.json", evalreport.to_json(
            {**metrics, "baseline": comparison.to_dict() if comparison else None}))  # fmt: skip
        out.print(f"[dim]report: {escape(str(report_dir / 'report.html'))} (and .md, .json)[/]")


def _update_baseline(
    args: argparse.Namespace, metrics: dict, recorded: Any, dataset: Path, errored: int
) -> None:
    """--update-baseline: this run becomes the baseline, unless a question failed with an error."""
    from qa.evals import gate

    if not args.update_baseline:
        return
    if errored:
        err.print(f"[red]baseline not written:[/] {errored} question(s) failed with an error; fix and rerun")
        return
    previous = _previous(Path(args.baseline))
    failing = gate.compare(previous, metrics, recorded.dataset_sha).newly_failing if previous else []
    if failing and not args.why:
        raise InputError(
            f"baseline not written: {len(failing)} question(s) passed in it and fail now ({', '.join(failing)}); "
            'a baseline that accepts them says why: add --why "…"',
            code="input.baseline_needs_why",
        )
    accepted = list((previous or {}).get("accepted", []))
    if failing:
        accepted.append({"ids": failing, "why": args.why, "at": recorded.git_commit or ""})
    gate.save_baseline(Path(args.baseline), gate.make_baseline(
        metrics, dataset=str(dataset), dataset_sha=recorded.dataset_sha, git_commit=recorded.git_commit,
        tolerances=(previous or {}).get("tolerances"), accepted=accepted))  # fmt: skip
    out.print(f"baseline written: {escape(args.baseline)} — review and commit it")


def _previous(path: Path) -> dict | None:
    """The baseline being rewritten (its tolerances, and the questions it accepted, are kept), if any."""
    from qa.evals import gate

    try:
        return gate.load_baseline(path)
    except InputError:
        return None


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    from qa.evals.history import read_runs

    path = Path(args.file) if args.file else settings.data_dir / "eval_history.jsonl"
    runs = read_runs(path, args.limit)
    if args.json:
        out.print_json(data=runs)
        return 0
    if not runs:
        out.print(f"no eval runs recorded in {escape(str(path))} yet; run `qa eval`")
        return 0
    present_eval.history(runs)
    return 0
