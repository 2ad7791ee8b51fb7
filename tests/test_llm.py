"""The OpenAI-compatible adapter against a local fake server (tests/openai_server.py): settings, streaming,
usage and cost, retries honouring Retry-After, typed errors, the SQLite call log and response cache, and
OpenAI-compatible embeddings end to end with a real Chroma store."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, free_port, run_cli
from openai_server import OpenAIServer, Reply

from qa.core.config import Settings
from qa.core.errors import ConfigError, ProviderError
from qa.ingest.pipeline import ingest_paths
from qa.models.calllog import CallLog
from qa.models.embeddings import OpenAIEmbedder, make_embedder
from qa.models.llm import ChatLLM, cost_of, make_chat_llm, make_client
from qa.wiring import call_log, make_engine, open_services

MESSAGES = [
    {"role": "system", "content": "只依据资料回答。"},
    {"role": "user", "content": "淄川区办理行政复议案件多少件？"},
]


def chat(server: OpenAIServer, *, retries: int = 0, timeout: float = 5.0, **options) -> ChatLLM:
    return ChatLLM(make_client(server.url, "sk-test", timeout, 0), "fake-model", retries=retries, **options)


def ask_once(llm: ChatLLM, stream: bool = False, messages: list[dict[str, str]] = MESSAGES):
    tokens: list[str] = []
    completion = llm.complete(
        messages, prompt_ref="answer@1#test", on_token=tokens.append if stream else None
    )
    return completion, tokens


# ---- settings and wiring -------------------------------------------------------------------------


def test_settings_read_the_llm_variables_with_the_openai_key_as_fallback() -> None:
    env = {"QA_LLM_BASE_URL": "http://llm.local/v1", "QA_LLM_MODEL": "qwen-plus", "OPENAI_API_KEY": "sk-openai",
           "QA_LLM_TIMEOUT": "2.5", "QA_LLM_RETRIES": "1", "QA_LLM_CACHE": "1",
           "QA_LLM_PRICES": '{"my-model": [0.5, 1.5]}'}  # fmt: skip
    settings = Settings.from_env(env)
    assert (settings.llm_base_url, settings.llm_model, settings.llm_api_key) == (
        "http://llm.local/v1", "qwen-plus", "sk-openai",
    )  # fmt: skip
    assert (settings.llm_timeout, settings.llm_retries, settings.llm_cache) == (2.5, 1, True)
    assert settings.prices == {"my-model": (0.5, 1.5)}
    assert settings.default_engine == "llm"
    assert Settings.from_env({**env, "QA_LLM_API_KEY": "sk-qa"}).llm_api_key == "sk-qa"
    with pytest.raises(ConfigError, match="QA_LLM_PRICES"):
        Settings.from_env({"QA_LLM_PRICES": '{"m": 3}'})
    with pytest.raises(ConfigError, match="QA_LLM_TIMEOUT"):
        Settings.from_env({"QA_LLM_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="QA_EMBED_CONCURRENCY=0 must be 1 or more"):
        Settings.from_env({"QA_EMBED_CONCURRENCY": "0"})


@pytest.mark.parametrize(
    ("env", "says"),
    [({"QA_LLM_BASE_URL": "http://127.0.0.1:8000/v1?api_key=sk-in-the-url-123"},
      "QA_LLM_BASE_URL has a query string (http://127.0.0.1:8000/v1?…"),
     ({"QA_LLM_BASE_URL": "http://127.0.0.1:8000/v1#sk-in-the-url-123"}, "QA_LLM_BASE_URL has a #fragment"),
     ({"QA_EMBED_BASE_URL": "http://127.0.0.1:8000/v1?key=sk-in-the-url-123"},
      "Put the API key in QA_EMBED_API_KEY and set QA_EMBED_BASE_URL=http://127.0.0.1:8000/v1"),
     ({"QA_LLM_BASE_URL": "127.0.0.1:8000/v1"}, "has no scheme: write http://127.0.0.1:8000/v1"),
     ({"QA_LLM_BASE_URL": "ftp://127.0.0.1/v1"}, "needs http:// or https://")],
)  # fmt: skip
def test_a_base_url_the_client_would_mangle_is_refused_when_read(env: dict[str, str], says: str) -> None:
    """Before: a query string ended up in the middle of the path (/v1/?api_key=…chat/completions)."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert says in str(caught.value)
    assert "sk-in-the-url-123" not in str(caught.value)  # the query is usually a key: never shown


