"""OpenAI-compatible endpoints: the only module that imports `openai`.

Vendor errors become ProviderError/ConfigError here, with what failed and what to do next.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from qa.core.config import DEADLINES, MAX_TOKENS, Settings
from qa.core.errors import (
    ConfigError,
    DeadlineExceeded,
    DegenerateReply,
    EndpointUnreachable,
    ProviderError,
    QAError,
    TruncatedReply,
)
from qa.core.redact import redact
from qa.models import sanity
from qa.models.calllog import CallLog

if TYPE_CHECKING:
    import openai

T = TypeVar("T")


def make_client(base_url: str | None, api_key: str | None, timeout: float, retries: int) -> openai.OpenAI:
    """An OpenAI client for any compatible endpoint; the SDK retries 408/429/5xx honouring Retry-After.
    Its responses are read against the deadline of the ChatLLM call that sent them (_bound_by_deadline).
    The SDK is imported here, on first use: the offline engine never loads it (~0.5 s)."""
    import openai

    return openai.OpenAI(
        base_url=base_url or None,
        # Local servers (vLLM, Ollama, llama.cpp) accept any key; the SDK insists on one.
        api_key=api_key or "not-needed",
        timeout=timeout,
        max_retries=retries,
        http_client=openai.DefaultHttpxClient(event_hooks={"response": [_bound_by_deadline]}),
    )


# ---- the deadline inside the HTTP client -------------------------------------------------------------
# httpx's read timeout restarts on every byte, so a server that sends SSE keep-alive comments (": ping"),
# blank lines before a JSON body, or one byte at a time is never timed out, and the SDK's event loop never
# sees a keep-alive to check a deadline against. So the body itself is read against the call's deadline:
# each chunk is checked, and a watchdog shuts the socket at the deadline for a server that goes silent.

_CALL_DEADLINE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar("qa_deadline", default=None)


class _PastDeadline(Exception):
    """A response body was still arriving at the call's deadline (turned into DeadlineExceeded by ChatLLM)."""

    def __init__(self, received: int) -> None:
        super().__init__(f"{received} bytes received by the deadline")
        self.received = received


def _bound_by_deadline(response: Any) -> None:
    """httpx response hook (headers in, body not yet read): bound the body by the current call's deadline."""
    deadline = _CALL_DEADLINE.get()
    if deadline is not None:
        response.stream = _deadline_stream()(response.stream, deadline, _socket_of(response))


def _socket_of(response: Any) -> socket.socket | None:
    with contextlib.suppress(Exception):  # an extension a transport may not offer: the chunk checks remain
        sock = response.extensions["network_stream"].get_extra_info("socket")
        return sock if isinstance(sock, socket.socket) else None
    return None


@functools.cache
def _deadline_stream() -> type:
    """The body wrapper's class, made on first use: httpx2 comes with the SDK, which the offline engine
    never loads."""
    import httpx2

    class DeadlineStream(httpx2.SyncByteStream):
        def __init__(self, inner: Any, deadline: _Deadline, sock: socket.socket | None) -> None:
            self.inner, self.deadline, self.sock = inner, deadline, sock
            self.received = 0
            self.lock = threading.Lock()
            self.closed = False
            self.fired = False
            self.watchdog = threading.Timer(max(0.0, deadline.left()), self.expire) if sock else None
            if self.watchdog is not None:
                self.watchdog.daemon = True
                self.watchdog.start()

        def expire(self) -> None:
            with self.lock:  # never after close: the connection may be back in the pool, serving another call
                if self.closed:
                    return
                self.fired = True
                with contextlib.suppress(OSError):
                    # the plain socket's shutdown, also under TLS: it wakes a blocked read without touching
                    # the TLS state the reading thread is using
                    socket.socket.shutdown(self.sock, socket.SHUT_RDWR)  # type: ignore[arg-type]

        def __iter__(self) -> Any:
            try:
                for chunk in self.inner:
                    self.received += len(chunk)
                    if self.deadline.left() <= 0:
                        raise _PastDeadline(self.received)
                    yield chunk
                # a body that ends with its connection reads the watchdog's shutdown as its end
                if self.fired:
                    raise _PastDeadline(self.received)
            except _PastDeadline:
                raise
            except Exception as ex:  # the watchdog's shutdown surfaces as a read error of some kind
                if self.fired or self.deadline.left() <= 0:
                    raise _PastDeadline(self.received) from ex
                raise

        def close(self) -> None:
            with self.lock:
                self.closed = True
                if self.watchdog is not None:
                    self.watchdog.cancel()
            self.inner.close()

    return DeadlineStream


