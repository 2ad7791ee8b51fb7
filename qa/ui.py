"""Pure helpers for the Streamlit app: labels, safe upload names, and the HTML of answers and passages.

No `st.*` here (app.py is the only module that talks to Streamlit), so all of it is unit-tested directly.
Everything that puts report or model text into HTML escapes it first: a report is untrusted input.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from qa.answer import Turn
from qa.errors import InputError
from qa.loaders import SUPPORTED
from qa.numbers import find_numbers
from qa.schemas import Answer, Citation, IngestResult, ReportRecord, Section, UnverifiedNumber

OFFLINE_ENGINE_LABEL = "抽取式（离线，逐字引用原文）"
STATUS_LABELS = {"ingested": "新增", "updated": "更新", "unchanged": "未变化", "failed": "失败"}
UPLOAD_TYPES = sorted(suffix.lstrip(".") for suffix in SUPPORTED)
_MARKER = re.compile(r"\[(\d+)\]")
_FORBIDDEN_IN_NAME = re.compile(r'[<>:"|?*]')  # not allowed on Windows file systems; harmless to drop
_MAX_NAME_BYTES = 200  # under the usual 255-byte limit, leaving room for backup suffixes

# Styles for the HTML below; the app injects them once per page.
CSS = """
<style>
a.qa-cite { text-decoration: none; font-weight: 600; padding: 0 0.15em; border-radius: 0.25em;
            background: rgba(28, 131, 225, 0.12); }
a.qa-cite:hover { background: rgba(28, 131, 225, 0.3); }
mark.qa-quote { background: #ffe58f; padding: 0 0.1em; border-radius: 0.15em; }
mark.qa-unverified { background: #ffccc7; text-decoration: underline wavy #cf1322; }
div.qa-passage { line-height: 1.9; }
div.qa-context { line-height: 1.9; max-height: 60vh; overflow-y: auto; }
span.qa-context-passage { background: rgba(28, 131, 225, 0.10); border-radius: 0.2em; }
div.qa-outline { line-height: 1.8; }
</style>
"""

# Clicking an inline [n] opens the source's expander (through its own toggle, so Streamlit's state
# stays in step) and scrolls to the passage. Without JavaScript the link still jumps to the anchor.
CITE_SCRIPT = """
<script>
if (!window.__qaCiteHandler) {
  window.__qaCiteHandler = true;
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a.qa-cite");
    if (!link) return;
    const target = document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    event.preventDefault();
    const details = target.closest("details");
    if (details && !details.open) details.querySelector("summary").click();
    setTimeout(() => target.scrollIntoView({ behavior: "smooth", block: "center" }), 80);
  }, true);
}
</script>
"""


# ---- engine and answer labels --------------------------------------------------------------------


def engine_label(llm_label: str | None) -> str:
    """The engine in use, for the sidebar: the offline extractive engine, or 'LLM：model @ endpoint'."""
    return f"LLM：{llm_label}" if llm_label else OFFLINE_ENGINE_LABEL


def answer_meta(answer: Answer) -> str:
    """One line under an answer: engine, latency and, for LLM answers, tokens, cost and prompt ref."""
    seconds = f"用时 {answer.latency_ms / 1000:.2f} 秒"
    if answer.engine != "llm":
        return f"抽取式 · {seconds}"
    parts = [f"LLM：{answer.model}", seconds]
    parts.append(f"tokens {answer.prompt_tokens} 输入 / {answer.completion_tokens} 输出")
    parts.append("费用未知" if answer.cost_usd is None else f"费用 ${answer.cost_usd:.6f}")
    if answer.prompt_ref:
        parts.append(f"提示词 {answer.prompt_ref}")
    return " · ".join(parts)


def standalone_note(typed: str, standalone: str) -> str | None:
    """'已理解为：…' when a follow-up was rewritten into a standalone question."""
    if not standalone or _squash(standalone) == _squash(typed):
        return None
    return f"已理解为：{standalone}"


def scope_note(scope: Sequence[str], records: Sequence[ReportRecord]) -> str | None:
    """Which reports a question was answered from, when that is not the whole library."""
    if not scope or len(scope) >= len(records):
        return None
    names = {r.report_id: (r.meta.label or r.report_id) for r in records}
    return "检索范围：" + "、".join(names.get(report_id, report_id) for report_id in scope)


def unverified_warning(numbers: Sequence[UnverifiedNumber]) -> str | None:
    """'⚠ 以下数字未能在引用原文中核实：…', each number once, with why."""
    if not numbers:
        return None
    why = {"no citation": "所在句子没有引用", "not in the cited passages": "引用原文中没有"}
    seen: dict[str, str] = {}
    for number in numbers:
        seen.setdefault(number.raw, why.get(number.reason, number.reason))
    items = "、".join(f"{raw}（{reason}）" for raw, reason in seen.items())
    return f"⚠ 以下数字未能在引用原文中核实：{items}"


def dropped_note(dropped: Sequence[int]) -> str | None:
    if not dropped:
        return None
    return "已删去指向不存在来源的引用：" + "、".join(f"[{n}]" for n in dropped)


def citation_label(citation: Citation) -> str:
    """Expander title: '[n] 《title》 · section' (Markdown-escaped: titles are report text)."""
    title = citation.title or citation.report_id
    label = f"[{citation.n}] 《{title}》"
    if citation.section:
        label += f" · {citation.section}"
    return escape_markdown(label)


# ---- HTML ----------------------------------------------------------------------------------------


def escape_markdown(text: str, emphasis: bool = False) -> str:
    """Report/model text for st.markdown: no raw HTML, no LaTeX ($), no strike-through (~), no links;
    emphasis=True keeps **bold** / *italic* / `code` (model answers use them)."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\$~\[\]])" if emphasis else r"([\\$~\[\]`*_])", r"\\\1", text)


