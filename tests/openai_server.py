"""A local OpenAI-compatible server for tests (stdlib only): the LLM is faked at the HTTP boundary.

It works with any SDK transport and reaches a CLI run as a subprocess. Replies are scripted with
`enqueue()` (served in order) or produced by a `responder(request) -> Reply` when the queue is empty.

    with OpenAIServer() as server:
        server.enqueue(Reply("答案[1]"))
        server.enqueue(Reply(status=429, headers={"Retry-After": "0"}))
        client = openai.OpenAI(base_url=server.url, api_key="k")
        ...
        server.requests  # the request log: path, headers, parsed JSON body

Also used by bench/summarize.py (with `latency`) to measure concurrency without a real model.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted response. `text` for a chat answer; or an error status; or a misbehaviour."""

    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""  # message of an error body (status >= 400)
    hang: float = 0.0  # seconds to wait before answering (a timeout test sets this above the client's)
    malformed: bool = False  # a 200 whose body is not JSON
    empty_choices: bool = False
    prompt_tokens: int | None = None  # default: a rough count of the request
    completion_tokens: int | None = None
    chunk_size: int = 3  # characters per SSE delta when streaming
    finish_reason: str = "stop"  # "length": the reply was cut at max_tokens
    echo: bool = False  # reply with the prompt itself (a base model, a wrong chat template)
    # a model that never stops: `text` repeated, one character a token, until the request's max_tokens
    # (then finish_reason "length"); with no max_tokens, until `endless_cap` characters (a stand-in for a
    # full 32k context) at `endless_delay` seconds a delta when streaming
    endless: bool = False
    endless_cap: int = 20_000
    endless_delay: float = 0.0
    # a server that holds the connection open without answering: after the headers, a keep-alive every
    # `keepalive` seconds (an SSE comment line when streaming, a blank line before a JSON body otherwise, as
    # some gateways send), for `keepalive_for` seconds or until the client hangs up, then the reply
    keepalive: float = 0.0
    keepalive_for: float = 120.0
    # a server that sends the whole response one byte every `trickle` seconds (headers first)
    trickle: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, str]]:
        return self.body.get("messages", [])

    @property
    def prompt(self) -> str:
        """All message contents joined (what the model was shown)."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


class _QuietServer(ThreadingHTTPServer):
    def get_request(self) -> tuple[Any, Any]:
        conn, addr = super().get_request()
        import socket

        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay between small writes
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout test, interrupted stream) is expected, not a server error."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _default_responder(request: Request) -> Reply:
    return Reply("文中未提及")


class OpenAIServer:
    def __init__(
        self, responder: Callable[[Request], Reply] | None = None, latency: float = 0.0, slots: int = 0
    ) -> None:
        self.responder = responder or _default_responder
        self.latency = latency  # added to every response (benchmarks)
        # slots > 0: like a llama-server with that many slots, requests beyond them queue, one at a time
        self._slots = threading.Semaphore(slots) if slots else None
        self.requests: list[Request] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- scripting ---------------------------------------------------------------------------

    def reset(self) -> OpenAIServer:
        """Forget requests and unused scripted replies, answer with the default again (one server shared by
        a module's tests, reset for each)."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
        self.responder = _default_responder
        self.latency = 0.0
        return self

    def enqueue(self, *replies: Reply | str) -> None:
        with self._lock:
            self._queue.extend(Reply(r) if isinstance(r, str) else r for r in replies)

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        return self.responder(request)

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                server._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                server._handle(self, "POST")

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- HTTP ----------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        request = Request(method, handler.path, {k.lower(): v for k, v in handler.headers.items()}, body)
        if method == "GET" and handler.path.rstrip("/").endswith("/models"):
            with self._lock:
                self.requests.append(request)
            return _send_json(
                handler, 200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
            )
        reply = self._next(request)
        if self._slots is not None:
            with self._slots:
                return self._reply(handler, request, body, reply)
        return self._reply(handler, request, body, reply)

    def _reply(
        self, handler: BaseHTTPRequestHandler, request: Request, body: dict[str, Any], reply: Reply
    ) -> None:
        if self.latency:
            time.sleep(self.latency)
        if reply.hang:
            time.sleep(reply.hang)
        reply = _shaped(reply, request, body)
        if reply.status >= 400:
            error = {
                "error": {"message": reply.error or f"error {reply.status}", "type": "test", "code": None}
            }
            return _send_json(handler, reply.status, error, {"x-request-id": "req_test", **reply.headers})
        if reply.malformed:
            return _send_raw(handler, 200, b"{not json", "application/json")
        if handler.path.rstrip("/").endswith("/embeddings"):
            return _send_json(handler, 200, _embeddings(body))
        if handler.path.rstrip("/").endswith("/chat/completions"):
            if reply.keepalive or reply.trickle:
                return _stall(handler, body, reply)
            if body.get("stream"):
                return _stream(handler, body, reply)
            return _send_json(handler, 200, _completion(body, reply), reply.headers)
        _send_json(handler, 404, {"error": {"message": f"no route {handler.path}"}})


def _shaped(reply: Reply, request: Request, body: dict[str, Any]) -> Reply:
    """An echo becomes the prompt; a never-ending reply becomes its text up to the token limit."""
    if reply.echo:
        return replace(reply, text=request.prompt, echo=False)
    if reply.endless:
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        size = int(limit) if limit else reply.endless_cap
        text = (reply.text * (size // max(1, len(reply.text)) + 1))[:size]
        return replace(reply, text=text, completion_tokens=size, finish_reason="length", endless=False,
                       chunk_size=reply.chunk_size)  # fmt: skip
    return reply


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    prompt = reply.prompt_tokens
    if prompt is None:
        prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 2 + 1
    completion = reply.completion_tokens if reply.completion_tokens is not None else len(reply.text) // 2 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    choices = (
        []
        if reply.empty_choices
        else [
            {
                "index": 0,
                "finish_reason": reply.finish_reason,
                "message": {"role": "assistant", "content": reply.text},
            }
        ]  # fmt: skip
    )
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "fake-model"), "choices": choices, "usage": _usage(body, reply),
    }  # fmt: skip


