"""The offline engine's weights are the ones bench/tune.py chose, on the documents its record names."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from qa.answer.extractive import Weights

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "bench/tuning/extractive.json"


def test_the_engines_weights_are_the_tuned_ones_and_the_record_says_on_what() -> None:
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    assert asdict(Weights()) == record["chosen"], "copy bench/tuning/extractive.json's chosen into Weights"
    sys.path.insert(0, str(ROOT / "bench"))
    from splits import in_check

    # the web sets are split by report; the sample set is development material; the holdout is never tuned on
    split_sets = [d for d, lib in record["libraries"].items() if lib["scope"] == "all"]
    tuned = [doc for d in split_sets for doc in record["tuned_on"][d]]
    assert tuned and not any(in_check(doc) for doc in tuned)  # never a check report
    assert set(record["not_looked_at_while_tuning"]["check"]).isdisjoint(tuned)
    assert "evals/datasets/qa_holdout.jsonl" not in record["tuned_on"]
    for split in ("dev", "check", "holdout"):
        assert {"accuracy", "false_refusals", "confidently_wrong", "citation_precision"} <= set(record[split])


def test_the_identity_readers_place_weights_are_the_tuned_ones() -> None:
    from qa.ingest.identity import PlaceWeights

    record = json.loads((ROOT / "bench/tuning/identity.json").read_text(encoding="utf-8"))
    assert asdict(PlaceWeights()) == record["chosen"], (
        "copy bench/tuning/identity.json's chosen into PlaceWeights"
    )
    sys.path.insert(0, str(ROOT / "bench"))
    from splits import in_check

    assert record["tuned_on"] and not any(in_check(doc) for doc in record["tuned_on"])
    assert {"right", "wrong", "n"} <= set(record["check"])
