"""Pure helpers for the Streamlit app: labels, safe upload names, the HTML of answers and passages (citations
renumbered in reading order), errors in Chinese, local times, the chat's example questions, and the rules
that put Streamlit's own widget text into Chinese in the browser.

No `st.*` here (the app edge, app.py + app_pages/, talks to Streamlit), so all of it is unit-tested directly.
Everything that puts report or model text into HTML escapes it first: a report is untrusted input.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from qa.answer.pipeline import Turn, citation_numbers
from qa.core.errors import (
    InputError,
    QAError,
)
from qa.core.office import local_time
from qa.core.redact import redact
from qa.core.schemas import Answer, Citation, IngestResult, ReportRecord, Section, UnverifiedNumber
from qa.genre.kinds import kind_label
from qa.genre.numbers import find_numbers
from qa.ingest.loaders import SUPPORTED

if TYPE_CHECKING:
    from qa.summary.summarize import Summary

OFFLINE_ENGINE_LABEL = "抽取式（离线，逐字引用原文）"
STATUS_LABELS = {"ingested": "新增", "updated": "更新", "unchanged": "未变化", "failed": "失败"}
DETAILS_LABEL = "详细信息"  # the expander holding internal ids (prompt refs, chunk ids, versions)
ERROR_DETAIL_LABEL = "详细信息（原始错误信息）"  # the expander holding a translated error's original
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
    """The engine in use, for the sidebar: the offline extractive engine, or 'LLM：model @ endpoint' (an
    endpoint's user:password or key masked)."""
    return redact(f"LLM：{llm_label}") if llm_label else OFFLINE_ENGINE_LABEL


def answer_meta(answer: Answer) -> str:
    """One line under an answer: engine, latency and, for LLM answers, tokens and cost (the prompt ref and
    other internal ids are in answer_details)."""
    seconds = f"用时 {answer.latency_ms / 1000:.2f} 秒"
    if answer.engine != "llm":
        return f"抽取式 · {seconds}"
    parts = [f"LLM：{answer.model}", seconds]
    parts.append(f"tokens {answer.prompt_tokens} 输入 / {answer.completion_tokens} 输出")
    parts.append("费用未知" if answer.cost_usd is None else f"费用 ${answer.cost_usd:.6f}")
    return " · ".join(parts)


def answer_details(answer: Answer, numbers: dict[int, int] | None = None) -> list[str]:
    """What the 详细信息 expander under an answer lists: engine, prompt ref, the reports searched and, per
    source, its report file, offsets and chunk ids (numbers: the source's n → the number shown)."""
    numbers = numbers or {}
    lines = [f"引擎：{'LLM ' + (answer.model or '') if answer.engine == 'llm' else '抽取式（离线）'}"]
    if answer.prompt_ref:
        lines.append(f"提示词：{answer.prompt_ref}")
    if answer.scope:
        lines.append("检索的报告：" + "、".join(answer.scope))
    if answer.dropped_citations:
        lines.append("已删去的引用编号（模型原文）：" + "、".join(str(n) for n in answer.dropped_citations))
    for citation in sorted(answer.citations, key=lambda c: numbers.get(c.n, c.n)):
        where = "网页页眉" if citation.part == "header" else f"第 {citation.start}–{citation.end} 字"
        lines.append(
            f"[{numbers.get(citation.n, citation.n)}] {citation.report_id} · {where} · "
            f"段落 {', '.join(citation.chunk_ids) or '—'}"
        )
    return lines


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
        if number.reason == "another measure":  # 行政复议's figure given for the 行政诉讼 asked
            seen.setdefault(number.raw, f"引用原文中这是{number.stated}的数字，不是所问的{number.asked}")
        seen.setdefault(number.raw, why.get(number.reason, number.reason))
    items = "、".join(f"{raw}（{reason}）" for raw, reason in seen.items())
    return f"⚠ 以下数字未能在引用原文中核实：{items}"


def dropped_note(dropped: Sequence[int]) -> str | None:
    if not dropped:
        return None
    return "已删去指向不存在来源的引用：" + "、".join(f"[{n}]" for n in dropped)


def citation_label(citation: Citation, number: int | None = None) -> str:
    """Expander title: '[n] 《title》 · section' (Markdown-escaped: titles are report text); number: the
    number shown, when the display renumbers (citation_numbers)."""
    title = citation.title or citation.report_id
    label = f"[{citation.n if number is None else number}] 《{title}》"
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
    """The answer as Markdown with inline HTML: each [n] a link to its source, renumbered 1..n in reading
    order (citation_numbers; the source list uses the same numbers and anchors), unverified numbers marked."""
    numbers = citation_numbers(text, cited)
    unverified_raw = {n.raw for n in unverified}
    spans: list[tuple[int, int, str]] = []
    for match in _MARKER.finditer(text):
        shown = numbers.get(int(match.group(1)))
        if shown is not None:
            spans.append(
                (
                    match.start(),
                    match.end(),
                    f'<a class="qa-cite" href="#{anchor_id(message_id, shown)}" title="查看来源 [{shown}]">'
                    f"[{shown}]</a>",
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
            "类型": kind_label(r.meta.kind, r.meta.issuer_kind),
            "地区": r.meta.region,
            "年度": str(r.meta.year or ""),
            "发布日期": r.meta.publish_date or "",
            "文号": r.meta.doc_number,
            "导入时间": local_time(r.ingested_at),
        }
        for r in records
    ]


def summary_details(summary: Summary) -> list[str]:
    """What the summary page's 详细信息 expander lists: template and prompt refs, the source's hash, times."""
    lines = [f"模板：{summary.template}"]
    if summary.prompt_refs:
        lines.append("提示词：" + "、".join(summary.prompt_refs))
    lines += [
        f"报告文件：{summary.report_id}",
        f"原文 SHA-256：{summary.source_hash or '—'}",
        f"生成时间：{local_time(summary.created_at) or '—'}（UTC {summary.created_at or '—'}）",
    ]
    return lines


def report_details(record: ReportRecord) -> list[str]:
    """What the library's 详细信息 expander lists: file, format, chunks, versions and hashes."""
    lines = [
        f"报告文件：{record.report_id}",
        f"格式 / 编码：{' / '.join(x for x in (record.format, record.encoding or '') if x) or '—'}",
        f"分块数：{record.n_chunks}",
        f"入库版本：{record.version}",
        f"原文 SHA-256：{record.content_hash or '—'}",
        f"导入时间（UTC）：{record.ingested_at or '—'}",
    ]
    if record.source_path:
        lines.insert(1, f"来源文件：{record.source_path}")
    return lines


def markdown_rows(rows: Sequence[dict]) -> list[dict]:
    """Table rows for st.table, which reads every cell as Markdown: text cells escaped (titles are report
    text), the rest as they are."""
    return [{k: escape_markdown(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows]


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
    """One line per ingested file: status in Chinese, chunk count, or why it failed (in Chinese: the
    original reason is result_message(result).detail)."""
    label = STATUS_LABELS.get(result.status, result.status)
    if result.status == "failed":
        return f"{label}：{name} — {result_message(result).text}"
    extra = f"（{result.n_chunks} 个分块）" if result.n_chunks else ""
    return f"{label}：{name}{extra}"


def ingest_outcome(results: Sequence[IngestResult]) -> tuple[str, str]:
    """(kind, headline) after an import: 'success' and 导入完成 only when a report was added or updated;
    'info' when every file was unchanged; 'error' when nothing was imported and files failed."""
    counts = {status: sum(r.status == status for r in results) for status in STATUS_LABELS}
    imported, unchanged, failed = (
        counts["ingested"] + counts["updated"],
        counts["unchanged"],
        counts["failed"],
    )
    rest = [
        f"{unchanged} 个文件未变化" if unchanged else "",
        f"{failed} 个文件失败（原因见下）" if failed else "",
    ]
    rest = [part for part in rest if part]
    if imported:
        done = "、".join(
            f"{word} {counts[status]} 份" for status, word in (("ingested", "新增"), ("updated", "更新"))
            if counts[status]
        )  # fmt: skip
        return "success", f"导入完成：{done}" + ("；" + "，".join(rest) if rest else "")
    if not results:
        return "info", "没有要导入的文件。"
    if not failed:
        return "info", f"没有导入新内容：{unchanged} 个文件与文档库中的报告相同（未变化）。"
    return "error", "没有导入任何报告：" + "，".join(rest) + "。"


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


def library_overview(records: Sequence[ReportRecord], limit: int = 8) -> str:
    """'文档库共 5 份报告：淄川区（2024）、洛江区（2024）…' for the chat page's start, by label and year."""
    names = [_report_name(r) for r in records[:limit]]
    more = f" 等 {len(records)} 份" if len(records) > limit else ""
    return f"文档库共 {len(records)} 份报告：" + "、".join(names) + more


def _report_name(record: ReportRecord) -> str:
    label = record.meta.label or "未识别地区"
    return f"{label}（{record.meta.year}）" if record.meta.year else label


def example_questions(records: Sequence[ReportRecord]) -> list[str]:
    """Three questions the chat page offers to ask, built from the loaded reports: a figure from one report,
    the plans of another (the year after the one it reports on), and a comparison when there are several."""
    if not records:
        return []
    # reports named by a place come first: a question about a title reads badly
    ordered = sorted(records, key=lambda r: (not r.meta.region, r.meta.issuer_kind == "部门"))
    first = ordered[0]
    second = ordered[1] if len(ordered) > 1 else first
    questions = [f"{first.meta.label}行政复议案件多少件？"]
    when = f"{second.meta.year + 1}年" if second.meta.year else "下一步"
    questions.append(f"{second.meta.label}{when}有哪些工作安排？")
    if len(records) > 1:
        questions.append("各地区行政复议纠错率分别是多少？")
    else:
        questions.append(f"{first.meta.label}法治政府建设存在哪些问题？")
    return questions


# ---- errors in Chinese ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserMessage:
    """An error as the app shows it: Chinese text (what happened, to which file, what to do) and the
    original message when the text is a translation of it (for a 详细信息 expander; "" when not)."""

    text: str
    detail: str = ""

    def __post_init__(self) -> None:
        # every error the app shows is one of these: a key or password in it (a URL's user:password, a
        # server's error body echoing the Authorization header) is masked here, once for all pages
        object.__setattr__(self, "text", redact(self.text))
        object.__setattr__(self, "detail", redact(self.detail))


_TYPES_TEXT = "、".join(sorted({t.upper() for t in UPLOAD_TYPES} - {"HTM"}))
_RESAVE = "请另存为 UTF-8 编码的文本后再上传。"
_RESTART = "请修改这个环境变量后重启应用。"
_STORE_RETRY = (
    "读取文档库时出错：文档库可能刚被其他程序修改（导入或删除了报告）。对话记录已保留，请点「重试」。"
)
# What the app says for each error code (qa.core.errors: every raise site names its code and passes the
# fields the message is built from). {field} is filled from the error's fields; an InputError's file name
# goes before the text. Rewording an English message changes nothing here.
ERROR_TEXTS: dict[str, str] = {
    # files and uploads (qa.ingest.loaders, qa.ingest.pipeline, qa.store.chroma)
    "input.unsupported_type": f"不支持的文件类型（{{suffix}}）。请另存为 {_TYPES_TEXT} 之一后再上传。",
    "input.not_pdf": "不是有效的 PDF 文件（文件开头没有 %PDF 标记，可能是改了扩展名的其他文件）。请上传原始 PDF，或另存为 Word / TXT 后再上传。",
    "input.pdf_encrypted": "PDF 设有密码保护，无法读取。请另存一份不加密的副本后再上传。",
    "input.pdf_unreadable": "PDF 文件已损坏或无法读取。请重新导出 PDF，或另存为 Word / TXT 后再上传。",
    "input.not_docx": "不是有效的 Word（.docx）文件。如果是旧版 .doc 或 WPS 文件，请在 Word / WPS 中另存为 .docx 后再上传。",
    "input.docx_unreadable": "Word（.docx）文件已损坏或无法读取。请在 Word / WPS 中重新保存后再上传。",
    "input.scanned_pdf": "没有可提取的文字，可能是扫描件（图片）PDF。请先做文字识别（OCR），或上传文字版 PDF / Word。",
    "input.no_report_text": "去掉网页导航和页眉页脚后没有报告正文。请确认文件是报告全文。",
    "input.no_readable_text": f"文件中没有可读的文字（可能是二进制文件或乱码）。{_RESAVE}",
    "input.binary": "看起来是二进制文件，不是文本。请上传报告的 TXT、PDF 或 Word 文件。",
    "input.undecodable": f"无法识别文字编码（不是 UTF-8、UTF-16 或 GB18030/GBK），可能是乱码。{_RESAVE}",
    "input.bad_bom": f"文件开头标明是 {{encoding}} 编码，但内容不是有效的 {{encoding}}（可能已损坏）。{_RESAVE}",
    "input.too_large": "文件大小 {size_mb} MB，超过 {limit_mb} MB 的上限。请压缩或拆分后再上传，或请管理员调高 QA_MAX_FILE_MB。",
    "input.unpacks_too_large": "文件解压后超过 {limit_mb} MB（可能是“压缩炸弹”，或不是报告），已拒绝，没有解压。如果确是报告，请另存为 PDF 或 TXT 后再上传，或请管理员调高 QA_MAX_FILE_MB。",
    "input.zip_bomb": "文件解压后会膨胀成原来的许多倍（可能是“压缩炸弹”，或不是报告），已拒绝，没有解压。如果确是报告，请另存为 PDF 或 TXT 后再上传。",
    "input.empty": "文件为空（0 字节）。请检查文件后重新上传。",
    "input.not_found": "找不到这个文件或文件夹，请检查路径。",
    "input.is_folder": "这是一个文件夹，请选择文件。",
    "input.no_reports_in_folder": f"文件夹中没有报告文件（支持 {_TYPES_TEXT}）。",
    "input.no_reports": "文档库中还没有可以对比的报告：请先在“文档库”页导入报告。",
    "input.bad_file_name": "文件名不是有效的 UTF-8 编码（报告以文件名区分）。请重命名文件后再导入。",
    "input.same_name": "与 {other} 文件名相同（报告以文件名区分）。请重命名其中一个后再导入。",
    "input.no_text_after_cleaning": "清洗后没有可检索的文字。请确认文件是报告全文。",
    "input.duplicate": "与文档库中的报告 {twin} 内容完全相同（同一份文件），没有重复导入。如要改用这个文件名，请先删除 {twin} 再上传。",
    "input.baseline_needs_why": "基线未写入：有问题在原基线中答对、现在答错；更新基线时请用 --why 写明原因。",
    "input.regulation_no_articles": "所给的规定文本中没有“第…条”形式的条款。请提供《法治政府建设与责任落实督察工作规定》的全文（设置项 QA_REGULATION_TEXT）。",
    "input.regulation_no_contents": "所给的规定文本中没有列出年度报告内容（主要举措和成效、不足和原因……）的条款。请提供《法治政府建设与责任落实督察工作规定》的全文（设置项 QA_REGULATION_TEXT）。",
    "input.out_is_file": "这是一个文件，不是文件夹。请给一个用来存放输出的文件夹（不存在时会自动创建）。",
    "input.out_unusable": "无法创建或写入这个文件夹。请换一个有写权限的文件夹。",
    "input.unknown_report": "文档库中没有报告 {report}（可能已被删除）。请到「文档库」页面查看现有报告。",
    # settings (qa.core.config, qa.store.chroma, qa.models.embeddings)
    "config.invalid_value": f"设置项 {{name}} 的值 {{raw}} 无效，应为{{kind}}。{_RESTART}",
    "config.not_positive": f"设置项 {{name}} 必须大于 0。{_RESTART}",
    "config.path_is_file": "设置项 {name} 指向的 {path} 是一个文件，不是文件夹。请改为一个文件夹（不存在时会自动创建）后重启应用。",
    "config.url_has_query": "设置项 {name} 带有查询参数（“?”之后的部分，可能含有密钥），地址中不能有。请把 API 密钥放在 QA_LLM_API_KEY 中，"
                            "把 {name} 改为不带“?”的地址（通常以 /v1 结尾）后重启应用。",
    "config.bad_url": "设置项 {name} 不是有效的服务地址。请改为形如 http://127.0.0.1:8000/v1 的 OpenAI 兼容服务地址（http 或 https、主机名），"
                      "或不设置它，然后重启应用。",
    "config.bad_chroma_url": "设置项 QA_CHROMA_URL 的值 {raw} 不是有效的 Chroma 服务地址。请改为形如 http://localhost:8000 的地址"
                             "（http 或 https、主机名、1–65535 之间的端口），或不设置它以使用内置文档库，然后重启应用。",
    "config.unusable_folder": "无法使用文件夹 {path}（不能创建或写入）。请把 QA_DATA_DIR 设为一个可写的文件夹后重启应用。",
    # the model service (qa.models.llm)
    "llm.not_configured": "没有配置 LLM。请设置 QA_LLM_MODEL（以及 QA_LLM_BASE_URL / QA_LLM_API_KEY），或使用离线引擎。",
    "llm.no_endpoint": "已设置 QA_LLM_MODEL={model}，但没有模型服务地址。请设置 QA_LLM_BASE_URL（任一 OpenAI 兼容服务），"
                       "或设置 QA_LLM_API_KEY / OPENAI_API_KEY 以使用 api.openai.com。",
    "llm.auth_rejected": "模型服务拒绝了 API 密钥（401）。请把 QA_LLM_API_KEY（或 OPENAI_API_KEY）设为有效的密钥，或不设置 QA_LLM_MODEL，改用离线引擎。",
    "llm.forbidden": "模型服务拒绝访问（403）。请检查 API 密钥的权限，或改用离线引擎。",
    "llm.not_found": "模型服务返回 404（找不到）。请检查模型名称（QA_LLM_MODEL），以及 QA_LLM_BASE_URL 是否以 /v1 结尾。",
    "llm.unreachable": "无法连接到模型服务 {endpoint}。请检查 QA_LLM_BASE_URL，以及模型服务是否已启动。",
    "llm.busy": "同时进行的模型调用太多，等待超时。请减少并发数，或调高 QA_LLM_DEADLINE。",
    "llm.deadline": "模型在 {seconds} 秒内没有完成回答。请重试，或调高 QA_LLM_DEADLINE。",
    "llm.still_writing": "模型在 {seconds} 秒内没有写完回答（已写 {chars} 字），未完成的回答未采用。请调高 QA_LLM_DEADLINE，或换用更快的模型。",
    "llm.rate_limited": "模型服务限流（429）。请稍等后重试，或减少同时进行的请求。",
    "llm.timeout": "模型服务没有及时回答（超时）。请重试，或调高 QA_LLM_TIMEOUT。",
    "llm.server_error": "模型服务出错（{status}）。请稍后重试。",
    "llm.http_error": "模型服务返回错误（{status}）。请检查模型设置，或稍后重试。",
    "llm.bad_response": "模型服务返回的内容不是 OpenAI 格式。请检查 QA_LLM_BASE_URL 是否指向 OpenAI 兼容接口（通常以 /v1 结尾）。",
    "llm.no_choices": "模型服务返回了空的回答。请重试，或换用其他模型。",
    "llm.truncated": "模型的回答达到长度上限被截断，未采用。请调高 QA_LLM_MAX_TOKENS，或换用更大的模型。",
    "llm.degenerate": "模型的回答无效（空白、循环重复或照抄了提示词），未采用。请换用更大的模型，或检查服务端的对话模板（llama-server 需加 --jinja）。",
    # the store (qa.store.chroma, qa.index.retriever)
    "store.empty": "文档库中还没有报告。请先到「文档库」页面上传报告，或导入示例报告。",
    "store.busy": "文档库正在被其他程序写入（例如命令行中的 qa ingest / qa rm 或其他用户的上传），等待超时，本次操作没有执行。请稍后点「重试」。",
    "store.damaged": "文档库已损坏，无法读取其中的报告；程序没有做任何改动。请管理员从备份恢复文档库文件夹，或把它移到别处后重新导入报告（详见下方“详细信息”）。",
    "store.read_only": "文档库为只读（当前程序没有写入权限）：可以浏览、检索和问答，但不能导入、替换或删除报告。请管理员调整文档库文件夹的权限。",
    "store.report_damaged": "报告「{report}」在文档库中的数据不完整（部分分块缺失），无法据此作答。请重新导入这份报告：在「文档库」页面重新上传，或在命令行运行 qa ingest。",
    "store.error": _STORE_RETRY,
    "store.read_failed": _STORE_RETRY,
    "store.changed": _STORE_RETRY,
    "store.unusable_path": "无法使用文件夹 {path} 存放文档库（不能创建或写入）。请把 QA_DATA_DIR 设为一个可写的文件夹后重启应用。",
    "store.unreadable": "无法打开文档库 {path}，它可能已损坏。请管理员从备份恢复文档库文件夹，或把它移到别处后重新导入报告。",
    "store.unreachable": "无法连接到 Chroma 服务 {url}（QA_CHROMA_URL）。请启动该服务，或不设置 QA_CHROMA_URL 以使用内置文档库，然后重启应用。",
}  # fmt: skip
# Codes that name only a kind of error (a raise site that gave no narrower code): a Chinese lead, then the
# English message whole (nothing lost). A message written in Chinese already is shown as it is.
ERROR_LEADS: dict[str, str] = {
    "config": "设置有误",
    "input": "输入有误",
    "llm.error": "模型服务出错",
    "output": "模型的输出无法使用",
    "error": "出错了",
}
_ZH_KINDS = {"float": "数字", "int": "整数", "bool": "true 或 false"}
_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
_NAMES_IN_TEXT = re.compile(r"'[^']*'|\"[^\"]*\"|\S*[/\\.]\S*")


def _is_chinese(text: str) -> bool:
    """Written in Chinese (a quoted name or a path in an English message does not count)."""
    prose = _NAMES_IN_TEXT.sub(" ", text)
    return len(_CJK_CHAR.findall(prose)) * 3 > len(re.findall(r"[A-Za-z]", prose))


def _zh_fields(fields: Mapping[str, object]) -> dict[str, str]:
    shown = {name: "" if value is None else str(value) for name, value in fields.items()}
    if "kind" in shown:
        shown["kind"] = _ZH_KINDS.get(shown["kind"], shown["kind"])
    if "suffix" in shown and shown["suffix"] in ("", "(none)"):
        shown["suffix"] = "无扩展名"
    return shown


def coded_text(code: str, fields: Mapping[str, object]) -> str | None:
    """The Chinese text for an error code, filled from its fields; None for a code without its own text."""
    template = ERROR_TEXTS.get(code)
    if template is None:
        return None
    return template.format_map(_Blank(_zh_fields(fields)))


class _Blank(dict):
    """A field a raise site did not pass reads as empty: a message short of a detail beats a KeyError."""

    def __missing__(self, key: str) -> str:
        return ""


def error_message(error: QAError) -> UserMessage:
    """Any QAError as the app shows it: in Chinese (from its code and fields), naming the file, saying what
    to do; the original (English) message kept as detail. An error without a text of its own is kept whole
    after a Chinese lead for its kind (nothing lost), or as it is when it is Chinese already."""
    original = str(error)
    text = coded_text(error.code, error.fields)
    if text is not None:
        if isinstance(error, InputError) and error.path:
            text = f"{_file_name(error.path)}：{text}"
        return UserMessage(text, original)
    if isinstance(error, InputError) and error.path and _is_chinese(error.reason):
        return UserMessage(f"{_file_name(error.path)}：{error.reason}")
    if _is_chinese(original):
        return UserMessage(original)
    kinds = [getattr(kind, "code", None) for kind in type(error).__mro__]
    lead = next(ERROR_LEADS[code] for code in kinds if code in ERROR_LEADS)
    return UserMessage(f"{lead}：{original}")


def row_message(reason: str, code: str = "", fields: Mapping[str, object] | None = None) -> UserMessage:
    """A failure kept in a row (an ingest result, a batch item: its reason, code and fields) as the app
    shows it, without the file name; detail = the original when translated. A reason without a code's
    text (Chinese already, or a failure no error raised) is kept as it is."""
    text = coded_text(code, fields or {}) if code else None
    return UserMessage(text, reason) if text is not None else UserMessage(reason)


def result_message(result: IngestResult) -> UserMessage:
    """Why an ingest failed, as the app shows it (row_message of its reason, code and fields)."""
    return row_message(result.reason, result.code, result.fields)


def _file_name(path: str) -> str:
    return PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name


# ---- Streamlit's own widget text in Chinese ------------------------------------------------------

# Streamlit 1.67 has no UI language setting and no parameters for the text its widgets draw themselves
# (the uploader's "Upload" / "200MB per file" / "Drag and drop files here", the dropdowns' "Select all" /
# "No results", the table toolbar's tooltips; streamlit/streamlit#13500 is open). These rules rewrite exactly
# those strings: a text node (or a title / aria-label) whose whole text matches, inside a Streamlit widget,
# never report text. WIDGET_SCRIPT runs them in the browser; widget_text_zh is the same rules in Python.
WIDGET_TEXT_RULES: tuple[tuple[str, str], ...] = (
    (r"Upload", "选择文件"),
    (r"Upload directories", "选择文件夹"),
    (r"Drag and drop (?:a file|files) here", "将文件拖放到这里"),
    (r"Drag and drop directories here", "将文件夹拖放到这里"),
    (r"(\S+) per file", "单个文件不超过 $1"),
    (r"(.+) files are not allowed\.", "不支持 $1 类型的文件。"),
    (r"File must be (.+) or smaller\.", "文件不能超过 $1。"),
    (r"File size is too small\.", "文件太小。"),
    (r"Only one file is allowed\.", "只能上传一个文件。"),
    (r"Unexpected error\. Please try again\.", "意外错误，请重试。"),
    (r"Upload failed", "上传失败"),
    (r"Add files", "添加文件"),
    (r"Remove (.+)", "移除 $1"),
    (r"Select all", "全选"),
    (r"Select (\d+) matches", "选择 $1 个匹配项"),
    (r"No results", "没有匹配项"),
    (r"No options to select\.?", "没有可选项"),
    (r"Clear all", "全部清除"),
    (r"Download as CSV", "下载为 CSV"),
    (r"Search", "搜索"),
    (r"Fullscreen", "全屏"),
    (r"Close fullscreen", "退出全屏"),
    (r"Show/hide columns", "显示/隐藏列"),
    (r"Skip to main content", "跳到主要内容"),
    (r"Dismiss", "关闭"),
)
# Where the rules apply: Streamlit's widgets and the popovers/tooltips they open (not the page's content).
WIDGET_SCOPE = ", ".join(
    (
        '[data-testid="stFileUploader"]',
        '[data-testid="stMultiSelect"]',
        '[data-testid="stSelectbox"]',
        '[data-testid$="Dropdown"]',  # a select box's open list (stMultiSelectDropdown…), drawn outside it
        '[role="listbox"]',
        '[data-testid="stElementToolbar"]',
        '[data-testid="stTooltipContent"]',
        '[role="tooltip"]',
        '[data-baseweb="popover"]',
        '[data-testid="stSkipToContent"]',
    )
)


def widget_text_zh(text: str) -> str | None:
    """Streamlit's English widget text in Chinese (the rules WIDGET_SCRIPT applies); None when no rule fits."""
    stripped = text.strip()
    for pattern, replacement in WIDGET_TEXT_RULES:
        match = re.fullmatch(pattern, stripped)
        if match:
            groups = match.groups()
            translated = re.sub(r"\$(\d)", lambda m, groups=groups: groups[int(m.group(1)) - 1], replacement)
            return text.replace(stripped, translated)
    return None


WIDGET_SCRIPT = """
<script>
if (!window.__qaWidgetZh) {
  window.__qaWidgetZh = true;
  const rules = RULES.map(([pattern, text]) => [new RegExp("^(?:" + pattern + ")$"), text]);
  const scope = SCOPE;
  const attributes = ["title", "aria-label"];
  const zh = (value) => {
    const text = value.trim();
    for (const [pattern, replacement] of rules) {
      if (pattern.test(text)) return value.replace(text, text.replace(pattern, replacement));
    }
    return null;
  };
  const inScope = (element) => element && element.closest && element.closest(scope);
  const fixText = (node) => {
    if (!inScope(node.parentElement)) return;
    const text = zh(node.nodeValue);
    if (text !== null && text !== node.nodeValue) node.nodeValue = text;
  };
  const fixAttributes = (element) => {
    if (!inScope(element)) return;
    for (const name of attributes) {
      const value = element.getAttribute(name);
      const text = value && zh(value);
      if (text && text !== value) element.setAttribute(name, text);
    }
  };
  const walk = (root) => {
    if (root.nodeType === Node.TEXT_NODE) return fixText(root);
    if (root.nodeType !== Node.ELEMENT_NODE) return;
    if (!root.closest(scope) && !root.querySelector(scope)) return;
    fixAttributes(root);
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      node.nodeType === Node.TEXT_NODE ? fixText(node) : fixAttributes(node);
    }
  };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === "childList") record.addedNodes.forEach(walk);
      else if (record.type === "characterData") fixText(record.target);
      else fixAttributes(record.target);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true,
                             attributeFilter: attributes});
  walk(document.body);
}
</script>
""".replace("RULES", json.dumps(WIDGET_TEXT_RULES)).replace("SCOPE", json.dumps(WIDGET_SCOPE))


def vector_status(records: Sequence[ReportRecord]) -> str:
    """ "向量索引 x/y 段" while reports wait for their vectors (searchable by keywords meanwhile); "" when
    every report is embedded."""
    total = sum(r.n_chunks for r in records)
    done = sum(r.n_chunks for r in records if r.embedded)
    if done == total:
        return ""
    return f"向量索引 {done:,}/{total:,} 段（其余报告暂按关键词检索，向量补齐后自动使用）"
