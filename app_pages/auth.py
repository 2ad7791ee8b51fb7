"""Sign-in and roles in the app (qa.auth holds the rules). `gate` runs before any page: it lets the user
through (a local single-user app), or draws the sign-in page and stops. Pages ask `can(action)` before
showing what changes the library or spends the LLM key; `audit` records who did it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st

from qa import auth
from qa.config import Settings, workspaces
from qa.errors import QAError

USER = "auth_user"
FAILED = "auth_failed"  # (count, time of the last failure)
MAX_TRIES, PAUSE_S = 5, 30.0
LOCAL = auth.User("local", "admin", "本机用户")
SHOWN = "workspace_shown"  # the workspace of the conversation on screen


def _host() -> str:
    """The Host the browser asked for; "" when there is no HTTP request (AppTest), read as local."""
    try:
        return st.context.headers.get("Host", "") or "localhost"
    except Exception:  # no request context
        return "localhost"


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def current_user() -> auth.User | None:
    return st.session_state.get(USER)


def can(action: str) -> bool:
    user = current_user()
    return user is not None and auth.allowed(user.role, action)


def gate(settings: Settings) -> auth.User:
    """The signed-in user; when sign-in is required and nobody is, the sign-in page, then st.stop()."""
    if not auth.sign_in_required(settings.auth, _host()):
        st.session_state[USER] = st.session_state.get(USER) or LOCAL
        return st.session_state[USER]
    user = current_user()
    if user == LOCAL:  # the local user exists only where sign-in is not required
        st.session_state.pop(USER)
        user = None
    if user is not None:
        return user
    st.title("登录 reportqa")
    try:
        users = auth.Users(auth.users_file(settings.data_dir, str(settings.users_file or "") or None))
    except QAError as ex:
        st.error(f"用户文件无法读取：{ex}")
        st.stop()
    if _oidc_configured():
        _oidc_sign_in(users)
    else:
        _password_sign_in(users)
    st.stop()
    raise AssertionError("unreachable")


def _oidc_sign_in(users: auth.Users) -> None:
    if not st.user.is_logged_in:
        st.caption("本系统通过单位的统一身份认证登录。")
        st.button("使用单位账号登录", type="primary", on_click=st.login)
        return
    email = str(st.user.get("email", "") or "")
    user = users.get(email)
    if user is None:
        st.error(
            f"账号 {email} 尚未获得授权。请管理员在服务器上运行：qa users add {email} --oidc --role reader"
        )
        st.button("退出", on_click=st.logout)
        return
    st.session_state[USER] = auth.User(user.name, user.role, user.display or str(st.user.get("name", "")))
    st.rerun()


def _password_sign_in(users: auth.Users) -> None:
    if not len(users):
        st.error(
            "这个应用对局域网开放，需要登录，但还没有设置任何用户。请管理员在服务器上运行："
            "qa users add 用户名 --role admin（README：团队使用）。"
        )
        return
    count, last = st.session_state.get(FAILED, (0, 0.0))
    wait = PAUSE_S - (time.time() - last)
    if count >= MAX_TRIES and wait > 0:
        st.error(f"登录失败次数过多，请 {wait:.0f} 秒后再试。")
        return
    _, middle, _ = st.columns([1, 2, 1])
    with middle, st.form("sign-in"):
        name = st.text_input("用户名", key="auth_name")
        password = st.text_input("密码", type="password", key="auth_password")
        submitted = st.form_submit_button("登录", type="primary")
    if not submitted:
        return
    user = users.sign_in(name, password)
    if user is None:
        st.session_state[FAILED] = (count + 1 if count < MAX_TRIES else 1, time.time())
        st.error("用户名或密码不正确。")
        return
    st.session_state.pop(FAILED, None)
    st.session_state[USER] = user
    st.rerun()


def workspace_picker(user: auth.User) -> None:
    """The sidebar's 工作区 choice, among the workspaces this user may open (none: the page stops)."""
    from app_pages.common import WORKSPACE, base_settings, current_workspace

    allowed = [w for w in workspaces(base_settings().data_dir) if user.may_use(w)]
    if current_workspace() and current_workspace() not in workspaces(base_settings().data_dir):
        allowed.append(current_workspace())  # QA_WORKSPACE names one not created yet: it is, on first use
    if not allowed:
        st.error("这个账号没有可以打开的工作区，请联系管理员（qa users add 用户名 --workspace 工作区）。")
        st.stop()
    if current_workspace() not in allowed:
        st.session_state[WORKSPACE] = allowed[0]
    if len(allowed) > 1:
        st.sidebar.selectbox("工作区", allowed, key=WORKSPACE, format_func=lambda w: w or "默认")
    if st.session_state.get(SHOWN) not in (None, current_workspace()):
        st.session_state["messages"] = []  # another team's library: the conversation does not carry over
    st.session_state[SHOWN] = current_workspace()


def sign_out() -> None:
    st.session_state.pop(USER, None)
    if _oidc_configured() and st.user.is_logged_in:
        st.logout()


def sidebar(user: auth.User) -> None:
    if user.name == "local":
        return
    st.caption(f"当前用户：{user.label}")
    st.button("退出登录", key="auth-sign-out", on_click=sign_out, icon=":material/logout:")


def audit(settings: Settings, action: str, report: str, detail: str = "") -> None:
    """One line in <data_dir>/audit.jsonl: when, who, what, which report (uploads, replacements, removals)."""
    user = current_user()
    row = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "user": user.name if user else "",
           "role": user.role if user else "", "action": action, "report": report, "detail": detail}  # fmt: skip
    path: Path = settings.data_dir / "audit.jsonl"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    except OSError as ex:  # the change itself succeeded; say the record did not
        st.warning(f"操作已完成，但无法写入审计记录：{ex.strerror or ex}")
