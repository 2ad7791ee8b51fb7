"""What every page shares: settings, services and the LLM built once per process (st.cache_resource), the
engine choice, one-shot messages, errors shown in Chinese (show_error: the one place a QAError becomes what
the user reads), page switching, and ingesting files (samples and uploads)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from qa import ui
from qa.config import Settings
from qa.errors import InputError, QAError
from qa.ingest import collect_files, ingest_file
from qa.llm import ChatLLM
from qa.schemas import IngestResult, ReportRecord
from qa.wiring import Services, make_llm, open_services

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "data" / "reports"
UPLOADS = "uploads"
GOTO = "goto_page"  # set to a page name (chat, library…) to switch pages on the next run
# Widget values kept while another page is shown (Streamlit forgets the state of widgets not drawn).
KEPT_KEYS = ("flt_reports", "flt_years", "sum_report", "sum_engine", "sum_batch", "cmp_reports", "cmp_indicator",
             "eval_dataset", "eval_gold", "eval_docs", "eval_engine", "eval_k")  # fmt: skip
KEPT_PREFIXES = ("eval_baseline:", "eval_gold:")


# ---- wiring ----------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    return Settings.from_env(os.environ)


@st.cache_resource(show_spinner="正在打开文档库与向量模型…")
def get_services() -> Services:
    return open_services(get_settings())


@st.cache_resource(show_spinner=False)
def get_llm() -> ChatLLM | None:
    return make_llm(get_settings())


def llm_or_error() -> tuple[ChatLLM | None, ui.UserMessage | None]:
    try:
        return get_llm(), None
    except QAError as ex:
        return None, ui.error_message(ex)


def engine_choice(key: str, label: str) -> ChatLLM | None:
    """The engine for a page: offline unless QA_LLM_MODEL is set, then a choice between the configured LLM
    (the default) and the offline engine. A misconfigured LLM raises its ConfigError for the page to show."""
    settings = get_settings()
    if not settings.llm_model:
        st.caption(ui.escape_markdown(f"引擎：{ui.OFFLINE_ENGINE_LABEL}。设置 QA_LLM_MODEL 后可改用 LLM。"))
        return None
    labels = {"llm": f"LLM：{settings.llm_model}", "offline": ui.OFFLINE_ENGINE_LABEL}
    choice = st.radio(label, list(labels), format_func=labels.get, key=key, horizontal=True)
    return get_llm() if choice == "llm" else None


def keep_widget_state() -> None:
    """Re-assign the kept widget values so they survive a visit to another page."""
    for key in list(st.session_state):
        if isinstance(key, str) and (key in KEPT_KEYS or key.startswith(KEPT_PREFIXES)):
            st.session_state[key] = st.session_state[key]


def keep_valid(key: str, options: list) -> None:
    """Drop values of a multiselect that are no longer options (a deleted report must not linger)."""
    if key in st.session_state:
        st.session_state[key] = [v for v in st.session_state[key] if v in options]


def report_picker(records: list[ReportRecord], label: str, key: str) -> str:
    """A select box of the library's reports (the first one when the kept choice is gone)."""
    by_id = {r.report_id: r for r in records}
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = records[0].report_id
    return st.selectbox(
        label,
        list(by_id),
        format_func=lambda report_id: ui.report_option(by_id.get(report_id), report_id),
        key=key,
    )


def reports_multiselect(records: list[ReportRecord], label: str, key: str, placeholder: str) -> list[str]:
    """A multiselect of the library's reports (choices of deleted reports dropped first)."""
    by_id = {r.report_id: r for r in records}
    keep_valid(key, list(by_id))
    return st.multiselect(
        label,
        list(by_id),
        format_func=lambda report_id: ui.report_option(by_id.get(report_id), report_id),
        key=key,
        placeholder=placeholder,
    )


# ---- messages and navigation -----------------------------------------------------------------------


def go_to(page: str) -> None:
    """Switch to another page on the next run (a button callback cannot switch pages itself)."""
    st.session_state[GOTO] = page


def flash(kind: str, text: str, detail: str = "") -> None:
    """A message shown once at the top of the next run (after a callback or st.rerun); detail: the original
    of a translated error, shown in a 详细信息 expander."""
    st.session_state.setdefault("flash", []).append((kind, text, detail))


def show_flash() -> None:
    for kind, text, detail in st.session_state.pop("flash", []):
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(text)
        if detail:
            error_detail(detail)


