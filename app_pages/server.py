"""What the app adds to Streamlit's server (app.py mounts it with st.App).

Two routes set and clear the sign-in cookie, which Streamlit's own script runs cannot do. The cookie holds a
random session token, HttpOnly (no script in the page can read it) and SameSite=Strict; the signed-in state
behind it lives in qa.team.signin's file. A route answers JSON, and never says more than whether it worked.

`RoleGuard` checks the role again below the pages, for the endpoints Streamlit serves by itself: a download
(/media/…) needs a session that may read, an upload (/_stcore/upload_file/…) one that may upload, unless only
this machine can reach the app — the same decision as the script's (qa.team.auth.sign_in_required)."""

from __future__ import annotations

import os
import time

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.core.config import Settings
from qa.core.errors import QAError
from qa.team import auth
from qa.team.signin import COOKIE, SignInStore, signin_file

# Streamlit's own endpoints behind the pages' buttons, and the action each needs (qa.team.auth.ACTIONS)
GUARDED = (("/media/", "read"), ("/_stcore/upload_file/", "upload"))


def route_prefix(prefix: str) -> str:
    """A Streamlit route's path prefix under server.baseUrlPath (/media/ → /reports/media/)."""
    import streamlit as st

    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{prefix}" if base else prefix


def route_path(name: str, base_url_path: str | None) -> str:
    """/_qa/NAME under Streamlit's server.baseUrlPath (the page posts to the same path)."""
    base = (base_url_path or "").strip("/")
    return f"/{base}/_qa/{name}" if base else f"/_qa/{name}"


def _settings() -> Settings:
    return Settings.from_env({k: v for k, v in os.environ.items() if k != "QA_WORKSPACE"})


def _store() -> SignInStore:
    return SignInStore(signin_file(_settings().data_dir))


async def _json_body(request: Request) -> dict | None:
    # A JSON body only: a plain cross-site form cannot send one without the browser asking first (CORS).
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def start_session(request: Request) -> JSONResponse:
    """Redeem the one-time ticket the sign-in form handed the page for the session's cookie."""
    body = await _json_body(request)
    ticket = body.get("ticket") if body else None
    if not isinstance(ticket, str) or not ticket:
        return JSONResponse({"ok": False}, status_code=400)
    try:
        redeemed = _store().redeem(ticket)
    except QAError:
        return JSONResponse({"ok": False}, status_code=503)
    if redeemed is None:
        return JSONResponse({"ok": False}, status_code=403)
    token, expires = redeemed
    response = JSONResponse({"ok": True})
    response.set_cookie(COOKIE, token, max_age=max(1, int(expires - time.time())), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
    return response


async def end_session(request: Request) -> JSONResponse:
    """Sign-out: end the cookie's session on the server and clear the cookie."""
    if await _json_body(request) is None:
        return JSONResponse({"ok": False}, status_code=400)
    token = request.cookies.get(COOKIE, "")
    if token:
        try:
            _store().end_token(token)
        except QAError:
            return JSONResponse({"ok": False}, status_code=503)
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


class RoleGuard:
    """ASGI middleware: refuse (403) a download or upload whose connection must sign in and whose cookie is
    not a live session with the role for it. Identity-provider sign-in (st.login) keeps its own cookie,
    which this guard cannot map to a role: there the pages' own checks are the guard."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            action = next((a for prefix, a in GUARDED if path.startswith(route_prefix(prefix))), None)
            if action and not await run_in_threadpool(self._permitted, HTTPConnection(scope), action):
                await JSONResponse({"ok": False, "error": "forbidden"}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _permitted(self, request: HTTPConnection, action: str) -> bool:
        try:
            settings = _settings()
            peer = request.client.host if request.client else None
            connection = auth.Connection.of(listen_address(), peer, request.headers)
            if not auth.sign_in_required(settings.auth, connection):
                return True
            if oidc_configured():
                return True
            users = auth.Users(auth.users_file(settings.data_dir, str(settings.users_file or "") or None))
            resumed = SignInStore(signin_file(settings.data_dir)).resume(
                request.cookies.get(COOKIE, ""), users
            )
        except QAError:
            return False  # fail closed: a damaged users or sign-in file lets nothing through
        return resumed is not None and auth.allowed(resumed[1].role, action)


def listen_address() -> str | None:
    """The address this server listens on (--server.address; none: every address)."""
    import streamlit as st

    return st.get_option("server.address")


def oidc_configured() -> bool:
    """Sign-in through an identity provider (st.login): an [auth] section in secrets.toml."""
    import streamlit as st

    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def middleware() -> list[Middleware]:
    return [Middleware(RoleGuard)]


def routes(base_url_path: str | None) -> list[Route]:
    return [
        Route(route_path("session", base_url_path), start_session, methods=["POST"]),
        Route(route_path("signout", base_url_path), end_session, methods=["POST"]),
    ]
