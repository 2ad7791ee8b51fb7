"""`qa ingest`, `qa ls`, `qa rm`, `qa compare`: what the store holds."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from qa.cli import present
from qa.cli.console import err, out, progress_bars
from qa.core.config import Settings
from qa.core.schemas import IngestResult

if TYPE_CHECKING:
    from qa.api import Library


def open_services(settings: Settings, question: str | None = None):
    from qa.wiring import open_services

    services = open_services(settings, question=question)
    # A writer waiting for another's store lock says for whom (qa.store.chroma), once per holder.
    services.store.on_lock_wait = lambda text: err.print(f"[yellow]{escape(text)}[/]")
    return services


def open_library(settings: Settings, engine: str | None = None, question: str | None = None) -> Library:
    """The store as qa.api.Library, its services opened with the lock-wait message (and the question about
    to be asked embedded meanwhile)."""
    from qa.api import Library

    return Library(settings, engine, services=open_services(settings, question))


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    # not Library.ingest: the command shows each report searchable by keywords first, its vectors following
    from qa.ingest.pipeline import collect_files, ingest_paths

    paths = [Path(p) for p in args.paths]
    files, _ = collect_files(paths)
    services = open_services(settings)
    started = time.perf_counter()
    results: list[IngestResult] = []
    with progress_bars() as progress:
        # two passes: each report is searchable by keywords once read; its vectors follow in the background
        files_task = progress.add_task("searchable (keywords)", total=len(files))
        chunks_task = progress.add_task("vectors (background)", total=0)

        def on_result(result: IngestResult) -> None:
            results.append(result)
            progress.console.print(present.ingest_line(result))
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
    counts = present.ingest_totals(results, time.perf_counter() - started, services.store.location)
    return 1 if counts["failed"] else 0


def cmd_ls(args: argparse.Namespace, settings: Settings) -> int:
    lib = open_library(settings)
    records = lib.reports()
    if args.json:
        present.reports_json(records)
    elif not records:
        store = lib.services.store
        present.no_reports(store.location, store.other_embedders())
    else:
        present.reports_listing(records)
    return 0


def cmd_rm(args: argparse.Namespace, settings: Settings) -> int:
    lib = open_library(settings)
    for name in args.reports:
        report_id = lib.resolve(name)
        lib.remove(report_id)
        out.print(f"removed {escape(report_id)}")
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from qa.compare.table import to_csv, to_markdown, to_xlsx
    from qa.core.files import atomic_write, output_folder

    out_dir = output_folder(Path(args.out)) if args.out else None  # said before any work
    table = open_library(settings).compare(args.report)
    markdown = to_markdown(table)
    if out_dir is not None:
        atomic_write(out_dir / "compare.md", markdown)
        atomic_write(out_dir / "compare.csv", to_csv(table))
        atomic_write(out_dir / "compare.xlsx", to_xlsx(table))
        out.print(
            f"wrote {escape(str(out_dir / 'compare.md'))}, compare.csv and compare.xlsx ({len(table.cells)} cells)"
        )
    else:
        out.print(markdown, markup=False)
    return 0
