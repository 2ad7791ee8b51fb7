"""Batch summaries: reports → DIR/NAME.json + .md + .docx (NAME: the report's file name without its extension), resumable, concurrency-limited, atomic writes
(with the user's umask), plus an index (index.jsonl, index.csv, index.xlsx). Also where a ReportView is built
from a file or the store."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from qa.core.config import Settings
from qa.core.errors import QAError
from qa.core.files import atomic_write
from qa.core.office import csv_bytes, local_time, xlsx_bytes
from qa.ingest.chunking import chunk_document
from qa.ingest.pipeline import collect_files, ingest_version, load_document
from qa.models.llm import cost_of
from qa.models.prompts import get_template
from qa.store.chroma import Store
from qa.summary.exports import engine_line, summary_docx
from qa.summary.render import summary_markdown
from qa.summary.summarize import (
    MAP,
    OFFLINE_WRITER,
    ReportView,
    Summary,
    SummaryWriter,
    choose_template,
    section_batches,
    summarize_report,
)

if TYPE_CHECKING:
    from qa.engines.base import Engine

# index.jsonl key → index.csv / index.xlsx heading (the JSONL is for machines, the tables for people: the
# engine in Chinese, times in local time, no template refs or hashes)
INDEX_COLUMNS = {
    "report_id": "报告文件", "title": "标题", "region": "地区", "year": "年度", "publish_date": "发布日期",
    "engine": "生成方式", "key_figures": "关键指标（项）",
    "unverified": "未核实（处）", "prompt_tokens": "输入 tokens", "completion_tokens": "输出 tokens",
    "cost_usd": "费用（美元）", "created_at": "生成时间", "json": "JSON 文件", "markdown": "Markdown 文件",
    "docx": "Word 文件",
}  # fmt: skip


def view_from_file(path: Path, settings: Settings, embedder_name: str) -> ReportView:
    """Load and chunk a file; chunk ids equal those `qa ingest` gives it (same version), no embedding."""
    document = load_document(path, settings)
    version = ingest_version(document.content_hash, settings, embedder_name, report_id=document.report_id)
    chunks = chunk_document(document.report_id, document.text, document.meta, version, settings.chunk_size,
                            settings.chunk_overlap)  # fmt: skip
    return ReportView(document.report_id, document.meta, document.text, chunks, document.content_hash)


def view_from_store(store: Store, report_id: str) -> ReportView:
    record = store.get_report(report_id)
    if record is None:
        from qa.core.errors import InputError

        raise InputError(f"no report {report_id!r} in the store; see `qa ls`", code="input.unknown_report",
                         report=report_id)  # fmt: skip
    return ReportView(report_id, record.meta, store.report_text(report_id), store.report_chunks(report_id),
                      record.content_hash)  # fmt: skip


def output_paths(out_dir: Path, report_id: str) -> tuple[Path, Path, Path]:
    """A report's summary files: JSON (the record; written last, it marks the report done), Markdown, Word.
    They are named after the report's file without its extension (淄川.txt → 淄川.docx, as the app hands
    them out); by the whole file name only when that name already holds another report's summary (a.pdf
    beside a.docx) or an earlier run wrote them so."""
    name = report_id
    stem = Path(report_id).stem
    if stem and stem != report_id and not (out_dir / f"{report_id}.json").exists():
        short = out_dir / f"{stem}.json"
        if not short.exists() or _owner(short) == report_id:
            name = stem
    return out_dir / f"{name}.json", out_dir / f"{name}.md", out_dir / f"{name}.docx"


def _owner(json_path: Path) -> str | None:
    """The report a summary JSON is of (None: unreadable)."""
    try:
        owner = json.loads(json_path.read_text(encoding="utf-8")).get("report_id")
    except (OSError, ValueError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None


_NAMING = threading.Lock()  # a name is chosen and written in one step (two reports of one stem in a batch)


def read_summary(path: Path) -> Summary | None:
    try:
        return Summary.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError):
        return None


def is_current(json_path: Path, source_hash: str, template_ref: str, engine: str, model: str | None,
               prompt_refs: Sequence[str] | None = None) -> bool:  # fmt: skip
    """Skip a report whose summary was made from the same bytes, template (and prompts), engine and model,
    and whose Markdown is there too."""
    existing = read_summary(json_path) if json_path.exists() else None
    return bool(
        existing
        and json_path.with_suffix(".md").exists()
        and existing.source_hash == source_hash
        and existing.template == template_ref
        and existing.engine == engine
        and existing.model == model
        and (prompt_refs is None or existing.prompt_refs == list(prompt_refs))
    )


def up_to_date(view: ReportView, out_dir: Path, template: str | None, engine: SummaryWriter) -> bool:
    """The reuse rule (`qa summarize` and the app alike): a summary in out_dir made from the same bytes,
    template and prompt refs, engine and model, with its Markdown present."""
    chosen = choose_template(view, template)
    return is_current(output_paths(out_dir, view.report_id)[0], view.source_hash, chosen.ref,
                      engine.name, engine.model, engine.summary_refs(chosen))  # fmt: skip


@dataclass
class BatchItem:
    path: str
    report_id: str | None = None
    status: str = "pending"  # ok | skipped | failed | stopped (not run: the batch stopped on a config error)
    reason: str = ""
    fatal: bool = False  # failed on a configuration error that every other report would hit too
    code: str = ""  # the error's code and fields (qa.core.errors), for an interface's own wording
    fields: dict = field(default_factory=dict)
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    unverified: int = 0


@dataclass
class BatchPlan:
    files: list[Path]
    failed: list[BatchItem] = field(default_factory=list)


def plan(paths: Sequence[Path], out_dir: Path | None = None) -> BatchPlan:
    """The report files under the paths, leaving out the output folder (its .md summaries are not reports).
    Two files with the same name would write the same summary: the second one fails instead of silently
    overwriting the first."""
    files, failed = collect_files(paths)
    if out_dir is not None:
        out = out_dir.resolve()
        files = [f for f in files if not f.resolve().is_relative_to(out)]
    items = [BatchItem(r.path, None, "failed", r.reason, code=r.code, fields=r.fields) for r in failed]
    seen: dict[str, Path] = {}
    unique: list[Path] = []
    for path in files:
        first = seen.setdefault(path.name, path)
        if first is path:
            unique.append(path)
        elif first.resolve() != path.resolve():
            items.append(BatchItem(str(path), path.name, "failed",
                                   f"same file name as {first}: both would write {path.name}.json; rename one"))  # fmt: skip
    return BatchPlan(unique, items)


# Rough: Chinese text runs ~0.8 tokens a character with current tokenizers; the reduce prompt carries the
# map notes, and every reply is JSON of about a third of what it summarises.
TOKENS_PER_CHAR = 0.8
NOTES_RATIO = 0.35


def estimate(files: Sequence[Path], settings: Settings, embedder_name: str, engine: Engine,
             out_dir: Path, template: str | None = None, force: bool = False) -> dict:  # fmt: skip
    """What a run would do and cost, without any LLM call: the map prompts are rendered exactly, the reduce
    prompt and the replies are estimated. `rows` has one entry per report."""
    rows: list[dict] = []
    model = engine.model
    mapper = get_template(MAP) if model else None  # no model, no calls: the offline engine costs nothing
    for path in files:
        row: dict = {"path": str(path), "report_id": None, "status": "to summarize", "llm_calls": 0,
                     "est_prompt_tokens": 0, "est_completion_tokens": 0, "reason": ""}  # fmt: skip
        rows.append(row)
        try:
            view = view_from_file(path, settings, embedder_name)
            row["report_id"] = view.report_id
            if not force and up_to_date(view, out_dir, template, engine):
                row["status"] = "up to date"
                continue
            if mapper is None:
                continue
            chosen = choose_template(view, template)
            batches = section_batches(view.chunks)
            map_chars = sum(
                len(m["content"])
                for batch in batches
                for m in mapper.render(title=view.meta.title or view.report_id,
                                       passages=[{"id": c.id, "section": c.section, "text": c.text} for c in batch])
            )  # fmt: skip
            notes_chars = int(len(view.text) * NOTES_RATIO)
            reduce_chars = len(chosen.system) + len(chosen.user) + notes_chars + 200
            row["llm_calls"] = len(batches) + 1
            row["est_prompt_tokens"] = int((map_chars + reduce_chars) * TOKENS_PER_CHAR)
            row["est_completion_tokens"] = int((notes_chars + notes_chars * 0.6) * TOKENS_PER_CHAR)
        except QAError as ex:
            row["status"], row["reason"] = "unreadable", str(ex)
    todo = [r for r in rows if r["status"] == "to summarize"]
    prompt_tokens = sum(r["est_prompt_tokens"] for r in todo)
    completion_tokens = sum(r["est_completion_tokens"] for r in todo)
    for row in todo:
        row["est_cost_usd"] = (cost_of(model, row["est_prompt_tokens"], row["est_completion_tokens"],
                                       settings.prices) if model else 0.0)  # fmt: skip
    return {
        "reports": len(files), "to_summarize": len(todo),
        "up_to_date": sum(r["status"] == "up to date" for r in rows),
        "unreadable": sum(r["status"] == "unreadable" for r in rows),
        "llm_calls": sum(r["llm_calls"] for r in todo), "est_prompt_tokens": prompt_tokens,
        "est_completion_tokens": completion_tokens,
        "est_cost_usd": cost_of(model, prompt_tokens, completion_tokens, settings.prices) if model else 0.0,
        "rows": rows,
    }  # fmt: skip


def write_summary(summary: Summary, view: ReportView, out_dir: Path) -> None:
    """Markdown and Word first, then the JSON, each atomically: the JSON marks a report done, so a run killed
    between the writes redoes the report instead of skipping it with a stale Markdown or Word file."""
    markdown = summary_markdown(summary, {c.id: c.section for c in view.chunks})
    word = summary_docx(summary, view.meta, view.chunks)
    with _NAMING:
        json_path, md_path, docx_path = output_paths(out_dir, view.report_id)
        atomic_write(md_path, markdown)
        atomic_write(docx_path, word)
        atomic_write(json_path, summary.model_dump_json(indent=2))


def complete_outputs(view: ReportView, out_dir: Path) -> Summary | None:
    """The up-to-date summary on disk, with its Word file written from it when missing (e.g. made before
    summaries had one): an up-to-date summary is never paid for twice just to get the .docx."""
    json_path, _, docx_path = output_paths(out_dir, view.report_id)
    summary = read_summary(json_path)
    if summary is not None and not docx_path.exists():
        atomic_write(docx_path, summary_docx(summary, view.meta, view.chunks))
    return summary


def summarize_view(load_view: Callable[[], ReportView], out_dir: Path, engine: SummaryWriter, *,
                   label: str, template: str | None = None, force: bool = False,
                   strict: bool = False, map_workers: int = 1) -> BatchItem:  # fmt: skip
    """One report of a batch (from a file or from the store), never raising: any failure becomes a failed
    item with its reason, so one bad report never stops the others. A ConfigError (bad key, unknown model,
    endpoint down) is not the report's fault: the item is marked `fatal`, and run_jobs stops the batch."""
    started = time.perf_counter()
    item = BatchItem(label)
    try:
        view = load_view()
        item.report_id = view.report_id
        if not force and up_to_date(view, out_dir, template, engine):
            item.status = "skipped"
            cached = complete_outputs(view, out_dir)
            item.unverified = cached.unverified if cached else 0
            return item
        summary = summarize_report(view, engine, template=template, strict=strict, map_workers=map_workers)
        write_summary(summary, view, out_dir)
        item.status = "ok"
        item.prompt_tokens, item.completion_tokens = summary.prompt_tokens, summary.completion_tokens
        item.cost_usd, item.unverified = summary.cost_usd, summary.unverified
    except QAError as ex:
        item.code, item.fields = ex.code, ex.fields
        if ex.not_sent:  # the batch's LLM handle already failed for good: nothing was tried
            item.status, item.reason = "stopped", f"not run: {ex}"
        else:
            item.status, item.reason, item.fatal = "failed", str(ex), ex.stops_batch
    except Exception as ex:  # a bug must cost one report, not the batch
        item.status, item.reason = "failed", f"internal error {type(ex).__name__}: {ex} (please report it)"
    finally:
        item.seconds = time.perf_counter() - started
    return item


