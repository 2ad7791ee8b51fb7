"""OpenAI-compatible endpoints: the only module that imports `openai`.

Vendor errors become ProviderError/ConfigError here, with what failed and what to do next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import openai

from qa.errors import ConfigError, ProviderError

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
        raise ProviderError(
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