def _where(client: Any) -> str:
    """The endpoint as messages, labels and the call log show it: no user:password, no key."""
    return redact(str(getattr(client, "base_url", "") or "the endpoint").rstrip("/"), _secrets(client))


def _secrets(client: Any) -> list[str | None]:
    return [getattr(client, "api_key", None)]


def call(client: Any, what: str, fn: Callable[[], T]) -> T:
    """Run one SDK call, translating its errors into messages a user can act on. An error a retry may fix
    (429, 5xx, 408/409, a timeout, a dropped connection) carries `retry_after` (seconds, or 0.0 for no
    hint); others carry None."""
    import openai  # already loaded by make_client; a name lookup here

    where = _where(client)
    try:
        return fn()
    except openai.AuthenticationError as ex:
        raise ConfigError(
            f"{what}: {where} rejected the API key (401). Set QA_LLM_API_KEY (or OPENAI_API_KEY) "
            "to a valid key, or unset QA_LLM_MODEL to use the offline engine",
            code="llm.auth_rejected", what=what, endpoint=where, status=401,
        ) from ex  # fmt: skip
    except openai.PermissionDeniedError as ex:
        detail = _detail(ex, client)
        raise ConfigError(f"{what}: {where} denied access (403): {detail}", code="llm.forbidden", what=what,
                          endpoint=where, status=403, detail=detail) from ex  # fmt: skip
    except openai.NotFoundError as ex:
        detail = _detail(ex, client)
        raise ConfigError(
            f"{what}: {where} answered 404 ({detail}): check the model name and that the base URL ends with /v1",
            code="llm.not_found", what=what, endpoint=where, status=404, detail=detail,
        ) from ex  # fmt: skip
    except openai.RateLimitError as ex:
        request_id = _request_id(ex)
        raise _retriable(ProviderError(
            f"{what}: {where} is rate-limiting (429){_with_id(request_id)}; wait and retry, or lower --concurrency",
            code="llm.rate_limited", what=what, endpoint=where, status=429, request_id=request_id,
        ), ex) from ex  # fmt: skip
    except openai.APITimeoutError as ex:
        raise _retriable(ProviderError(
            f"{what}: {where} did not answer in time; raise QA_LLM_TIMEOUT or retry",
            code="llm.timeout", what=what, endpoint=where,
        ), ex) from ex  # fmt: skip
    except openai.APIConnectionError as ex:
        raise _retriable(EndpointUnreachable(
            f"{what}: cannot connect to {where}; check QA_LLM_BASE_URL and that the server is running",
            what=what, endpoint=where,
        ), ex) from ex  # fmt: skip
    except openai.InternalServerError as ex:
        request_id = _request_id(ex)
        raise _retriable(ProviderError(
            f"{what}: {where} failed with {ex.status_code}{_with_id(request_id)}; try again later",
            code="llm.server_error", what=what, endpoint=where, status=ex.status_code, request_id=request_id,
        ), ex) from ex  # fmt: skip
    except openai.APIStatusError as ex:
        detail = _detail(ex, client)
        error = ProviderError(f"{what}: {where} answered {ex.status_code}: {detail}", code="llm.http_error",
                              what=what, endpoint=where, status=ex.status_code, detail=detail)  # fmt: skip
        raise (_retriable(error, ex) if ex.status_code in (408, 409) else error) from ex
    except openai.APIResponseValidationError as ex:
        raise ProviderError(f"{what}: {where} sent a response that is not valid OpenAI JSON",
                            code="llm.bad_response", what=what, endpoint=where) from ex  # fmt: skip
    except openai.OpenAIError as ex:
        detail = redact(str(ex), _secrets(client))
        raise ProviderError(f"{what}: {where}: {detail}", what=what, endpoint=where, detail=detail) from ex
    except json.JSONDecodeError as ex:
        # The SDK lets a 200 whose body (or SSE event) is not JSON escape as a bare JSONDecodeError.
        raise ProviderError(
            f"{what}: {where} sent a response that is not JSON ({ex.msg} at char {ex.pos}); check that "
            "the base URL points at an OpenAI-compatible API (it usually ends with /v1)",
            code="llm.bad_response", what=what, endpoint=where, detail=f"{ex.msg} at char {ex.pos}",
        ) from ex  # fmt: skip


