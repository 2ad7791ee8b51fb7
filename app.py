"""reportqa in the browser: `streamlit run app.py` (or `make run`). This file is the server: Streamlit's own,
serving the app's script (app_pages/main.py: navigation, pages, errors), plus the two routes that set and
clear the sign-in cookie (app_pages/server.py), so that a signed-in user stays signed in across reloads, and
a guard that checks the role again for downloads and uploads.

Who must sign in is decided in the script (app_pages/auth.py) from the address the server listens on
(--server.address; `make run` uses 127.0.0.1) and each connection's own, never from a header.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages.server import middleware, routes

app = st.App(
    Path(__file__).resolve().parent / "app_pages" / "main.py",
    routes=routes(st.get_option("server.baseUrlPath")),
    middleware=middleware(),
)
