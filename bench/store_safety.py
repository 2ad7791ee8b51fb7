"""Many processes on one store: what the writer lock costs, how long a second writer waits for it, and how long
a running reader takes to catch up after another process's `qa ingest` / `qa rm`.

    python bench/store_safety.py [--docs data/reports] [--rounds 3] [--chroma-url http://127.0.0.1:8000]

Embeddings come from the cache (QA_CACHE_DIR, default .qa-test-cache), so the figures are the store's own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.core.config import Settings  # noqa: E402
from qa.ingest.chunking import chunk_document  # noqa: E402
from qa.ingest.pipeline import ingest_paths, ingest_version, load_document  # noqa: E402
from qa.wiring import Services, open_services  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"n={len(values):<3} mean {ms(statistics.mean(values))}  p50 {ms(statistics.median(values))}  "
            f"max {ms(max(values))}")  # fmt: skip


def cli(settings: Settings, *args: str, wait: bool = True):
    env = {**os.environ, "QA_DATA_DIR": str(settings.data_dir), "QA_CACHE_DIR": str(settings.caches)}
    if settings.chroma_url:
        env["QA_CHROMA_URL"] = settings.chroma_url
    command = [sys.executable, "-m", "qa.cli", *args]
    if wait:
        return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fresh(settings: Settings, root: Path, name: str) -> Settings:
    """A new, empty store (a new data dir; on a server, its reports removed first)."""
    settings = settings.replace(data_dir=root / name)
    if settings.chroma_url:
        services = open_services(settings)
        for record in services.store.reports():
            services.store.remove_report(record.report_id)
    return settings


def lock_overhead(services: Services, n: int = 50) -> list[float]:
    """An uncontended writer lock: take it and give it back."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with services.store.writing():
            pass
        times.append(time.perf_counter() - started)
    return times


def hold_times(services: Services, docs: Path) -> list[tuple[str, int, float]]:
    """How long one report's write holds the lock (its chunks, the flip, the old chunks' delete)."""
    held = []
    for path in sorted(docs.glob("*.txt")):
        document = load_document(path, services.settings)
        version = ingest_version(document.content_hash, services.settings, services.embedder.name,
                                 report_id=path.name)  # fmt: skip
        chunks = chunk_document(path.name, document.text, document.meta, version, services.settings.chunk_size,
                                services.settings.chunk_overlap)  # fmt: skip
        vectors = services.embedder.embed_passages([c.embed_text for c in chunks])
        started = time.perf_counter()
        services.store.replace_report(path.name, version, document.meta, document.text, chunks, vectors)
        held.append((path.name, len(chunks), time.perf_counter() - started))
    return held


def contended_waits(settings: Settings, docs: Path, others: Path) -> tuple[list[float], float]:
    """A `qa ingest` of the docs runs in another process; this one ingests other reports meanwhile.
    Returns this process's lock waits and how long its ingest took."""
    services = open_services(settings)
    services.store.on_lock_wait = lambda notice: None  # the CLI prints these; here only the waits count
    process = cli(settings, "ingest", str(docs), wait=False)
    deadline = time.monotonic() + 60
    while (services.store.lock_holder() is None or services.store.lock_holder().pid == os.getpid()) and (
        process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.005)
    started = time.perf_counter()
    ingest_paths([others], services.store, services.embedder, services.settings)
    took = time.perf_counter() - started
    process.wait(timeout=300)
    return list(services.store.lock_waits), took


def reader_catch_up(settings: Settings, docs: Path, rounds: int) -> dict[str, list[float]]:
    """A reader with its index built; another process ingests / removes a report; the reader's next search."""
    files = sorted(docs.glob("*.txt"))
    first, added = files[0], files[1:]
    cli(settings, "ingest", str(first))
    reader = open_services(settings)
    question = "行政复议案件办理情况"
    reader.retriever.search(question, k=5)
    figures: dict[str, list[float]] = {"steady search": [], "first search after qa ingest": [],
                                       "first search after qa rm": [], "reconnect alone": []}  # fmt: skip
    for path in added[:rounds]:
        started = time.perf_counter()
        reader.retriever.search(question, k=5)
        figures["steady search"].append(time.perf_counter() - started)
        cli(settings, "ingest", str(path))
        started = time.perf_counter()
        hits = reader.retriever.search(question, k=5, report_ids=[path.name]).hits
        figures["first search after qa ingest"].append(time.perf_counter() - started)
        assert hits and {h.chunk.report_id for h in hits} == {path.name}
        cli(settings, "rm", path.name)
        started = time.perf_counter()
        reader.retriever.search(question, k=5)
        figures["first search after qa rm"].append(time.perf_counter() - started)
        started = time.perf_counter()
        reader.store.reload()
        figures["reconnect alone"].append(time.perf_counter() - started)
    figures["reconnects counted"] = [float(reader.store.reconnects)]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=ROOT / "data" / "reports")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chroma-url", help="measure against a Chroma server instead of the embedded store")
    args = parser.parse_args()
    cache = Path(os.environ.get("QA_CACHE_DIR", ROOT / ".qa-test-cache"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = Settings(data_dir=root / "unused", cache_dir=cache, chroma_url=args.chroma_url)
        others = root / "others"  # the same reports under other names and one more line (not duplicates)
        others.mkdir()
        for path in sorted(args.docs.glob("*.txt")):
            shutil.copy(path, others / f"other_{path.name}")
            with open(others / f"other_{path.name}", "a", encoding="utf-8") as handle:
                handle.write("\n补充说明：本文件用于并发写入测试。\n")
        print(f"store: {'server ' + args.chroma_url if args.chroma_url else 'embedded (file lock)'}; "
              f"docs: {args.docs}")  # fmt: skip

        services = open_services(fresh(base, root, "overhead"))
        print(f"{'uncontended lock take + give back':<38} {summary(lock_overhead(services))}")
        held = hold_times(services, args.docs)
        for name, n, seconds in held:
            print(f"{'lock held to write ' + name:<38} {ms(seconds)}  ({n} chunks)")

        waits, totals = [], []
        for n in range(args.rounds):
            got, took = contended_waits(fresh(base, root, f"contended{n}"), args.docs, others)
            waits += got
            totals.append(took)
        print(f"{'second writer: wait per lock':<38} {summary(waits)}")
        print(
            f"{'second writer: its whole ingest':<38} {summary(totals)}  ({len(list(others.glob('*')))} reports)"
        )
        alone = []
        for n in range(args.rounds):
            services = open_services(fresh(base, root, f"alone{n}"))
            started = time.perf_counter()
            ingest_paths([others], services.store, services.embedder, services.settings)
            alone.append(time.perf_counter() - started)
        print(f"{'same ingest, no other writer':<38} {summary(alone)}")

        for label, values in reader_catch_up(fresh(base, root, "reader"), args.docs, args.rounds).items():
            print(
                f"{'reader: ' + label:<38} {summary(values) if label != 'reconnects counted' else int(values[0])}"
            )


if __name__ == "__main__":
    main()