@dataclass(frozen=True)
class Job:
    """One report to summarize: a label for messages and how to get its view (read in the worker)."""

    label: str
    load_view: Callable[[], ReportView]


def file_jobs(files: Sequence[Path], settings: Settings, embedder_name: str) -> list[Job]:
    def loader(path: Path) -> Callable[[], ReportView]:
        return lambda: view_from_file(path, settings, embedder_name)

    return [Job(str(path), loader(path)) for path in files]


def remove_stale_temp_files(out_dir: Path) -> int:
    """Temporary files a killed run left behind (atomic_write's .NAME.XXXX.tmp): never read, safe to drop."""
    removed = 0
    for tmp in out_dir.glob(".*.tmp") if out_dir.is_dir() else []:
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def run_jobs(
    jobs: Sequence[Job],
    out_dir: Path,
    engine: Engine | None = None,
    *,
    template: str | None = None,
    force: bool = False,
    strict: bool = False,
    concurrency: int = 4,
    on_done: Callable[[BatchItem], None] | None = None,
    index_every: float = 2.0,
) -> list[BatchItem]:
    """Summarize with at most `concurrency` LLM calls in flight: that many reports at a time, and a report's
    section maps sent in parallel while slots are free (a batch of one long report is not sequential). One
    failing report never stops the batch, a configuration error (item.fatal) does: the reports not yet
    started come back as "stopped".
    The index is rewritten as reports finish (at most every `index_every` seconds) and at the end, also
    after an interrupt. `on_done` runs on the calling thread.

    Workers are daemon threads: on Ctrl-C the main thread writes the index and returns at once, and the
    reports in flight are dropped (their files are written atomically, so nothing half-written remains).
    """
    remove_stale_temp_files(out_dir)
    concurrency = max(1, concurrency)
    engine = (engine or OFFLINE_WRITER).limited(concurrency)
    todo: queue.SimpleQueue[Job] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    results: queue.SimpleQueue[BatchItem] = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            item = summarize_view(job.load_view, out_dir, engine, label=job.label, template=template, force=force,
                                  strict=strict, map_workers=concurrency)  # fmt: skip
            if item.fatal:
                stop.set()
            results.put(item)

    items: list[BatchItem] = []
    index = SummaryIndex(out_dir)
    written = time.monotonic()
    try:
        threads = [threading.Thread(target=worker, name=f"summarize-{n}", daemon=True)
                   for n in range(min(concurrency, len(jobs)))]  # fmt: skip
        for thread in threads:
            thread.start()
        while len(items) < len(jobs):
            try:
                item = results.get(timeout=0.2)  # a timeout keeps Ctrl-C deliverable to this thread
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and results.empty():
                    break  # stopped early: the rest were never started
                continue
            items.append(item)
            if item.status == "ok" and item.report_id:
                index.add(item.report_id)
                if time.monotonic() - written >= index_every:
                    index.write()
                    written = time.monotonic()
            if on_done:
                on_done(item)
        fatal = next((i for i in items if i.fatal), None)
        while fatal is not None:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                break
            items.append(BatchItem(job.label, status="stopped", reason=f"not run: {fatal.reason}"))
    finally:
        stop.set()
        write_index(out_dir)
    return items