def _stream(handler: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Connection", "close")
    handler.end_headers()
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "fake-model")}  # fmt: skip

    def event(payload: dict[str, Any]) -> None:
        handler.wfile.write(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n")
        handler.wfile.flush()

    if not reply.empty_choices:
        event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        for i in range(0, len(reply.text), max(1, reply.chunk_size)):
            piece = reply.text[i : i + reply.chunk_size]
            event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            if reply.endless_delay:
                time.sleep(reply.endless_delay)
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        event({**base, "choices": [], "usage": _usage(body, reply)})
    handler.wfile.write(b"data: [DONE]\n\n")
    handler.wfile.flush()
    handler.close_connection = True


def _stall(handler: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
    """Headers at once, then keep-alives or one byte at a time: every read the client makes gets something,
    so no read timeout ever fires (only a deadline over the whole call ends it)."""
    streaming = bool(body.get("stream"))
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream" if streaming else "application/json")
    handler.send_header("Connection", "close")  # no Content-Length: the body ends when the connection does
    handler.end_headers()
    handler.wfile.flush()
    handler.close_connection = True
    if reply.keepalive:
        ping = b": keep-alive\n\n" if streaming else b"\n"
        until = time.monotonic() + reply.keepalive_for
        while time.monotonic() < until:
            # BrokenPipe once the client gave up: the server's handle_error ignores it
            handler.wfile.write(ping)
            handler.wfile.flush()
            time.sleep(reply.keepalive)
    if streaming:
        choice = {"index": 0, "delta": {"content": reply.text}, "finish_reason": reply.finish_reason}
        chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                 "model": body.get("model", "fake-model"), "choices": [choice]}  # fmt: skip
        data = b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\ndata: [DONE]\n\n"
    else:
        data = json.dumps(_completion(body, reply), ensure_ascii=False).encode()
    for i in range(len(data)):
        handler.wfile.write(data[i : i + 1])
        handler.wfile.flush()
        if reply.trickle:
            time.sleep(reply.trickle)


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Deterministic 8-dimensional vectors from the text's characters (same text → same vector)."""
    inputs = body.get("input", [])
    inputs = [inputs] if isinstance(inputs, str) else inputs
    data = []
    for i, text in enumerate(inputs):
        vector = [0.0] * 8
        for j, char in enumerate(str(text)):
            vector[(ord(char) + j) % 8] += 1.0
        norm = sum(v * v for v in vector) ** 0.5 or 1.0
        data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vector]})
    return {"object": "list", "data": data, "model": body.get("model", "fake-embed"),
            "usage": {"prompt_tokens": 1, "total_tokens": 1}}  # fmt: skip


def _send_json(
    handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    _send_raw(handler, status, json.dumps(payload, ensure_ascii=False).encode(), "application/json", headers)


def _send_raw(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:  # fmt: skip
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)
    handler.wfile.flush()
