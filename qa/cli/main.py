"""The `qa` command: the one place QAError becomes a message and an exit code.

The subcommands live by what they touch: library (ingest, ls, rm, compare), questions (search, ask),
summaries (summarize), evals (eval, history), admin (users, log); how results print, in present and
present_eval; the arguments, in parser.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape

from qa.cli.console import err, hide_secrets
from qa.cli.parser import Command, build_parser
from qa.core.config import Settings
from qa.core.errors import QAError
from qa.core.redact import redact

# Where each subcommand lives: only the one that runs is imported (a cold `qa ask` loads no eval, summary
# or admin code).
COMMANDS = {
    "ingest": "library", "ls": "library", "rm": "library", "compare": "library",
    "search": "questions", "ask": "questions", "summarize": "summaries", "check": "checks",
    "eval": "evals", "history": "evals", "users": "admin", "log": "admin",
}  # fmt: skip


def _command(name: str) -> Command:
    """qa.cli.<module>.cmd_<name>, imported and looked up when it runs (so a test may swap it there)."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        module = importlib.import_module(f"qa.cli.{COMMANDS[name]}")
        return getattr(module, f"cmd_{name}")(args, settings)

    return run


def commands() -> dict[str, Command]:
    return {name: _command(name) for name in COMMANDS}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(commands()).parse_args(argv)
    try:
        settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "QA_WORKSPACE"})
        if args.data_dir:
            settings = settings.replace(data_dir=Path(args.data_dir))
        settings = settings.in_workspace(args.workspace or os.environ.get("QA_WORKSPACE"))
        hide_secrets(settings.secrets)
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