def anchor_id(message_id: str, n: int) -> str:
    return f"qa-src-{message_id}-{n}"


def answer_markdown(
    text: str,
    message_id: str,
    cited: Iterable[int] = (),
    unverified: Sequence[UnverifiedNumber] = (),
) -> str:
    """The answer as Markdown with inline HTML: each [n] a link to its source, unverified numbers marked."""
    cited_set = set(cited)
    unverified_raw = {n.raw for n in unverified}
    spans: list[tuple[int, int, str]] = []
    for match in _MARKER.finditer(text):
        n = int(match.group(1))
        if n in cited_set:
            spans.append(
                (
                    match.start(),
                    match.end(),
                    f'<a class="qa-cite" href="#{anchor_id(message_id, n)}" title="查看来源 [{n}]">[{n}]</a>',
                )
            )
    if unverified_raw:
        for number in find_numbers(text):
            if number.raw in unverified_raw and not any(
                s < number.end and number.start < e for s, e, _ in spans
            ):
                spans.append(
                    (
                        number.start,
                        number.end,
                        f'<mark class="qa-unverified" title="未能在引用原文中核实">'
                        f"{escape_markdown(number.raw)}</mark>",
                    )
                )
    spans.sort()
    out: list[str] = []
    pos = 0
    for start, end, replacement in spans:
        out.append(escape_markdown(text[pos:start], emphasis=True))
        out.append(replacement)
        pos = end
    out.append(escape_markdown(text[pos:], emphasis=True))
    # Markdown joins single newlines into one paragraph; answers are line-oriented (one line a report).
    return "".join(out).replace("\n", "  \n")