def run_batch(files: Sequence[Path], out_dir: Path, settings: Settings, embedder_name: str,
              engine: Engine | None = None, **options) -> list[BatchItem]:  # fmt: skip
    """run_jobs over report files (`qa summarize`)."""
    return run_jobs(file_jobs(files, settings, embedder_name), out_dir, engine, **options)


class SummaryIndex:
    """index.jsonl + index.csv + index.xlsx of every summary in a folder (derived: safe to rebuild any
    time), kept in memory so a batch can rewrite it as reports finish: a run that is killed leaves an index
    that lists what it finished, up to the last write."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.rows: dict[str, dict] = {}
        for json_path in sorted(out_dir.glob("*.json")) if out_dir.is_dir() else []:
            self._read(json_path)

    def _read(self, json_path: Path) -> None:
        summary = read_summary(json_path)
        if summary is None:
            self.rows.pop(json_path.name, None)
            return
        self.rows[json_path.name] = {
            "report_id": summary.report_id, "title": summary.title, "region": summary.region,
            "year": summary.year, "publish_date": summary.publish_date, "engine": summary.engine,
            "model": summary.model, "template": summary.template, "key_figures": len(summary.key_figures),
            "unverified": summary.unverified, "prompt_tokens": summary.prompt_tokens,
            "completion_tokens": summary.completion_tokens, "cost_usd": summary.cost_usd,
            "created_at": summary.created_at, "json": json_path.name, "markdown": json_path.with_suffix(".md").name,
            "docx": json_path.with_suffix(".docx").name,
        }  # fmt: skip

    def add(self, report_id: str) -> None:
        """Take in (or refresh) one report's summary."""
        self._read(output_paths(self.out_dir, report_id)[0])

    def write(self) -> int:
        if not self.out_dir.is_dir():
            return 0
        rows = [self.rows[name] for name in sorted(self.rows)]
        atomic_write(
            self.out_dir / "index.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )
        csv_data, xlsx_data = index_tables(rows)
        atomic_write(self.out_dir / "index.csv", csv_data)
        atomic_write(self.out_dir / "index.xlsx", xlsx_data)
        return len(rows)


def index_tables(rows: Sequence[dict]) -> tuple[bytes, bytes]:
    """index.csv and index.xlsx of index rows: the same rows, Chinese headings (INDEX_COLUMNS)."""
    shown = {"engine": lambda row: engine_line(row.get("engine") or "", row.get("model")),
             "created_at": lambda row: local_time(row.get("created_at") or ""),
             # dollars to a millionth: a float sum's tail (0.0061660000000000005) is noise, and Excel keeps
             # 15 digits, so the CSV and the sheet would disagree
             "cost_usd": lambda row: None if row.get("cost_usd") is None else round(row["cost_usd"], 6)}  # fmt: skip
    table = [[shown[key](row) if key in shown else row.get(key) for key in INDEX_COLUMNS] for row in rows]
    headers = list(INDEX_COLUMNS.values())
    return csv_bytes(headers, table), xlsx_bytes(headers, table, sheet="摘要索引")


def write_index(out_dir: Path) -> int:
    """Rebuild index.jsonl, index.csv and index.xlsx from the summaries in the folder; the number of rows."""
    return SummaryIndex(out_dir).write()
