"""Sign-in and roles in the app (qa.team.auth holds the rules, qa.team.signin the server-side state). `gate` runs before
any page: it lets the user through (only this machine can reach the app), resumes a session from the
sign-in cookie, or draws the sign-in page and stops. Pages ask `can(action)` before showing what changes
the library or spends the LLM key; `audit` records who did it, and every failed sign-in with its address."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st

from app_pages.server import listen_address, oidc_configured, route_path
from qa.core.config import Settings, workspaces
from qa.core.errors import QAError
from qa.team import auth
from qa.team.signin import COOKIE, SignInStore, signin_file

USER = "auth_user"
SESSION = "auth_session"  # the server-side session's id (qa.team.signin)
TICKET = "auth_ticket"  # a ticket to hand the browser on the next run, which sets the cookie
SIGNED_OUT = "auth_signed_out"  # the next run clears the cookie in the browser
LOCAL = auth.User("local", "admin", "本机用户")
SHOWN = "workspace_shown"  # the workspace of the conversation on screen


def connection() -> auth.Connection | None:
    """This run's browser connection as the server sees it; None when there is none (AppTest runs the
    script in-process: no HTTP request, so no handshake headers, which a real connection cannot omit)."""
    try:
        headers = dict(st.context.headers)
    except Exception:  # no request context
        return None
    if not headers:
        return None
    # Streamlit reports a loopback peer as None; the listen address comes from the server's own options.
    peer = st.context.ip_address or "127.0.0.1"
    return auth.Connection.of(listen_address(), peer, headers)


def client_address() -> str:
    """The peer's address, for throttling and the audit log ("127.0.0.1" for this machine)."""
    conn = connection()
    return conn.peer if conn and conn.peer else "127.0.0.1"


def current_user() -> auth.User | None:
    return st.session_state.get(USER)


def can(action: str) -> bool:
    user = current_user()
    return user is not None and auth.allowed(user.role, action)


def _store(settings: Settings) -> SignInStore:
    return SignInStore(signin_file(settings.data_dir))


def _users(settings: Settings) -> auth.Users:
    return auth.Users(auth.users_file(settings.data_dir, str(settings.users_file or "") or None))


def gate(settings: Settings, before_sign_in: Callable[[], None] = lambda: None) -> auth.User:
    """The signed-in user; when sign-in is required and nobody is, the sign-in page, then st.stop().
    before_sign_in runs first (main hides the menu there, keeping the page the URL names for after sign-in)."""
    if not auth.sign_in_required(settings.auth, connection()):
        st.session_state[USER] = st.session_state.get(USER) or LOCAL
        return st.session_state[USER]
    if current_user() == LOCAL:  # the local user exists only where sign-in is not required
        st.session_state.pop(USER)
    try:
        users = _users(settings)
    except QAError as ex:
        before_sign_in()
        st.title("登录 reportqa")
        st.error(f"用户文件无法读取，暂时无法登录。请管理员检查：{ex}")
        st.stop()
    # Streamlit's st.login keeps its own session across reloads; the users file gives the role, each run
    user = _oidc_user(users) if oidc_configured() else _password_user(settings, users)
    if user is not None:
        return user
    before_sign_in()
    st.title("登录 reportqa")
    if oidc_configured():
        _oidc_sign_in(users)
    else:
        _password_sign_in(settings, users)
    st.stop()
    raise AssertionError("unreachable")


def _password_user(settings: Settings, users: auth.Users) -> auth.User | None:
    """This tab's user while their session lives on the server, else the user of the cookie's session."""
    store = _store(settings)
    session_id = st.session_state.get(SESSION)
    if current_user() is not None and session_id:
        user = store.check(session_id, users)  # signed out elsewhere, expired, password or role changed
        if user is None:
            for key in (USER, SESSION):
                st.session_state.pop(key, None)
        else:
            st.session_state[USER] = user
        return user
    token = st.context.cookies.get(COOKIE, "")
    resumed = store.resume(token, users) if isinstance(token, str) else None  # not str: no browser (AppTest)
    if resumed is None:
        return None
    st.session_state[SESSION], st.session_state[USER] = resumed
    return resumed[1]