def _html_lines(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def quote_span(citation: Citation) -> tuple[int, int] | None:
    """The supporting span as offsets into Citation.passage; None when it cannot be located."""
    start, end = citation.quote_start - citation.start, citation.quote_end - citation.start
    if 0 <= start < end <= len(citation.passage) and citation.passage[start:end] == citation.quote:
        return start, end
    if citation.quote:
        found = citation.passage.find(citation.quote)
        if found >= 0:
            return found, found + len(citation.quote)
    return None


def _marked(text: str, span: tuple[int, int] | None, css: str = "qa-quote") -> str:
    if span is None:
        return _html_lines(text)
    start, end = span
    return (
        _html_lines(text[:start])
        + f'<mark class="{css}">{_html_lines(text[start:end])}</mark>'
        + _html_lines(text[end:])
    )


def passage_html(citation: Citation, anchor: str) -> str:
    """The whole cited passage, the supporting span in <mark>; one line, so Markdown leaves it alone."""
    return f'<div class="qa-passage" id="{html.escape(anchor)}">{_marked(citation.passage, quote_span(citation))}</div>'


def context_html(report_text: str, citation: Citation, window: int = 800) -> str | None:
    """The passage inside the cleaned report text around it (passage tinted, span marked).

    None when the stored report no longer holds the passage (re-ingested with other text, or deleted)."""
    start, end = citation.start, citation.end
    if report_text[start:end] != citation.passage:
        found = report_text.find(citation.passage)
        if found < 0:
            return None
        start, end = found, found + len(citation.passage)
    before_start = max(0, start - window)
    after_end = min(len(report_text), end + window)
    before = ("…" if before_start > 0 else "") + report_text[before_start:start]
    after = report_text[end:after_end] + ("…" if after_end < len(report_text) else "")
    passage = _marked(citation.passage, quote_span(citation))
    return (
        f'<div class="qa-context">{_html_lines(before)}'
        f'<span class="qa-context-passage">{passage}</span>{_html_lines(after)}</div>'
    )


def text_html(text: str) -> str:
    """A report's cleaned text as one HTML block (line breaks kept)."""
    return f'<div class="qa-passage">{_html_lines(text)}</div>'


def outline_html(tree: Sequence[Section]) -> str:
    """The section tree, indented by level."""
    rows = [f'<div style="padding-left:{(s.level - 1) * 1.5}em">{html.escape(s.title)}</div>' for s in tree]
    return f'<div class="qa-outline">{"".join(rows)}</div>'


# ---- library -------------------------------------------------------------------------------------


def report_rows(records: Sequence[ReportRecord]) -> list[dict]:
    """Rows of the report table."""
    return [
        {
            "报告": r.report_id,
            "标题": r.meta.title,
            "地区": r.meta.region,
            "年度": r.meta.year,
            "发布日期": r.meta.publish_date or "",
            "文号": r.meta.doc_number,
            "分块数": r.n_chunks,
            "导入时间": r.ingested_at.replace("T", " ").replace("+00:00", " UTC"),
        }
        for r in records
    ]


def report_option(record: ReportRecord | None, report_id: str) -> str:
    """'《title》（file）' for select boxes; a report without a title line by its place and year."""
    if record is None:
        return report_id
    if record.meta.title:
        return f"{record.meta.title}（{report_id}）"
    label = record.meta.label or "未识别地区"
    year = f" {record.meta.year}年" if record.meta.year else ""
    return f"{label}{year}（{report_id}）"


def ingest_line(name: str, result: IngestResult) -> str:
    """One line per ingested file: status in Chinese, chunk count, or the reason it failed."""
    label = STATUS_LABELS.get(result.status, result.status)
    if result.status == "failed":
        return f"{label}：{name} — {result.reason}"
    extra = f"（{result.n_chunks} 个分块）" if result.n_chunks else ""
    return f"{label}：{name}{extra}"


# ---- uploads -------------------------------------------------------------------------------------


def safe_upload_name(name: str) -> str:
    """A file name that is safe to create under the uploads folder; InputError when there is none.

    Directories are stripped (browsers may send 'folder/file.txt'), '..' and control characters are
    refused, Chinese names are kept as they are (NFC), and the type must be one we can load."""
    name = unicodedata.normalize("NFC", name or "").strip()
    parts = re.split(r"[\\/]", name)
    if any(part.strip() == ".." for part in parts):
        raise InputError(f"文件名 {name!r} 含有“..”，已拒绝")
    base = parts[-1].strip()
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in base):
        raise InputError(f"文件名 {name!r} 含有控制字符，已拒绝")
    base = _FORBIDDEN_IN_NAME.sub("_", base).lstrip(". ").rstrip(". ")
    suffix = PurePosixPath(base).suffix.lower()
    if suffix not in SUPPORTED:
        raise InputError(
            f"不支持的文件类型 {suffix or '（无扩展名）'}：{name or '（空文件名）'}；"
            f"支持 {', '.join(UPLOAD_TYPES)}"
        )
    stem, suffix = base[: -len(suffix)].strip(), base[-len(suffix) :]  # the suffix keeps its case
    if not stem:
        raise InputError(f"文件名 {name!r} 无效")
    while len((stem + suffix).encode("utf-8")) > _MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


def check_upload_size(size: int, max_bytes: int) -> None:
    """Refuse empty files and files over the limit, before anything is written."""
    if size == 0:
        raise InputError("文件为空（0 字节）")
    if size > max_bytes:
        raise InputError(
            f"文件大小 {size / 1048576:.1f} MB，超过 {max_bytes / 1048576:.0f} MB 的上限（可调高 QA_MAX_FILE_MB）"
        )


# ---- chat ----------------------------------------------------------------------------------------


def history_turns(messages: Sequence[dict], max_messages: int = 8) -> list[Turn]:
    """The chat so far as answer.Turn records (the last few), for follow-up questions.

    A message is {"role": "user" | "assistant", "content": str, ...}; failed turns (no content) are skipped."""
    turns = [Turn(m["role"], m["content"]) for m in messages if m.get("content") and m.get("role")]
    return turns[-max_messages:]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
