"""What every page shares: settings, services and the LLM built once per process (st.cache_resource), the
engine choice, one-shot messages, errors shown in Chinese (show_error: the one place a QAError becomes what
the user reads; a store error comes with a 重试 button), page switching, and ingesting files (samples and
uploads)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from app_pages import auth, ui
from qa.core.config import Settings
from qa.core.errors import InputError, QAError
from qa.core.schemas import IngestResult, ReportRecord
from qa.engines.base import Engine
from qa.ingest.pipeline import collect_files, ingest_file
from qa.store.errors import ReportDamaged, StoreDamaged, StoreError, StoreReadOnly
from qa.wiring import Services, make_engine, open_services

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "data" / "reports"
UPLOADS = "uploads"
GOTO = "goto_page"  # set to a page name (chat, library…) to switch pages on the next run
# Widget values kept while another page is shown (Streamlit forgets the state of widgets not drawn).
KEPT_KEYS = ("flt_reports", "flt_years", "sum_report", "sum_engine", "sum_batch", "cmp_reports", "cmp_indicator",
             "eval_dataset", "eval_gold", "eval_docs", "eval_engine", "eval_k")  # fmt: skip
KEPT_PREFIXES = ("eval_baseline:", "eval_gold:")


# ---- wiring ----------------------------------------------------------------------------------------


WORKSPACE = "workspace"  # the session's workspace ("" the default one; chosen in the sidebar)


@st.cache_resource(show_spinner=False)
def base_settings() -> Settings:
    """The installation's settings, before a workspace is chosen (QA_WORKSPACE is the sessions' default)."""
    return Settings.from_env({k: v for k, v in os.environ.items() if k != "QA_WORKSPACE"})


def current_workspace() -> str:
    return st.session_state.get(WORKSPACE, os.environ.get("QA_WORKSPACE", "")) or ""


def get_settings() -> Settings:
    return base_settings().in_workspace(current_workspace())


@st.cache_resource(show_spinner="正在打开文档库与向量模型…")
def _services_of(workspace: str) -> Services:
    # One Store per workspace for every session of this process: it notices writes by other processes
    # (qa ingest / qa rm in a shell) through the registry stamp and reconnects; "reportqa app" names it to
    # waiting writers.
    return open_services(base_settings().in_workspace(workspace), owner="reportqa app")


def get_services() -> Services:
    return _services_of(current_workspace())


@st.cache_resource(show_spinner=False)
def get_engine(name: str | None = None) -> Engine:
    """The engine named (offline, llm), default the configured one; built once per server."""
    return make_engine(base_settings(), name)


def engine_or_error() -> tuple[Engine, ui.UserMessage | None]:
    """The configured engine, or the offline one and what is wrong with the configured LLM."""
    try:
        return get_engine(), None
    except QAError as ex:
        return get_engine("offline"), ui.error_message(ex)


def engine_choice(key: str, label: str) -> Engine:
    """The engine for a page: offline unless QA_LLM_MODEL is set, then a choice between the configured LLM
    (the default) and the offline engine. A misconfigured LLM raises its ConfigError for the page to show."""
    settings = get_settings()
    if not settings.llm_model:
        st.caption(ui.escape_markdown(f"引擎：{ui.OFFLINE_ENGINE_LABEL}。设置 QA_LLM_MODEL 后可改用 LLM。"))
        return get_engine("offline")
    labels = {"llm": f"LLM：{settings.llm_model}", "offline": ui.OFFLINE_ENGINE_LABEL}
    choice = st.radio(label, list(labels), format_func=labels.get, key=key, horizontal=True)
    return get_engine(choice)


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


def store_message(error: StoreError) -> ui.UserMessage:
    """A store error in Chinese: what happened and what to do (by its code); the original in 详细信息."""
    return ui.error_message(error)


def message_for(error: QAError) -> ui.UserMessage:
    """Any QAError as the app shows it (ui.error_message: by its code, from one table)."""
    return ui.error_message(error)


def retry_store() -> None:
    """The 重试 button's callback: reconnect to the store (a reconnect that fails shows on the next run)."""
    with contextlib.suppress(QAError):
        get_services().store.reload()


def show_error(error: QAError | ui.UserMessage, retry_key: str = "store-retry") -> None:
    """An error in Chinese (ui.error_message: what happened, to which file, what to do), with the original
    message in a 详细信息 expander when the text is a translation. A store error gets a 重试 button: the page
    runs again (session state, the chat history included, is kept)."""
    message = message_for(error) if isinstance(error, QAError) else error
    st.error(ui.escape_markdown(message.text))
    if message.detail:
        error_detail(message.detail)
    if isinstance(error, StoreError) and not isinstance(error, ReportDamaged | StoreDamaged | StoreReadOnly):
        st.button("重试", key=retry_key, on_click=retry_store, icon=":material/refresh:")


def error_detail(detail: str) -> None:
    with st.expander(ui.ERROR_DETAIL_LABEL):
        st.caption(ui.escape_markdown(detail))


# ---- ingesting -------------------------------------------------------------------------------------


def ingest_one(path: Path, services: Services, progress: Callable[[int], None] | None = None) -> IngestResult:
    """Ingest one file; a QAError becomes a failed result carrying its reason."""
    try:
        return ingest_file(path, services.store, services.embedder, services.settings, progress)
    except StoreError as ex:  # busy (another writer) or unreadable: said in Chinese, kept as the reason
        return IngestResult(str(path), path.name, "failed", store_message(ex).text)
    except QAError as ex:
        reason = ex.reason if isinstance(ex, InputError) else str(ex)
        return IngestResult(str(path), path.name, "failed", reason, code=ex.code, fields=ex.fields)


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
        (ui.escape_markdown(ui.ingest_line(n, r)), ui.result_message(r).detail)
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
    if not auth.can("upload"):  # importing changes the library: editors and admins only
        return
    if st.button("导入示例报告", type="primary", key=key, icon=":material/download:"):
        results = import_samples(services)
        show_import_result(results, [Path(r.path).name for r in results], on_next_run=True)
        st.rerun()


def empty_library(services: Services, what: str, key: str) -> None:
    """What a page shows while the library is empty."""
    if not auth.can("upload"):
        st.warning(f"文档库中还没有报告，{what}。请联系编辑或管理员导入报告。")
        return
    st.warning(f"文档库中还没有报告，{what}。可以先导入示例报告，或到「文档库」页面上传自己的报告。")
    with st.container(horizontal=True):
        samples_button(services, key)
        st.button(
            "上传报告", icon=":material/upload:", on_click=go_to, args=("library",), key=f"{key}-upload"
        )
