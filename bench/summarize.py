"""Summary throughput: the offline engine (reports/s over data/reports, several repetitions), and the LLM
engine against tests/openai_server.py with a fixed latency per response (a stand-in for a real model), at
several --concurrency levels over copies of the corpus. Prints a small table.

    python bench/summarize.py [--reps 5] [--copies 16] [--latency 1.0] [--concurrency 1 4 8]

The LLM run goes through the same code as `qa summarize` (batch.run_batch → map over every section, then
reduce), with the scripted model in tests/summary_llm.py answering valid JSON for both steps.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from openai_server import OpenAIServer  # noqa: E402
from summary_llm import summary_responder  # noqa: E402

from qa.core.config import Settings  # noqa: E402
from qa.engines.chat import ChatEngine  # noqa: E402
from qa.models.embeddings import make_embedder  # noqa: E402
from qa.models.llm import make_chat_llm  # noqa: E402
from qa.summary.batch import plan, run_batch  # noqa: E402

DOCS = ROOT / "data" / "reports"


def offline(settings: Settings, embedder: str, reps: int) -> tuple[int, list[float]]:
    files = plan([DOCS]).files
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(reps):  # force: every repetition summarizes every report again
            started = time.perf_counter()
            items = run_batch(files, Path(tmp), settings, embedder, force=True, concurrency=1)
            times.append(time.perf_counter() - started)
            assert all(i.status == "ok" for i in items), items
    return len(files), times


def copies(folder: Path, n: int) -> list[Path]:
    sources = plan([DOCS]).files
    for i in range(n):
        shutil.copyfile(sources[i % len(sources)], folder / f"c{i:02d}_{sources[i % len(sources)].name}")
    return plan([folder]).files


def llm_run(files: list[Path], out: Path, settings: Settings, embedder: str, latency: float,
            concurrency: int) -> tuple[list, float, int]:  # fmt: skip
    """One `qa summarize` batch against the scripted server: (items, wall seconds, LLM calls)."""
    with OpenAIServer(responder=summary_responder, latency=latency) as server:
        llm_settings = settings.replace(llm_base_url=server.url, llm_model="gpt-4o-mini", llm_api_key="bench",
                                        llm_timeout=60)  # fmt: skip
        started = time.perf_counter()
        items = run_batch(
            files,
            out,
            llm_settings,
            embedder,
            ChatEngine(make_chat_llm(llm_settings)),
            concurrency=concurrency,
        )
        return items, time.perf_counter() - started, len(server.chat_requests())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--copies", type=int, default=16)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "data", cache_dir=root / "cache")
        embedder = make_embedder(settings).name  # names the chunk ids; nothing is embedded

        n, times = offline(settings, embedder, args.reps)
        best, median = min(times), statistics.median(times)
        print(f"offline (extractive), {n} reports × {args.reps} repetitions, concurrency 1:")
        print(
            f"  median {median:.2f}s = {n / median:.1f} reports/s   (best {best:.2f}s = {n / best:.1f} reports/s)"
        )
        print()

        (root / "reports").mkdir()
        files = copies(root / "reports", args.copies)
        print(
            f"LLM (local OpenAI-compatible server, {args.latency:.1f}s per response), {len(files)} reports:"
        )
        print(f"  {'concurrency':>11}  {'wall s':>7}  {'reports/s':>9}  {'speed-up':>8}  {'LLM calls':>9}  "
              f"{'calls/s':>7}  {'ok':>3}  {'tokens in/out':>15}")  # fmt: skip
        baseline = None
        for concurrency in args.concurrency:
            items, wall, calls = llm_run(files, root / f"out-{concurrency}", settings, embedder, args.latency,
                                         concurrency)  # fmt: skip
            baseline = baseline or wall
            ok = sum(i.status == "ok" for i in items)
            tokens = f"{sum(i.prompt_tokens for i in items):,}/{sum(i.completion_tokens for i in items):,}"
            print(f"  {concurrency:>11}  {wall:7.1f}  {len(files) / wall:9.2f}  {baseline / wall:7.1f}×  "
                  f"{calls:>9}  {calls / wall:7.2f}  {ok:>3}  {tokens:>15}")  # fmt: skip

        # one report alone (what the app's 摘要 page does): its section maps share the concurrency
        longest = max(plan([DOCS]).files, key=lambda f: f.stat().st_size)
        print(f"\nLLM, one report ({longest.name}, {args.latency:.1f}s per response):")
        baseline = None
        for concurrency in args.concurrency:
            [item], wall, calls = llm_run([longest], root / f"one-{concurrency}", settings, embedder,
                                          args.latency, concurrency)  # fmt: skip
            baseline = baseline or wall
            print(
                f"  concurrency {concurrency}: {wall:5.1f}s ({calls} LLM calls, {baseline / wall:.1f}×) {item.status}"
            )


if __name__ == "__main__":
    main()
