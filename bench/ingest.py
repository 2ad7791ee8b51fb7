"""Ingest throughput: cold (empty store, empty embedding cache), cache-warm (empty store), and
re-ingest of unchanged files. Prints reports/s, chunks/s and peak RSS.

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

from qa.config import Settings  # noqa: E402
from qa.ingest import ingest_paths  # noqa: E402
from qa.wiring import open_services  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(label: str, docs: Path, settings: Settings) -> None:
    services = open_services(settings)
    started = time.perf_counter()
    results = ingest_paths([docs], services.store, services.embedder, services.settings)
    seconds = time.perf_counter() - started
    chunks = sum(r.n_chunks for r in results)
    embedded = sum(r.embedded for r in results)
    statuses = sorted({r.status for r in results})
    print(
        f"{label:<28} {len(results):>3} reports {chunks:>5} chunks ({embedded:>4} embedded) "
        f"{seconds:7.2f}s  {len(results) / seconds:7.2f} reports/s  {chunks / seconds:8.1f} chunks/s  "
        f"peak RSS {peak_rss_mb():6.0f} MB  [{', '.join(statuses)}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=Path("data/reports"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cold = Settings(data_dir=root / "a", cache_dir=root / "cache")
        run("cold (no cache)", args.docs, cold)
        run("unchanged re-ingest", args.docs, cold)
        run("new store, warm cache", args.docs, Settings(data_dir=root / "b", cache_dir=root / "cache"))


if __name__ == "__main__":
    main()
