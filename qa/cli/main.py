"""The `qa` command: the one place QAError becomes a message and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from qa.core.config import Settings
from qa.core.errors import InputError, QAError
from qa.core.redact import redact
from qa.core.schemas import IngestResult
from qa.genre.kinds import kind_label


class _Redacted:
    """stdout or stderr written through qa.core.redact: nothing the command prints (a message, a label, an
    error a model's server sent back, JSON) can show a key or a password. `secrets`: the configured keys."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.secrets: list[str] = []

    @property
    def _stream(self) -> Any:
        # looked up on each write, as Rich does: tests swap sys.stdout, and a progress display swaps in a
        # proxy that prints through the console again (unwrapped, or each write would come back here)
        stream = getattr(sys, self.name)
        return getattr(stream, "rich_proxied_file", stream)

    def write(self, text: str) -> int:
        return self._stream.write(redact(text, self.secrets))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


out = Console(file=_Redacted("stdout"), highlight=False, soft_wrap=True)
err = Console(file=_Redacted("stderr"), highlight=False, soft_wrap=True)

WIDE_LISTING = 150  # columns `qa ls` needs for its one-line-per-report table
_STATUS_STYLE = {"ingested": "green", "updated": "cyan", "unchanged": "dim", "failed": "red"}


def _progress(console: Console = err) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _services(settings: Settings):
    from qa.wiring import open_services

    services = open_services(settings)
    # A writer waiting for another's store lock says for whom (qa.store.chroma), once per holder.
    services.store.on_lock_wait = lambda text: err.print(f"[yellow]{escape(text)}[/]")
    return services


# ---- commands ----------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from qa.ingest.pipeline import INDEX_REBUILT, collect_files, ingest_paths

    paths = [Path(p) for p in args.paths]
    files, _ = collect_files(paths)
    services = _services(settings)
    started = time.perf_counter()
    results: list[IngestResult] = []
    with _progress() as progress:
        # two passes: each report is searchable by keywords once read; its vectors follow in the background
        files_task = progress.add_task("searchable (keywords)", total=len(files))
        chunks_task = progress.add_task("vectors (background)", total=0)

        def on_result(result: IngestResult) -> None:
            results.append(result)
            style = _STATUS_STYLE.get(result.status, "")
            detail = f"{result.n_chunks} chunks" if result.status != "failed" else escape(result.reason)
            if result.pending:
                detail += f" (vectors follow: {result.pending} to embed)"
            elif (result.status in ("ingested", "updated") and result.embedded < result.n_chunks
                  and not result.reason.endswith(INDEX_REBUILT)):  # fmt: skip
                detail += f" ({result.n_chunks - result.embedded} from cache)"
            if result.status != "failed" and result.reason:  # repaired: what was wrong with the stored copy
                detail += f" ({escape(result.reason)})"
            progress.console.print(f"[{style}]{result.status:>9}[/] {escape(result.path)}  {detail}")
            if result.report_id is not None or result.status != "failed":
                progress.advance(files_task)

        ingest_paths(
            paths,
            services.store,
            services.embedder,
            settings,
            on_result=on_result,
            progress=lambda n: progress.advance(chunks_task, n),
            background=True,
            on_queued=lambda n: progress.update(
                chunks_task, total=(progress.tasks[chunks_task].total or 0) + n
            ),
        )
    counts = {s: sum(r.status == s for r in results) for s in ("ingested", "updated", "unchanged", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out.print(
        f"{summary or 'nothing to do'} in {time.perf_counter() - started:.1f}s → {escape(services.store.location)}"
    )
    return 1 if counts["failed"] else 0


def cmd_ls(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(settings)
    records = services.store.reports()
    if args.json:
        out.print_json(
            data=[
                {
                    "report": r.report_id,
                    **r.meta.to_dict(),
                    "chunks": r.n_chunks,
                    "embedded": r.embedded,
                    "ingested_at": r.ingested_at,
                }
                for r in records
            ]
        )
        return 0
    if not records:
        hint = ""
        others = services.store.other_embedders()
        if others:
            hint = f" (this store has reports embedded with {', '.join(others)}: check QA_EMBEDDER)"
        out.print(
            f"no reports in {escape(services.store.location)}{escape(hint)}; add some with `qa ingest PATH`"
        )
        return 0
    unknown = "[dim]未识别[/]"
    if out.width < WIDE_LISTING:  # a terminal of ordinary width, or a pipe: a report takes two lines
        for r in records:
            kind = escape(kind_label(r.meta.kind, r.meta.issuer_kind)) if r.meta.kind else unknown
            out.print(f"[bold]{escape(r.report_id)}[/]  {kind}  {r.meta.year or '[dim]未识别[/]'}  "
                      f"{r.n_chunks} chunks" + (" [yellow](vectors pending)[/]" if not r.embedded else ""))  # fmt: skip
            place = escape(" › ".join(r.meta.region_path) or r.meta.region) or unknown
            detail = [escape(r.meta.title) or unknown, place, escape(r.meta.issuer) or unknown,
                      escape(r.meta.level) or unknown, escape(r.meta.publish_date or "")]  # fmt: skip
            out.print("  " + " · ".join(d for d in detail if d), soft_wrap=True)
    else:
        table = Table(box=None, header_style="bold")
        table.add_column("report", no_wrap=True)  # the id `qa rm` and --report take: never cut
        table.add_column("title", overflow="fold", min_width=10)
        table.add_column("region", overflow="fold", min_width=8)
        table.add_column("issuer", overflow="fold", min_width=8)
        for name, width in (("kind", 8), ("level", 4), ("year", 4), ("published", 10), ("chunks", 6)):
            table.add_column(name, no_wrap=True, min_width=width)
        for r in records:
            table.add_row(
                escape(r.report_id), escape(r.meta.title) or unknown,
                escape(" › ".join(r.meta.region_path) or r.meta.region) or unknown, escape(r.meta.issuer) or unknown,
                escape(kind_label(r.meta.kind, r.meta.issuer_kind)) if r.meta.kind else unknown,
                escape(r.meta.level) or unknown, str(r.meta.year or "") or unknown, escape(r.meta.publish_date or ""),
                str(r.n_chunks),
            )  # fmt: skip
        out.print(table)
    out.print(f"{len(records)} reports, {sum(r.n_chunks for r in records)} chunks")
    return 0


def _resolve_report(name: str, settings: Settings, services: Any) -> str:
    """A report id from an id, a file name or its stem (qa.api.Library.resolve)."""
    from qa.api import Library

    return Library(settings, services=services).resolve(name)


def cmd_rm(args: argparse.Namespace, settings: Settings) -> int:
    from qa.api import Library

    lib = Library(settings, services=_services(settings))
    for name in args.reports:
        report_id = lib.resolve(name)
        lib.remove(report_id)
        out.print(f"removed {escape(report_id)}")
    return 0


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    """The app's users file: add (password from a prompt, or one line on stdin), list, remove."""
    from qa.team.auth import ROLE_NAMES, Users, users_file

    users = Users(users_file(settings.data_dir, str(settings.users_file) if settings.users_file else None))
    if args.action == "list":
        for name in users.names():
            user = users.get(name)
            out.print(
                escape(f"{name}  {user.role if user else '?'}  {user.display if user else ''}".rstrip())
            )
        if not len(users):
            out.print(f"no users yet in {escape(str(users.path))}: qa users add NAME --role editor")
        return 0
    if not args.name:
        raise InputError(f"qa users {args.action} needs a NAME")
    if args.action == "remove":
        if not users.remove(args.name):
            raise InputError(f"no user {args.name!r} in {users.path}")
        out.print(f"removed {escape(args.name)}")
        return 0
    password = None
    if not args.oidc:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            import getpass

            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                raise InputError("the two passwords differ; nothing was changed")
    named = args.user_workspaces
    spaces = tuple("" if w in ("default", "默认") else w for w in named) if named else None
    user = users.add(args.name, args.role, password, args.display or "", spaces)
    out.print(f"{escape(user.name)}: {user.role} ({ROLE_NAMES[user.role]}) in {escape(str(users.path))}")
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(settings)
    report_ids = [_resolve_report(r, settings, services) for r in args.report] if args.report else None
    started = time.perf_counter()
    result = services.retriever.search(
        args.question, k=args.k, report_ids=report_ids, regions=args.region, years=args.year, mode=args.mode
    )
    ms = (time.perf_counter() - started) * 1000
    if args.json:
        out.print_json(
            data={
                "question": args.question,
                "scope": {
                    "reports": list(result.selection.reports),
                    "reason": result.selection.reason,
                    "refusal": result.selection.refusal,
                },  # fmt: skip
                "ms": round(ms, 1),
                "hits": [
                    {
                        "rank": rank,
                        "score": round(hit.score, 6),
                        "chunk_id": hit.chunk.id,
                        "report": hit.chunk.report_id,
                        "title": hit.chunk.title,
                        "section": hit.chunk.section,
                        "start": hit.chunk.start,
                        "end": hit.chunk.end,
                        "dense_rank": hit.dense_rank,
                        "bm25_rank": hit.bm25_rank,
                        "text": hit.chunk.text,
                    }
                    for rank, hit in enumerate(result.hits, start=1)
                ],
            }
        )
        return 0
    if result.selection.refusal:
        out.print(f"[yellow]{escape(result.selection.refusal)}[/]")
        return 0
    if result.selection.reason == "named":
        out.print(
            f"[dim]narrowed to {escape(', '.join(result.selection.reports))} (named in the question)[/]"
        )
    if not result.hits:
        out.print("no matching passages")
        return 0
    for rank, hit in enumerate(result.hits, start=1):
        chunk = hit.chunk
        out.print(
            f"[bold]{rank}.[/] [cyan]{escape(chunk.report_id)}[/] [dim]{escape(chunk.section or '(opening)')}"
            f"  score {hit.score:.4f}  chars {chunk.start}–{chunk.end}[/]"
        )
        out.print(escape(chunk.text), style="default")
        out.print()
    out.print(f"[dim]{len(result.hits)} passages in {ms:.0f} ms[/]")
    return 0


def _engine_label(llm) -> str:
    if llm is None:
        return "extractive (offline, quotes the reports verbatim)"
    return redact(f"LLM {llm.label}")  # an endpoint may carry user:password


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa.api import Library

    lib = Library(settings, args.engine, services=_services(settings))
    llm = lib.llm
    streamed: list[str] = []

    def on_token(token: str) -> None:
        streamed.append(token)
        if (
            not args.json and llm is not None
        ):  # a model's reply is shown as it comes; the offline one is instant
            out.print(escape(token), end="")

    if not args.json:
        err.print(f"[dim]engine: {escape(_engine_label(llm))}[/]")
    answer = lib.ask(args.question, session=args.session, reports=args.report, regions=args.region,
                     years=args.year, k=args.k, on_token=on_token)  # fmt: skip
    if args.json:
        payload = answer.to_dict()
        payload.pop("sources")
        out.print_json(data=payload)
        return 0
    from qa.answer.pipeline import citation_numbers, renumbered

    # sources numbered 1..n in the order the answer cites them, as the app shows them
    numbers = citation_numbers(answer.text, [c.n for c in answer.citations])
    shown = renumbered(answer.text, numbers)
    if llm is None:
        out.print(escape(shown))
    else:
        out.print()
        if shown.strip() != "".join(streamed).strip():  # citations renumbered, or dropped by the checks
            out.print(f"[dim]checked answer:[/] {escape(shown)}")
    if answer.uncited:
        out.print("[bold yellow]⚠ this answer cites no passage: nothing in it is traced to a report[/]")
    if answer.dropped_claims:
        out.print(
            f"[yellow]removed {len(answer.dropped_claims)} sentence(s) citing reports outside the question's scope[/]"
        )
    if answer.dropped_citations:
        out.print(f"[yellow]removed citations to sources that were not given: {answer.dropped_citations}[/]")
    if answer.unverified_numbers:
        counted = Counter((u.raw, u.reason) for u in answer.unverified_numbers)
        marks = ", ".join(
            f"{raw} ({reason})" + (f" ×{n}" if n > 1 else "") for (raw, reason), n in counted.items()
        )
        out.print(f"[bold red]⚠ unverified numbers — not found in the cited passages: {escape(marks)}[/]")
    for citation in sorted(answer.citations, key=lambda c: numbers.get(c.n, c.n)):
        out.print(
            f"[bold][{numbers.get(citation.n, citation.n)}][/] [cyan]{escape(citation.title or '未识别标题')}[/] "
            f"[dim]{escape(citation.report_id)} · {escape(citation.section or '(opening)')} · "
            f"chars {citation.quote_start}–{citation.quote_end}[/]"
        )
        from qa.genre.numbers import find_numbers

        claims = [line for line in answer.text.splitlines() if f"[{citation.n}]" in line]
        shown = [n.raw for line in claims for n in find_numbers(line)]
        out.print(f"    “{escape(_shorten(citation.quote, keep=shown))}”")
    tail = f"{answer.latency_ms:.0f} ms"
    if answer.engine == "llm":
        cost = f", ${answer.cost_usd:.4f}" if answer.cost_usd is not None else ""
        tail += (
            f", {answer.prompt_tokens}+{answer.completion_tokens} tokens{cost}, prompt {answer.prompt_ref}"
        )
    out.print(f"[dim]{answer.engine} · {tail}[/]")
    return 0


def _cost_total(known: float | None, unpriced: int) -> str:
    """A total cost in words: unknown while any call in it had no price, never $0.0000 for calls nobody priced."""
    if not unpriced:
        return f"${known or 0:.4f}"
    priced = f"; ${known:.4f} for the priced ones" if known else ""
    return f"cost unknown ({unpriced} call(s) without a price: set QA_LLM_PRICES{priced})"


def _shorten(quote: str, limit: int = 160, keep: Sequence[str] = ()) -> str:
    """A long supporting span (a whole listed part) as its opening and its end — or, when the answer's number
    is further in, its opening and the words around that number (the quote must show what it supports)."""
    flat = " ".join(quote.split())
    if len(flat) <= limit:
        return flat
    for raw in keep:
        at = flat.find(" ".join(raw.split()))
        hidden = at >= 0 and at + len(raw) > limit - 40 and at < len(flat) - 30  # in neither end shown
        if hidden:
            start, end = max(40, at - 50), min(len(flat), at + len(raw) + 50)
            return f"{flat[:40]} … {flat[start:end]}{' …' if end < len(flat) else ''}（共 {len(flat)} 字）"
    return f"{flat[: limit - 40]} … {flat[-30:]}（共 {len(flat)} 字）"


def cmd_log(args: argparse.Namespace, settings: Settings) -> int:
    from qa.engines.calllog import CallLog  # not qa.wiring: reading the log needs no store or model

    path = settings.data_dir / CallLog.FILE_NAME
    if not path.is_file():  # do not create a data dir just to say it is empty
        if args.json:
            out.print_json(data={"recent": [], "totals": {**CallLog.EMPTY_TOTALS, "unpriced": 0}})
        else:
            out.print(f"no LLM calls logged yet in {escape(str(path))} (the offline engine makes none)")
        return 0
    log = CallLog(path)
    rows = log.recent(args.limit)
    totals = log.totals()
    unpriced = log.unpriced()
    if args.json:  # cost_usd: null while some call had no price; known_cost_usd: what the priced calls cost
        known = totals["cost_usd"]
        totals |= {"cost_usd": None if unpriced else known, "known_cost_usd": known, "unpriced": unpriced}
        out.print_json(data={"recent": rows, "totals": totals})
        return 0
    if not rows:
        out.print("no LLM calls logged yet (the offline engine makes none)")
        return 0
    table = Table(box=None, header_style="bold")
    # On a narrow or piped console (80 columns) only the error may fold: time and prompt ref stay whole.
    for name in ("time", "prompt", "model", "in/out", "ms", "cost $"):
        table.add_column(name, no_wrap=True)
    table.add_column("error", overflow="fold", min_width=20)
    for row in reversed(rows):
        cost = "cached" if row["cached"] else ("—" if row["cost_usd"] is None else f"{row['cost_usd']:.5f}")
        error = (row["error"] or "").removeprefix(f"model {row['model']}: ")
        table.add_row(row["time"].replace("T", " ")[5:], escape(row["prompt_ref"] or ""), escape(row["model"] or ""),
                      f"{row['prompt_tokens'] or 0}/{row['completion_tokens'] or 0}",
                      f"{row['latency_ms']:.0f}", cost, escape(error[:80]))  # fmt: skip
    out.print(table)
    out.print(
        f"{totals['calls']} calls, {totals['prompt_tokens']}+{totals['completion_tokens']} tokens, "
        f"{_cost_total(totals['cost_usd'], unpriced)}, {totals['errors']} errors, {totals['cached']} from cache"
    )
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa.core.files import atomic_write
    from qa.evals import gate, judge
    from qa.evals import report as evalreport
    from qa.evals.evaluate import load_dataset, load_summary_gold
    from qa.evals.run import EvalOptions, conclude, dataset_sha, run_eval
    from qa.wiring import make_llm

    docs, dataset = Path(args.docs), Path(args.dataset)
    if not docs.is_dir():
        raise InputError("--docs must be a folder of reports", str(docs))
    cases = load_dataset(dataset, docs)
    golds = load_summary_gold(Path(args.summary_gold), docs) if args.summary_gold else None
    baseline = gate.load_baseline(Path(args.baseline)) if args.baseline and not args.update_baseline else None
    if args.update_baseline and not args.baseline:
        raise InputError("--update-baseline needs --baseline FILE (the file to write)")
    llm = None if args.retrieval_only else make_llm(settings, args.engine)
    judge_llm = None
    if args.judge:
        if llm is None:
            raise InputError("--judge needs an LLM: set QA_LLM_MODEL (and QA_LLM_BASE_URL / QA_LLM_API_KEY)")
        judge_llm = make_llm(settings.replace(llm_cache=True), "llm")  # judge verdicts are always cached
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
    err.print(
        f"[dim]engine: {escape(_engine_label(llm) if not args.retrieval_only else 'retrieval only')}[/]"
    )
    options = EvalOptions(k=args.k, mode=args.mode, scope=args.scope, retrieval_only=args.retrieval_only,
                          store_dir=Path(args.store) if args.store else None)  # fmt: skip
    with _progress() as progress:
        tasks: dict[str, Any] = {}
        labels = {"ingest": "ingesting docs (chunks)", "questions": "questions", "summaries": "summaries"}

        def on_progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(labels.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        run = run_eval(
            settings, cases, docs, llm=llm, options=options, summary_golds=golds, progress=on_progress
        )
        metrics = run.metrics
        if judge_llm is not None:
            task = progress.add_task("judge", total=len(judge.judged_rows(metrics["rows"])))
            metrics["judge"] = judge.judge(metrics["rows"], judge_llm, args.judge_runs,
                                           progress=lambda: progress.advance(task))  # fmt: skip
            metrics["judge_accuracy"] = metrics["judge"]["judge_accuracy"]
    for r in run.failed_docs:
        err.print(f"[red]failed[/] {escape(r.path)}: {escape(r.reason)}")
    history_path = Path(args.history) if args.history else settings.data_dir / "eval_history.jsonl"
    recorded = conclude(metrics, dataset_sha(dataset), str(dataset), baseline,
                        None if args.no_history else history_path)  # fmt: skip
    comparison, sha, commit = recorded.comparison, recorded.dataset_sha, recorded.git_commit
    _print_eval(metrics, comparison, args)
    if args.json:
        payload = {**metrics, "baseline": comparison.to_dict() if comparison else None}
        atomic_write(Path(args.json), evalreport.to_json(payload))
        out.print(f"[dim]wrote {escape(args.json)}[/]")
    if args.report:
        report_dir = Path(args.report)
        meta = {
            "dataset": str(dataset),
            "dataset_sha": sha,
            "git_commit": commit,
            "baseline": args.baseline or "",
        }
        atomic_write(report_dir / "report.md", evalreport.to_markdown(metrics, comparison, **meta))
        atomic_write(report_dir / "report.html", evalreport.to_html(metrics, comparison, **meta))
        atomic_write(report_dir / "report.json", evalreport.to_json(
            {**metrics, "baseline": comparison.to_dict() if comparison else None}))  # fmt: skip
        out.print(f"[dim]report: {escape(str(report_dir / 'report.html'))} (and .md, .json)[/]")
    errored = metrics.get("errors") or 0
    if args.update_baseline and errored:
        err.print(f"[red]baseline not written:[/] {errored} question(s) failed with an error; fix and rerun")
    elif args.update_baseline:
        gate.save_baseline(Path(args.baseline), gate.make_baseline(
            metrics, dataset=str(dataset), dataset_sha=sha, git_commit=commit,
            tolerances=_previous_tolerances(Path(args.baseline))))  # fmt: skip
        out.print(f"baseline written: {escape(args.baseline)} — review and commit it")
    if errored:
        err.print(f"[red]error:[/] {errored} of {metrics['n']} questions failed with an error (listed above; "
                  "each counted wrong); the other questions were scored")  # fmt: skip
    if run.failed_docs or errored:
        return 1
    return 1 if comparison is not None and comparison.regressed else 0


def _previous_tolerances(path: Path) -> dict[str, float] | None:
    """Keep tolerances someone edited in the baseline when it is rewritten."""
    from qa.evals import gate

    try:
        return gate.load_baseline(path).get("tolerances")
    except InputError:
        return None


def _print_eval(metrics: dict[str, Any], comparison: Any, args: argparse.Namespace) -> None:
    from qa.evals import gate

    table = Table("metric", "value", "baseline", "Δ", box=None, header_style="bold")
    deltas = {d.name: d for d in comparison.deltas} if comparison else {}
    names = ["retrieval_recall_at_k", "answer_accuracy", "refusal_accuracy", "citation_precision",
             "number_grounding", "confidently_wrong", "false_refusals", "judge_accuracy"]  # fmt: skip
    summary = metrics.get("summary") or {}
    values = {n: metrics.get(n) for n in names} | {f"summary.{n}": summary.get(n) for n in
              ("metadata_accuracy", "figure_recall", "number_grounding", "section_completeness")}  # fmt: skip
    for name, value in values.items():
        if value is None:
            continue
        d = deltas.get(name)
        label = f"retrieval_recall_at_{args.k}" if name == "retrieval_recall_at_k" else name
        better = d and (d.delta or 0) != 0 and ((d.delta or 0) < 0) == (name in gate.LOWER_IS_BETTER)
        style = "red" if d and d.regressed else ("green" if better else "")
        table.add_row(label, f"[{style}]{value}[/]" if style else str(value),
                      "" if not d or d.baseline is None else str(d.baseline),
                      "" if not d or d.delta is None else f"{d.delta:+.4f}")  # fmt: skip
    for name in ("n", "errors", "p50_ms", "p95_ms", "wall_s"):
        value = str(metrics.get(name))
        if name == "errors" and name not in metrics:  # a retrieval-only run answers nothing
            continue
        table.add_row(name, f"[red]{value}[/]" if name == "errors" and metrics[name] else value, "", "")
    out.print(
        f"[bold]{escape(str(metrics['engine']))}[/] on {escape(str(args.dataset))} ({metrics['n']} questions)"
    )
    out.print(table)
    judged = metrics.get("judge")
    if judged:
        cost = _cost_total(judged["known_cost_usd"], judged["unpriced"])
        out.print(
            f"judge ({escape(judged['model'])}): {judged['n']} answers × {judged['runs']} runs, {judged['calls']} calls "
            f"({judged['cached']} cached, {judged['errors']} failed), {judged['prompt_tokens']:,}+"
            f"{judged['completion_tokens']:,} tokens, {cost}, {judged['wall_s']} s"
        )
    misses = [r for r in metrics["rows"] if r["retrieval_hit"] is False]
    if misses:
        out.print(f"[yellow]{len(misses)} questions without all their evidence in the top {args.k}:[/] "
                  + escape(", ".join(str(r["id"]) for r in misses)))  # fmt: skip
    wrong = [r for r in metrics["rows"] if r["correct"] is False and not r.get("error")]
    if wrong:
        out.print(f"[yellow]{len(wrong)} questions answered wrongly:[/]")
        for r in wrong:
            got = (r["answer"] or "").replace("\n", " ")[:80]
            line = f"  {escape(str(r['id']))} {escape(r['question'])}  gold {escape(r['gold'])} | got {escape(got)}"
            out.print(line + (" [yellow](an echo of the prompt: not credited)[/]" if r.get("echo") else ""))
    errored = [r for r in metrics["rows"] if r.get("error")]
    if errored:
        out.print(f"[red]{len(errored)} questions failed with an error (counted wrong):[/]")
        for r in errored:
            out.print(f"  {escape(str(r['id']))} {escape(r['question'])}: {escape(r['error'])}")
    for row in summary.get("rows", []):
        if not row["ok"]:
            problems = [f"{k}={v}" for k, v in row["metadata_wrong"].items()]
            problems += [f"missing {', '.join(row['figures_missing'])}"] if row["figures_missing"] else []
            problems += (
                [f"not in report {', '.join(row['numbers_ungrounded'])}"] if row["numbers_ungrounded"] else []
            )
            problems += [f"no {k}" for k, v in row["sections"].items() if not v]
            problems += [row["error"]] if row.get("error") else []
            out.print(f"[yellow]summary {escape(row['doc'])}:[/] {escape('; '.join(problems))}")
    if comparison is not None:
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
                f"{d.name} {d.baseline} → {d.current} (tolerance {d.tolerance})"
                for d in comparison.regressions
            )
            out.print(f"[bold red]REGRESSION against {escape(args.baseline)}:[/] {escape(worse)}")
        else:
            out.print(f"[green]no regression against {escape(args.baseline)}[/]")


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
    return 0


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from qa.ingest.embeddings import make_embedder
    from qa.summary import batch
    from qa.summary.summarize import template_by_name
    from qa.wiring import make_llm

    out_dir = Path(args.out)
    planned = batch.plan([Path(p) for p in args.paths], out_dir)
    for item in planned.failed:
        err.print(f"[red]failed[/] {escape(item.path)}  {escape(item.reason)}")
    if args.template:
        template_by_name(args.template)  # an unknown name fails here, once, not once per report
    llm = make_llm(settings, args.engine)
    embedder_name = make_embedder(settings).name
    if args.dry_run:
        figures = batch.estimate(planned.files, settings, embedder_name, llm.model if llm else None, out_dir,
                                 args.template, args.force)  # fmt: skip
        table = Table("report", "status", "LLM calls", "≈ tokens in/out", "≈ cost $", box=None,
                      header_style="bold")  # fmt: skip
        for row in figures["rows"]:
            cost = row.get("est_cost_usd")
            table.add_row(
                escape(row["report_id"] or row["path"]),
                escape(row["status"] + (f": {row['reason']}" if row["reason"] else "")),
                str(row["llm_calls"]),
                f"{row['est_prompt_tokens']:,}/{row['est_completion_tokens']:,}",
                "" if row["status"] != "to summarize" else ("unknown" if cost is None else f"{cost:.4f}"),
            )  # fmt: skip
        out.print(table)
        cost = figures["est_cost_usd"]
        out.print(
            f"dry run ({escape(_engine_label(llm))}): {figures['reports']} reports, {figures['to_summarize']} to summarize, "
            f"{figures['up_to_date']} up to date, {figures['unreadable']} unreadable; "
            f"{figures['llm_calls']} LLM calls, ≈{figures['est_prompt_tokens']:,} prompt + "
            f"{figures['est_completion_tokens']:,} completion tokens, ≈"
            + ("unknown cost (no price for this model: set QA_LLM_PRICES)" if cost is None else f"${cost:.4f}")
            + ". Nothing was sent."
        )  # fmt: skip
        return 1 if planned.failed or figures["unreadable"] else 0
    if not planned.files:
        return 1
    err.print(f"[dim]engine: {escape(_engine_label(llm))}; writing to {escape(str(out_dir))}[/]")
    started = time.perf_counter()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # `kill` stops like Ctrl-C: finished reports kept, index written

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (called from a test or an app)
        previous = None
    try:
        with _progress() as progress:
            task = progress.add_task("summaries", total=len(planned.files))

            def on_done(item) -> None:
                style = {"ok": "green", "skipped": "dim", "failed": "red", "stopped": "yellow"}[item.status]
                # a reason that starts with the file's path (an InputError) does not say it twice
                reason = item.reason.removeprefix(f"{item.path}: ")
                detail = escape(reason) if item.status in ("failed", "stopped") else f"{item.seconds:.1f}s"
                if item.unverified:
                    detail += f" [yellow]{item.unverified} unverified[/]"
                progress.console.print(f"[{style}]{item.status:>8}[/] {escape(item.path)}  {detail}")
                progress.advance(task)

            items = batch.run_batch(planned.files, out_dir, settings, embedder_name, llm,
                                    template=args.template, force=args.force, strict=args.strict,
                                    concurrency=args.concurrency, on_done=on_done)  # fmt: skip
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    items += planned.failed
    stopped = [i for i in items if i.status == "stopped"]
    table = Table("ok", "skipped", "failed", "stopped", "unverified", "tokens in/out", "cost $", "time", box=None,
                  header_style="bold")  # fmt: skip
    costs = [i.cost_usd for i in items if i.cost_usd is not None]
    # a report that spent tokens at no known price makes the total unknown, not the sum of the others
    unpriced = sum(i.cost_usd is None and bool(i.prompt_tokens or i.completion_tokens) for i in items)
    table.add_row(
        str(sum(i.status == "ok" for i in items)), str(sum(i.status == "skipped" for i in items)),
        str(sum(i.status == "failed" for i in items)), str(len(stopped)), str(sum(i.unverified for i in items)),
        f"{sum(i.prompt_tokens for i in items):,}/{sum(i.completion_tokens for i in items):,}",
        "0" if llm is None else ("unknown" if unpriced else f"{sum(costs):.4f}"),
        f"{time.perf_counter() - started:.1f}s",
    )  # fmt: skip
    out.print(table)
    index = [out_dir / name for name in ("index.csv", "index.xlsx") if (out_dir / name).is_file()]
    if index:  # only what was written: nothing is when no report got as far as its folder
        out.print(f"[dim]index: {' + '.join(escape(str(path)) for path in index)}[/]")
    fatal = next((i for i in items if i.fatal), None)
    if fatal is not None:
        err.print(
            f"[red]error:[/] batch stopped: {escape(fatal.reason)}\n{len(stopped)} report(s) not run; fix the "
            "setting and run the same command again (finished summaries are kept and skipped)"
        )  # fmt: skip
        return 2
    return 1 if any(i.status == "failed" for i in items) else 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from app_pages.ui_compare import compared_records, report_columns
    from qa.compare.table import to_csv, to_markdown, to_xlsx

    services = _services(settings)
    records = services.store.reports()
    if args.report:  # reports named are compared whatever their kind
        wanted = {_resolve_report(r, settings, services) for r in args.report}
        records = [r for r in records if r.report_id in wanted]
    else:  # the catalogue is a 法治 report's: work reports and bulletins would be empty columns
        records = compared_records(records)
    if not records:
        raise InputError("no reports to compare; run `qa ingest PATH` first")
    table = services.retriever.compare_table(report_columns(records))
    markdown = to_markdown(table)
    if args.out:
        from qa.core.files import atomic_write

        out_dir = Path(args.out)
        atomic_write(out_dir / "compare.md", markdown)
        atomic_write(out_dir / "compare.csv", to_csv(table))
        atomic_write(out_dir / "compare.xlsx", to_xlsx(table))
        out.print(
            f"wrote {escape(str(out_dir / 'compare.md'))}, compare.csv and compare.xlsx ({len(table.cells)} cells)"
        )
    else:
        out.print(markdown, markup=False)
    return 0


# ---- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa",
        description="Grounded Q&A and summaries over long reports (offline by default).",
        epilog="Settings come from the environment: QA_DATA_DIR (default ./.qa), QA_CHROMA_URL, QA_EMBEDDER, "
        "QA_CHUNK_SIZE, QA_CHUNK_OVERLAP, QA_MAX_FILE_MB, QA_LLM_BASE_URL, QA_LLM_MODEL, QA_LLM_API_KEY. See README.",
    )
    parser.add_argument("--data-dir", help="where the store and caches live (overrides QA_DATA_DIR)")
    parser.add_argument("--workspace", help="a team's own reports, sessions and summaries (QA_WORKSPACE); "
                        "default: the data dir's own")  # fmt: skip
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="add or update reports (files or folders, recursive)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ls", help="list stored reports")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("rm", help="remove reports and all their chunks")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report id as shown by `qa ls`")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("search", help="ranked passages for a question (hybrid dense + BM25)")
    p.add_argument("question")
    p.add_argument("--k", type=_positive, default=5, help="passages to return (default 5)")
    p.add_argument("--report", action="append", help="only this report (repeatable)")
    p.add_argument("--region", action="append", help="only reports of this region (repeatable)")
    p.add_argument("--year", action="append", type=int, help="only reports on this year (repeatable)")
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with cited passages")
    p.add_argument("question")
    p.add_argument("--report", action="append", help="only this report (repeatable)")
    p.add_argument("--region", action="append", help="only reports of this region (repeatable)")
    p.add_argument("--year", action="append", type=int, help="only reports on this year (repeatable)")
    p.add_argument("--k", type=_positive, default=6, help="passages to retrieve (default 6)")
    p.add_argument(
        "--engine", choices=("offline", "llm"), help="default: llm when QA_LLM_MODEL is set, else offline"
    )
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument(
        "--session", metavar="NAME",
        help="keep a conversation: follow-ups (那洛江区呢？) see the earlier turns (stored under QA_DATA_DIR/sessions)",
    )  # fmt: skip
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "summarize", help="structured summaries (JSON + Markdown + Word) of report files into a folder"
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="report files or folders")
    p.add_argument(
        "--out", required=True, help="output folder (summaries, index.jsonl, index.csv, index.xlsx)"
    )
    p.add_argument(
        "--template", help="summary template (rule_of_law, generic, …); default: chosen per report"
    )
    p.add_argument(
        "--engine", choices=("offline", "llm"), help="default: llm when QA_LLM_MODEL is set, else offline"
    )
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=4,
        help="LLM calls in flight: reports at a time, and a report's sections in parallel (default 4)",
    )
    p.add_argument("--force", action="store_true", help="redo reports whose summary is up to date")
    p.add_argument("--strict", action="store_true", help="fail a report that has any unverified figure")
    p.add_argument("--dry-run", action="store_true", help="count reports, tokens and cost; send nothing")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser(
        "compare", help="indicator table across stored reports (Markdown; --out adds CSV and Excel)"
    )
    p.add_argument("--report", action="append", help="only these reports (repeatable)")
    p.add_argument(
        "--out", help="folder for compare.md, compare.csv and compare.xlsx (default: print Markdown)"
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("log", help="recent LLM calls and totals (tokens, cost, errors)")
    p.add_argument("--limit", type=_positive, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("eval", help="run an eval dataset (DESIGN.md JSONL format) and print metrics")
    p.add_argument("--dataset", required=True, help="JSONL file of questions")
    p.add_argument("--docs", required=True, help="folder holding the reports the dataset refers to")
    p.add_argument("--store", help="store folder to ingest into (default: a fresh temporary one)")
    p.add_argument("--k", type=_positive, default=5)
    p.add_argument("--json", metavar="OUT", help="write metrics and per-question rows as JSON")
    p.add_argument("--retrieval-only", action="store_true", help="measure retrieval only (no answers)")
    p.add_argument(
        "--engine", choices=("offline", "llm"), help="default: llm when QA_LLM_MODEL is set, else offline"
    )
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    p.add_argument(
        "--scope", choices=("doc", "all"), default="doc",
        help="doc: ask each question with its report selected (default); all: across every report",
    )  # fmt: skip
    p.add_argument(
        "--summary-gold", metavar="FILE", help="also summarize these reports and check them (JSONL)"
    )
    p.add_argument("--baseline", metavar="FILE", help="compare with this baseline; exit 1 on a regression")
    p.add_argument("--update-baseline", action="store_true", help="write this run as the --baseline FILE")
    p.add_argument("--report", metavar="DIR", help="write report.md, report.html and report.json here")
    p.add_argument("--history", metavar="FILE", help="run history (default: $QA_DATA_DIR/eval_history.jsonl)")
    p.add_argument("--no-history", action="store_true", help="do not record this run in the history")
    p.add_argument("--judge", action="store_true", help="LLM judge for text/list answers (needs an LLM)")
    p.add_argument("--judge-runs", type=_positive, default=3, help="judge each answer N times (default 3)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("users", help="who may sign in to the app, and their role (reader, editor, admin)")
    p.add_argument("action", choices=["add", "list", "remove"])
    p.add_argument("name", nargs="?", help="sign-in name (or the e-mail address an OIDC provider gives)")
    p.add_argument("--role", choices=["reader", "editor", "admin"], default="reader")
    p.add_argument("--display", help="name shown in the app, e.g. 张三")
    p.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    p.add_argument(
        "--oidc", action="store_true", help="no password: the user signs in with the identity provider"
    )
    p.add_argument("--workspace", action="append", metavar="NAME", dest="user_workspaces",
                   help="a workspace this user may open (repeat; 'default' for the data dir's own); "
                   "none given: every workspace")  # fmt: skip
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("history", help="past eval runs (metrics, commit, failing questions)")
    p.add_argument("--file", help="history file (default: $QA_DATA_DIR/eval_history.jsonl)")
    p.add_argument("--limit", type=_positive, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "QA_WORKSPACE"})
        if args.data_dir:
            settings = settings.replace(data_dir=Path(args.data_dir))
        settings = settings.in_workspace(args.workspace or os.environ.get("QA_WORKSPACE"))
        for console in (out, err):
            console.file.secrets = settings.secrets
        return args.func(args, settings)
    except QAError as ex:
        err.print(f"[red]error:[/] {escape(redact(str(ex)))}")
        return ex.exit_code
    except KeyboardInterrupt:
        err.print("interrupted; reports finished before this point are stored")
        return 130
    except Exception as ex:  # a bug, or a library's error nothing translated: one line, not a traceback
        if args.debug:
            raise
        err.print(
            f"[red]error:[/] unexpected {type(ex).__name__}: {escape(redact(str(ex)))} (a bug: run the same "
            "command with `qa --debug …` to see where, and report it)"
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