def _oidc_user(users: auth.Users) -> auth.User | None:
    """The identity provider's signed-in user with the role the users file gives them, or None."""
    if not st.user.is_logged_in:
        return None
    user = users.get(str(st.user.get("email", "") or ""))
    if user is None:
        return None
    st.session_state[USER] = auth.User(user.name, user.role, user.display or str(st.user.get("name", "")))
    return st.session_state[USER]


def _oidc_sign_in(users: auth.Users) -> None:
    if not st.user.is_logged_in:
        st.caption("本系统通过单位的统一身份认证登录。")
        st.button("使用单位账号登录", type="primary", on_click=st.login)
        return
    email = str(st.user.get("email", "") or "")
    st.error(f"账号 {email} 尚未获得授权。请管理员在服务器上运行：qa users add {email} --oidc --role reader")
    st.button("退出", on_click=st.logout)


def _until(lock_until: float) -> str:
    return datetime.fromtimestamp(lock_until).astimezone().strftime("%H:%M:%S")


def _password_sign_in(settings: Settings, users: auth.Users) -> None:
    if not len(users):
        st.error(
            "这个应用对局域网开放，需要登录，但还没有设置任何用户。请管理员在服务器上运行："
            "qa users add 用户名 --role admin（README：团队使用）。"
        )
        return
    _, middle, _ = st.columns([1, 2, 1])
    with middle, st.form("sign-in"):
        name = st.text_input("用户名", key="auth_name")
        password = st.text_input("密码", type="password", key="auth_password")
        submitted = st.form_submit_button("登录", type="primary")
    if not submitted:
        return
    name, address, store = name.strip(), client_address(), _store(settings)
    lock = store.locked(name, address)
    if lock is None:
        user = users.sign_in(name, password)
        if user is not None:
            store.succeeded(name)
            stamp = users.stamp(user.name) or ""
            session_id, ticket = store.start(user, stamp, settings.session_hours * 3600)
            st.session_state.update({USER: user, SESSION: session_id, TICKET: ticket})
            audit(settings, "sign-in", "", f"from {address}", user=user)
            st.rerun()
        lock = store.failed(name, address)
        audit(settings, "sign-in-failed", "", f"{name!r} from {address}", user=auth.User(name, "", ""))
        if lock is None:
            st.error("用户名或密码不正确。")
            return
    who = f"账号 {name} " if lock.kind == "account" else "来自这个地址的登录"
    st.error(f"登录失败次数过多，{who}已暂停登录，请在 {_until(lock.until)} 之后再试。")


def browser_steps() -> None:
    """Hand the browser what the last run decided: the new session's ticket (the page posts it, the server
    answers with the HttpOnly cookie) or the sign-out (the server clears the cookie)."""
    base = st.get_option("server.baseUrlPath")
    ticket = st.session_state.pop(TICKET, None)
    if ticket:
        _post(route_path("session", base), {"ticket": ticket})
    if st.session_state.pop(SIGNED_OUT, False):
        _post(route_path("signout", base), {})


def _post(path: str, body: dict) -> None:
    script = (f"<script>fetch({json.dumps(path)}, {{method: 'POST', credentials: 'same-origin', "
              f"headers: {{'Content-Type': 'application/json'}}, body: {json.dumps(json.dumps(body))}}});</script>")  # fmt: skip
    st.html(script, unsafe_allow_javascript=True)


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
    session_id = st.session_state.pop(SESSION, None)
    st.session_state.pop(USER, None)
    if session_id:
        from app_pages.common import base_settings

        _store(base_settings()).end(session_id)
    st.session_state[SIGNED_OUT] = True
    if oidc_configured() and st.user.is_logged_in:
        st.logout()


def sidebar(user: auth.User) -> None:
    if user.name == "local":
        return
    st.caption(f"当前用户：{user.label}")
    st.button("退出登录", key="auth-sign-out", on_click=sign_out, icon=":material/logout:")


def audit(
    settings: Settings, action: str, report: str, detail: str = "", user: auth.User | None = None
) -> None:
    """One line in <data_dir>/audit.jsonl: when, who, what, which report (sign-ins, uploads, replacements,
    removals)."""
    user = user or current_user()
    row = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "user": user.name if user else "",
           "role": user.role if user else "", "action": action, "report": report, "detail": detail}  # fmt: skip
    path: Path = settings.data_dir / "audit.jsonl"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    except OSError as ex:  # the change itself succeeded; say the record did not
        st.warning(f"操作已完成，但无法写入审计记录：{ex.strerror or ex}")
