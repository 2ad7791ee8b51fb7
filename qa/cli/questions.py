"""`qa search` and `qa ask`: passages for a question, and a cited answer."""

from __future__ import annotations

import argparse
import time

from rich.markup import escape

from qa.cli import present
from qa.cli.console import err, out
from qa.cli.library import open_library
from qa.core.config import Settings


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    lib = open_library(settings)
    started = time.perf_counter()
    result = lib.search(args.question, reports=args.report, regions=args.region, years=args.year, k=args.k,
                        mode=args.mode)  # fmt: skip
    ms = (time.perf_counter() - started) * 1000
    if args.json:
        present.search_json(args.question, result, ms)
    else:
        present.search_hits(result, ms)
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    lib = open_library(settings, args.engine, None if args.session else args.question)
    engine = lib.engine
    streamed: list[str] = []

    def on_token(token: str) -> None:
        streamed.append(token)
        if (
            not args.json and engine.streams
        ):  # a model's reply is shown as it comes; the offline one is instant
            out.print(escape(token), end="")

    if not args.json:
        err.print(f"[dim]engine: {escape(present.engine_label(engine))}[/]")
    answer = lib.ask(args.question, session=args.session, reports=args.report, regions=args.region,
                     years=args.year, k=args.k, on_token=on_token)  # fmt: skip
    if args.json:
        payload = answer.to_dict()
        payload.pop("sources")
        out.print_json(data=payload)
        return 0
    present.answer(answer, "".join(streamed) if engine.streams else None)
    return 0
