"""How the `qa` command shows results: report listings, passages, answers, LLM calls, summary batches.

Functions of plain results that print to qa.cli.console; the commands decide what to run, these how it reads.
(Eval metrics and history: qa.cli.present_eval.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from qa.cli.console import out
from qa.core.redact import redact
from qa.core.schemas import IngestResult
from qa.genre.kinds import kind_label

WIDE_LISTING = 150  # columns `qa ls` needs for its one-line-per-report table
UNKNOWN = "[dim]未识别[/]"
_STATUS_STYLE = {"ingested": "green", "updated": "cyan", "unchanged": "dim", "failed": "red"}
_BATCH_STYLE = {"ok": "green", "skipped": "dim", "failed": "red", "stopped": "yellow"}


def engine_label(engine) -> str:
    if engine.label is None:
        return "extractive (offline, quotes the reports verbatim)"
    return redact(f"LLM {engine.label}")  # an endpoint may carry user:password


def cost_total(known: float | None, unpriced: int) -> str:
    """A total cost in words: unknown while any call in it had no price, never $0.0000 for calls nobody priced."""
    if not unpriced:
        return f"${known or 0:.4f}"
    priced = f"; ${known:.4f} for the priced ones" if known else ""
    return f"cost unknown ({unpriced} call(s) without a price: set QA_LLM_PRICES{priced})"


def shorten(quote: str, limit: int = 160, keep: Sequence[str] = ()) -> str:
    """A long supporting span (a whole listed part) as its opening and its end — or, when the answer's number
    is further in, its opening and the words around that number (the quote must show what it supports)."""
    flat = " ".join(quote.split())
    if len(flat) <= limit:
        return flat
    for raw in keep:
        at = flat.find(" ".join(raw.split()))
        hidden = at >= 0 and at + len(raw) > limit - 40 and at < len(flat) - 30  # in neither end shown
        if hidden:
            start, end = max(40, at - 50), min(len(flat), at + len(raw) + 50)
            return f"{flat[:40]} … {flat[start:end]}{' …' if end < len(flat) else ''}（共 {len(flat)} 字）"
    return f"{flat[: limit - 40]} … {flat[-30:]}（共 {len(flat)} 字）"


# ---- ingest, ls ---------------------------------------------------------------------------------


def ingest_line(result: IngestResult) -> str:
    """One line per file read: its status, then its chunks (and what was cached or pending), or why it failed."""
    from qa.ingest.pipeline import INDEX_REBUILT

    style = _STATUS_STYLE.get(result.status, "")
    detail = f"{result.n_chunks} chunks" if result.status != "failed" else escape(result.reason)
    if result.pending:
        detail += f" (vectors follow: {result.pending} to embed)"
    elif (result.status in ("ingested", "updated") and result.embedded < result.n_chunks
          and not result.reason.endswith(INDEX_REBUILT)):  # fmt: skip
        detail += f" ({result.n_chunks - result.embedded} from cache)"
    if result.status != "failed" and result.reason:  # repaired: what was wrong with the stored copy
        detail += f" ({escape(result.reason)})"
    return f"[{style}]{result.status:>9}[/] {escape(result.path)}  {detail}"


def ingest_totals(results: Sequence[IngestResult], seconds: float, location: str) -> dict[str, int]:
    """The closing line of `qa ingest`; returns the count of each status."""
    counts = {s: sum(r.status == s for r in results) for s in ("ingested", "updated", "unchanged", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out.print(f"{summary or 'nothing to do'} in {seconds:.1f}s → {escape(location)}")
    return counts


def reports_json(records: Sequence[Any]) -> None:
    out.print_json(
        data=[
            {
                "report": r.report_id,
                **r.meta.to_dict(),
                "chunks": r.n_chunks,
                "embedded": r.embedded,
                "ingested_at": r.ingested_at,
            }
            for r in records
        ]
    )


def no_reports(location: str, other_embedders: Sequence[str]) -> None:
    hint = ""
    if other_embedders:
        hint = f" (this store has reports embedded with {', '.join(other_embedders)}: check QA_EMBEDDER)"
    out.print(f"no reports in {escape(location)}{escape(hint)}; add some with `qa ingest PATH`")


def reports_listing(records: Sequence[Any]) -> None:
    """`qa ls`: a table where the console is wide enough, else two lines per report; then the totals."""
    if out.width < WIDE_LISTING:  # a terminal of ordinary width, or a pipe: a report takes two lines
        for r in records:
            _report_lines(r)
    else:
        out.print(_reports_table(records))
    out.print(f"{len(records)} reports, {sum(r.n_chunks for r in records)} chunks")


def _kind(meta: Any) -> str:
    return escape(kind_label(meta.kind, meta.issuer_kind)) if meta.kind else UNKNOWN


def _place(meta: Any) -> str:
    return escape(" › ".join(meta.region_path) or meta.region) or UNKNOWN


def _report_lines(r: Any) -> None:
    out.print(f"[bold]{escape(r.report_id)}[/]  {_kind(r.meta)}  {r.meta.year or '[dim]未识别[/]'}  "
              f"{r.n_chunks} chunks" + (" [yellow](vectors pending)[/]" if not r.embedded else ""))  # fmt: skip
    detail = [escape(r.meta.title) or UNKNOWN, _place(r.meta), escape(r.meta.issuer) or UNKNOWN,
              escape(r.meta.level) or UNKNOWN, escape(r.meta.publish_date or "")]  # fmt: skip
    out.print("  " + " · ".join(d for d in detail if d), soft_wrap=True)


def _reports_table(records: Sequence[Any]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("report", no_wrap=True)  # the id `qa rm` and --report take: never cut
    table.add_column("title", overflow="fold", min_width=10)
    table.add_column("region", overflow="fold", min_width=8)
    table.add_column("issuer", overflow="fold", min_width=8)
    for name, width in (("kind", 8), ("level", 4), ("year", 4), ("published", 10), ("chunks", 6)):
        table.add_column(name, no_wrap=True, min_width=width)
    for r in records:
        table.add_row(
            escape(r.report_id), escape(r.meta.title) or UNKNOWN, _place(r.meta), escape(r.meta.issuer) or UNKNOWN,
            _kind(r.meta), escape(r.meta.level) or UNKNOWN, str(r.meta.year or "") or UNKNOWN,
            escape(r.meta.publish_date or ""), str(r.n_chunks),
        )  # fmt: skip
    return table


# ---- search, ask --------------------------------------------------------------------------------


def search_json(question: str, result: Any, ms: float) -> None:
    out.print_json(
        data={
            "question": question,
            "scope": {
                "reports": list(result.selection.reports),
                "reason": result.selection.reason,
                "refusal": result.selection.refusal,
            },  # fmt: skip
            "ms": round(ms, 1),
            "hits": [
                {
                    "rank": rank,
                    "score": round(hit.score, 6),
                    "chunk_id": hit.chunk.id,
                    "report": hit.chunk.report_id,
                    "title": hit.chunk.title,
                    "section": hit.chunk.section,
                    "start": hit.chunk.start,
                    "end": hit.chunk.end,
                    "dense_rank": hit.dense_rank,
                    "bm25_rank": hit.bm25_rank,
                    "text": hit.chunk.text,
                }
                for rank, hit in enumerate(result.hits, start=1)
            ],
        }
    )


def search_hits(result: Any, ms: float) -> None:
    """The passages found, ranked, or why there are none (a refusal of the question's scope)."""
    if result.selection.refusal:
        out.print(f"[yellow]{escape(result.selection.refusal)}[/]")
        return
    if result.selection.reason == "named":
        out.print(
            f"[dim]narrowed to {escape(', '.join(result.selection.reports))} (named in the question)[/]"
        )
    if not result.hits:
        out.print("no matching passages")
        return
    for rank, hit in enumerate(result.hits, start=1):
        chunk = hit.chunk
        out.print(
            f"[bold]{rank}.[/] [cyan]{escape(chunk.report_id)}[/] [dim]{escape(chunk.section or '(opening)')}"
            f"  score {hit.score:.4f}  chars {chunk.start}–{chunk.end}[/]"
        )
        out.print(escape(chunk.text), style="default")
        out.print()
    out.print(f"[dim]{len(result.hits)} passages in {ms:.0f} ms[/]")


def answer(answer: Any, streamed: str | None) -> None:
    """A checked answer, its warnings, its sources (numbered as cited) and a footer. streamed: what a model's
    reply already showed as it came (None for the offline engine, which shows the answer once)."""
    from qa.answer.pipeline import citation_numbers, renumbered

    # sources numbered 1..n in the order the answer cites them, as the app shows them
    numbers = citation_numbers(answer.text, [c.n for c in answer.citations])
    shown = renumbered(answer.text, numbers)
    if streamed is None:
        out.print(escape(shown))
    else:
        out.print()
        if shown.strip() != streamed.strip():  # citations renumbered, or dropped by the checks
            out.print(f"[dim]checked answer:[/] {escape(shown)}")
    _answer_warnings(answer)
    for citation in sorted(answer.citations, key=lambda c: numbers.get(c.n, c.n)):
        _citation(answer, citation, numbers.get(citation.n, citation.n))
    tail = f"{answer.latency_ms:.0f} ms"
    if answer.engine == "llm":
        cost = f", ${answer.cost_usd:.4f}" if answer.cost_usd is not None else ""
        tail += (
            f", {answer.prompt_tokens}+{answer.completion_tokens} tokens{cost}, prompt {answer.prompt_ref}"
        )
    out.print(f"[dim]{answer.engine} · {tail}[/]")


def _answer_warnings(answer: Any) -> None:
    if answer.year_note:
        out.print(f"[bold yellow]⚠ {escape(answer.year_note)}[/]")
    if answer.uncited:
        out.print("[bold yellow]⚠ this answer cites no passage: nothing in it is traced to a report[/]")
    if answer.dropped_claims:
        out.print(
            f"[yellow]removed {len(answer.dropped_claims)} sentence(s) citing reports outside the question's scope[/]"
        )
    if answer.dropped_citations:
        out.print(f"[yellow]removed citations to sources that were not given: {answer.dropped_citations}[/]")
    if answer.unverified_numbers:
        counted = Counter(
            (u.raw, f"the cited passage gives it for {u.stated}, not {u.asked}" if u.stated else u.reason)
            for u in answer.unverified_numbers
        )
        marks = ", ".join(
            f"{raw} ({reason})" + (f" ×{n}" if n > 1 else "") for (raw, reason), n in counted.items()
        )
        out.print(f"[bold red]⚠ unverified numbers — not found in the cited passages: {escape(marks)}[/]")


def _citation(answer: Any, citation: Any, number: int) -> None:
    """A source as numbered in the answer, and its quote shortened around the numbers the answer takes from it."""
    from qa.genre.numbers import find_numbers

    out.print(
        f"[bold][{number}][/] [cyan]{escape(citation.title or '未识别标题')}[/] "
        f"[dim]{escape(citation.report_id)} · {escape(citation.section or '(opening)')} · "
        f"chars {citation.quote_start}–{citation.quote_end}[/]"
    )
    claims = [line for line in answer.text.splitlines() if f"[{citation.n}]" in line]
    shown = [n.raw for line in claims for n in find_numbers(line)]
    out.print(f"    “{escape(shorten(citation.quote, keep=shown))}”")


# ---- log ----------------------------------------------------------------------------------------


def call_log(rows: Sequence[dict], totals: dict[str, Any], unpriced: int) -> None:
    """Recent LLM calls, oldest first, and the totals of the whole log."""
    table = Table(box=None, header_style="bold")
    # On a narrow or piped console (80 columns) only the error may fold: time and prompt ref stay whole.
    for name in ("time", "prompt", "model", "in/out", "ms", "cost $"):
        table.add_column(name, no_wrap=True)
    table.add_column("error", overflow="fold", min_width=20)
    for row in reversed(rows):
        cost = "cached" if row["cached"] else ("—" if row["cost_usd"] is None else f"{row['cost_usd']:.5f}")
        error = (row["error"] or "").removeprefix(f"model {row['model']}: ")
        table.add_row(row["time"].replace("T", " ")[5:], escape(row["prompt_ref"] or ""), escape(row["model"] or ""),
                      f"{row['prompt_tokens'] or 0}/{row['completion_tokens'] or 0}",
                      f"{row['latency_ms']:.0f}", cost, escape(error[:80]))  # fmt: skip
    out.print(table)
    out.print(
        f"{totals['calls']} calls, {totals['prompt_tokens']}+{totals['completion_tokens']} tokens, "
        f"{cost_total(totals['cost_usd'], unpriced)}, {totals['errors']} errors, {totals['cached']} from cache"
    )


# ---- summarize ----------------------------------------------------------------------------------


def dry_run(figures: dict[str, Any], label: str) -> None:
    """What `qa summarize --dry-run` would do: per report, then the totals (nothing was sent)."""
    table = Table("report", "status", "LLM calls", "≈ tokens in/out", "≈ cost $", box=None,
                  header_style="bold")  # fmt: skip
    for row in figures["rows"]:
        cost = row.get("est_cost_usd")
        table.add_row(
            escape(row["report_id"] or row["path"]),
            escape(row["status"] + (f": {row['reason']}" if row["reason"] else "")),
            str(row["llm_calls"]),
            f"{row['est_prompt_tokens']:,}/{row['est_completion_tokens']:,}",
            "" if row["status"] != "to summarize" else ("unknown" if cost is None else f"{cost:.4f}"),
        )  # fmt: skip
    out.print(table)
    cost = figures["est_cost_usd"]
    out.print(
        f"dry run ({escape(label)}): {figures['reports']} reports, {figures['to_summarize']} to summarize, "
        f"{figures['up_to_date']} up to date, {figures['unreadable']} unreadable; "
        f"{figures['llm_calls']} LLM calls, ≈{figures['est_prompt_tokens']:,} prompt + "
        f"{figures['est_completion_tokens']:,} completion tokens, ≈"
        + ("unknown cost (no price for this model: set QA_LLM_PRICES)" if cost is None else f"${cost:.4f}")
        + ". Nothing was sent."
    )  # fmt: skip


def batch_item_line(item: Any) -> str:
    """One line per report summarized: its status, and its time or why it failed or stopped."""
    style = _BATCH_STYLE[item.status]
    # a reason that starts with the file's path (an InputError) does not say it twice
    reason = item.reason.removeprefix(f"{item.path}: ")
    detail = escape(reason) if item.status in ("failed", "stopped") else f"{item.seconds:.1f}s"
    if item.unverified:
        detail += f" [yellow]{item.unverified} unverified[/]"
    return f"[{style}]{item.status:>8}[/] {escape(item.path)}  {detail}"


def batch_totals(items: Sequence[Any], offline: bool, seconds: float) -> None:
    """The counts, tokens and cost of a summary batch in one row."""
    table = Table("ok", "skipped", "failed", "stopped", "unverified", "tokens in/out", "cost $", "time", box=None,
                  header_style="bold")  # fmt: skip
    counts = Counter(i.status for i in items)
    table.add_row(
        str(counts["ok"]), str(counts["skipped"]), str(counts["failed"]), str(counts["stopped"]),
        str(sum(i.unverified for i in items)),
        f"{sum(i.prompt_tokens for i in items):,}/{sum(i.completion_tokens for i in items):,}",
        "0" if offline else _batch_cost(items),
        f"{seconds:.1f}s",
    )  # fmt: skip
    out.print(table)


def _batch_cost(items: Sequence[Any]) -> str:
    # a report that spent tokens at no known price makes the total unknown, not the sum of the others
    unpriced = sum(i.cost_usd is None and bool(i.prompt_tokens or i.completion_tokens) for i in items)
    return "unknown" if unpriced else f"{sum(i.cost_usd for i in items if i.cost_usd is not None):.4f}"
