"""The app (AppTest) with the settings an office gets wrong: a message in Chinese instead of a traceback, and
no key or password on screen — not in the engine label, not in an error a model's server sent back."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from conftest import CORPUS, ROOT, make_settings
from openai_server import OpenAIServer, Reply, Request
from streamlit.testing.v1 import AppTest

APP = ROOT / "app_pages" / "main.py"
KEY = "sk-test-Zq9Xw8Vv7Uu6Tt5Ss4"
USER, PASSWORD = "analyst", "pa55-W0rd-x7"


@pytest.fixture(autouse=True)
def fresh_resources() -> Iterator[None]:
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _shown(at: AppTest) -> str:
    """Every text the app drew (main area and sidebar), as one string, Markdown escapes removed."""
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "text"):
        for element in [*getattr(at, kind), *getattr(at.sidebar, kind)]:
            parts.append(str(element.value))
    return "\n".join(parts).replace("\\", "")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [("QA_DATA_DIR", "FILE", "设置项 QA_DATA_DIR 指向的"),
     ("QA_CHROMA_URL", "http://127.0.0.1:99999", "设置项 QA_CHROMA_URL 的值 http://127.0.0.1:99999 不是有效的")],
)  # fmt: skip
def test_a_bad_place_for_the_library_is_a_message(
    name: str, value: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value == "FILE":
        value = str(tmp_path / "a-file")
        Path(value).write_text("x")
    monkeypatch.setenv(name, value)
    at = _start()
    errors = [str(e.value).replace("\\", "") for e in at.error]
    assert any(error.startswith(says) for error in errors), errors


def test_no_secret_in_the_sidebar_or_an_error_the_server_echoes(
    fail_closed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.ingest.pipeline import ingest_file
    from qa.wiring import open_services

    services = open_services(make_settings(fail_closed))
    result = ingest_file(CORPUS / "zichuan_2024.txt", services.store, services.embedder, services.settings)
    assert result.status == "ingested", result

    def echo(request: Request) -> Reply:
        return Reply(status=400, error=f"rejected: request headers were {request.headers}")

    with OpenAIServer(responder=echo) as server:
        host = server.url.removeprefix("http://")
        monkeypatch.setenv("QA_LLM_BASE_URL", f"http://{USER}:{PASSWORD}@{host}")
        monkeypatch.setenv("QA_LLM_MODEL", "m")
        monkeypatch.setenv("QA_LLM_API_KEY", KEY)
        monkeypatch.setenv("QA_LLM_RETRIES", "0")
        at = _start()
        assert f"m @ http://***@{host}" in _shown(at)
        at.chat_input[0].set_value("淄川区办理行政复议案件多少件？").run()
        assert not at.exception, at.exception
        shown = _shown(at)
        assert "rejected: request headers were" in shown and "***" in shown  # the error is there, masked
        assert server.requests, "the question never reached the model"
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()  # httpx sends user:password as Basic
    for secret in (KEY, PASSWORD, basic):
        assert secret not in shown, shown
