"""Batch summaries: reports → DIR/<report>.json + .md, resumable, concurrency-limited, atomic writes,
plus an index (index.jsonl, index.csv). Also where a ReportView is built from a file or the store."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from qa.chunking import chunk_document
from qa.config import Settings
from qa.errors import QAError
from qa.ingest import collect_files, ingest_version, load_document
from qa.llm import ChatLLM, cost_of
from qa.render import summary_markdown
from qa.store import Store
from qa.summarize import ReportView, Summary, choose_template, section_batches, summarize_report

INDEX_FIELDS = ["report_id", "title", "region", "year", "publish_date", "engine", "model", "template",
                "key_figures", "unverified", "prompt_tokens", "completion_tokens", "cost_usd", "created_at",
                "json", "markdown"]  # fmt: skip


def view_from_file(path: Path, settings: Settings, embedder_name: str) -> ReportView:
    """Load and chunk a file; chunk ids equal those `qa ingest` gives it (same version), no embedding."""
    document = load_document(path, settings)
    version = ingest_version(document.content_hash, settings, embedder_name)
    chunks = chunk_document(document.report_id, document.text, document.meta, version, settings.chunk_size,
                            settings.chunk_overlap)  # fmt: skip
    return ReportView(document.report_id, document.meta, document.text, chunks, document.content_hash)


def view_from_store(store: Store, report_id: str) -> ReportView:
    record = store.get_report(report_id)
    if record is None:
        from qa.errors import InputError

        raise InputError(f"no report {report_id!r} in the store; see `qa ls`")
    return ReportView(report_id, record.meta, store.report_text(report_id), store.report_chunks(report_id),
                      record.content_hash)  # fmt: skip


def output_paths(out_dir: Path, report_id: str) -> tuple[Path, Path]:
    return out_dir / f"{report_id}.json", out_dir / f"{report_id}.md"


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_summary(path: Path) -> Summary | None:
    try:
        return Summary.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, ValidationError):
        return None


def is_current(json_path: Path, source_hash: str, template_ref: str, engine: str, model: str | None) -> bool:
    """Skip a report whose summary was made from the same bytes, template, engine and model."""
    existing = read_summary(json_path) if json_path.exists() else None
    return bool(
        existing
        and existing.source_hash == source_hash
        and existing.template == template_ref
        and existing.engine == engine
        and existing.model == model
    )


@dataclass
class BatchItem:
    path: str
    report_id: str | None = None
    status: str = "pending"  # ok | skipped | failed
    reason: str = ""
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    unverified: int = 0


@dataclass
class BatchPlan:
    files: list[Path]
    failed: list[BatchItem] = field(default_factory=list)


def plan(paths: Sequence[Path]) -> BatchPlan:
    files, failed = collect_files(paths)
    return BatchPlan(files, [BatchItem(r.path, None, "failed", r.reason) for r in failed])


def estimate(files: Sequence[Path], settings: Settings, embedder_name: str, model: str | None,
             out_dir: Path, template: str | None = None, force: bool = False) -> dict:  # fmt: skip
    """What a run would do and cost, without any LLM call. Tokens ≈ characters / 1.5 for Chinese text."""
    todo, skipped, failed, chars, calls = 0, 0, 0, 0, 0
    for path in files:
        try:
            view = view_from_file(path, settings, embedder_name)
        except QAError:
            failed += 1
            continue
        ref = choose_template(view, template).ref
        if not force and is_current(output_paths(out_dir, view.report_id)[0], view.source_hash, ref,
                                    "llm" if model else "extractive", model):  # fmt: skip
            skipped += 1
            continue
        todo += 1
        chars += len(view.text)
        calls += len(section_batches(view.chunks)) + 1
    prompt_tokens = int(chars / 1.5 * 1.4 + calls * 450) if model else 0
    completion_tokens = int(chars / 1.5 * 0.45) if model else 0
    return {
        "reports": len(files), "to_summarize": todo, "up_to_date": skipped, "unreadable": failed,
        "llm_calls": calls if model else 0, "est_prompt_tokens": prompt_tokens,
        "est_completion_tokens": completion_tokens,
        "est_cost_usd": cost_of(model, prompt_tokens, completion_tokens, settings.prices) if model else 0.0,
    }  # fmt: skip


def summarize_one(path: Path, out_dir: Path, settings: Settings, embedder_name: str, llm: ChatLLM | None,
                  template: str | None, force: bool, strict: bool) -> BatchItem:  # fmt: skip
    started = time.perf_counter()
    item = BatchItem(str(path))
    try:
        view = view_from_file(path, settings, embedder_name)
        item.report_id = view.report_id
        json_path, md_path = output_paths(out_dir, view.report_id)
        ref = choose_template(view, template).ref
        if not force and is_current(json_path, view.source_hash, ref, "llm" if llm else "extractive",
                                    llm.model if llm else None):  # fmt: skip
            item.status = "skipped"
            return item
        summary = summarize_report(view, llm, template=template, strict=strict)
        atomic_write(json_path, summary.model_dump_json(indent=2))
        atomic_write(md_path, summary_markdown(summary, {c.id: c.section for c in view.chunks}))
        item.status = "ok"
        item.prompt_tokens, item.completion_tokens = summary.prompt_tokens, summary.completion_tokens
        item.cost_usd, item.unverified = summary.cost_usd, summary.unverified
    except QAError as ex:
        item.status, item.reason = "failed", str(ex)
    finally:
        item.seconds = time.perf_counter() - started
    return item


def run_batch(
    files: Sequence[Path],
    out_dir: Path,
    settings: Settings,
    embedder_name: str,
    llm: ChatLLM | None = None,
    *,
    template: str | None = None,
    force: bool = False,
    strict: bool = False,
    concurrency: int = 4,
    on_done: Callable[[BatchItem], None] | None = None,
) -> list[BatchItem]:
    """Summarize files with at most `concurrency` reports (so LLM calls) in flight; one failing report never
    stops the batch; the index is rewritten at the end, also after an interrupt."""
    items: list[BatchItem] = []
    lock = threading.Lock()
    executor = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="summarize")
    pending: set[Future] = set()
    try:
        for path in files:
            pending.add(executor.submit(summarize_one, path, out_dir, settings, embedder_name, llm, template,
                                        force, strict))  # fmt: skip
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                item = future.result()
                with lock:
                    items.append(item)
                if on_done:
                    on_done(item)
    finally:
        executor.shutdown(wait=not pending, cancel_futures=True)
        write_index(out_dir)
    return items


def write_index(out_dir: Path) -> int:
    """index.jsonl + index.csv of every summary in the folder (derived: safe to rebuild any time)."""
    if not out_dir.is_dir():
        return 0
    rows = []
    for json_path in sorted(out_dir.glob("*.json")):
        summary = read_summary(json_path)
        if summary is None:
            continue
        rows.append({
            "report_id": summary.report_id, "title": summary.title, "region": summary.region,
            "year": summary.year, "publish_date": summary.publish_date, "engine": summary.engine,
            "model": summary.model, "template": summary.template, "key_figures": len(summary.key_figures),
            "unverified": summary.unverified, "prompt_tokens": summary.prompt_tokens,
            "completion_tokens": summary.completion_tokens, "cost_usd": summary.cost_usd,
            "created_at": summary.created_at, "json": json_path.name, "markdown": json_path.with_suffix(".md").name,
        })  # fmt: skip
    atomic_write(out_dir / "index.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=INDEX_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out_dir / "index.csv", buffer.getvalue())
    return len(rows)
