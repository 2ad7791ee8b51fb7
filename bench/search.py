"""Search latency at 1k / 10k / 50k chunks (synthetic copies of the sample corpus, warm), and recall@k of
hybrid vs dense-only vs BM25-only on the dev set.

    python bench/search.py [--sizes 1000 10000 50000] [--queries 50]

Copies reuse the real chunks' vectors with a little noise (embedding 50k chunks would take ~2 h here),
stored under new report ids/versions, so Chroma and BM25 see the full size.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.core.config import Settings  # noqa: E402
from qa.core.schemas import ReportMeta  # noqa: E402
from qa.evals.evaluate import load_dataset, percentile, run_retrieval  # noqa: E402
from qa.index.retriever import Retriever  # noqa: E402
from qa.ingest.pipeline import ingest_paths  # noqa: E402
from qa.wiring import open_services  # noqa: E402

DOCS = ROOT / "data" / "reports"
DATASET = ROOT / "evals" / "datasets" / "qa_dev.jsonl"


def recall_table(services, ks=(1, 5)) -> None:
    cases = load_dataset(DATASET, DOCS)
    texts = {r.report_id: services.store.report_text(r.report_id) for r in services.store.reports()}
    print(
        f"recall on {DATASET.name} ({len(cases)} questions, each asked with its report selected / across all):"
    )
    for mode in ("dense", "bm25", "hybrid"):
        cells = []
        for scope in ("doc", "all"):
            for k in ks:

                def search(case, k=k, scope=scope, mode=mode):
                    reports = None if case.doc == "*" or scope == "all" else [case.doc]
                    return [h.chunk for h in services.retriever.search(case.question, k=k, report_ids=reports,
                                                                       mode=mode).hits]  # fmt: skip

                metrics = run_retrieval(cases, search, texts, k)
                cells.append(f"{scope} R@{k} {metrics['retrieval_recall_at_k']:.3f}")
        print(f"  {mode:<7} " + "  ".join(cells))


def grow(services, target: int, rng: np.random.Generator) -> None:
    """Add synthetic copies of the real reports until the store holds `target` chunks."""
    originals = [r for r in services.store.reports() if not r.report_id.startswith("copy")]
    base = {r.report_id: services.store.report_chunks(r.report_id) for r in originals}
    got = services.store.chunks.get(ids=[c.id for cs in base.values() for c in cs], include=["embeddings"])
    vectors = dict(zip(got["ids"], np.asarray(got["embeddings"]), strict=True))
    copy_no = len(services.store.reports())
    while services.store.count_chunks() < target:
        for record in originals:
            if services.store.count_chunks() >= target:
                break
            copy_no += 1
            version = f"{copy_no:016x}" * 2
            report_id = f"copy{copy_no:05d}-{record.report_id}"
            chunks = [dataclasses.replace(c, id=f"{version[:16]}-{c.start}", report_id=report_id, version=version)
                      for c in base[record.report_id]]  # fmt: skip
            noisy = np.stack([vectors[c.id] for c in base[record.report_id]])
            noisy = noisy + rng.normal(0, 0.01, noisy.shape).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            meta = (
                dataclasses.replace(record.meta, region=f"合成{copy_no}区") if record.meta else ReportMeta()
            )
            services.store.replace_report(report_id, version, meta, "", chunks, noisy)


def latency(retriever, questions: list[str], mode: str) -> tuple[float, float]:
    timings = []
    for question in questions:
        started = time.perf_counter()
        retriever.search(question, k=5, mode=mode)
        timings.append((time.perf_counter() - started) * 1000)
    return percentile(timings, 50), percentile(timings, 95)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        services = open_services(Settings(data_dir=Path(tmp), cache_dir=ROOT / ".qa" / "cache"))
        ingest_paths([DOCS], services.store, services.embedder, services.settings)
        recall_table(services)
        questions = [c.question for c in load_dataset(DATASET, DOCS)][: args.queries]
        print(
            f"\nsearch latency, k=5, {len(questions)} questions, warm (first query per size builds the index):"
        )
        for size in args.sizes:
            started = time.perf_counter()
            grow(services, size, rng)
            grown = time.perf_counter() - started
            started = time.perf_counter()
            services.retriever.search(
                "行政复议", k=5
            )  # builds the derived index (BM25 + vectors) for this size
            build = time.perf_counter() - started
            cells = []
            for mode in ("hybrid", "dense", "bm25"):
                p50, p95 = latency(services.retriever, questions, mode)
                cells.append(f"{mode} p50 {p50:6.1f} ms p95 {p95:6.1f} ms")
            # the same dense search through Chroma's HNSW (what a store past QA_EXACT_DENSE_MAX uses)
            ann = Retriever(services.store, services.embedder, services.settings.replace(exact_dense_max=0))
            ann.search("行政复议", k=5)
            p50, p95 = latency(ann, questions, "dense")
            cells.append(f"dense via Chroma HNSW p50 {p50:6.1f} ms p95 {p95:6.1f} ms")
            print(f"  {services.store.count_chunks():>6} chunks (grow {grown:5.1f}s, index build {build:5.2f}s): "
                  + " | ".join(cells))  # fmt: skip


if __name__ == "__main__":
    main()
