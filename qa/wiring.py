"""Build the adapters once from Settings (used by the two interfaces, cli.py and app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from qa.core.config import Settings
from qa.core.errors import ConfigError
from qa.engines.calllog import CallLog
from qa.engines.llm import ChatLLM, make_chat_llm
from qa.index.retriever import Retriever
from qa.ingest import gazetteer
from qa.ingest.embeddings import CachedEmbedder, make_embedder
from qa.store.chroma import Store


@dataclass
class Services:
    settings: Settings
    embedder: CachedEmbedder
    store: Store
    retriever: Retriever


def open_services(
    settings: Settings, *, owner: str | None = None, lock_timeout: float | None = None
) -> Services:
    """owner: how this process is named to writers waiting for its store lock (default: from argv, e.g.
    `qa ingest`); lock_timeout: seconds a write waits for another writer (default QA_STORE_LOCK_TIMEOUT)."""
    gazetteer.keep_in(settings.caches)
    embedder = make_embedder(settings)
    timeout = settings.store_lock_timeout if lock_timeout is None else lock_timeout
    store = Store.open(settings, embedder.name, embedder.dim, owner=owner, lock_timeout=timeout)
    return Services(settings, embedder, store, Retriever(store, embedder, settings))


def call_log(settings: Settings) -> CallLog:
    return CallLog.in_dir(settings.data_dir)


def make_llm(settings: Settings, engine: str | None = None) -> ChatLLM | None:
    """The chat model for engine 'llm', None for 'offline'; default: llm when QA_LLM_MODEL is set."""
    engine = engine or settings.default_engine
    if engine == "offline":
        return None
    if engine != "llm":
        raise ConfigError(f"unknown engine {engine!r}: use offline or llm")
    return make_chat_llm(settings, call_log(settings))
