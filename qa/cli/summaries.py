"""`qa summarize`: structured summaries of report files into a folder (or, with --dry-run, their cost)."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.markup import escape

from qa.cli import present
from qa.cli.console import err, out, progress_bars
from qa.core.config import Settings
from qa.core.files import output_folder


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    from qa.models.embeddings import make_embedder
    from qa.summary import batch
    from qa.summary.summarize import template_by_name
    from qa.wiring import make_engine

    out_dir = output_folder(Path(args.out), create=False)  # a file given as the folder: said before any work
    planned = batch.plan([Path(p) for p in args.paths], out_dir)
    for item in planned.failed:
        err.print(f"[red]failed[/] {escape(item.path)}  {escape(item.reason)}")
    if args.template:
        template_by_name(args.template)  # an unknown name fails here, once, not once per report
    engine = make_engine(settings, args.engine)
    embedder_name = make_embedder(settings).name
    if args.dry_run:
        figures = batch.estimate(planned.files, settings, embedder_name, engine, out_dir,
                                 args.template, args.force)  # fmt: skip
        present.dry_run(figures, present.engine_label(engine))
        return 1 if planned.failed or figures["unreadable"] else 0
    if not planned.files:
        return 1
    err.print(f"[dim]engine: {escape(present.engine_label(engine))}; writing to {escape(str(out_dir))}[/]")
    started = time.perf_counter()
    with _sigterm_as_interrupt():
        items = _run_batch(args, settings, planned.files, out_dir, embedder_name, engine)
    items += planned.failed
    present.batch_totals(items, engine.model is None, time.perf_counter() - started)
    index = [out_dir / name for name in ("index.csv", "index.xlsx") if (out_dir / name).is_file()]
    if index:  # only what was written: nothing is when no report got as far as its folder
        out.print(f"[dim]index: {' + '.join(escape(str(path)) for path in index)}[/]")
    fatal = next((i for i in items if i.fatal), None)
    if fatal is not None:
        stopped = sum(i.status == "stopped" for i in items)
        err.print(
            f"[red]error:[/] batch stopped: {escape(fatal.reason)}\n{stopped} report(s) not run; fix the "
            "setting and run the same command again (finished summaries are kept and skipped)"
        )  # fmt: skip
        return 2
    return 1 if any(i.status == "failed" for i in items) else 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` stops like Ctrl-C: finished reports kept, index written."""
    import signal

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread (called from a test or an app)
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run_batch(args: argparse.Namespace, settings: Settings, files: list, out_dir: Path, embedder_name: str,
               engine: Any) -> list:  # fmt: skip
    """The summaries, a line for each report as it finishes under one progress bar."""
    from qa.summary import batch

    with progress_bars() as progress:
        task = progress.add_task("summaries", total=len(files))

        def on_done(item) -> None:
            progress.console.print(present.batch_item_line(item))
            progress.advance(task)

        return batch.run_batch(files, out_dir, settings, embedder_name, engine,
                               template=args.template, force=args.force, strict=args.strict,
                               concurrency=args.concurrency, on_done=on_done)  # fmt: skip
