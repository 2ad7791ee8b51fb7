"""Searchable before embedded: a report is stored and searchable by keywords as soon as it is read; its
vectors follow in a background pass (qa.ingest.pipeline.VectorPass), which a later `qa ingest` resumes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from conftest import CORPUS

from app_pages import ui
from qa.answer.pipeline import ask
from qa.core.config import Settings
from qa.core.errors import ProviderError
from qa.ingest.pipeline import ingest_paths
from qa.wiring import open_services

ZICHUAN = "zichuan_2024.txt"
QUESTION = "淄川区办理行政复议案件多少件？"


class Gate:
    """The real embedder, held at a gate: its passages are embedded only once the test opens it (or it
    fails, as an unreachable embeddings endpoint does)."""

    def __init__(self, inner, fail: bool = False) -> None:
        self.inner, self.name, self.dim, self.fail = inner, inner.name, inner.dim, fail
        self.open = threading.Event()

    def lookup(self, texts):
        return self.inner.lookup(texts)

    def embed_passages(self, texts, progress=None):
        assert self.open.wait(120)
        if self.fail:
            raise ProviderError("embeddings endpoint unreachable")
        return self.inner.embed_passages(texts, progress)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def fresh(tmp_path: Path):
    """A store and an embedding cache that holds nothing yet: every chunk must be embedded."""
    return open_services(Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"))


def test_a_report_is_searchable_by_keywords_before_its_vectors_exist(tmp_path: Path) -> None:
    services = fresh(tmp_path)
    gate = Gate(services.embedder)
    stored, queued, embedded = threading.Event(), [], []
    results = []
    run = threading.Thread(target=lambda: results.extend(ingest_paths(
        [CORPUS / ZICHUAN], services.store, gate, services.settings, background=True,
        on_result=lambda r: stored.set(), progress=embedded.append, on_queued=queued.append)))  # fmt: skip
    run.start()
    assert stored.wait(120)

    # stored, listed, searchable by keywords, answered — while its vectors are still to come
    record = services.store.get_report(ZICHUAN)
    assert record is not None and not record.embedded and queued == [record.n_chunks]
    assert (
        ui.vector_status(services.store.reports())
        == f"向量索引 0/{record.n_chunks} 段（其余报告暂按关键词检索，向量补齐后自动使用）"
    )
    hits = services.retriever.search(QUESTION, k=5).hits
    assert any("151件" in h.chunk.text for h in hits) and all(h.dense_rank is None for h in hits)
    assert "151件" in ask(QUESTION, services.retriever).text

    gate.open.set()
    run.join(120)
    assert [r.status for r in results] == ["ingested"] and results[0].pending == record.n_chunks
    assert sum(embedded) == record.n_chunks
    assert services.store.get_report(ZICHUAN).embedded and ui.vector_status(services.store.reports()) == ""
    # the same reader now searches the vectors too; they are the model's, not the placeholders
    hits = services.retriever.search(QUESTION, k=5).hits
    assert any(h.dense_rank is not None for h in hits)
    chunks = services.store.report_chunks(ZICHUAN)
    got = services.store.chunks.get(ids=[c.id for c in chunks], include=["embeddings"])
    expected = services.embedder.embed_passages([c.embed_text for c in chunks])
    by_id = dict(zip(got["ids"], np.asarray(got["embeddings"]), strict=True))
    assert np.allclose(np.stack([by_id[c.id] for c in chunks]), expected, atol=1e-5)


def test_a_pass_that_fails_leaves_keyword_search_and_the_next_ingest_finishes_it(tmp_path: Path) -> None:
    services = fresh(tmp_path)
    gate = Gate(services.embedder, fail=True)
    gate.open.set()
    results = ingest_paths([CORPUS / ZICHUAN], services.store, gate, services.settings, background=True)
    assert [r.status for r in results] == ["ingested", "failed"]
    assert "unreachable" in results[1].reason and "qa ingest" in results[1].reason
    assert not services.store.get_report(ZICHUAN).embedded
    assert "151件" in ask(QUESTION, services.retriever).text  # by keywords meanwhile

    again = ingest_paths(
        [CORPUS / ZICHUAN], services.store, services.embedder, services.settings, background=True
    )
    assert [r.status for r in again] == ["unchanged"]
    assert services.store.get_report(ZICHUAN).embedded
    assert any(h.dense_rank is not None for h in services.retriever.search(QUESTION, k=5).hits)