def test_configured_settings_reach_the_server(server: OpenAIServer, fail_closed: Path) -> None:
    """Base URL, model and key (OPENAI_API_KEY as fallback) go from the environment to the HTTP request."""
    settings = Settings.from_env({"QA_LLM_BASE_URL": server.url, "QA_LLM_MODEL": "qwen-plus",
                                  "OPENAI_API_KEY": "sk-fallback", "QA_DATA_DIR": str(fail_closed)})  # fmt: skip
    engine = make_engine(settings)
    assert engine.name == "llm" and engine.label == f"qwen-plus @ {server.url}"
    llm = engine.chat
    server.enqueue("151件")
    completion, _ = ask_once(llm)
    [request] = server.chat_requests()
    assert request.headers["authorization"] == "Bearer sk-fallback"
    assert request.body["model"] == "qwen-plus" and request.body["messages"] == MESSAGES
    assert request.body["temperature"] == 0.0
    assert completion.text == "151件"
    assert call_log(settings).recent()[0]["model"] == "qwen-plus"  # wired with the call log


def test_no_model_means_offline_and_an_unusable_model_setting_says_what_to_set() -> None:
    offline = make_engine(Settings())
    assert (offline.name, offline.model, offline.label, offline.prompt_ref) == (
        "extractive",
        None,
        None,
        None,
    )
    with pytest.raises(ConfigError, match="QA_LLM_MODEL"):
        make_engine(Settings(), "llm")
    with pytest.raises(ConfigError, match="QA_LLM_BASE_URL"):
        make_chat_llm(Settings(llm_model="gpt-4o-mini"))  # no endpoint and no key
    with pytest.raises(ConfigError, match="unknown engine"):
        make_engine(Settings(), "gpt")


# ---- completions, streaming, usage, cost ---------------------------------------------------------


def test_completion_reads_text_usage_latency_and_cost(server: OpenAIServer) -> None:
    server.enqueue(Reply("淄川区办理行政复议案件151件[1]。", prompt_tokens=1000, completion_tokens=200))
    completion, _ = ask_once(chat(server, prices={"fake-model": (1.0, 2.0)}))
    assert completion.text == "淄川区办理行政复议案件151件[1]。"
    assert (completion.prompt_tokens, completion.completion_tokens) == (1000, 200)
    assert completion.cost_usd == pytest.approx((1000 * 1.0 + 200 * 2.0) / 1e6)
    assert completion.latency_ms > 0 and not completion.cached
    assert server.chat_requests()[0].headers["authorization"] == "Bearer sk-test"


