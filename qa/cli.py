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


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa.embeddings import make_embedder
    from qa.evaluate import load_dataset, run_retrieval
    from qa.ingest import ingest_paths
    from qa.retrieve import Retriever
    from qa.store import Store

    docs = Path(args.docs)
    if not docs.is_dir():
        raise InputError("--docs must be a folder of reports", str(docs))
    cases = load_dataset(Path(args.dataset), docs)
    embedder = make_embedder(settings)  # the embedding cache stays in QA_DATA_DIR even for a temporary store
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        store_settings = settings.replace(
            data_dir=Path(args.store or tmp), chroma_url=None if not args.store else settings.chroma_url
        )
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

        def search(case):
            reports = None if case.doc == "*" or args.scope == "all" else [case.doc]
            return [
                h.chunk
                for h in retriever.search(case.question, k=args.k, report_ids=reports, mode=args.mode).hits
            ]

        started = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task("questions", total=len(cases))
            metrics = run_retrieval(cases, search, texts, args.k, progress=lambda: progress.advance(task))
        wall = time.perf_counter() - started
    metrics.update(
        {"mode": args.mode, "scope": args.scope, "wall_s": round(wall, 2), "dataset": str(args.dataset)}
    )
    table = Table("metric", "value", box=None, header_style="bold")
    for key in ("n", "retrieval_recall_at_k", "p50_ms", "p95_ms", "wall_s"):
        table.add_row(
            key if key != "retrieval_recall_at_k" else f"retrieval_recall_at_{args.k}", str(metrics[key])
        )
    out.print(table)
    misses = [r for r in metrics["rows"] if r["retrieval_hit"] is False]
    if misses:
        out.print(f"[yellow]{len(misses)} questions without all their evidence in the top {args.k}:[/]")
        for r in misses:
            out.print(f"  {r['id']} {escape(r['question'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
        out.print(f"[dim]wrote {args.json}[/]")
    return 1 if failed else 0


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

    p = sub.add_parser("eval", help="run an eval dataset (DESIGN.md JSONL format) and print metrics")
    p.add_argument("--dataset", required=True, help="JSONL file of questions")
    p.add_argument("--docs", required=True, help="folder holding the reports the dataset refers to")
    p.add_argument("--store", help="store folder to ingest into (default: a fresh temporary one)")
    p.add_argument("--k", type=_positive, default=5)
    p.add_argument("--json", metavar="OUT", help="write metrics and per-question rows as JSON")
    p.add_argument("--retrieval-only", action="store_true", help="measure retrieval only (no answers)")
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
