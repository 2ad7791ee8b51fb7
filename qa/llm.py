"""OpenAI-compatible endpoints: the only module that imports `openai`.

Vendor errors become ProviderError/ConfigError here, with what failed and what to do next.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import openai

from qa.calllog import CallLog
from qa.config import Settings
from qa.errors import ConfigError, EndpointUnreachable, ProviderError, QAError

T = TypeVar("T")


def make_client(base_url: str | None, api_key: str | None, timeout: float, retries: int) -> openai.OpenAI:
    """An OpenAI client for any compatible endpoint; the SDK retries 408/429/5xx honouring Retry-After."""
    return openai.OpenAI(
        base_url=base_url or None,
        # Local servers (vLLM, Ollama, llama.cpp) accept any key; the SDK insists on one.
        api_key=api_key or "not-needed",
        timeout=timeout,
        max_retries=retries,
    )


def _where(client: Any) -> str:
    return str(getattr(client, "base_url", "") or "the endpoint").rstrip("/")


def call(client: Any, what: str, fn: Callable[[], T]) -> T:
    """Run one SDK call, translating its errors into messages a user can act on."""
    where = _where(client)
    try:
        return fn()
    except openai.AuthenticationError as ex:
        raise ConfigError(
            f"{what}: {where} rejected the API key (401). Set QA_LLM_API_KEY (or OPENAI_API_KEY) "
            "to a valid key, or unset QA_LLM_MODEL to use the offline engine"
        ) from ex
    except openai.PermissionDeniedError as ex:
        raise ConfigError(f"{what}: {where} denied access (403): {_detail(ex)}") from ex
    except openai.NotFoundError as ex:
        raise ConfigError(
            f"{what}: {where} answered 404 ({_detail(ex)}): check the model name and that the base URL "
            "ends with /v1"
        ) from ex
    except openai.RateLimitError as ex:
        raise ProviderError(
            f"{what}: {where} kept rate-limiting (429) after retries{_request_id(ex)}; wait and retry, "
            "or lower --concurrency"
        ) from ex
    except openai.APITimeoutError as ex:
        raise ProviderError(f"{what}: {where} did not answer in time; raise QA_LLM_TIMEOUT or retry") from ex
    except openai.APIConnectionError as ex:
        raise EndpointUnreachable(
            f"{what}: cannot connect to {where}; check QA_LLM_BASE_URL and that the server is running"
        ) from ex
    except openai.InternalServerError as ex:
        raise ProviderError(
            f"{what}: {where} failed with {ex.status_code} after retries{_request_id(ex)}; try again later"
        ) from ex
    except openai.APIStatusError as ex:
        raise ProviderError(f"{what}: {where} answered {ex.status_code}: {_detail(ex)}") from ex
    except openai.APIResponseValidationError as ex:
        raise ProviderError(f"{what}: {where} sent a response that is not valid OpenAI JSON") from ex
    except openai.OpenAIError as ex:
        raise ProviderError(f"{what}: {where}: {ex}") from ex
    except json.JSONDecodeError as ex:
        # The SDK lets a 200 whose body (or SSE event) is not JSON escape as a bare JSONDecodeError.
        raise ProviderError(
            f"{what}: {where} sent a response that is not JSON ({ex.msg} at char {ex.pos}); check that "
            "the base URL points at an OpenAI-compatible API (it usually ends with /v1)"
        ) from ex


def _detail(ex: Any) -> str:
    body = getattr(ex, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:200]
    return str(getattr(ex, "message", ex))[:200]


def _request_id(ex: Any) -> str:
    request_id = getattr(ex, "request_id", None)
    return f" (request id {request_id})" if request_id else ""


def embed_texts(client: Any, model: str, texts: list[str]) -> list[list[float]]:
    """Embeddings from an OpenAI-compatible /embeddings endpoint, in input order."""
    response = call(client, "embeddings", lambda: client.embeddings.create(model=model, input=texts))
    data = sorted(response.data, key=lambda item: item.index)
    if len(data) != len(texts):
        raise ProviderError(
            f"embeddings: {_where(client)} returned {len(data)} vectors for {len(texts)} texts"
        )
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


class ChatLLM:
    """An OpenAI-compatible Chat Completions model, with call logging and an optional response cache."""

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
    ) -> None:
        self.client = client
        self.model = model
        self.temperature = temperature
        self.prices = prices or {}
        self.log = log
        self.cache = cache and log is not None
        self.endpoint = _where(client)
        self._slots: threading.BoundedSemaphore | None = None
        self._broken: QAError | None = None

    def limited(self, calls: int) -> ChatLLM:
        """A copy for one batch of work: at most `calls` requests in flight across all the threads that use
        it (a batch's reports and each report's section maps share one limit), and once the endpoint fails
        in a way no retry fixes (a rejected key, an unknown model, no connection: `stops_batch`), every
        later call fails the same way without being sent."""
        clone = copy.copy(self)
        clone._slots = threading.BoundedSemaphore(max(1, calls))
        clone._broken = None
        return clone

    def _check_broken(self) -> None:
        if self._broken is not None:
            error = type(self._broken)(str(self._broken))
            error.not_sent = True  # type: ignore[attr-defined]  # nothing to log: no request was made
            raise error

    @property
    def label(self) -> str:
        return f"{self.model} @ {self.endpoint}"

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        prompt_ref: str,
        on_token: Callable[[str], None] | None = None,
        json_schema: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion (streamed when on_token is given). params: extra request fields (seed,
        temperature…) that also key the cache, e.g. the judge's N runs of one prompt."""
        params = {"temperature": self.temperature, **(params or {})}
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
                self.log.record(prompt_ref=prompt_ref, model=self.model, endpoint=self.endpoint,
                                prompt_tokens=0, completion_tokens=0, latency_ms=0, cost_usd=0, cached=True)  # fmt: skip
                return Completion(text, self.model, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                                  0.0, 0.0, cached=True)  # fmt: skip
        started = time.perf_counter()
        try:
            with self._slots or contextlib.nullcontext():
                self._check_broken()  # checked after waiting for a slot: another call may have just failed
                if on_token is not None:
                    text, prompt_tokens, completion_tokens = self._stream(messages, params, on_token)
                else:
                    text, prompt_tokens, completion_tokens = self._once(messages, params)
        except QAError as ex:
            if getattr(ex, "not_sent", False):
                raise
            if self._slots is not None and ex.stops_batch and self._broken is None:
                self._broken = ex
            if self.log:
                self.log.record(prompt_ref=prompt_ref, model=self.model, endpoint=self.endpoint, prompt_tokens=None,
                                completion_tokens=None, latency_ms=(time.perf_counter() - started) * 1000,
                                cost_usd=None, error=str(ex)[:500])  # fmt: skip
            raise
        latency = (time.perf_counter() - started) * 1000
        cost = cost_of(self.model, prompt_tokens, completion_tokens, self.prices)
        if self.log:
            self.log.record(prompt_ref=prompt_ref, model=self.model, endpoint=self.endpoint,
                            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_ms=latency,
                            cost_usd=cost)  # fmt: skip
            if key:
                self.log.store(key, self.model, text, {"prompt_tokens": prompt_tokens,
                                                       "completion_tokens": completion_tokens})  # fmt: skip
        return Completion(text, self.model, prompt_tokens, completion_tokens, cost, latency)

    def _once(self, messages: list[dict[str, str]], params: dict[str, Any]) -> tuple[str, int, int]:
        response = call(
            self.client,
            f"model {self.model}",
            lambda: self.client.chat.completions.create(model=self.model, messages=messages, **params),
        )
        if not getattr(response, "choices", None):
            raise ProviderError(
                f"model {self.model}: {self.endpoint} returned no choices; try again or another model"
            )
        text = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        return text, _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")

    def _stream(
        self, messages: list[dict[str, str]], params: dict[str, Any], on_token: Callable[[str], None]
    ) -> tuple[str, int, int]:
        def run() -> tuple[str, int, int]:
            stream = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )
            parts: list[str] = []
            usage = None
            saw_choice = False
            for event in stream:
                if getattr(event, "usage", None):
                    usage = event.usage
                for choice in event.choices or []:
                    saw_choice = True
                    delta = getattr(choice.delta, "content", None)
                    if delta:
                        parts.append(delta)
                        on_token(delta)
            if not saw_choice:
                raise ProviderError(f"model {self.model}: {self.endpoint} streamed no choices; try again")
            return "".join(parts), _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")

        return call(self.client, f"model {self.model}", run)


def _tokens(usage: Any, name: str) -> int:
    return int(getattr(usage, name, 0) or 0) if usage is not None else 0


def make_chat_llm(settings: Settings, log: CallLog | None = None) -> ChatLLM:
    """The configured chat model; a ConfigError that says what to set when none is configured."""
    if not settings.llm_model:
        raise ConfigError(
            "no LLM configured: set QA_LLM_MODEL (and QA_LLM_BASE_URL / QA_LLM_API_KEY for your endpoint), "
            "or use the offline engine (--engine offline)"
        )
    if not settings.llm_base_url and not settings.llm_api_key:
        raise ConfigError(
            f"QA_LLM_MODEL={settings.llm_model} is set but there is no endpoint: set QA_LLM_BASE_URL "
            "(any OpenAI-compatible server) or QA_LLM_API_KEY / OPENAI_API_KEY for api.openai.com"
        )
    client = make_client(
        settings.llm_base_url, settings.llm_api_key, settings.llm_timeout, settings.llm_retries
    )
    return ChatLLM(client, settings.llm_model, temperature=settings.llm_temperature, prices=settings.prices,
                   log=log, cache=settings.llm_cache)  # fmt: skip
