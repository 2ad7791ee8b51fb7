"""Shared fixtures. Fail closed: no API key, OpenAI base URL on a closed port, data under tmp_path.

The only thing shared across tests and runs is the embedding cache (vectors are a pure function of
the text): the local embedder does ~7 chunks/s here, so re-embedding the corpus per test is not an option.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "reports"
DATASET = ROOT / "evals" / "datasets" / "qa_dev.jsonl"
SHARED_CACHE = Path(os.environ.get("QA_TEST_CACHE", ROOT / ".qa-test-cache"))
CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*.txt"))

os.environ["ANONYMIZED_TELEMETRY"] = "False"


@pytest.fixture(autouse=True)
def fail_closed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("QA_") or name.startswith("OPENAI_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # discard port: nothing listens
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path / "qa-data"))
    monkeypatch.setenv("QA_CACHE_DIR", str(SHARED_CACHE))
    return tmp_path / "qa-data"


def make_settings(data_dir: Path, **changes):
    from qa.core.config import Settings

    return Settings(data_dir=data_dir, cache_dir=SHARED_CACHE, **changes)


@pytest.fixture(scope="session")
def corpus_services(tmp_path_factory: pytest.TempPathFactory):
    """One store with the five sample reports, ingested once per test session. Read-only for tests."""
    from qa.ingest.pipeline import ingest_paths
    from qa.wiring import open_services

    services = open_services(make_settings(tmp_path_factory.mktemp("corpus-store")))
    results = ingest_paths([CORPUS], services.store, services.embedder, services.settings)
    assert [r.status for r in results] == ["ingested"] * len(CORPUS_FILES), results
    return services


@pytest.fixture
def services(tmp_path: Path):
    """A fresh, empty embedded store for tests that write."""
    from qa.wiring import open_services

    return open_services(make_settings(tmp_path / "store"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `chroma run` on a free localhost port, stopped by its pid at the end of the session."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    assert chroma, "the `chroma` CLI (from the chromadb package) is not installed"
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = open(path / "server.log", "w")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(
                    f"chroma run did not start: {(path / 'server.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300,
            input_text: str | None = None):  # fmt: skip
    """Run `qa …` as a real subprocess with the test's (fail-closed) environment (input_text: its stdin)."""
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        timeout=timeout,
        input=input_text,
    )


@pytest.fixture(scope="module")
def running_server():
    """A local OpenAI-compatible server shared by a module's tests (stopping one takes 0.5 s)."""
    from openai_server import OpenAIServer

    with OpenAIServer() as fake:
        yield fake


@pytest.fixture
def server(running_server):
    """The module's server, reset for each test."""
    return running_server.reset()


@pytest.fixture
def umask_022():
    """The process umask set to 022 for the test (new files should be 0644), restored afterwards; a CLI
    subprocess inherits it."""
    old = os.umask(0o022)
    yield 0o022
    os.umask(old)
