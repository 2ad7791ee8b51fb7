"""The `qa` command: the one place QAError becomes a message and an exit code.

The subcommands live by what they touch: library (ingest, ls, rm, compare), questions (search, ask),
summaries (summarize), evals (eval, history), admin (users, log); how results print, in present and
present_eval; the arguments, in parser.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape

from qa.cli.admin import cmd_log, cmd_users
from qa.cli.console import err, hide_secrets
from qa.cli.evals import cmd_eval, cmd_history
from qa.cli.library import cmd_compare, cmd_ingest, cmd_ls, cmd_rm
from qa.cli.parser import Command, build_parser
from qa.cli.questions import cmd_ask, cmd_search
from qa.cli.summaries import cmd_summarize
from qa.core.config import Settings
from qa.core.errors import QAError
from qa.core.redact import redact


def commands() -> dict[str, Command]:
    """Each subcommand's function, looked up when `qa` runs (a test may swap one here)."""
    return {"ingest": cmd_ingest, "ls": cmd_ls, "rm": cmd_rm, "search": cmd_search, "ask": cmd_ask,
            "summarize": cmd_summarize, "compare": cmd_compare, "log": cmd_log, "eval": cmd_eval,
            "users": cmd_users, "history": cmd_history}  # fmt: skip


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