def test_streaming_delivers_tokens_as_they_arrive_and_usage_at_the_end(server: OpenAIServer) -> None:
    text = "淄川区全年办理行政复议案件151件，综合纠错率29.8%[1]。"
    server.enqueue(Reply(text, prompt_tokens=321, completion_tokens=45, chunk_size=4))
    completion, tokens = ask_once(chat(server), stream=True)
    assert len(tokens) == -(-len(text) // 4) and "".join(tokens) == text == completion.text
    assert (completion.prompt_tokens, completion.completion_tokens) == (321, 45)
    assert completion.cost_usd is None  # fake-model has no price: unknown, not zero
    body = server.chat_requests()[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("model", "prices", "expected"),
    [
        ("gpt-4o-mini", {}, (1_000_000 * 0.15 + 1_000_000 * 0.60) / 1e6),
        ("gpt-4o-2024-08-06", {}, 2.50 + 10.00),  # a dated snapshot costs what its model costs
        ("qwen-plus-latest", {}, 0.11 + 0.28),
        ("gpt-4.1-nano", {}, None),  # shares a prefix with gpt-4.1 but is another model: never guessed
        ("gpt-4o-mini-tts", {}, None),
        ("llama3", {}, None),
        ("llama3", {"llama3": (0.0, 0.0)}, 0.0),
        ("gpt-4o-mini", {"gpt-4o-mini": (1.0, 1.0)}, 2.0),  # the configured table wins
    ],
)
def test_cost_comes_from_the_price_table(model: str, prices: dict, expected: float | None) -> None:
    cost = cost_of(model, 1_000_000, 1_000_000, prices)
    assert cost == (pytest.approx(expected) if expected is not None else None)


# ---- retries and errors --------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_then_succeeds(server: OpenAIServer) -> None:
    server.enqueue(Reply(status=429, headers={"Retry-After": "0"}), Reply("好"))
    completion, _ = ask_once(chat(server, retries=2))
    assert completion.text == "好" and len(server.chat_requests()) == 2


def test_retry_after_sets_the_wait(server: OpenAIServer) -> None:
    """The SDK's own first backoff is at most 0.5 s: a wait of ≥ 1 s can only come from Retry-After."""
    server.enqueue(Reply(status=429, headers={"Retry-After": "1"}), Reply("好"))
    started = time.perf_counter()
    completion, _ = ask_once(chat(server, retries=1))
    assert completion.text == "好" and time.perf_counter() - started >= 0.95


@pytest.mark.parametrize(
    ("status", "words"), [(429, r"rate-limiting \(429\)"), (503, r"503 .*after 3 tries")]
)
def test_a_storm_of_retryable_errors_ends_in_provider_error_after_retries(
    server: OpenAIServer, status: int, words: str
) -> None:
    retries = 2
    server.enqueue(*[Reply(status=status, headers={"Retry-After": "0.01"}) for _ in range(retries + 3)])
    with pytest.raises(ProviderError, match=words) as raised:
        ask_once(chat(server, retries=retries))
    assert len(server.chat_requests()) == retries + 1
    assert "request id req_test" in str(raised.value)


@pytest.mark.parametrize("stream", [False, True])
def test_a_500_then_success_is_retried(server: OpenAIServer, stream: bool) -> None:
    server.enqueue(Reply(status=500, headers={"Retry-After": "0.01"}), Reply("恢复了"))
    completion, _ = ask_once(chat(server, retries=1), stream=stream)
    assert completion.text == "恢复了" and len(server.chat_requests()) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_bad_key_is_a_config_error_naming_the_setting_and_not_retried(
    server: OpenAIServer, stream: bool
) -> None:
    server.enqueue(Reply(status=401, error="Incorrect API key provided"))
    with pytest.raises(ConfigError, match="QA_LLM_API_KEY") as raised:
        ask_once(chat(server, retries=3), stream=stream)
    assert "401" in str(raised.value) and len(server.chat_requests()) == 1


def test_a_limited_handle_caps_calls_in_flight_and_stops_sending_after_a_rejected_key(
    server: OpenAIServer, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "calls.sqlite")
    base = chat(server, log=log)
    batch = base.limited(2)
    state, lock = {"in_flight": 0, "peak": 0}, threading.Lock()

    def counting(request) -> Reply:
        with lock:
            state["in_flight"] += 1
            state["peak"] = max(state["peak"], state["in_flight"])
        time.sleep(0.1)
        with lock:
            state["in_flight"] -= 1
        return Reply("好")

    default, server.responder = server.responder, counting
    try:
        threads = [threading.Thread(target=ask_once, args=(batch,)) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.responder = default
    assert len(server.chat_requests()) == 5 and state["peak"] == 2
    server.enqueue(Reply(status=401, error="Incorrect API key provided"))
    for _ in range(3):
        with pytest.raises(ConfigError, match="rejected the API key"):
            ask_once(batch)
    assert len(server.chat_requests()) == 6  # the 401 once; the next two were never sent…
    assert log.totals()["errors"] == 1  # …nor logged as calls
    assert ask_once(base)[0].text  # the handle it came from is untouched (the next batch may have a new key)


def test_unknown_model_is_a_config_error_with_the_servers_reason(server: OpenAIServer) -> None:
    server.enqueue(Reply(status=404, error="The model `gpt-9` does not exist"))
    with pytest.raises(ConfigError, match="404") as raised:
        ask_once(chat(server, retries=3))
    assert "gpt-9" in str(raised.value) and "model name" in str(raised.value)
    assert len(server.chat_requests()) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_endpoint_down_is_a_provider_error_naming_the_base_url(stream: bool) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    llm = ChatLLM(make_client(url, "k", 2.0, 0), "fake-model")
    with pytest.raises(ProviderError, match="QA_LLM_BASE_URL") as raised:
        ask_once(llm, stream=stream)
    assert url in str(raised.value)


@pytest.mark.parametrize("stream", [False, True])
def test_a_hang_longer_than_the_timeout_is_a_provider_error(server: OpenAIServer, stream: bool) -> None:
    server.enqueue(Reply("太晚了", hang=3))
    started = time.perf_counter()
    with pytest.raises(ProviderError, match="QA_LLM_TIMEOUT"):
        ask_once(chat(server, timeout=0.5, retries=0), stream=stream)
    assert time.perf_counter() - started < 2.5


def test_a_timeout_is_retried(server: OpenAIServer) -> None:
    server.enqueue(Reply("太晚了", hang=1.5), Reply("及时"))
    completion, _ = ask_once(chat(server, timeout=0.5, retries=1))
    assert completion.text == "及时" and len(server.chat_requests()) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_json_is_a_provider_error(server: OpenAIServer, stream: bool) -> None:
    server.enqueue(Reply(malformed=True))
    with pytest.raises(ProviderError, match="fake-model"):
        ask_once(chat(server), stream=stream)


def test_malformed_json_says_what_is_wrong(server: OpenAIServer) -> None:
    server.enqueue(Reply(malformed=True))
    with pytest.raises(ProviderError, match="not JSON.*OpenAI-compatible"):
        ask_once(chat(server))


def _one_shot_server(body: bytes, content_type: str = "text/event-stream", stall: float = 0.0):
    """A raw HTTP server for what the fake server cannot script: answers one request with `body`, then
    waits `stall` seconds before closing (a stream that stops midway)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
            if content_type == "application/json":
                head += f"Content-Length: {len(body)}\r\n"
            conn.sendall(head.encode() + b"\r\n" + body)
            time.sleep(stall)

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


def test_a_malformed_stream_event_is_a_provider_error() -> None:
    listener, url = _one_shot_server(b"data: {not json\n\n")
    with listener:
        llm = ChatLLM(make_client(url, "k", 2.0, 0), "fake-model")
        with pytest.raises(ProviderError, match="not JSON"):
            ask_once(llm, stream=True)


def test_a_stream_that_stalls_midway_is_a_provider_error() -> None:
    event = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "fake-model",
             "choices": [{"index": 0, "delta": {"content": "半句"}}]}  # fmt: skip
    listener, url = _one_shot_server(b"data: " + json.dumps(event).encode() + b"\n\n", stall=2.0)
    with listener:
        llm = ChatLLM(make_client(url, "k", 0.5, 0), "fake-model")
        tokens: list[str] = []
        with pytest.raises(ProviderError, match="QA_LLM_TIMEOUT"):
            llm.complete(MESSAGES, prompt_ref="answer@1#test", on_token=tokens.append)
        assert tokens == ["半句"]  # what arrived was shown; then a clear error, not a hang


@pytest.mark.parametrize("stream", [False, True])
def test_empty_choices_is_a_provider_error(server: OpenAIServer, stream: bool) -> None:
    server.enqueue(Reply(empty_choices=True))
    with pytest.raises(ProviderError, match="no choices"):
        ask_once(chat(server), stream=stream)


# ---- call log --------------------------------------------------------------------------------------


def test_every_call_is_logged_with_tokens_latency_cost_and_error(
    server: OpenAIServer, tmp_path: Path
) -> None:
    log = CallLog(tmp_path / "calls.sqlite")
    llm = chat(server, log=log, prices={"fake-model": (1.0, 2.0)})
    server.enqueue(Reply("151件", prompt_tokens=1000, completion_tokens=100), Reply(status=401))
    ask_once(llm)
    with pytest.raises(ConfigError):
        ask_once(llm, stream=True)
    failed, ok = log.recent()
    assert (
        ok["prompt_ref"] == "answer@1#test" and ok["model"] == "fake-model" and ok["endpoint"] == server.url
    )
    assert (ok["prompt_tokens"], ok["completion_tokens"], ok["cost_usd"]) == (
        1000,
        100,
        pytest.approx(0.0012),
    )
    assert ok["latency_ms"] > 0 and ok["error"] is None and ok["time"]
    assert "401" in failed["error"] and failed["prompt_tokens"] is None and failed["cost_usd"] is None
    assert log.totals() == {"calls": 2, "prompt_tokens": 1000, "completion_tokens": 100,
                            "cost_usd": pytest.approx(0.0012), "errors": 1, "cached": 0}  # fmt: skip
    # the log is a file: another process (`qa log`) reads the same rows
    assert len(CallLog(tmp_path / "calls.sqlite").recent()) == 2


def test_qa_log_shows_recent_calls_and_totals(server: OpenAIServer, fail_closed: Path) -> None:
    empty = run_cli("log")
    assert empty.returncode == 0 and "no LLM calls logged yet" in empty.stdout
    assert not fail_closed.exists()  # reading an empty log creates nothing
    llm = chat(server, log=call_log(Settings(data_dir=fail_closed)), prices={"fake-model": (1.0, 2.0)})
    server.enqueue(
        Reply("151件", prompt_tokens=1000, completion_tokens=100), Reply(status=404, error="no model")
    )
    ask_once(llm)
    with pytest.raises(ConfigError):
        ask_once(llm)

    shown = run_cli("log")  # piped: 80 columns, where the prompt ref must still show whole
    assert shown.returncode == 0, shown.stderr
    assert "answer@1#test" in shown.stdout and "fake-model" in shown.stdout and "1000/100" in shown.stdout
    assert "2 calls, 1000+100 tokens, $0.0012" in shown.stdout and "1 errors" in shown.stdout
    payload = json.loads(run_cli("log", "--json", "--limit", "1").stdout)
    assert len(payload["recent"]) == 1 and "404" in payload["recent"][0]["error"]
    assert payload["totals"]["calls"] == 2 and payload["totals"]["errors"] == 1


def test_an_unusable_log_warns_and_the_call_goes_on(server: OpenAIServer, tmp_path: Path) -> None:
    not_a_file = tmp_path / "log-is-a-directory"
    not_a_file.mkdir()
    with pytest.warns(UserWarning, match="unavailable"):
        log = CallLog(not_a_file)
    server.enqueue("151件", "151件")
    completion, _ = ask_once(chat(server, log=log, cache=True))
    assert completion.text == "151件"
    assert log.recent() == [] and log.totals()["calls"] == 0
    completion, _ = ask_once(chat(server, log=log, cache=True))  # no cache without a log: asked again
    assert len(server.chat_requests()) == 2


def test_a_log_that_breaks_after_opening_warns_and_the_call_goes_on(
    server: OpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "calls.sqlite"
    log = CallLog(path)
    with sqlite3.connect(path) as other:  # e.g. a newer version changed the schema under us
        other.execute("DROP TABLE calls")
        other.execute("DROP TABLE responses")
    server.enqueue("151件", Reply(status=401))
    with pytest.warns(UserWarning, match="no such table"):
        completion, tokens = ask_once(chat(server, log=log, cache=True), stream=True)
    assert completion.text == "151件" == "".join(tokens)
    with pytest.warns(UserWarning, match="no such table"), pytest.raises(ConfigError):
        ask_once(chat(server, log=log))  # the call's own error, not the log's, reaches the caller


# ---- response cache --------------------------------------------------------------------------------


def test_cache_answers_an_identical_call_without_a_request(server: OpenAIServer, tmp_path: Path) -> None:
    log = CallLog(tmp_path / "calls.sqlite")
    server.enqueue(Reply("151件[1]", prompt_tokens=50, completion_tokens=5), "第二次")
    first, _ = ask_once(chat(server, log=log, cache=True))
    again, tokens = ask_once(chat(server, log=log, cache=True), stream=True)
    assert len(server.chat_requests()) == 1
    assert again.cached and again.text == first.text == "".join(tokens) == "151件[1]"
    assert again.cost_usd == 0.0
    # the cache is on disk: a new process (a new CallLog on the same file) hits it too
    reopened, _ = ask_once(chat(server, log=CallLog(tmp_path / "calls.sqlite"), cache=True))
    assert reopened.cached and len(server.chat_requests()) == 1
    assert log.totals()["cached"] == 2 and log.totals()["calls"] == 3


def test_cache_key_covers_model_messages_and_params(server: OpenAIServer, tmp_path: Path) -> None:
    log = CallLog(tmp_path / "calls.sqlite")
    ask_once(chat(server, log=log, cache=True))
    other_question = [MESSAGES[0], {"role": "user", "content": "洛江区办理行政复议案件多少件？"}]
    ask_once(chat(server, log=log, cache=True), messages=other_question)
    ask_once(chat(server, log=log, cache=True, temperature=0.7))
    other_model = ChatLLM(make_client(server.url, "k", 5, 0), "other-model", log=log, cache=True)
    ask_once(other_model)
    assert len(server.chat_requests()) == 4
    ask_once(chat(server, log=log, cache=False))  # off unless asked for
    assert len(server.chat_requests()) == 5


def test_cache_is_opt_in_through_settings_and_errors_are_not_cached(
    server: OpenAIServer, fail_closed: Path
) -> None:
    env = {"QA_LLM_BASE_URL": server.url, "QA_LLM_MODEL": "fake-model", "QA_DATA_DIR": str(fail_closed),
           "QA_LLM_RETRIES": "0"}  # fmt: skip
    server.enqueue(Reply(status=500), "151件", "不该发出")
    cached = Settings.from_env({**env, "QA_LLM_CACHE": "1"})
    cached_llm = make_chat_llm(cached, call_log(cached))
    with pytest.raises(ProviderError):
        ask_once(cached_llm)
    assert ask_once(cached_llm)[0].text == "151件"
    assert ask_once(cached_llm)[0].cached
    assert len(server.chat_requests()) == 2
    uncached = Settings.from_env(env)
    assert not ask_once(make_chat_llm(uncached, call_log(uncached)))[
        0
    ].cached  # QA_LLM_CACHE unset: asks again
    assert len(server.chat_requests()) == 3


# ---- embeddings ------------------------------------------------------------------------------------


def test_openai_embedder_returns_vectors_in_input_order_and_probes_the_dimension(
    server: OpenAIServer,
) -> None:
    embedder = OpenAIEmbedder(make_client(server.url, "k", 5, 0), "fake-embed")
    embedder.batch = 2
    assert embedder.name == "openai-fake-embed"
    assert embedder.dim == 8
    [probe] = server.requests
    assert probe.path.endswith("/embeddings") and probe.body["input"] == ["dimension probe"]
    assert probe.body["model"] == "fake-embed"
    texts = ["行政复议案件151件", "法律援助案件235件", "综合纠错率29.8%"]
    progress: list[int] = []
    vectors = embedder.embed_passages(texts, progress.append)
    assert vectors.shape == (3, 8) and progress == [2, 1]
    # the two batches go out at once (embed concurrency), so they may reach the server in either order
    assert sorted(r.body["input"] for r in server.requests[1:]) == sorted([texts[:2], texts[2:]])
    for text, vector in zip(texts, vectors, strict=True):  # row i is text i's vector
        np.testing.assert_allclose(vector, embedder.embed_query(text), rtol=1e-6)
    assert not np.allclose(vectors[0], vectors[1])


def test_openai_embedder_sends_batches_concurrently_and_keeps_their_order(server: OpenAIServer) -> None:
    """The scale-out path: batches go out `concurrency` at a time (each of the first two waits at a barrier
    that only two requests in flight at once can pass), and the vectors come back in input order."""
    meeting = threading.Barrier(2, timeout=20)

    def respond(request):
        if len(request.body.get("input", [])) == 2 and request.body["input"][0] in ("甲", "丙"):
            meeting.wait()  # raises BrokenBarrierError (the request fails) when sent one at a time
        return Reply("")

    server.responder = respond
    embedder = OpenAIEmbedder(make_client(server.url, "k", 30, 0), "fake-embed", dim=8, concurrency=2)
    embedder.batch = 2
    texts = ["甲", "乙", "丙", "丁", "戊"]
    progress: list[int] = []
    vectors = embedder.embed_passages(texts, progress.append)
    assert progress == [2, 2, 1] and len(server.requests) == 3
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, embedder.embed_query(text), rtol=1e-6)


def test_embeddings_are_put_back_in_input_order_and_counted() -> None:
    """Servers may return embeddings out of order: `index` says which text each vector belongs to."""
    shuffled = {"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
        {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
    ]}  # fmt: skip
    listener, url = _one_shot_server(json.dumps(shuffled).encode(), "application/json")
    with listener:
        vectors = OpenAIEmbedder(make_client(url, "k", 2.0, 0), "m").embed_passages(["甲", "乙"])
    np.testing.assert_array_equal(vectors, [[1.0, 0.0], [0.0, 1.0]])
    listener, url = _one_shot_server(json.dumps(shuffled).encode(), "application/json")
    with listener, pytest.raises(ProviderError, match="2 vectors for 3 texts"):
        OpenAIEmbedder(make_client(url, "k", 2.0, 0), "m").embed_passages(["甲", "乙", "丙"])


def test_openai_embedder_errors_are_typed(server: OpenAIServer) -> None:
    embedder = OpenAIEmbedder(make_client(server.url, "k", 5, 0), "fake-embed", dim=8)
    server.enqueue(Reply(malformed=True), Reply(status=401))
    with pytest.raises(ProviderError, match="embeddings.*not JSON"):
        embedder.embed_query("x")
    with pytest.raises(ConfigError, match="401"):
        embedder.embed_passages(["x"])


def test_openai_embeddings_ingest_and_search_end_to_end(server: OpenAIServer, tmp_path: Path) -> None:
    """QA_EMBEDDER=openai (the endpoint falls back to QA_LLM_BASE_URL) into a real PersistentClient."""
    settings = Settings.from_env({"QA_EMBEDDER": "openai", "QA_EMBED_MODEL": "fake-embed",
                                  "QA_LLM_BASE_URL": server.url, "QA_DATA_DIR": str(tmp_path / "data")})  # fmt: skip
    services = open_services(settings)
    assert services.embedder.name == "openai-fake-embed" and services.embedder.dim == 8
    assert str(tmp_path) in services.store.location
    [result] = ingest_paths([CORPUS / "zichuan_2024.txt"], services.store, services.embedder, settings)
    assert result.status == "ingested" and result.n_chunks > 5 and result.embedded == result.n_chunks
    embedded = [t for r in server.requests if r.path.endswith("/embeddings") for t in r.body["input"]]
    assert len(embedded) >= result.n_chunks and any("淄川区" in t for t in embedded)

    found = services.retriever.search("行政复议综合纠错率", k=3)
    assert found.hits and {h.chunk.report_id for h in found.hits} == {"zichuan_2024.txt"}
    assert any(h.dense_rank is not None for h in found.hits)  # the dense side ran on the served vectors
    assert any(r.body.get("input") == ["行政复议综合纠错率"] for r in server.requests)  # the query, embedded

    # reopened from disk: the report is there, and re-ingesting embeds nothing
    before = len(server.requests)
    reopened = open_services(settings)
    assert [r.report_id for r in reopened.store.reports()] == ["zichuan_2024.txt"]
    [again] = ingest_paths([CORPUS / "zichuan_2024.txt"], reopened.store, reopened.embedder, settings)
    assert again.status == "unchanged"
    assert all(not r.path.endswith("/embeddings") or r.body["input"] == ["dimension probe"]
               for r in server.requests[before:])  # fmt: skip


def test_openai_embedder_needs_an_endpoint() -> None:
    with pytest.raises(ConfigError, match="QA_EMBED_BASE_URL"):
        make_embedder(Settings(embedder="openai"))
