"""The app's sign-in state kept on the server, so that neither a reload nor a restart loses it: sessions
(a random token in an HttpOnly cookie; the file keeps only its hash) and failed sign-ins, counted per
account and per client address with growing pauses. One SQLite file, <data_dir>/signin.sqlite3 (0600).

A session is handed to the browser in two steps, so the token never appears in a URL or in the page: the
sign-in form (running on the server) starts a session and gets a one-time ticket; the page posts the ticket
to /_qa/session (app.py), which redeems it for the token and sets the cookie. A session ends when it
expires, on sign-out (in the app or through /_qa/signout), or when the user's password, role or
workspaces change (the stamp it was granted on no longer matches the users file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qa.core.errors import ConfigError
from qa.team.auth import User, Users

COOKIE = "reportqa_session"
TICKET_S = 120.0  # a ticket not redeemed by then is void (the page posts it at once)
# Failed sign-ins: this many are free; each one after pauses sign-in for FIRST_PAUSE_S, doubled every time,
# up to MAX_PAUSE_S. A key with no failure for FORGET_S starts over. An address is shared by a whole office
# behind one NAT, so it is given more room than one account.
FREE_TRIES = {"account": 5, "address": 20}
FIRST_PAUSE_S, MAX_PAUSE_S, FORGET_S = 30.0, 3600.0, 24 * 3600.0

_SCHEMA = """
create table if not exists sessions (
    id text primary key,        -- the session's public id (the app keeps it to end the session)
    token_hash text unique,     -- sha256 of the cookie's token, null until the ticket is redeemed
    ticket_hash text unique,    -- sha256 of the one-time ticket, null once redeemed
    ticket_expires real,
    name text not null,
    stamp text not null,        -- Users.stamp at sign-in
    created real not null,
    expires real not null
);
create table if not exists failures (
    key text primary key,       -- account:NAME or address:IP
    count integer not null,
    last real not null,
    locked_until real not null
);
"""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Lock:
    """Sign-in paused: for this account or from this address, until this time (epoch seconds)."""

    kind: str  # "account" | "address"
    until: float


class SignInStore:
    """Sessions and failed sign-ins in one SQLite file; each call opens its own connection, so the app's
    threads and several app processes can share it."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():  # created owner-only before SQLite writes into it
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            with self._db() as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
        except (OSError, sqlite3.Error) as ex:
            raise ConfigError(
                f"{path}: cannot keep the app's sign-in state there ({ex}); check that the data folder "
                "(QA_DATA_DIR) is writable, or move a damaged file away"
            ) from ex

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("begin immediate")
            yield db
            db.execute("commit")
        except BaseException:
            if db.in_transaction:
                db.execute("rollback")
            raise
        finally:
            db.close()

    # ---- failed sign-ins ------------------------------------------------------------------------------

    def locked(self, account: str, address: str) -> Lock | None:
        """The pause in force for this account or this address, if any (the account's first)."""
        now = self.clock()
        with self._db() as db:
            for kind, key in (("account", f"account:{account}"), ("address", f"address:{address}")):
                row = db.execute("select locked_until from failures where key = ?", (key,)).fetchone()
                if row and row[0] > now:
                    return Lock(kind, row[0])
        return None

    def failed(self, account: str, address: str) -> Lock | None:
        """Count a failed sign-in against both; the pause it starts, if any."""
        now = self.clock()
        lock = None
        with self._db() as db:
            for kind, key in (("account", f"account:{account}"), ("address", f"address:{address}")):
                row = db.execute("select count, last from failures where key = ?", (key,)).fetchone()
                count = 1 if row is None or now - row[1] > FORGET_S else row[0] + 1
                over = count - FREE_TRIES[kind]
                until = now + min(FIRST_PAUSE_S * 2 ** (over), MAX_PAUSE_S) if over >= 0 else 0.0
                db.execute(
                    "insert or replace into failures (key, count, last, locked_until) values (?, ?, ?, ?)",
                    (key, count, now, until),
                )
                if until and (lock is None or until > lock.until):
                    lock = Lock(kind, until)
        return lock

    def succeeded(self, account: str) -> None:
        """The account's count starts over; the address's does not (one good password must not wipe the
        record of guesses at other accounts from the same place)."""
        with self._db() as db:
            db.execute("delete from failures where key = ?", (f"account:{account}",))

    # ---- sessions -------------------------------------------------------------------------------------

    def start(self, user: User, stamp: str, ttl_s: float) -> tuple[str, str]:
        """A new session for a user who just signed in: (its id, a one-time ticket for the cookie)."""
        session_id, ticket = secrets.token_hex(16), secrets.token_urlsafe(32)
        now = self.clock()
        with self._db() as db:
            db.execute("delete from sessions where expires <= ?", (now,))
            db.execute(
                "insert into sessions (id, token_hash, ticket_hash, ticket_expires, name, stamp, created, expires)"
                " values (?, null, ?, ?, ?, ?, ?, ?)",
                (session_id, _hash(ticket), now + TICKET_S, user.name, stamp, now, now + ttl_s),
            )
        return session_id, ticket

    def redeem(self, ticket: str) -> tuple[str, float] | None:
        """The ticket's session token and its expiry (epoch s), once; None for an unknown, used or late ticket."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        with self._db() as db:
            row = db.execute(
                "select id, ticket_expires, expires from sessions where ticket_hash = ?", (_hash(ticket),)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "update sessions set ticket_hash = null, ticket_expires = null where id = ?", (row[0],)
            )
            if row[1] < now or row[2] <= now:
                return None
            db.execute("update sessions set token_hash = ? where id = ?", (_hash(token), row[0]))
        return token, row[2]

    def resume(self, token: str, users: Users) -> tuple[str, User] | None:
        """The session id and user a cookie's token stands for, while the session is alive and the user still
        has what it was granted on; None otherwise (and a session whose grant changed is ended)."""
        if not token:
            return None
        with self._db() as db:
            row = db.execute(
                "select id, name, stamp, expires from sessions where token_hash = ?", (_hash(token),)
            ).fetchone()
        if row is None:
            return None
        user = self._alive(row, users)
        return (row[0], user) if user else None

    def check(self, session_id: str, users: Users) -> User | None:
        """The session's user while it is alive (for a tab that signed in before this run)."""
        with self._db() as db:
            row = db.execute(
                "select id, name, stamp, expires from sessions where id = ?", (session_id,)
            ).fetchone()
        return self._alive(row, users) if row else None

    def _alive(self, row: tuple, users: Users) -> User | None:
        session_id, name, stamp, expires = row
        user = users.get(name)
        if expires <= self.clock() or user is None or users.stamp(name) != stamp:
            self.end(session_id)
            return None
        return user

    def end(self, session_id: str) -> None:
        with self._db() as db:
            db.execute("delete from sessions where id = ?", (session_id,))

    def end_token(self, token: str) -> None:
        with self._db() as db:
            db.execute("delete from sessions where token_hash = ?", (_hash(token),))


def signin_file(data_dir: Path) -> Path:
    return data_dir / "signin.sqlite3"
