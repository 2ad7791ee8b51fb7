"""Build the adapters once from Settings (used by the two interfaces, cli.py and app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.core.config import Settings
from qa.core.errors import ConfigError
from qa.genre import gazetteer
from qa.index import packs
from qa.index.retriever import Retriever
from qa.models.calllog import CallLog
from qa.models.embeddings import CachedEmbedder, make_embedder
from qa.store.chroma import Store

if TYPE_CHECKING:
    from qa.engines.base import Engine
    from qa.models.base import ChatModel


@dataclass
class Services:
    settings: Settings
    embedder: CachedEmbedder
    store: Store
    retriever: Retriever


def open_services(
    settings: Settings,
    *,
    owner: str | None = None,
    lock_timeout: float | None = None,
    question: str | None = None,
) -> Services:
    """owner: how this process is named to writers waiting for its store lock (default: from argv, e.g.
    `qa ingest`); lock_timeout: seconds a write waits for another writer (default QA_STORE_LOCK_TIMEOUT);
    question: one about to be asked, embedded while the store opens."""
    gazetteer.keep_in(settings.caches)
    embedder = make_embedder(settings)
    if question:
        embedder.prefetch_query(question)
    timeout = settings.store_lock_timeout if lock_timeout is None else lock_timeout
    store = Store.open(settings, embedder.name, embedder.dim, owner=owner, lock_timeout=timeout,
                       index_dir=packs.folder_for(settings.data_dir, embedder.name))  # fmt: skip
    return Services(settings, embedder, store, Retriever(store, embedder, settings))


def call_log(settings: Settings) -> CallLog:
    return CallLog.in_dir(settings.data_dir)


def make_engine(settings: Settings, engine: str | None = None) -> Engine:
    """The one place an engine is chosen: 'offline' (quotes the reports) or 'llm' (the configured chat model
    with the prompt templates); default: llm when QA_LLM_MODEL is set. Everything else only calls the
    engine's methods (qa.engines.base.Engine)."""
    engine = engine or settings.default_engine
    if engine == "offline":
        from qa.engines.offline import OfflineEngine

        return OfflineEngine()
    if engine != "llm":
        raise ConfigError(f"unknown engine {engine!r}: use offline or llm")
    from qa.engines.chat import ChatEngine

    return ChatEngine(make_chat_model(settings))


def make_chat_model(settings: Settings) -> ChatModel:
    """The configured OpenAI-compatible chat model, logging to the call log (the model engine's, and the
    eval judge's)."""
    from qa.models.llm import make_chat_llm

    return make_chat_llm(settings, call_log(settings))
