"""评测: run a question set (evals/datasets/*.jsonl or an uploaded JSONL in the DESIGN.md format) over a docs
folder with the offline engine or the configured LLM, compare with a baseline, see what fails and why, keep
the run in the history (<QA_DATA_DIR>/eval_history.jsonl) and download the report."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from app_pages import auth, ui, ui_eval
from app_pages.common import ROOT, UPLOADS, engine_choice, get_settings, show_flash
from qa.core.config import Settings
from qa.core.errors import InputError
from qa.evals import gate, history
from qa.evals.evaluate import load_dataset, load_summary_gold
from qa.evals.gate import Comparison
from qa.evals.run import EvalOptions, conclude, dataset_sha, run_eval

DATASETS = ROOT / "evals" / "datasets"
BASELINES = ROOT / "evals" / "baselines"
UPLOAD = "__upload__"
NO_FILE = "__none__"
RESULT = "eval_result"


def choose_inputs() -> dict[str, Any]:
    """The form: dataset (or an upload), summary gold, baseline, docs folder, engine, k."""
    datasets, golds = ui_eval.dataset_files(DATASETS)
    baselines = sorted(BASELINES.glob("*.json")) if BASELINES.is_dir() else []
    left, right = st.columns(2, gap="large")
    with left:
        names = {str(p): p.name for p in datasets} | {UPLOAD: "上传 JSONL 文件…"}
        dataset = st.selectbox("数据集", list(names), format_func=names.get, key="eval_dataset")
        upload = None
        if dataset == UPLOAD:
            upload = st.file_uploader(
                "上传数据集（JSONL，每行一个问题）",
                type=["jsonl", "json", "txt"],
                key="eval_upload",
                help='每行：{"id", "doc", "question", "answer", "answer_type", "evidence"}，见 DESIGN.md。',
            )
            dataset_name = ui_eval.upload_name(upload.name) if upload else ""
        else:
            dataset_name = Path(dataset).name
        llm_chosen = bool(get_settings().llm_model) and st.session_state.get("eval_engine", "llm") == "llm"
        default = ui_eval.default_baseline(baselines, dataset_name, "llm" if llm_chosen else "extractive")
        base_names = {NO_FILE: "不与基线比较"} | {str(p): p.name for p in baselines}
        base_key = f"eval_baseline:{dataset_name}"  # each dataset has its own default baseline
        if st.session_state.get(base_key) not in base_names:
            st.session_state[base_key] = str(default) if default else NO_FILE
        baseline = st.selectbox("基线", list(base_names), format_func=base_names.get, key=base_key)
        gold_names = {NO_FILE: "不检查摘要"} | {str(p): p.name for p in golds}
        gold_default = ui_eval.default_summary_gold(Path(baseline) if baseline != NO_FILE else None, golds)
        gold_key = f"eval_gold:{dataset_name}"
        if st.session_state.get(gold_key) not in gold_names:
            st.session_state[gold_key] = str(gold_default) if gold_default else NO_FILE
        gold = st.selectbox(
            "摘要检查（摘要金标）", list(gold_names), format_func=gold_names.get, key=gold_key,
            help="同时为金标中的报告生成摘要，检查元数据、关键数据、数字可溯源与章节。",
        )  # fmt: skip
    with right:
        # defaults through the session state: these values are kept across pages (common.KEPT_KEYS)
        folders = [str(p) for p in ui_eval.docs_folders(ROOT)] + [ui_eval.LIBRARY_DOCS]
        if st.session_state.get("eval_docs") not in folders:
            st.session_state["eval_docs"] = folders[0]
        st.session_state.setdefault("eval_k", 5)
        docs = st.selectbox("文档目录", folders, key="eval_docs", format_func=lambda c: ui_eval.docs_label(c, ROOT),
                            help="数据集中的 doc 须是这个目录里的文件名。")  # fmt: skip
        engine = engine_choice("eval_engine", "引擎")
        k = st.number_input("k（检索段落数）", min_value=1, max_value=20, step=1, key="eval_k")
    return {
        "dataset": None if dataset == UPLOAD else Path(dataset),
        "upload": upload,
        "dataset_name": dataset_name,
        "baseline": None if baseline == NO_FILE else Path(baseline),
        "gold": None if gold == NO_FILE else Path(gold),
        "docs": docs,
        "engine": engine,
        "k": int(k),
    }


def run(inputs: dict[str, Any]) -> dict[str, Any]:
    """Check the inputs (a QAError ends the page run as st.error), run the eval with a progress bar, record
    it in the history and keep what the page shows."""
    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="qa-app-eval-docs-") as docs_tmp:
        if inputs["docs"] == ui_eval.LIBRARY_DOCS:
            docs = ui_eval.copy_uploads(settings.data_dir / UPLOADS, Path(docs_tmp))
        else:
            docs = ui_eval.check_docs(inputs["docs"], ROOT)
        return _run(inputs, settings, docs)


def _run(inputs: dict[str, Any], settings: Settings, docs: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qa-app-eval-") as tmp:
        if inputs["dataset"] is None:
            upload = inputs["upload"]
            if upload is None:
                raise InputError("请先上传数据集文件（JSONL）")
            dataset = Path(tmp) / inputs["dataset_name"]
            dataset.write_text(ui_eval.upload_text(upload.name, upload.getvalue()), encoding="utf-8")
            label = f"上传/{inputs['dataset_name']}"  # a path-like label: history groups runs by file name
        else:
            dataset, label = inputs["dataset"], str(inputs["dataset"].relative_to(ROOT))
        cases = load_dataset(dataset, docs)
        golds = load_summary_gold(inputs["gold"], docs) if inputs["gold"] else None
        baseline = gate.load_baseline(inputs["baseline"]) if inputs["baseline"] else None
        sha = dataset_sha(dataset)
    bar = st.progress(0.0, text=f"准备评测：{len(cases)} 个问题…")

    def on_progress(stage: str, done: int, total: int | None) -> None:
        fraction, text = ui_eval.progress_value(stage, done, total, golds is not None)
        bar.progress(min(1.0, fraction), text=text)

    result = run_eval(settings, cases, docs, engine=inputs["engine"], options=EvalOptions(k=inputs["k"]),
                      summary_golds=golds, progress=on_progress)  # fmt: skip
    bar.progress(1.0, text=f"评测完成：{len(cases)} 个问题")
    metrics = result.metrics
    # the same stamp, comparison and history line as `qa eval`: app and CLI runs line up
    recorded = conclude(metrics, sha, label, baseline, settings.data_dir / ui_eval.HISTORY_FILE)
    comparison, commit = recorded.comparison, recorded.git_commit
    baseline_name = inputs["baseline"].name if inputs["baseline"] else ""
    meta = {"dataset": label, "dataset_sha": sha, "git_commit": commit, "baseline": baseline_name}
    return {
        "metrics": metrics,
        "comparison": comparison,
        "baseline_name": baseline_name,
        "dataset_name": inputs["dataset_name"],
        "failed_docs": [ui.ingest_line(Path(r.path).name, r) for r in result.failed_docs],
        "files": ui_eval.report_files(metrics, comparison, meta),
    }


def metric_row(metrics: dict[str, Any], comparison: Comparison | None, summary: bool, runs: list[dict],
               dataset_name: str) -> None:  # fmt: skip
    cards = ui_eval.metric_cards(metrics, comparison, summary=summary)
    for column, card in zip(st.columns(max(1, len(cards))), cards, strict=False):
        with column:
            trend = ui_eval.metric_trend(runs, card.name, dataset_name)
            flat = card.delta == ui_eval.FLAT
            st.metric(card.label, card.value, delta=card.delta, help=card.help, border=True,
                      chart_data=trend if len(trend) > 1 else None, delta_color="off" if flat else ("inverse" if card.lower_is_better else "normal"),
                      delta_arrow="off" if flat else "auto")  # fmt: skip


def show_result(result: dict[str, Any], runs: list[dict]) -> None:
    metrics, comparison = result["metrics"], result["comparison"]
    engine = (
        "LLM：" + str(metrics.get("model")) if metrics.get("engine") == "llm" else ui.OFFLINE_ENGINE_LABEL
    )
    st.subheader("结果", anchor=False)
    st.caption(
        ui.escape_markdown(
            f"{metrics['dataset']} · {metrics['n']} 个问题 · k={metrics['k']} · 引擎：{engine} · "
            f"用时 {metrics.get('wall_s', '—')} 秒 · p50 {metrics.get('p50_ms')} ms · p95 {metrics.get('p95_ms')} ms · "
            f"commit {metrics.get('git_commit') or '未知'}"
        )
    )
    for line in result["failed_docs"]:
        st.warning(ui.escape_markdown(line))
    if comparison is not None:
        for warning in comparison.warnings:
            st.caption(ui.escape_markdown(f"⚠ {warning}"))
        if comparison.regressed:
            st.warning(ui.escape_markdown(ui_eval.regression_text(comparison, result["baseline_name"])))
        else:
            st.success(ui.escape_markdown(f"与基线 {result['baseline_name']} 相比没有指标下降。"))
    metric_row(metrics, comparison, False, runs, result["dataset_name"])
    if comparison is not None:
        left, right = st.columns(2)
        for column, label, ids in ((left, "新增失败", comparison.newly_failing),
                                   (right, "新增通过", comparison.newly_passing)):  # fmt: skip
            column.markdown(f"**{label}（{len(ids)}）**：" + ui.escape_markdown("、".join(ids) or "无"))
    errors = ui_eval.error_rows(metrics)
    if errors:
        st.error(ui.escape_markdown(ui_eval.errors_text(errors)))
    failing = ui_eval.failing_questions(metrics)
    st.subheader(f"答错的问题（{len(failing)}）", anchor=False)
    if not failing:
        st.caption("没有答错的问题。")
    newly = set(comparison.newly_failing) if comparison else set()
    for row in failing:
        with st.expander(ui.escape_markdown(ui_eval.failing_label(row, row["id"] in newly))):
            st.markdown(
                "  \n".join(
                    f"**{label}**：{ui.escape_markdown(str(value))}"
                    for label, value in ui_eval.failing_details(row)
                )
            )
            for passage in row.get("passages", []):
                st.caption(
                    ui.escape_markdown(
                        f"[{passage['n']}] {passage['report']} · {passage['section'] or '（正文开头）'}"
                    )
                )
                st.markdown(ui.text_html(passage["text"]), unsafe_allow_html=True)
    if metrics.get("summary"):
        st.subheader("摘要检查", anchor=False)
        metric_row(metrics, comparison, True, runs, result["dataset_name"])
        st.dataframe(ui_eval.summary_rows(metrics), hide_index=True)
    files = result["files"]
    with st.container(horizontal=True):
        st.download_button("下载报告（HTML）", files["html"], file_name="eval-report.html", mime="text/html",
                           icon=":material/code:", on_click="ignore", key="eval-dl-html")  # fmt: skip
        st.download_button("下载报告（Markdown）", files["md"], file_name="eval-report.md", mime="text/markdown",
                           icon=":material/description:", on_click="ignore", key="eval-dl-md")  # fmt: skip
        st.download_button("下载结果（JSON）", files["json"], file_name="eval-report.json",
                           mime="application/json", icon=":material/data_object:", on_click="ignore",
                           key="eval-dl-json")  # fmt: skip


def show_history(runs: list[dict], dataset_name: str) -> None:
    st.subheader("历史", anchor=False)
    rows = ui_eval.history_rows(runs, dataset_name or None)
    if not rows:
        st.caption(ui.escape_markdown(f"{dataset_name or '这个数据集'} 还没有评测记录。"))
        return
    labels = [ui_eval.QA_LABELS[name] for name in ui_eval.HISTORY_METRICS]
    if len(rows) > 1:
        st.line_chart(
            {key: [row[key] for row in rows] for key in ["运行", *labels]},
            x="运行",
            y=labels,
            x_label="运行（时间 · commit）",
            y_label="%",
            height=320,
        )
    st.caption(
        ui.escape_markdown(
            f"{dataset_name} 共 {len(rows)} 次评测记录（{ui_eval.HISTORY_FILE}）"
            + ("。" if len(rows) > 1 else "；再运行一次即可看到趋势图。")
        )
    )
    st.dataframe(ui_eval.history_table(runs, dataset_name or None), hide_index=True)


def page_eval() -> None:
    settings = get_settings()
    st.title("评测")
    if not auth.can("eval"):  # the page is not in the menu for others; an old link lands here
        st.error("评测需要管理员权限。")
        return
    show_flash()
    inputs = choose_inputs()
    if st.button("运行评测", type="primary", icon=":material/play_arrow:", key="eval-run"):
        st.session_state.pop(RESULT, None)  # a failed run must not leave the previous result on show
        st.session_state[RESULT] = run(inputs)
    runs = history.read_runs(settings.data_dir / ui_eval.HISTORY_FILE)
    result = st.session_state.get(RESULT)
    if result:
        show_result(result, runs)
    show_history(runs, result["dataset_name"] if result else inputs["dataset_name"])
