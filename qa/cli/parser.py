"""The `qa` command's arguments: its options, subcommands and their help (what `qa --help` shows)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from qa.core.config import Settings

Command = Callable[[argparse.Namespace, Settings], int]  # a subcommand: its arguments → the exit code


def build_parser(commands: Mapping[str, Command]) -> argparse.ArgumentParser:
    """The `qa` command's arguments; each subcommand runs commands[name] (qa.cli.main.commands)."""
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
    p.set_defaults(func=commands["ingest"])

    p = sub.add_parser("ls", help="list stored reports")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=commands["ls"])

    p = sub.add_parser("rm", help="remove reports and all their chunks")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report id as shown by `qa ls`")
    p.set_defaults(func=commands["rm"])

    p = sub.add_parser("search", help="ranked passages for a question (hybrid dense + BM25)")
    p.add_argument("question")
    p.add_argument("--k", type=_positive, default=5, help="passages to return (default 5)")
    p.add_argument("--report", action="append", help="only this report (repeatable)")
    p.add_argument("--region", action="append", help="only reports of this region (repeatable)")
    p.add_argument("--year", action="append", type=int, help="only reports on this year (repeatable)")
    p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=commands["search"])

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
    p.set_defaults(func=commands["ask"])

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
    p.set_defaults(func=commands["summarize"])

    p = sub.add_parser(
        "compare", help="indicator table across stored reports (Markdown; --out adds CSV and Excel)"
    )
    p.add_argument("--report", action="append", help="only these reports (repeatable)")
    p.add_argument(
        "--out", help="folder for compare.md, compare.csv and compare.xlsx (default: print Markdown)"
    )
    p.set_defaults(func=commands["compare"])

    p = sub.add_parser(
        "check",
        help="报告体检: which contents the regulation asks of a 法治 report it has, whether it was public by "
        "the deadline, how concrete it is",
    )
    p.add_argument(
        "reports", nargs="*", metavar="REPORT",
        help="report files or folders, or stored reports (default: every stored 法治 report)",
    )  # fmt: skip
    p.add_argument(
        "--out", help="folder for NAME.check.md + NAME.check.json per report and check.csv + check.xlsx"
    )
    p.add_argument(
        "--regulation", metavar="FILE",
        help="the whole text of 《法治政府建设与责任落实督察工作规定》 (txt, md, html, pdf, docx): its article "
        "numbers and wording are cited (default: QA_REGULATION_TEXT; unset: cited by name)",
    )  # fmt: skip
    p.set_defaults(func=commands["check"])

    p = sub.add_parser("log", help="recent LLM calls and totals (tokens, cost, errors)")
    p.add_argument("--limit", type=_positive, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands["log"])

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
    p.add_argument("--why", metavar="TEXT",
                   help="with --update-baseline: why questions that passed in the baseline may fail now (recorded in it)")  # fmt: skip
    p.add_argument("--report", metavar="DIR", help="write report.md, report.html and report.json here")
    p.add_argument("--history", metavar="FILE", help="run history (default: $QA_DATA_DIR/eval_history.jsonl)")
    p.add_argument("--no-history", action="store_true", help="do not record this run in the history")
    p.add_argument("--judge", action="store_true", help="LLM judge for text/list answers (needs an LLM)")
    p.add_argument("--judge-runs", type=_positive, default=3, help="judge each answer N times (default 3)")
    p.set_defaults(func=commands["eval"])

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
    p.set_defaults(func=commands["users"])

    p = sub.add_parser("history", help="past eval runs (metrics, commit, failing questions)")
    p.add_argument("--file", help="history file (default: $QA_DATA_DIR/eval_history.jsonl)")
    p.add_argument("--limit", type=_positive, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands["history"])
    return parser


def _positive(value: str) -> int:  # its name is in argparse's message: "invalid _positive value"
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be ≥ 1")
    return number
