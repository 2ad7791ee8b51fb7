"""`qa users` (who may sign in to the app) and `qa log` (the LLM calls made)."""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape

from qa.cli import present
from qa.cli.console import out
from qa.core.config import Settings
from qa.core.errors import InputError


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
    password = None if args.oidc else _password(args)
    named = args.user_workspaces
    spaces = tuple("" if w in ("default", "默认") else w for w in named) if named else None
    user = users.add(args.name, args.role, password, args.display or "", spaces)
    out.print(f"{escape(user.name)}: {user.role} ({ROLE_NAMES[user.role]}) in {escape(str(users.path))}")
    return 0


def _password(args: argparse.Namespace) -> str:
    """A new user's password: one line of stdin, or typed twice at a prompt."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    password = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != password:
        raise InputError("the two passwords differ; nothing was changed")
    return password


def cmd_log(args: argparse.Namespace, settings: Settings) -> int:
    from qa.models.calllog import CallLog  # not qa.wiring: reading the log needs no store or model

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
    present.call_log(rows, totals, unpriced)
    return 0