def _retriable(error: QAError, ex: Any) -> QAError:
    """Mark an error as worth another try, with the server's Retry-After when it sent one."""
    hint: float | None = None
    response = getattr(ex, "response", None)
    headers = response.headers if response is not None else {}
    raw = headers.get("retry-after-ms") or headers.get("retry-after")
    with contextlib.suppress(TypeError, ValueError):
        hint = (
            max(0.0, float(raw)) / (1000 if headers.get("retry-after-ms") else 1) if raw is not None else None
        )
    error.retriable = True
    error.retry_after = hint if raw is not None else None
    return error


def _detail(ex: Any, client: Any) -> str:
    """The error body's message, redacted: a server may echo the request's Authorization header."""
    body = getattr(ex, "body", None)
    message = str(getattr(ex, "message", ex))
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            message = str(error["message"])
    return redact(message, _secrets(client))[:200]  # masked before the cut: no half key survives


def _request_id(ex: Any) -> str:
    return str(getattr(ex, "request_id", None) or "")


def _with_id(request_id: str) -> str:
    return f" (request id {request_id})" if request_id else ""


def embed_texts(client: Any, model: str, texts: list[str]) -> list[list[float]]:
    """Embeddings from an OpenAI-compatible /embeddings endpoint, in input order."""
    response = call(client, "embeddings", lambda: client.embeddings.create(model=model, input=texts))
    data = sorted(response.data, key=lambda item: item.index)
    if len(data) != len(texts):
        raise ProviderError(
            f"embeddings: {_where(client)} returned {len(data)} vectors for {len(texts)} texts",
            code="llm.bad_response", what="embeddings", endpoint=_where(client),
        )  # fmt: skip
    return [item.embedding for item in data]


# ---- chat completions --------------------------------------------------------------------------

# USD per 1M tokens (input, output); override or extend with QA_LLM_PRICES='{"model": [in, out]}'.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "deepseek-chat": (0.27, 1.10),
    "qwen-plus": (0.11, 0.28),
    "qwen-turbo": (0.04, 0.08),
}


_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4}|\d{8}|latest)$")


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float = 0.0
    cached: bool = False


