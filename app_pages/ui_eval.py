"""The 评测 page without Streamlit: which files are datasets, summary golds and baselines, the default
baseline for a dataset, metric cards with deltas, progress of a run, the history chart, the report files.

Metric names and files follow the `qa eval` contract (DESIGN.md, qa/gate.py, qa/history.py); this module
only labels and arranges them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app_pages.ui import local_time
from qa.core.errors import InputError
from qa.evals import report as evalreport
from qa.evals.gate import Comparison

HISTORY_FILE = "eval_history.jsonl"
FLAT = "持平"  # the delta of a metric equal to its baseline
QA_LABELS = {
    "retrieval_recall_at_k": "检索召回率@k",
    "answer_accuracy": "答案准确率",
    "refusal_accuracy": "拒答准确率",
    "citation_precision": "引用精确率",
    "number_grounding": "数字可溯源率",
    "confidently_wrong": "答错率（越低越好）",
    "false_refusals": "误拒率（越低越好）",
    "judge_accuracy": "LLM 评判准确率",
}
SUMMARY_LABELS = {
    "summary.metadata_accuracy": "摘要 · 元数据准确率",
    "summary.figure_recall": "摘要 · 关键数据召回率",
    "summary.number_grounding": "摘要 · 数字可溯源率",
    "summary.section_completeness": "摘要 · 章节完整率",
    "summary.compression": "摘要 · 篇幅占原文比（越低越短）",
    "summary.key_fact_coverage": "摘要 · 要点覆盖率",
    "summary.label_quality": "摘要 · 指标名称准确率",
}
HELP = {
    "retrieval_recall_at_k": "全部证据都在前 k 个检索段落中的问题占比",
    "answer_accuracy": "可回答的问题中答对的占比（数字：标准答案中的数字全部出现）",
    "refusal_accuracy": "恰好拒答了无法回答的问题的占比",
    "citation_precision": "引用的段落中含有证据的占比",
    "number_grounding": "答案中的数字能在所引原文中找到的占比",
    "confidently_wrong": "给出了答案（未拒答）但答错的问题占全部问题的比例：带引用的错误数字是最坏的结果",
    "false_refusals": "本可回答却拒答的问题占可回答问题的比例",
    "judge_accuracy": "LLM 评判为正确的文本/列表答案占比",
    "summary.metadata_accuracy": "摘要中标题、发布单位、地区、年度等与标准一致的占比",
    "summary.figure_recall": "标准要求的关键数据在摘要中出现的占比",
    "summary.number_grounding": "摘要中的数字能在报告原文中找到的占比",
    "summary.section_completeness": "报告有的“存在的不足”“下一步计划”在摘要中出现的占比",
    "summary.compression": "摘要正文（不含按需显示的原文引用）字数占报告字数的比例，各报告取平均；目标不超过 25%",
    "summary.key_fact_coverage": "标准中每份报告读者必须看到的 5–8 个要点（数字）在摘要中出现的占比",
    "summary.label_quality": "摘要关键指标表中，要点数字的指标名称与标准名称一致的占比（不是句子碎片）",
}
ENGINES = {"extractive": "抽取式", "retrieval-only": "仅检索"}
SECTION_LABELS = {"problems": "存在的不足", "plans": "下一步计划"}
HISTORY_METRICS = ("answer_accuracy", "refusal_accuracy", "retrieval_recall_at_k", "number_grounding")
STAGES = {"ingest": "正在导入文档", "questions": "正在回答问题", "summaries": "正在生成并检查摘要"}


# ---- files -------------------------------------------------------------------------------------------


def _first_record(path: Path) -> dict | None:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None
    return None


def is_summary_gold(path: Path) -> bool:
    """A summary gold file names reports (doc, must_figures…) and has no questions."""
    record = _first_record(path)
    return record is not None and "question" not in record and "doc" in record


def dataset_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(question datasets, summary gold files) among folder/*.jsonl, by name."""
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    golds = [p for p in files if is_summary_gold(p)]
    return [p for p in files if p not in golds], golds


