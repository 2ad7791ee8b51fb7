"""The app's server-side sign-in state (qa.team.signin): failed sign-ins counted per account and per address with
growing pauses that survive a restart; sessions handed out by one-time tickets, resumed from the cookie's
token, ended by sign-out, expiry, or a change of the user's password, role or workspaces."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from qa.team.auth import Users
from qa.team.signin import FIRST_PAUSE_S, FORGET_S, FREE_TRIES, MAX_PAUSE_S, SignInStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_pauses_grow_per_account_and_survive_a_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "signin.sqlite3"
    store = SignInStore(path, clock)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    free = FREE_TRIES["account"]
    for _ in range(free - 1):
        assert store.failed("zhang", "10.0.0.9") is None
    assert store.locked("zhang", "10.0.0.9") is None
    lock = store.failed("zhang", "10.0.0.9")  # the fifth
    assert lock.kind == "account" and lock.until == clock.now + FIRST_PAUSE_S
    restarted = SignInStore(path, clock)  # the server restarts: the pause holds
    assert restarted.locked("zhang", "10.0.0.77") == lock  # from any address
    assert restarted.locked("li", "10.0.0.9") is None  # another account from the same address is not paused
    clock.now = lock.until + 1
    assert restarted.locked("zhang", "10.0.0.9") is None
    assert restarted.failed("zhang", "10.0.0.9").until == clock.now + 2 * FIRST_PAUSE_S  # growing
    for _ in range(20):
        last = restarted.failed("zhang", "10.0.0.9")
    assert last.until == clock.now + MAX_PAUSE_S  # capped
    restarted.succeeded("zhang")
    assert restarted.locked("zhang", "10.0.0.10") is None
    assert restarted.locked("zhang", "10.0.0.9").kind == "address"  # 26 failures from there
    clock.now += FORGET_S + 1
    assert restarted.failed("wang", "10.0.0.9") is None  # old failures forgotten


def test_one_address_guessing_many_accounts_is_paused(tmp_path: Path, clock: Clock) -> None:
    store = SignInStore(tmp_path / "s.sqlite3", clock)
    for i in range(FREE_TRIES["address"]):
        lock = store.failed(f"user{i}", "203.0.113.5")
    assert lock is not None and lock.kind == "address"
    assert store.locked("anyone", "203.0.113.5").kind == "address"
    store.succeeded("anyone")  # one good password does not clear the address's record
    assert store.locked("anyone", "203.0.113.5") is not None
    assert store.locked("anyone", "203.0.113.6") is None


def test_a_ticket_is_redeemed_once_for_a_token_that_resumes_the_session(tmp_path: Path, clock: Clock) -> None:
    users = Users(tmp_path / "users.json")
    zhang = users.add("zhang", "reader", "zhang-password", "张三")
    store = SignInStore(tmp_path / "s.sqlite3", clock)
    session_id, ticket = store.start(zhang, users.stamp("zhang"), ttl_s=8 * 3600)
    assert store.check(session_id, users) == zhang
    assert store.resume("not-a-token", users) is None and store.resume("", users) is None
    token, expires = store.redeem(ticket)
    assert expires == clock.now + 8 * 3600
    assert store.redeem(ticket) is None  # once only
    assert SignInStore(tmp_path / "s.sqlite3", clock).resume(token, users) == (session_id, zhang)
    assert ticket not in (tmp_path / "s.sqlite3").read_bytes().decode("latin-1")  # hashes only
    assert token not in (tmp_path / "s.sqlite3").read_bytes().decode("latin-1")
    clock.now = expires
    assert store.resume(token, users) is None  # expired


def test_a_late_ticket_is_void_and_sessions_end(tmp_path: Path, clock: Clock) -> None:
    users = Users(tmp_path / "users.json")
    zhang, li = users.add("zhang", "reader", "zhang-password"), users.add("li", "editor", "li-password")
    store = SignInStore(tmp_path / "s.sqlite3", clock)
    _, late = store.start(zhang, users.stamp("zhang"), 3600)
    clock.now += 121
    assert store.redeem(late) is None
    first, ticket = store.start(zhang, users.stamp("zhang"), 3600)
    token, _ = store.redeem(ticket)
    second, ticket2 = store.start(li, users.stamp("li"), 3600)
    token2, _ = store.redeem(ticket2)
    users.add("zhang", "reader", "changed-password")  # a new password ends zhang's sessions
    assert store.resume(token, users) is None and store.check(first, users) is None
    assert store.resume(token2, Users(tmp_path / "users.json")) == (second, li)
    users.add("li", "admin", "li-password")  # so does a new role
    assert store.check(second, users) is None
    third, ticket3 = store.start(zhang, users.stamp("zhang"), 3600)
    token3, _ = store.redeem(ticket3)
    store.end_token(token3)  # sign-out through /_qa/signout
    assert store.check(third, users) is None
    users.remove("zhang")
    fourth, _ = store.start(zhang, users.stamp("zhang") or "", 3600)
    assert store.check(fourth, users) is None  # a removed user has no session
