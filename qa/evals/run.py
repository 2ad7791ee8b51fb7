"""The eval pipeline shared by `qa eval` and the app's 评测 page: ingest the docs into a store (a fresh
temporary one unless given), answer every question, summarize the gold reports, optionally judge, and
return the metrics of the DESIGN.md contract plus what identifies the run (engine, model, prompt refs,
config hash). Scoring itself is pure and lives in qa/evaluate.py."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.answer.pipeline import Turn, ask
from qa.core.config import Settings
from qa.core.schemas import IngestResult
from qa.evals.evaluate import (
    EvalCase,
    SummaryGold,
    run_qa,
    run_retrieval,
    run_summaries,
)
from qa.index import packs
from qa.index.retriever import Retriever
from qa.ingest.pipeline import PIPELINE_VERSION, ingest_paths
from qa.models.embeddings import make_embedder
from qa.store.chroma import Store

if TYPE_CHECKING:
    from qa.engines.base import Engine

# stage, done, total (None while unknown): "ingest" counts chunks, "questions" and "summaries" count items.
Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class EvalOptions:
    k: int = 5
    mode: str = "hybrid"  # hybrid | dense | bm25
    scope: str = "doc"  # doc: each question asked with its report selected; all: across every report
    retrieval_only: bool = False
    store_dir: Path | None = None  # keep the ingested store here (default: a temporary one)


@dataclass
class EvalRun:
    metrics: dict[str, Any]
    failed_docs: list[IngestResult] = field(default_factory=list)


def dataset_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else ""


def config_hash(settings: Settings, options: EvalOptions, engine: str, model: str | None,
                prompt_refs: list[str]) -> str:  # fmt: skip
    """Everything besides the code that changes results: a different hash means not comparable 1:1."""
    config = {
        "pipeline": PIPELINE_VERSION, "embedder": settings.embedder, "embed_model": settings.embed_model,
        "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap, "rrf_k": settings.rrf_k,
        "dense_weight": settings.dense_weight, "bm25_weight": settings.bm25_weight, "k": options.k,
        "mode": options.mode, "scope": options.scope, "engine": engine, "model": model,
        "temperature": settings.llm_temperature if model else None, "prompts": sorted(prompt_refs),
    }  # fmt: skip
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def run_eval(
    settings: Settings,
    cases: list[EvalCase],
    docs: Path,
    *,
    engine: Engine | None = None,
    options: EvalOptions = EvalOptions(),
    summary_golds: list[SummaryGold] | None = None,
    progress: Progress | None = None,
) -> EvalRun:
    """Run a dataset (and summary checks) end to end; returns the contract's metrics."""
    from qa.engines.offline import OfflineEngine
    from qa.summary.batch import view_from_store
    from qa.summary.summarize import summarize_report

    engine = engine or OfflineEngine()

    def report(stage: str, done: int, total: int | None) -> None:
        if progress:
            progress(stage, done, total)

    embedder = make_embedder(settings)  # the embedding cache stays in QA_CACHE_DIR / QA_DATA_DIR
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp:
        store_settings = settings.replace(data_dir=Path(options.store_dir or tmp))
        if not options.store_dir:
            store_settings = store_settings.replace(chroma_url=None)
        store = Store.open(
            store_settings,
            embedder.name,
            embedder.dim,
            index_dir=packs.folder_for(store_settings.data_dir, embedder.name),
        )
        embedded = 0

        def on_chunks(n: int) -> None:
            nonlocal embedded
            embedded += n
            report("ingest", embedded, None)

        results = ingest_paths([docs], store, embedder, settings, progress=on_chunks)
        failed = [r for r in results if r.status == "failed"]
        retriever = Retriever(store, embedder, settings)
        texts = {r.report_id: store.report_text(r.report_id) for r in store.reports()}

        def reports_for(case: EvalCase) -> list[str] | None:
            if case.filters is not None:
                return case.filters.report or None
            return None if case.doc == "*" or options.scope == "all" else [case.doc]

        def answer(case: EvalCase, said: list[tuple[str, str]]) -> Any:
            filters = case.filters
            history = [Turn(role, text) for q, a in said for role, text in (("user", q), ("assistant", a))]
            return ask(case.question, retriever, engine=engine, k=options.k, report_ids=reports_for(case),
                       regions=(filters.region or None) if filters else None,
                       years=(filters.year or None) if filters else None, history=history)  # fmt: skip

        started = time.perf_counter()
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            report("questions", done, sum(len(c.units()) for c in cases))

        if options.retrieval_only:
            metrics = run_retrieval(
                cases,
                lambda c: [h.chunk for h in retriever.search(c.question, k=options.k, report_ids=reports_for(c),
                                                              mode=options.mode).hits],  # fmt: skip
                texts, options.k, progress=tick,
            )  # fmt: skip
        else:
            metrics = run_qa(cases, answer, texts, options.k, progress=tick, instructions=engine.instructions)
        qa_wall = time.perf_counter() - started
        summary_metrics = None
        if summary_golds and not options.retrieval_only:
            summarized = 0

            def summarize(gold: SummaryGold) -> tuple[Any, str]:
                view = view_from_store(store, gold.doc)
                return summarize_report(view, engine), view.text

            def tick_summary() -> None:
                nonlocal summarized
                summarized += 1
                report("summaries", summarized, len(summary_golds))

            summary_metrics = run_summaries(summary_golds, summarize, progress=tick_summary)
    name = "retrieval-only" if options.retrieval_only else engine.name
    prompt_refs = sorted({r["prompt_ref"] for r in metrics["rows"] if r.get("prompt_ref")})
    if engine.prompt_ref and not options.retrieval_only:
        prompt_refs = sorted({*prompt_refs, engine.prompt_ref})
    if summary_metrics:
        prompt_refs = sorted({*prompt_refs, *(p for r in summary_metrics["rows"] for p in r["prompt_refs"])})
    metrics.update(
        {
            "engine": name,
            "model": engine.model,
            "mode": options.mode,
            "scope": options.scope,
            "prompt_refs": prompt_refs,
            "config_hash": config_hash(settings, options, name, engine.model, prompt_refs),
            "wall_s": round(time.perf_counter() - started, 2),
            "qa_wall_s": round(qa_wall, 2),
        }
    )
    if summary_metrics is not None:
        metrics["summary"] = summary_metrics
    return EvalRun(metrics, failed)


@dataclass(frozen=True)
class Recorded:
    """What a finished run is compared and recorded as (the same for `qa eval` and the 评测 page)."""

    comparison: Any  # gate.Comparison | None
    git_commit: str
    dataset_sha: str


def conclude(metrics: dict[str, Any], sha: str, label: str, baseline: dict[str, Any] | None,
             history_file: Path | None) -> Recorded:  # fmt: skip
    """Stamp the metrics with what identifies the run (dataset label and sha, commit), compare them with
    the baseline, and append the run to the history (None: not recorded). One place for both interfaces."""
    from qa.evals import gate, history

    commit = history.git_commit()
    metrics.update({"dataset": label, "dataset_sha": sha, "git_commit": commit})
    comparison = gate.compare(baseline, metrics, sha) if baseline else None
    if history_file is not None:
        history.append_run(history_file, history.run_record(
            metrics, dataset=label, dataset_sha=sha, git_commit=commit,
            regressed=comparison.regressed if comparison else None))  # fmt: skip
    return Recorded(comparison, commit, sha)
