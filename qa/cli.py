"""The `qa` command: the one place QAError becomes a message and an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
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

from qa.config import Settings
from qa.errors import InputError, QAError
from qa.schemas import IngestResult

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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

    return open_services(settings)


# ---- commands ----------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from qa.ingest import collect_files, ingest_paths

    paths = [Path(p) for p in args.paths]
    files, _ = collect_files(paths)
    services = _services(settings)
    started = time.perf_counter()
    results: list[IngestResult] = []
    with _progress() as progress:
        files_task = progress.add_task("reports", total=len(files))
        chunks_task = progress.add_task("embedding chunks", total=None)

        def on_result(result: IngestResult) -> None:
            results.append(result)
            style = _STATUS_STYLE.get(result.status, "")
            detail = f"{result.n_chunks} chunks" if result.status != "failed" else escape(result.reason)
            if result.status in ("ingested", "updated") and result.embedded < result.n_chunks:
                detail += f" ({result.n_chunks - result.embedded} from cache)"
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
        )
    counts = {s: sum(r.status == s for r in results) for s in ("ingested", "updated", "unchanged", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out.print(
        f"{summary or 'nothing to do'} in {time.perf_counter() - started:.1f}s → {services.store.location}"
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
        out.print(f"no reports in {services.store.location}{hint}; add some with `qa ingest PATH`")
        return 0
    table = Table("report", "title", "region", "year", "published", "chunks", box=None, header_style="bold")
    for r in records:
        table.add_row(
            r.report_id, r.meta.title, r.meta.region, str(r.meta.year or ""), r.meta.publish_date or "",
            str(r.n_chunks),
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(records)} reports, {sum(r.n_chunks for r in records)} chunks")
    return 0


def _resolve_report(name: str, settings: Settings, services: Any) -> str:
    records = services.store.reports()
    ids = [r.report_id for r in records]
    if name in ids:
        return name
    matches = [i for i in ids if i.rsplit(".", 1)[0] == name or Path(name).name == i]
    if len(matches) == 1:
        return matches[0]
    raise InputError(
        f"no report {name!r} in the store; `qa ls` lists them"
        + (f" (did you mean {', '.join(matches)}?)" if matches else "")
    )


def cmd_rm(args: argparse.Namespace, settings: Settings) -> int:
    services = _services(settings)
    for name in args.reports:
        report_id = _resolve_report(name, settings, services)
        services.store.remove_report(report_id)
        out.print(f"removed {report_id}")
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
                "scope": {"reports": list(result.scope.reports), "reason": result.scope.reason},
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
    if result.scope.reason == "named":
        out.print(f"[dim]narrowed to {', '.join(result.scope.reports)} (named in the question)[/]")
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
    return f"LLM {llm.label}" if llm is not None else "extractive (offline, quotes the reports verbatim)"


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa.answer import ask
    from qa.wiring import make_llm

    services = _services(settings)
    llm = make_llm(settings, args.engine)
    report_ids = [_resolve_report(r, settings, services) for r in args.report] if args.report else None
    streamed: list[str] = []

    def on_token(token: str) -> None:
        streamed.append(token)
        if not args.json:
            out.print(escape(token), end="")

    if not args.json:
        err.print(f"[dim]engine: {escape(_engine_label(llm))}[/]")
    answer = ask(args.question, services.retriever, llm=llm, k=args.k, report_ids=report_ids,
                 regions=args.region, years=args.year, on_token=on_token)  # fmt: skip
    if args.json:
        payload = answer.to_dict()
        payload.pop("sources")
        out.print_json(data=payload)
        return 0
    out.print()
    if answer.text != "".join(streamed):  # citations to sources that were not given are removed
        out.print(f"[dim]checked answer:[/] {escape(answer.text)}")
    if answer.dropped_citations:
        out.print(f"[yellow]removed citations to sources that were not given: {answer.dropped_citations}[/]")
    if answer.unverified_numbers:
        marks = ", ".join(f"{u.raw} ({u.reason})" for u in answer.unverified_numbers)
        out.print(f"[bold red]⚠ unverified numbers — not found in the cited passages: {escape(marks)}[/]")
    for citation in answer.citations:
        out.print(
            f"[bold][{citation.n}][/] [cyan]{escape(citation.title or citation.report_id)}[/] "
            f"[dim]{escape(citation.report_id)} · {escape(citation.section or '(opening)')} · "
            f"chars {citation.quote_start}–{citation.quote_end}[/]"
        )
        out.print(f"    “{escape(citation.quote)}”")
    tail = f"{answer.latency_ms:.0f} ms"
    if answer.engine == "llm":
        cost = f", ${answer.cost_usd:.4f}" if answer.cost_usd is not None else ""
        tail += (
            f", {answer.prompt_tokens}+{answer.completion_tokens} tokens{cost}, prompt {answer.prompt_ref}"
        )
    out.print(f"[dim]{answer.engine} · {tail}[/]")
    return 0


def cmd_log(args: argparse.Namespace, settings: Settings) -> int:
    from qa.wiring import call_log

    log = call_log(settings)
    rows = log.recent(args.limit)
    totals = log.totals()
    if args.json:
        out.print_json(data={"recent": rows, "totals": totals})
        return 0
    if not rows:
        out.print("no LLM calls logged yet (the offline engine makes none)")
        return 0
    table = Table(
        "time", "prompt", "model", "tokens in/out", "ms", "cost $", "error", box=None, header_style="bold"
    )
    for row in reversed(rows):
        cost = "cached" if row["cached"] else ("—" if row["cost_usd"] is None else f"{row['cost_usd']:.5f}")
        table.add_row(row["time"], row["prompt_ref"] or "", row["model"] or "",
                      f"{row['prompt_tokens'] or 0}/{row['completion_tokens'] or 0}",
                      f"{row['latency_ms']:.0f}", cost, escape((row["error"] or "")[:60]))  # fmt: skip
    out.print(table)
    out.print(
        f"{totals['calls']} calls, {totals['prompt_tokens']}+{totals['completion_tokens']} tokens, "
        f"${totals['cost_usd']:.4f} (known prices), {totals['errors']} errors, {totals['cached']} from cache"
    )
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa.answer import ask
    from qa.embeddings import make_embedder
    from qa.evaluate import load_dataset, run_qa, run_retrieval
    from qa.ingest import ingest_paths
    from qa.retrieve import Retriever
    from qa.store import Store
    from qa.wiring import make_llm

    docs = Path(args.docs)
    if not docs.is_dir():
        raise InputError("--docs must be a folder of reports", str(docs))
    cases = load_dataset(Path(args.dataset), docs)
    llm = None if args.retrieval_only else make_llm(settings, args.engine)
    embedder = make_embedder(settings)  # the embedding cache stays in QA_DATA_DIR even for a temporary store
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        store_settings = settings.replace(data_dir=Path(args.store or tmp))
        if not args.store:
            store_settings = store_settings.replace(chroma_url=None)
        store = Store.open(store_settings, embedder.name, embedder.dim)
        with _progress() as progress:
            task = progress.add_task("ingesting docs", total=None)
            results = ingest_paths(
                [docs], store, embedder, settings, progress=lambda n: progress.advance(task, n)
            )
        failed = [r for r in results if r.status == "failed"]
        for r in failed:
            err.print(f"[red]failed[/] {escape(r.path)}: {escape(r.reason)}")
        retriever = Retriever(store, embedder, settings)
        texts = {r.report_id: store.report_text(r.report_id) for r in store.reports()}

        def reports_for(case) -> list[str] | None:
            return None if case.doc == "*" or args.scope == "all" else [case.doc]

        started = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task("questions", total=len(cases))
            if args.retrieval_only:
                metrics = run_retrieval(
                    cases,
                    lambda c: [h.chunk for h in retriever.search(c.question, k=args.k, report_ids=reports_for(c),
                                                                  mode=args.mode).hits],  # fmt: skip
                    texts, args.k, progress=lambda: progress.advance(task),
                )  # fmt: skip
            else:
                metrics = run_qa(
                    cases,
                    lambda c: ask(c.question, retriever, llm=llm, k=args.k, report_ids=reports_for(c)),
                    texts, args.k, progress=lambda: progress.advance(task),
                )  # fmt: skip
        wall = time.perf_counter() - started
    metrics.update(
        {
            "engine": "retrieval-only" if args.retrieval_only else ("llm" if llm else "extractive"),
            "model": llm.model if llm else None,
            "mode": args.mode,
            "scope": args.scope,
            "wall_s": round(wall, 2),
            "dataset": str(args.dataset),
        }
    )
    table = Table("metric", "value", box=None, header_style="bold")
    for key in ("n", "retrieval_recall_at_k", "answer_accuracy", "refusal_accuracy", "citation_precision",
                "number_grounding", "p50_ms", "p95_ms", "wall_s"):  # fmt: skip
        if key in metrics:
            table.add_row(
                key if key != "retrieval_recall_at_k" else f"retrieval_recall_at_{args.k}", str(metrics[key])
            )
    out.print(f"[bold]{metrics['engine']}[/] on {escape(str(args.dataset))} ({len(cases)} questions)")
    out.print(table)
    misses = [r for r in metrics["rows"] if r["retrieval_hit"] is False]
    if misses:
        out.print(f"[yellow]{len(misses)} questions without all their evidence in the top {args.k}:[/]")
        for r in misses:
            out.print(f"  {r['id']} {escape(r['question'])}")
    wrong = [r for r in metrics["rows"] if r["correct"] is False]
    if wrong:
        out.print(f"[yellow]{len(wrong)} questions answered wrongly:[/]")
        for r in wrong:
            out.print(
                f"  {r['id']} {escape(r['question'])}  gold {escape(r['gold'])} | got {escape((r['answer'] or '')[:80])}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
        out.print(f"[dim]wrote {args.json}[/]")
    return 1 if failed else 0


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    from qa import batch
    from qa.embeddings import make_embedder
    from qa.wiring import make_llm

    out_dir = Path(args.out)
    planned = batch.plan([Path(p) for p in args.paths])
    for item in planned.failed:
        err.print(f"[red]failed[/] {escape(item.path)}  {escape(item.reason)}")
    llm = make_llm(settings, args.engine)
    embedder_name = make_embedder(settings).name
    if args.dry_run:
        figures = batch.estimate(planned.files, settings, embedder_name, llm.model if llm else None, out_dir,
                                 args.template, args.force)  # fmt: skip
        cost = figures["est_cost_usd"]
        out.print(
            f"dry run ({_engine_label(llm)}): {figures['reports']} reports, {figures['to_summarize']} to summarize, "
            f"{figures['up_to_date']} up to date, {figures['unreadable']} unreadable; "
            f"{figures['llm_calls']} LLM calls, ≈{figures['est_prompt_tokens']:,} prompt + "
            f"{figures['est_completion_tokens']:,} completion tokens, ≈"
            + (
                "unknown cost (no price for this model: set QA_LLM_PRICES)"
                if cost is None
                else f"${cost:.4f}"
            )
            + ". Nothing was sent."
        )
        return 1 if planned.failed else 0
    if not planned.files:
        return 1
    err.print(f"[dim]engine: {escape(_engine_label(llm))}; writing to {escape(str(out_dir))}[/]")
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("summaries", total=len(planned.files))

        def on_done(item) -> None:
            style = {"ok": "green", "skipped": "dim", "failed": "red"}[item.status]
            detail = escape(item.reason) if item.status == "failed" else f"{item.seconds:.1f}s"
            if item.unverified:
                detail += f" [yellow]{item.unverified} unverified[/]"
            progress.console.print(f"[{style}]{item.status:>8}[/] {escape(item.path)}  {detail}")
            progress.advance(task)

        items = batch.run_batch(planned.files, out_dir, settings, embedder_name, llm, template=args.template,
                                force=args.force, strict=args.strict, concurrency=args.concurrency,
                                on_done=on_done)  # fmt: skip
    items += planned.failed
    table = Table("ok", "skipped", "failed", "tokens in/out", "cost $", "time", box=None, header_style="bold")
    costs = [i.cost_usd for i in items if i.cost_usd is not None]
    table.add_row(
        str(sum(i.status == "ok" for i in items)), str(sum(i.status == "skipped" for i in items)),
        str(sum(i.status == "failed" for i in items)),
        f"{sum(i.prompt_tokens for i in items)}/{sum(i.completion_tokens for i in items)}",
        f"{sum(costs):.4f}" if costs else ("0" if llm is None else "unknown"),
        f"{time.perf_counter() - started:.1f}s",
    )  # fmt: skip
    out.print(table)
    out.print(f"[dim]index: {escape(str(out_dir / 'index.csv'))}[/]")
    return 1 if any(i.status == "failed" for i in items) else 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from qa.compare import ReportColumn, build_table, to_csv, to_markdown

    services = _services(settings)
    records = services.store.reports()
    if args.report:
        wanted = {_resolve_report(r, settings, services) for r in args.report}
        records = [r for r in records if r.report_id in wanted]
    if not records:
        raise InputError("no reports to compare; run `qa ingest PATH` first")
    table = build_table(
        [(ReportColumn(r.report_id, r.meta.region or r.meta.title or r.report_id, r.meta.year),
          services.store.report_chunks(r.report_id)) for r in records]
    )  # fmt: skip
    markdown = to_markdown(table)
    if args.out:
        from qa.batch import atomic_write

        out_dir = Path(args.out)
        atomic_write(out_dir / "compare.md", markdown)
        atomic_write(out_dir / "compare.csv", to_csv(table))
        out.print(f"wrote {escape(str(out_dir / 'compare.md'))} and compare.csv ({len(table.cells)} cells)")
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
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "summarize", help="structured summaries (JSON + Markdown) of report files into a folder"
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="report files or folders")
    p.add_argument("--out", required=True, help="output folder (summaries, index.jsonl, index.csv)")
    p.add_argument(
        "--template", help="summary template (rule_of_law, generic, …); default: chosen per report"
    )
    p.add_argument(
        "--engine", choices=("offline", "llm"), help="default: llm when QA_LLM_MODEL is set, else offline"
    )
    p.add_argument(
        "--concurrency", type=_positive, default=4, help="reports (LLM calls) in flight (default 4)"
    )
    p.add_argument("--force", action="store_true", help="redo reports whose summary is up to date")
    p.add_argument("--strict", action="store_true", help="fail a report that has any unverified figure")
    p.add_argument("--dry-run", action="store_true", help="count reports, tokens and cost; send nothing")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("compare", help="indicator table across stored reports (Markdown; --out adds CSV)")
    p.add_argument("--report", action="append", help="only these reports (repeatable)")
    p.add_argument("--out", help="folder for compare.md and compare.csv (default: print Markdown)")
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
    p.set_defaults(func=cmd_eval)
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
        if args.data_dir:
            settings = settings.replace(data_dir=Path(args.data_dir))
        return args.func(args, settings)
    except QAError as ex:
        err.print(f"[red]error:[/] {escape(str(ex))}")
        return ex.exit_code
    except KeyboardInterrupt:
        err.print("interrupted; reports finished before this point are stored")
        return 130


if __name__ == "__main__":
    sys.exit(main())