def cost_of(
    model: str, prompt_tokens: int, completion_tokens: int, prices: Mapping[str, tuple[float, float]]
) -> float | None:
    """Cost in USD from a price table; None when the model has no price (shown as unknown, never guessed)."""
    table = {**DEFAULT_PRICES, **prices}
    price = table.get(model)
    if price is None:
        # A dated or pinned snapshot (gpt-4o-2024-08-06, qwen-plus-latest) costs what its family costs;
        # another model that merely shares a prefix (gpt-4.1-nano vs gpt-4.1) is unknown, never guessed.
        price = table.get(_SNAPSHOT.sub("", model))
    if price is None:
        return None
    return round((prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000, 6)


def prompt_kind(prompt_ref: str) -> str:
    """The kind of a prompt (its max_tokens budget and deadline): answer, condense, map, reduce, judge."""
    name = prompt_ref.split("@")[0]
    if name == "summary_map":
        return "map"
    if name.startswith("summary"):
        return "reduce"
    return name if name in ("condense", "judge") else "answer"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()


@dataclass
class _Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    tries: int = 1


class ChatLLM:
    """An OpenAI-compatible Chat Completions model, with call logging and an optional response cache.

    Every call is bounded: a max_tokens budget per prompt kind, and a total deadline covering the wait for
    a slot, every retry (each logged with its wait) and the whole stream. A reply cut at the budget, and
    a reply that is not a reply (qa.models.sanity), fail the call with a message instead of being used."""

    engine = "llm"

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        temperature: float = 0.0,
        prices: Mapping[str, tuple[float, float]] | None = None,
        log: CallLog | None = None,
        cache: bool = False,
        max_tokens: Mapping[str, int] | None = None,
        deadlines: Mapping[str, float] | None = None,
        retries: int = 0,
        read_timeout: float | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.temperature = temperature
        self.prices = prices or {}
        self.log = log
        self.cache = cache and log is not None
        self.endpoint = _where(client)
        self.max_tokens = dict(max_tokens if max_tokens is not None else MAX_TOKENS)
        self.deadlines = dict(deadlines if deadlines is not None else DEADLINES)
        self.retries = max(0, retries)
        timeout = getattr(client, "timeout", None)
        self.read_timeout = read_timeout or (float(timeout) if isinstance(timeout, (int, float)) else 60.0)
        self._slots: threading.BoundedSemaphore | None = None
        self._calls = 1
        self._broken: QAError | None = None

    def limited(self, calls: int) -> ChatLLM:
        """A copy for one batch of work: at most `calls` requests in flight across all the threads that use
        it (a batch's reports and each report's section maps share one limit), and once the endpoint fails
        in a way no retry fixes (a rejected key, an unknown model, no connection: `stops_batch`), every
        later call fails the same way without being sent."""
        clone = copy.copy(self)
        clone._slots = threading.BoundedSemaphore(max(1, calls))
        clone._calls = max(1, calls)
        clone._broken = None
        return clone

    def _check_broken(self) -> None:
        if self._broken is not None:
            raise self._broken.unsent()  # nothing to log: no request was made

    @property
    def label(self) -> str:
        return f"{self.model} @ {self.endpoint}"

    def _record(self, prompt_ref: str, started: float, *, prompt_tokens: int | None = None,
                completion_tokens: int | None = None, cost: float | None = None, error: str | None = None,
                cached: bool = False) -> None:  # fmt: skip
        if self.log:
            self.log.record(prompt_ref=prompt_ref, model=self.model, endpoint=self.endpoint,
                            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                            latency_ms=(time.perf_counter() - started) * 1000, cost_usd=cost, cached=cached,
                            error=redact(error)[:500] if error else None)  # fmt: skip

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        prompt_ref: str,
        on_token: Callable[[str], None] | None = None,
        json_schema: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        kind: str | None = None,
    ) -> Completion:
        """One chat completion (streamed when on_token is given). params: extra request fields (seed,
        temperature…) that also key the cache, e.g. the judge's N runs of one prompt. kind: the prompt's
        kind (default: from prompt_ref), which sets its max_tokens budget and its deadline."""
        kind = kind or prompt_kind(prompt_ref)
        budget = self.max_tokens.get(kind)
        params = {
            "temperature": self.temperature,
            **({"max_tokens": budget} if budget else {}),
            **(params or {}),
        }
        if json_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": prompt_ref.split("@")[0], "schema": json_schema},
            }
        # the endpoint is part of the key: one model name on two servers is two models
        key = CallLog.cache_key(f"{self.model}@{self.endpoint}", messages, params) if self.cache else None
        if key and self.log:
            hit = self.log.cached(key)
            if hit is not None:
                text, usage = hit
                if on_token:
                    on_token(text)
                self._record(prompt_ref, time.perf_counter(), prompt_tokens=0, completion_tokens=0, cost=0,
                             cached=True)  # fmt: skip
                return Completion(text, self.model, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                                  0.0, 0.0, cached=True)  # fmt: skip
        started = time.perf_counter()
        deadline = _Deadline(self.deadlines.get(kind, DEADLINES["answer"]))
        reply: _Reply | None = None
        try:
            if self._slots is not None and not self._slots.acquire(timeout=max(0.0, deadline.left())):
                raise DeadlineExceeded(
                    f"model {self.model}: no free slot within {deadline.seconds:.0f} s ({self._calls} call(s) "
                    "at a time are busy); lower --concurrency, or raise QA_LLM_DEADLINE",
                    code="llm.busy", model=self.model, seconds=round(deadline.seconds), calls=self._calls,
                )  # fmt: skip
            try:
                self._check_broken()  # checked after waiting for a slot: another call may have just failed
                reply = self._attempts(messages, params, on_token, deadline, prompt_ref, started)
            finally:
                if self._slots is not None:
                    self._slots.release()
            self._check_reply(reply, messages, budget, free_text=json_schema is None)
        except QAError as ex:
            if ex.not_sent:
                raise
            if self._slots is not None and ex.stops_batch and self._broken is None:
                self._broken = ex
            spent = (
                cost_of(self.model, reply.prompt_tokens, reply.completion_tokens, self.prices)
                if reply
                else None
            )
            self._record(prompt_ref, started, prompt_tokens=reply.prompt_tokens if reply else None,
                         completion_tokens=reply.completion_tokens if reply else None, cost=spent, error=str(ex))  # fmt: skip
            raise
        latency = (time.perf_counter() - started) * 1000
        cost = cost_of(self.model, reply.prompt_tokens, reply.completion_tokens, self.prices)
        self._record(prompt_ref, started, prompt_tokens=reply.prompt_tokens,
                     completion_tokens=reply.completion_tokens, cost=cost)  # fmt: skip
        if key and self.log:
            self.log.store(key, self.model, reply.text, {"prompt_tokens": reply.prompt_tokens,
                                                         "completion_tokens": reply.completion_tokens})  # fmt: skip
        return Completion(reply.text, self.model, reply.prompt_tokens, reply.completion_tokens, cost, latency)

    def _check_reply(self, reply: _Reply, messages: list[dict[str, str]], budget: int | None, *,
                     free_text: bool) -> None:  # fmt: skip
        """A cut reply, a reply that is not a reply, and a server that did not read the prompt all fail."""
        looping = sanity.repeats_itself(reply.text)
        if reply.finish_reason == "length":
            raise TruncatedReply(
                f"model {self.model} hit the {budget or '?'}-token limit"
                + (" while repeating itself in a loop" if looping else "")
                + "; the cut reply is not used. Raise QA_LLM_MAX_TOKENS"
                + (f", or {sanity.WHAT_TO_TRY}" if looping else ""),
                model=self.model, limit=budget or "?", looping=looping,
            )  # fmt: skip
        chars = sum(len(m.get("content", "")) for m in messages)
        if sanity.implausible_prompt_tokens(reply.prompt_tokens, chars):
            raise DegenerateReply(
                f"model {self.model}: {self.endpoint} counted {reply.prompt_tokens} prompt tokens for a "
                f"{chars:,}-character prompt, so it did not read the prompt as sent; {sanity.WHAT_TO_TRY}",
                model=self.model, endpoint=self.endpoint, problem="prompt not read",
            )  # fmt: skip
        problem = sanity.problem(reply.text, messages, free_text=free_text)
        if problem:
            raise DegenerateReply(f"model {self.model}: {problem}; {sanity.WHAT_TO_TRY}", model=self.model,
                                  problem=problem)  # fmt: skip

    def _attempts(self, messages: list[dict[str, str]], params: dict[str, Any],
                  on_token: Callable[[str], None] | None, deadline: _Deadline, prompt_ref: str,
                  started: float) -> _Reply:  # fmt: skip
        """Up to 1 + retries tries within the deadline; every failed try that is retried is logged with
        its wait. A stream that already showed text is not retried (the text would appear twice)."""
        shown: list[str] = []

        def emit(token: str) -> None:
            shown.append(token)
            if on_token is not None:
                on_token(token)

        tries = 0
        while True:
            tries += 1
            try:
                if on_token is not None:
                    reply = self._stream(messages, params, emit, deadline)
                else:
                    reply = self._once(messages, params, deadline)
                reply.tries = tries
                return reply
            except QAError as ex:
                hint = ex.retry_after
                wait = hint if hint is not None else min(8.0, 0.5 * 2 ** (tries - 1))
                last = (not ex.retriable or tries > self.retries or bool(shown)
                        or wait >= deadline.left())  # fmt: skip
                if last:
                    if tries > 1:
                        elapsed = time.perf_counter() - started
                        raise ex.noted(f"(after {tries} tries in {elapsed:.0f} s)") from ex
                    raise
                self._record(
                    prompt_ref,
                    started,
                    error=f"{ex} (try {tries}/{self.retries + 1}; retrying in {wait:.1f} s)",
                )
                time.sleep(wait)

    def _timeout(self, deadline: _Deadline) -> float:
        left = deadline.left()
        if left <= 0:
            raise DeadlineExceeded(
                f"model {self.model}: no reply within {deadline.seconds:.0f} s; raise QA_LLM_DEADLINE or retry",
                model=self.model, seconds=round(deadline.seconds),
            )  # fmt: skip
        return min(self.read_timeout, left)

    def _once(self, messages: list[dict[str, str]], params: dict[str, Any], deadline: _Deadline) -> _Reply:
        timeout = self._timeout(deadline)
        bound = _CALL_DEADLINE.set(deadline)
        try:
            response = call(
                self.client,
                f"model {self.model}",
                lambda: self.client.chat.completions.create(
                    model=self.model, messages=messages, timeout=timeout, **params
                ),
            )
        except _PastDeadline as ex:
            raise self._past_deadline(deadline, ex.received, shown=0) from ex
        finally:
            _CALL_DEADLINE.reset(bound)
        if not getattr(response, "choices", None):
            raise ProviderError(
                f"model {self.model}: {self.endpoint} returned no choices; try again or another model",
                code="llm.no_choices", model=self.model, endpoint=self.endpoint,
            )  # fmt: skip
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return _Reply(_clean(choice.message.content or ""), _tokens(usage, "prompt_tokens"),
                      _tokens(usage, "completion_tokens"), getattr(choice, "finish_reason", None))  # fmt: skip

    def _stream(self, messages: list[dict[str, str]], params: dict[str, Any], on_token: Callable[[str], None],
                deadline: _Deadline) -> _Reply:  # fmt: skip
        timeout = self._timeout(deadline)
        parts: list[str] = []

        def run() -> _Reply:
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                timeout=timeout,
                **params,
            )
            usage = None
            finish: str | None = None
            saw_choice = False
            with contextlib.closing(stream):
                for event in stream:
                    if deadline.left() <= 0:
                        raise _PastDeadline(0)
                    if getattr(event, "usage", None):
                        usage = event.usage
                    for choice in event.choices or []:
                        saw_choice = True
                        finish = getattr(choice, "finish_reason", None) or finish
                        delta = getattr(choice.delta, "content", None)
                        if delta:
                            parts.append(delta)
                            on_token(delta)
            if not saw_choice:
                raise ProviderError(f"model {self.model}: {self.endpoint} streamed no choices; try again",
                                    code="llm.no_choices", model=self.model, endpoint=self.endpoint)  # fmt: skip
            return _Reply(_clean("".join(parts)), _tokens(usage, "prompt_tokens"),
                          _tokens(usage, "completion_tokens"), finish)  # fmt: skip

        bound = _CALL_DEADLINE.set(deadline)
        try:
            return call(self.client, f"model {self.model}", run)
        except _PastDeadline as ex:
            raise self._past_deadline(deadline, ex.received, shown=len("".join(parts))) from ex
        finally:
            _CALL_DEADLINE.reset(bound)

    def _past_deadline(self, deadline: _Deadline, received: int, *, shown: int) -> DeadlineExceeded:
        """The deadline passed while a reply was arriving: still writing, or never starting to."""
        if shown:
            return DeadlineExceeded(
                f"model {self.model} was still writing after {deadline.seconds:.0f} s ({shown} characters); "
                "the unfinished answer is not used. Raise QA_LLM_DEADLINE, or use a faster model",
                code="llm.still_writing", model=self.model, seconds=round(deadline.seconds), chars=shown,
            )  # fmt: skip
        trickle = f" (only keep-alives or a trickle, {received} bytes in all)" if received else ""
        return DeadlineExceeded(
            f"model {self.model}: {self.endpoint} kept the connection open but sent no reply within "
            f"{deadline.seconds:.0f} s{trickle}; gave up. Raise QA_LLM_DEADLINE if the model is only slow, "
            "or check the server (a proxy or gateway that holds requests open)",
            model=self.model, endpoint=self.endpoint, seconds=round(deadline.seconds), received=received,
        )  # fmt: skip


