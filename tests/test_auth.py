"""Who may do what: the users file, password hashing, roles, when sign-in is required, and `qa users`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import run_cli

from qa import auth
from qa.errors import ConfigError, InputError


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


@pytest.mark.parametrize(
    ("mode", "host", "required"),
    [
        ("auto", "localhost:8501", False),
        ("auto", "127.0.0.1:8501", False),
        ("auto", "[::1]:8501", False),
        ("auto", "192.168.1.20:8501", True),
        ("auto", "reports.example.gov.cn", True),
        ("required", "localhost:8501", True),
        ("off", "192.168.1.20:8501", False),
    ],
)
def test_sign_in_is_required_beyond_localhost(mode: str, host: str, required: bool) -> None:
    assert auth.sign_in_required(mode, host) is required


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
