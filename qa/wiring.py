"""Build the adapters once from Settings (used by the two interfaces, cli.py and app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from qa.calllog import CallLog
from qa.config import Settings
from qa.embeddings import CachedEmbedder, make_embedder
from qa.errors import ConfigError
from qa.llm import ChatLLM, make_chat_llm
from qa.retrieve import Retriever
from qa.store import Store


@dataclass
class Services:
    settings: Settings
    embedder: CachedEmbedder
    store: Store
    retriever: Retriever


def open_services(settings: Settings) -> Services:
    embedder = make_embedder(settings)
    store = Store.open(settings, embedder.name, embedder.dim)
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