def show_error(error: QAError | ui.UserMessage) -> None:
    """An error in Chinese (ui.error_message: what happened, to which file, what to do), with the original
    message in a 详细信息 expander when the text is a translation."""
    message = ui.error_message(error) if isinstance(error, QAError) else error
    st.error(ui.escape_markdown(message.text))
    if message.detail:
        error_detail(message.detail)


def error_detail(detail: str) -> None:
    with st.expander(ui.ERROR_DETAIL_LABEL):
        st.caption(ui.escape_markdown(detail))


# ---- ingesting -------------------------------------------------------------------------------------


def ingest_one(path: Path, services: Services, progress: Callable[[int], None] | None = None) -> IngestResult:
    """Ingest one file; a QAError becomes a failed result carrying its reason."""
    try:
        return ingest_file(path, services.store, services.embedder, services.settings, progress)
    except QAError as ex:
        reason = ex.reason if isinstance(ex, InputError) else str(ex)
        return IngestResult(str(path), path.name, "failed", reason)


def save_and_ingest(
    name: str, data: bytes, services: Services, progress: Callable[[int], None] | None = None
) -> IngestResult:
    """Store one uploaded file under <data_dir>/uploads with a safe name, then ingest it.

    Never raises for a bad upload: the result says why it failed. A failed upload leaves what was stored
    before untouched (the previous file of the same name is put back)."""
    try:
        safe_name = ui.safe_upload_name(name)
        ui.check_upload_size(len(data), services.settings.max_file_bytes)
    except InputError as ex:
        return IngestResult(name, None, "failed", ex.reason)
    folder = services.settings.data_dir / UPLOADS
    target = folder / safe_name
    backup = folder / ".previous" / safe_name
    had_previous = False
    try:
        backup.parent.mkdir(parents=True, exist_ok=True)
        had_previous = target.exists()
        if had_previous:
            os.replace(target, backup)
        target.write_bytes(data)
    except OSError as ex:
        if had_previous and backup.exists():
            os.replace(backup, target)
        return IngestResult(name, safe_name, "failed", f"无法保存上传的文件：{ex.strerror or ex}")
    result = ingest_one(target, services, progress)
    if result.status == "failed":
        target.unlink(missing_ok=True)
        if had_previous:
            os.replace(backup, target)
    elif had_previous:
        backup.unlink(missing_ok=True)
    return result


def import_samples(services: Services) -> list[IngestResult]:
    """Ingest the bundled sample reports with a progress bar; one result per file."""
    files, results = collect_files([SAMPLES_DIR])
    bar = st.progress(0.0, text="正在导入示例报告…")
    for i, path in enumerate(files):
        bar.progress(i / len(files), text=f"正在导入 {path.name}（{i + 1}/{len(files)}）")
        results.append(ingest_one(path, services))
    bar.empty()
    return results


def show_import_result(results: list[IngestResult], names: list[str], on_next_run: bool = False) -> None:
    """What an import did: 导入完成 (success) only when a report was added or updated, else that nothing
    was; the files' lines under it; each failure as its own error, its original reason in 详细信息."""
    kind, headline = ui.ingest_outcome(results)
    lines = [ui.escape_markdown(ui.ingest_line(n, r)) for n, r in zip(names, results, strict=True)
             if r.status != "failed"]  # fmt: skip
    text = "  \n".join([ui.escape_markdown(headline), *lines])
    failures = [
        (ui.escape_markdown(ui.ingest_line(n, r)), ui.reason_message(r.reason).detail)
        for n, r in zip(names, results, strict=True)
        if r.status == "failed"
    ]
    if on_next_run:
        flash(kind, text)
        for line, detail in failures:
            flash("error", line, detail)
        return
    {"success": st.success, "error": st.error}.get(kind, st.info)(text)
    for line, detail in failures:
        st.error(line)
        if detail:
            error_detail(detail)


def samples_button(services: Services, key: str) -> None:
    if st.button("导入示例报告", type="primary", key=key, icon=":material/download:"):
        results = import_samples(services)
        show_import_result(results, [Path(r.path).name for r in results], on_next_run=True)
        st.rerun()


def empty_library(services: Services, what: str, key: str) -> None:
    """What a page shows while the library is empty."""
    st.warning(f"文档库中还没有报告，{what}。可以先导入示例报告，或到「文档库」页面上传自己的报告。")
    with st.container(horizontal=True):
        samples_button(services, key)
        st.button(
            "上传报告", icon=":material/upload:", on_click=go_to, args=("library",), key=f"{key}-upload"
        )
