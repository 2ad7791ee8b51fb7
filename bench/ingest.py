"""Ingest throughput against the embedder's own bound: the bundled model embedding the same chunks with
nothing else running (the bound); cold ingest (empty store, empty embedding cache) as `qa ingest` runs it
(keywords first, vectors in the background pass) and inline (each report embedded before it is stored);
cache-warm (empty store); re-ingest of unchanged files. Prints reports/s, chunks/s, the share of the
bound, the time until every report was searchable by keywords, and peak RSS.

    python bench/ingest.py [--docs data/reports]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.core.config import Settings  # noqa: E402
from qa.ingest.pipeline import ingest_paths  # noqa: E402
from qa.wiring import open_services  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bound(docs: Path, settings: Settings) -> float:
    """Chunks/s of the bundled model alone on the chunks these files make (no store, no cache)."""
    from qa.ingest.chunking import chunk_document
    from qa.ingest.pipeline import collect_files, load_document
    from qa.models.embeddings import LocalE5Embedder

    files, _ = collect_files([docs])
    texts = []
    for path in files:
        document = load_document(path, settings)
        texts += [c.embed_text for c in chunk_document(path.name, document.text, document.meta, "v" * 32,
                                                        settings.chunk_size, settings.chunk_overlap)]  # fmt: skip
    model = LocalE5Embedder()
    model.embed_passages(texts[:4])  # load the model outside the timing
    started = time.perf_counter()
    model.embed_passages(texts)
    seconds = time.perf_counter() - started
    print(
        f"{'embedder bound (model alone)':<34} {len(texts):>5} chunks {seconds:7.2f}s  {len(texts) / seconds:8.1f} chunks/s"
    )
    return len(texts) / seconds


def run(label: str, docs: Path, settings: Settings, bound_rate: float, background: bool = True) -> None:
    services = open_services(settings)
    started = time.perf_counter()
    searchable: list[float] = []
    results = ingest_paths([docs], services.store, services.embedder, services.settings, background=background,
                           on_result=lambda r: searchable.append(time.perf_counter() - started))  # fmt: skip
    seconds = time.perf_counter() - started
    chunks = sum(r.n_chunks for r in results)
    embedded = sum(r.embedded for r in results) + sum(r.pending for r in results)
    statuses = sorted({r.status for r in results})
    share = f"{chunks / seconds / bound_rate:6.0%} of bound" if embedded else " " * 15
    print(
        f"{label:<34} {len(results):>3} reports {chunks:>5} chunks ({embedded:>4} embedded) "
        f"{seconds:7.2f}s  {chunks / seconds:8.1f} chunks/s {share}  all searchable after "
        f"{max(searchable, default=0):6.2f}s  peak RSS {peak_rss_mb():6.0f} MB  [{', '.join(statuses)}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=Path("data/reports"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rate = bound(args.docs, Settings(data_dir=root / "x"))
        cold = Settings(data_dir=root / "a", cache_dir=root / "cache")
        run("cold, keywords first (qa ingest)", args.docs, cold, rate)
        run("cold, inline", args.docs, Settings(data_dir=root / "i", cache_dir=root / "cache-i"), rate, False)
        run("unchanged re-ingest", args.docs, cold, rate)
        run("new store, warm cache", args.docs, Settings(data_dir=root / "b", cache_dir=root / "cache"), rate)


if __name__ == "__main__":
    main()