def baseline_info(path: Path) -> dict | None:
    """A baseline's dataset and engine, or None when it cannot be read (choosing it then shows why)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def default_baseline(baselines: Sequence[Path], dataset_name: str, engine: str) -> Path | None:
    """The baseline made from the same dataset (file name), preferring one of the same engine."""
    matching = []
    for path in baselines:
        info = baseline_info(path)
        if info and Path(str(info.get("dataset", ""))).name == dataset_name:
            matching.append((info.get("engine") != engine, path.name, path))
    return min(matching)[2] if matching else None


def default_summary_gold(baseline: Path | None, golds: Sequence[Path]) -> Path | None:
    """Check summaries by default when the baseline has summary metrics (as `make eval` does for qa_dev)."""
    info = baseline_info(baseline) if baseline else None
    if not info or not golds or not any(str(k).startswith("summary.") for k in info.get("metrics", {})):
        return None
    return next((g for g in golds if g.name == "summary_gold.jsonl"), golds[0])


LIBRARY_DOCS = "__library__"


def docs_folders(root: Path) -> list[Path]:
    """The report folders an eval may read: the project's own (data/reports, evals/*/docs) — never a path
    typed by a visitor."""
    found = [root / "data" / "reports", *sorted((root / "evals").glob("*/docs"))]
    return [p for p in found if p.is_dir()]


def docs_label(choice: str, root: Path) -> str:
    if choice == LIBRARY_DOCS:
        return "文档库中上传的报告"
    path = Path(choice)
    return str(path.relative_to(root)) if path.is_relative_to(root) else path.name


def check_docs(choice: str, root: Path) -> Path:
    """The chosen folder, when it is one of `docs_folders`; anything else is refused (no server path is
    ever read on a visitor's word)."""
    allowed = {str(p) for p in docs_folders(root)}
    if choice not in allowed:
        raise InputError("请从列表中选择文档目录（只能使用项目自带的报告或文档库中上传的报告）")
    return Path(choice)


def copy_uploads(uploads: Path, into: Path) -> Path:
    """The library's uploaded report files, copied into a folder of their own (an eval ingests a folder)."""
    into.mkdir(parents=True, exist_ok=True)
    files = (
        [p for p in uploads.iterdir() if p.is_file() and not p.name.startswith(".")]
        if uploads.is_dir()
        else []
    )
    if not files:
        raise InputError("文档库中还没有上传的报告：请先在文档库上传，或选择项目自带的报告目录")
    for path in files:
        (into / path.name).write_bytes(path.read_bytes())
    return into


def upload_text(name: str, data: bytes) -> str:
    """An uploaded dataset as text; InputError for empty or non-UTF-8 bytes (load_dataset names bad lines)."""
    if not data.strip():
        raise InputError("上传的数据集是空文件", name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as ex:
        raise InputError(f"不是 UTF-8 编码的 JSONL 文本（第 {ex.start} 字节）", name) from ex


def upload_name(name: str) -> str:
    """A plain file name for an uploaded dataset (what the report and history record)."""
    base = re.split(r"[\\/]", name or "")[-1].strip()
    base = re.sub(r"[^\w.\-\u4e00-\u9fff]", "_", base).lstrip(".")
    return base or "dataset.jsonl"


# ---- a run -------------------------------------------------------------------------------------------


def progress_value(stage: str, done: int, total: int | None, with_summaries: bool) -> tuple[float, str]:
    """(fraction, text) for the progress bar: ingest 0–10 %, questions up to 90 % (100 % without
    summaries), summaries the rest. The ingest stage counts chunks and has no known total."""
    label = STAGES.get(stage, stage)
    if stage == "ingest":
        return 0.05, f"{label}：已向量化 {done} 个分块"
    share = done / total if total else 0.0
    end = 0.9 if with_summaries else 1.0
    if stage == "questions":
        return 0.1 + (end - 0.1) * share, f"{label}（{done}/{total}）"
    return 0.9 + 0.1 * share, f"{label}（{done}/{total}）"


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


@dataclass(frozen=True)
class MetricCard:
    name: str
    label: str
    value: str
    delta: str | None  # '+2.5 个百分点' / '-1.0 个百分点' / FLAT; None without a baseline
    help: str
    regressed: bool = False
    lower_is_better: bool = False  # 答错率: a rise is shown red


def metric_cards(
    metrics: dict[str, Any], comparison: Comparison | None, summary: bool = False
) -> list[MetricCard]:
    """The QA metrics (summary=False) or the summary metrics, each with its delta against the baseline."""
    from qa.evals.gate import LOWER_IS_BETTER, scalar_metrics

    labels = SUMMARY_LABELS if summary else QA_LABELS
    current = scalar_metrics(metrics)
    deltas = {d.name: d for d in comparison.deltas} if comparison else {}
    cards = []
    for name, label in labels.items():
        if name not in current:
            continue
        if name == "retrieval_recall_at_k" and metrics.get("k"):
            label = f"检索召回率@{metrics['k']}"
        d = deltas.get(name)
        delta = None
        if d is not None and d.delta is not None:
            points = d.delta * 100
            delta = FLAT if abs(points) < 0.05 else f"{points:+.1f} 个百分点"
        cards.append(MetricCard(name, label, _percent(current[name]), delta, HELP.get(name, ""),
                                bool(d and d.regressed), name in LOWER_IS_BETTER))  # fmt: skip
    return cards


def regression_text(comparison: Comparison, baseline_name: str) -> str:
    worse = "；".join(
        f"{(QA_LABELS | SUMMARY_LABELS).get(d.name, d.name)} {_percent(d.baseline or 0)} → {_percent(d.current or 0)}"
        f"（容差 {d.tolerance * 100:.1f} 个百分点）"
        for d in comparison.regressions
    )
    return f"与基线 {baseline_name} 相比有指标下降：{worse}"


def failing_questions(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions answered wrongly, as in the eval report."""
    return evalreport.failing_rows(metrics)


def failing_label(row: dict[str, Any], newly: bool) -> str:
    marks = "（新增失败）" if newly else ""
    marks += "（出错）" if row.get("error") else ("（复述提示，不计分）" if row.get("echo") else "")
    return f"{row['id']}{marks} · {row['question']}"


def error_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions whose answer failed with an error (a provider or output error), as in the report."""
    return evalreport.error_rows(metrics)


def errors_text(rows: Sequence[dict[str, Any]]) -> str:
    """One notice for the errored questions: how many, each id with its message."""
    listed = "；".join(f"{r['id']}：{r['error']}" for r in rows)
    return f"{len(rows)} 个问题回答时出错（计为答错，其余问题照常评分）：{listed}"


def failing_details(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) lines shown for a failing question: the error instead of an answer when it failed."""
    given = ("出错", row["error"]) if row.get("error") else ("给出的答案", row.get("answer") or "（无）")
    lines = [("问题", row["question"]), given, ("标准答案", row["gold"]), ("报告", row["doc"]),
             ("证据已检索到", {True: "是", False: "否", None: "—"}[row.get("retrieval_hit")])]  # fmt: skip
    if row.get("echo"):
        lines.append(("判定", "答案只是复述了问题或资料原文，不计为答对"))
    return lines


def summary_rows(metrics: dict[str, Any]) -> list[dict]:
    """One row per report of the summary checks."""
    rows = []
    for row in (metrics.get("summary") or {}).get("rows", []):
        rows.append(
            {
                "报告": row["doc"],
                "通过": "✓" if row["ok"] else "✗",
                "元数据错误": "；".join(f"{k}={v}" for k, v in row.get("metadata_wrong", {}).items()),
                "缺少的关键数据": "、".join(row.get("figures_missing", [])),
                "无法溯源的数字": "、".join(row.get("numbers_ungrounded", [])),
                "章节": " ".join(
                    f"{SECTION_LABELS.get(k, k)} {'✓' if v else '✗'}"
                    for k, v in row.get("sections", {}).items()
                ),
                "错误": row.get("error", ""),
            }
        )
    return rows


def report_files(
    metrics: dict[str, Any], comparison: Comparison | None, meta: dict[str, Any]
) -> dict[str, str]:
    """The eval report as Markdown, HTML and JSON (the same files `qa eval --report` writes)."""
    payload = {**metrics, "baseline": comparison.to_dict() if comparison else None}
    return {
        "md": evalreport.to_markdown(metrics, comparison, **meta),
        "html": evalreport.to_html(metrics, comparison, **meta),
        "json": evalreport.to_json(payload),
    }


# ---- history -----------------------------------------------------------------------------------------


def history_rows(runs: Sequence[dict[str, Any]], dataset_name: str | None = None) -> list[dict]:
    """One chart row per recorded run (oldest first): '时间 · commit' and the four headline metrics in
    percent. Only runs on the dataset of that file name when one is given."""
    rows = []
    for run in runs:
        if dataset_name and Path(str(run.get("dataset", ""))).name != dataset_name:
            continue
        metrics = run.get("metrics") or {}
        when = local_time(str(run.get("time", "")))  # the server's local time, as everywhere in the app
        row: dict[str, Any] = {"运行": f"{when} · {run.get('git_commit') or '无 commit'}"}
        for name in HISTORY_METRICS:
            value = metrics.get(name)
            row[QA_LABELS[name]] = round(float(value) * 100, 2) if value is not None else None
        rows.append(row)
    return rows


def history_table(runs: Sequence[dict[str, Any]], dataset_name: str | None = None) -> list[dict]:
    """The chart's rows plus engine, model and how many questions failed, newest first (for a table)."""
    chosen = [r for r in runs if not dataset_name or Path(str(r.get("dataset", ""))).name == dataset_name]
    rows = []
    for run, row in zip(chosen, history_rows(chosen), strict=True):
        engine = (
            "LLM：" + str(run.get("model"))
            if run.get("engine") == "llm"
            else ENGINES.get(run.get("engine"), "")
        )
        rows.append({**row, "引擎": engine, "问题数": run.get("n"), "失败": len(run.get("failing", []))})
    return rows[::-1]


def metric_trend(runs: Sequence[dict[str, Any]], name: str, dataset_name: str | None = None) -> list[float]:
    """One metric over the recorded runs of a dataset (for the sparkline under a metric)."""
    return [
        float(run["metrics"][name])
        for run in runs
        if name in (run.get("metrics") or {})
        and (not dataset_name or Path(str(run.get("dataset", ""))).name == dataset_name)
    ]
