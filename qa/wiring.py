"""Build the adapters once from Settings (used by the two interfaces, cli.py and app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from qa.config import Settings
from qa.embeddings import CachedEmbedder, make_embedder
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
