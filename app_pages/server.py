"""The two HTTP routes the app adds to Streamlit's server (app.py mounts them with st.App): they set and clear
the sign-in cookie, which Streamlit's own script runs cannot do. The cookie holds a random session token,
HttpOnly (no script in the page can read it) and SameSite=Strict; the signed-in state behind it lives in
qa.signin's file. A route answers JSON, and never says more than whether it worked."""

from __future__ import annotations

import os
import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qa.config import Settings
from qa.errors import QAError
from qa.signin import COOKIE, SignInStore, signin_file


def route_path(name: str, base_url_path: str | None) -> str:
    """/_qa/NAME under Streamlit's server.baseUrlPath (the page posts to the same path)."""
    base = (base_url_path or "").strip("/")
    return f"/{base}/_qa/{name}" if base else f"/_qa/{name}"


def _store() -> SignInStore:
    settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "QA_WORKSPACE"})
    return SignInStore(signin_file(settings.data_dir))


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


def routes(base_url_path: str | None) -> list[Route]:
    return [
        Route(route_path("session", base_url_path), start_session, methods=["POST"]),
        Route(route_path("signout", base_url_path), end_session, methods=["POST"]),
    ]
