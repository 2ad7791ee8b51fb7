"""Who may do what: the users file, password hashing, roles, when sign-in is required, and `qa users`."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from conftest import run_cli

from qa.core.errors import ConfigError, InputError
from qa.team import auth


def test_passwords_are_hashed_salted_and_checked() -> None:
    first, second = auth.hash_password("correct horse"), auth.hash_password("correct horse")
    assert first != second and "correct horse" not in first  # salted, never stored in clear
    assert auth.check_password("correct horse", first) and not auth.check_password("wrong horse", first)
    assert not auth.check_password("x", "not-a-hash") and not auth.check_password("x", "md5$1$2$3$aa$bb")


@pytest.mark.parametrize(
    ("role", "may"),
    [
        ("reader", {"ask", "read"}),
        ("editor", {"ask", "read", "upload", "remove", "summarize"}),
        ("admin", set(auth.ACTIONS)),
        (None, set()),
        ("owner", set()),
    ],
)
def test_each_role_may_do_what_the_one_before_may_and_more(role: str | None, may: set[str]) -> None:
    assert {action for action in auth.ACTIONS if auth.allowed(role, action)} == may


LOOPBACK_ONLY = ("127.0.0.1", "localhost", "::1", "127.0.0.2")


@pytest.mark.parametrize(
    ("listen", "peer", "headers", "required"),
    [
        ("127.0.0.1", "127.0.0.1", {"Host": "localhost:8501"}, False),
        ("localhost", "::1", {"Host": "[::1]:8501"}, False),
        ("::1", "::ffff:127.0.0.1", {"Host": "x"}, False),  # an IPv4-mapped loopback peer
        # open to the network: every connection signs in, a loopback one with Host: localhost included
        ("0.0.0.0", "127.0.0.1", {"Host": "localhost:8501"}, True),
        ("::", "::1", {"Host": "localhost"}, True),
        (None, "127.0.0.1", {"Host": "localhost"}, True),  # no address: Streamlit listens on all of them
        ("192.168.1.20", "192.168.1.7", {"Host": "localhost"}, True),
        # a peer that is not loopback, whatever it says it is
        ("127.0.0.1", "192.168.1.7", {"Host": "localhost"}, True),
        # a proxy header means someone else's request was passed on
        ("127.0.0.1", "127.0.0.1", {"Host": "localhost", "X-Forwarded-For": "127.0.0.1"}, True),
        ("127.0.0.1", "127.0.0.1", {"host": "localhost", "forwarded": "for=127.0.0.1"}, True),
        ("127.0.0.1", "127.0.0.1", {"X-Real-IP": "127.0.0.1"}, True),
        ("unix:///run/qa.sock", None, {"Host": "localhost"}, True),
    ],
)
def test_local_means_a_loopback_listener_a_loopback_peer_and_no_proxy(
    listen: str | None, peer: str | None, headers: dict[str, str], required: bool
) -> None:
    connection = auth.Connection.of(listen, peer, headers)
    assert auth.sign_in_required("auto", connection) is required
    assert auth.sign_in_required("required", connection) is True
    assert auth.sign_in_required("off", connection) is False


def test_no_connection_at_all_is_the_in_process_app() -> None:
    assert auth.sign_in_required("auto", None) is False and auth.sign_in_required("required", None) is True
    assert all(auth.is_loopback(a) for a in LOOPBACK_ONLY)
    assert not any(auth.is_loopback(a) for a in ("", None, "0.0.0.0", "::", "10.0.0.1", "localhost.evil.cn"))


def test_the_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    users = auth.Users(path)
    users.add("zhang", "editor", "s3cret-pass", "张三")
    users.add("li@example.gov.cn", "reader", None)  # an OIDC user: no password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds password hashes
    assert "s3cret-pass" not in path.read_text(encoding="utf-8")
    again = auth.Users(path)
    assert again.sign_in("zhang", "s3cret-pass") == auth.User("zhang", "editor", "张三")
    assert again.sign_in("zhang", "wrong-pass") is None and again.sign_in("nobody", "s3cret-pass") is None
    assert again.sign_in("li@example.gov.cn", "") is None  # no password, no password sign-in
    assert again.get("li@example.gov.cn").role == "reader"
    assert again.remove("zhang") and not again.remove("zhang") and again.names() == ["li@example.gov.cn"]
    with pytest.raises(InputError, match="at least 8"):
        again.add("wang", "reader", "short")
    with pytest.raises(InputError, match="role"):
        again.add("wang", "owner", "long-enough")
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="users file"):
        auth.Users(path)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"users": {"x": "notadict"}}', "entry for user 'x' is not an object"),
        ('{"users": ["x"]}', 'no "users" object'),
        ("[1, 2]", 'no "users" object'),
        ('{"users": {"x": {"role": 3}}}', "role that is not text"),
        ('{"users": {"x": {"role": "reader", "workspaces": "team-a"}}}', "workspaces that are not a list"),
        ("", "not a readable users file"),
    ],
)
def test_a_damaged_users_file_is_named_with_what_is_wrong(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(says)) as raised:
        auth.Users(path)
    assert str(path) in str(raised.value) and "qa users add" in str(raised.value)
    listed = run_cli("--data-dir", str(tmp_path), "users", "list")
    assert listed.returncode == 2 and says in listed.stderr and "Traceback" not in listed.stderr
    assert "unexpected" not in listed.stderr


def test_a_users_file_setting_that_names_a_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a users file"):
        auth.Users(tmp_path)
    listed = run_cli(
        "--data-dir", str(tmp_path / "data"), "users", "list", env={"QA_USERS_FILE": str(tmp_path)}
    )
    assert listed.returncode == 2 and "is a folder" in listed.stderr and "no users yet" not in listed.stdout


def test_qa_users_adds_lists_and_removes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_cli("--data-dir", str(data), "users", "add", "zhang", "--role", "editor", "--display", "张三",
                   "--password-stdin", input_text="s3cret-pass\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "zhang: editor (编辑)" in done.stdout
    stored = json.loads((data / "users.json").read_text(encoding="utf-8"))["users"]["zhang"]
    assert stored["role"] == "editor" and auth.check_password("s3cret-pass", stored["hash"])
    listed = run_cli("--data-dir", str(data), "users", "list")
    assert "zhang  editor  张三" in listed.stdout
    short = run_cli("--data-dir", str(data), "users", "add", "li", "--password-stdin", input_text="abc\n")
    assert short.returncode == 1 and "at least 8" in short.stderr and "Traceback" not in short.stderr
    gone = run_cli("--data-dir", str(data), "users", "remove", "zhang")
    assert gone.returncode == 0 and "zhang" not in (data / "users.json").read_text(encoding="utf-8")