def _clean(text: str) -> str:
    """A reply cut inside a multi-byte character ends in U+FFFD: drop it rather than show 2024�."""
    return text.rstrip("\ufffd")


def _tokens(usage: Any, name: str) -> int:
    return int(getattr(usage, name, 0) or 0) if usage is not None else 0


def make_chat_llm(settings: Settings, log: CallLog | None = None) -> ChatLLM:
    """The configured chat model; a ConfigError that says what to set when none is configured."""
    if not settings.llm_model:
        raise ConfigError(
            "no LLM configured: set QA_LLM_MODEL (and QA_LLM_BASE_URL / QA_LLM_API_KEY for your endpoint), "
            "or use the offline engine (--engine offline)",
            code="llm.not_configured",
        )  # fmt: skip
    if not settings.llm_base_url and not settings.llm_api_key:
        raise ConfigError(
            f"QA_LLM_MODEL={settings.llm_model} is set but there is no endpoint: set QA_LLM_BASE_URL "
            "(any OpenAI-compatible server) or QA_LLM_API_KEY / OPENAI_API_KEY for api.openai.com",
            code="llm.no_endpoint", model=settings.llm_model,
        )  # fmt: skip
    # retries are ChatLLM's own (logged, inside the call's deadline), not the SDK's
    client = make_client(settings.llm_base_url, settings.llm_api_key, settings.llm_timeout, retries=0)
    return ChatLLM(client, settings.llm_model, temperature=settings.llm_temperature, prices=settings.prices,
                   log=log, cache=settings.llm_cache, max_tokens=settings.llm_max_tokens,
                   deadlines=settings.llm_deadline, retries=settings.llm_retries,
                   read_timeout=settings.llm_timeout)  # fmt: skip
