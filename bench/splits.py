"""The development material's check split, and scores by split.

The check split is fixed by rule, not chosen by looking at results: a report is in it when the first 8 hex
digits of the SHA-256 of its file name are divisible by 4 (about a quarter of the reports). Questions about
a check report, and across-report questions, are scored apart: tune on `dev`, look at `check` only to
report it.

    python bench/splits.py                      # the check reports of each web dataset
    python bench/splits.py OUT.json [OUT.json…] # metrics by split of `qa eval --json OUT.json` runs
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = (ROOT / "evals/datasets/web_dev.jsonl", ROOT / "evals/corpus-web2/qa.jsonl")


def in_check(doc: str) -> bool:
    return doc != "*" and int(hashlib.sha256(doc.encode()).hexdigest()[:8], 16) % 4 == 0


def split_of(row: dict) -> str:
    return "check" if in_check(row.get("doc", "*")) else ("across" if row.get("doc") == "*" else "dev")


def scores(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r.get("answer_type") != "unanswerable"]
    unanswerable = [r for r in rows if r.get("answer_type") == "unanswerable"]
    refused = [r for r in answerable if r.get("refused")]
    wrong = [r for r in answerable if not r.get("correct") and not r.get("refused")]
    return {
        "n": len(rows),
        "accuracy": round(sum(bool(r.get("correct")) for r in rows) / len(rows), 3) if rows else None,
        "false_refusals": round(len(refused) / len(answerable), 3) if answerable else None,
        "confidently_wrong": round(len(wrong) / len(rows), 3) if rows else None,
        "refusal_on_unanswerable": round(sum(bool(r.get("correct")) for r in unanswerable) / len(unanswerable), 3)
        if unanswerable else None,
    }  # fmt: skip


def main(paths: list[str]) -> None:
    if not paths:
        for dataset in DATASETS:
            docs = sorted({json.loads(line)["doc"] for line in dataset.open(encoding="utf-8")})
            print(f"{dataset.relative_to(ROOT)}: check = {[d for d in docs if in_check(d)]}")
        return
    for path in paths:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))["rows"]
        for split in ("dev", "check", "across"):
            part = [r for r in rows if split_of(r) == split]
            if part:
                print(f"{path} {split:6s} {json.dumps(scores(part), ensure_ascii=False)}")


if __name__ == "__main__":
    main(sys.argv[1:])
