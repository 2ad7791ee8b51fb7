"""Document → section tree → chunks. Pure; chunk ids are stable for the same text and settings."""

from __future__ import annotations

import re

from qa.core.schemas import Chunk, ReportMeta, Section
from qa.genre.outline import heading_level

# Boundaries only at punctuation or line breaks: never inside "517 宗" or "1.1亿元".
SEPARATORS = ["\n\n", "\n", "。", "；", "！", "？", "，", "、"]
SECTION_SEP = " > "
MIN_CHUNK = 80  # a shorter heading-only piece is merged into the next one
_MAX_TITLE = {1: 40, 2: 40, 3: 40, 4: 30}


def _heading_title(line: str, level: int) -> str:
    stop = r"[。；;：:]" if level < 4 else r"[。；;：:，,]"
    title = re.split(stop, line, maxsplit=1)[0].strip()
    limit = _MAX_TITLE[level]
    return title if len(title) <= limit else title[:limit] + "…"


def sections(text: str) -> list[Section]:
    """The report's section tree (flattened, in order): headings 一、 / （一） / 1. / 一是 at line starts."""
    found: list[Section] = []
    stack: list[tuple[int, str]] = []
    offset = 0
    for line in text.split("\n"):
        level = heading_level(line)
        if level is not None:
            title = _heading_title(line, level)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            found.append(Section(level, title, offset, tuple(t for _, t in stack)))
        offset += len(line) + 1
    return found


def _says_more(line: str) -> bool:
    """A heading line that goes on past its title ((二)收到申请情况。本年度共收到依申请公开17条。): a section of
    its own, not a bare heading to join to the next."""
    parts = re.split(r"[。！？]", line, maxsplit=1)
    return len(parts) == 2 and bool(parts[1].strip())


def _segments(text: str, tree: list[Section]) -> list[tuple[int, int, str]]:
    """Spans between headings of level 1–3 with their section path; heading-only spans join the next."""
    bounds = [s for s in tree if s.level <= 3]
    spans: list[tuple[int, int, str]] = []
    starts = [0] + [s.start for s in bounds]
    # A level 1–3 heading's path never holds level-4 points: they were popped off the stack.
    paths = [""] + [SECTION_SEP.join(s.path) for s in bounds]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        if end > start:
            spans.append((start, end, paths[i]))
    merged: list[tuple[int, int, str]] = []
    pending_start: int | None = None
    for start, end, path in spans:
        body = text[start:end].strip()
        if "\n" not in body and heading_level(body) in (1, 2, 3) and len(body) <= 60 and not _says_more(body):
            pending_start = start if pending_start is None else pending_start
            continue  # a bare heading line: its title is already in the next span's path
        merged.append((pending_start if pending_start is not None else start, end, path))
        pending_start = None
    if pending_start is not None:
        merged.append((pending_start, len(text), spans[-1][2]))
    return merged


def chunk_document(
    report_id: str,
    text: str,
    meta: ReportMeta,
    version: str,
    chunk_size: int = 400,
    chunk_overlap: int = 60,
) -> list[Chunk]:
    """Split a report's clean text into chunks that carry their section path and offsets."""
    # imported here: answering and summarising read sections only, and a cold `qa ask` should not pay ~0.1 s
    # for langchain-core
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=SEPARATORS,
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=True,
    )
    # a report without a title line is named by its identity (铜梁区人民政府 2022年), never its file name
    title = meta.title or " ".join(
        x for x in (meta.issuer or meta.region, f"{meta.year}年" if meta.year else "") if x
    )
    chunks: list[Chunk] = []
    for seg_start, seg_end, path in _segments(text, sections(text)):
        segment = text[seg_start:seg_end]
        spans: list[list[int]] = []
        carry: int | None = None  # a heading split off on its own joins the piece after it
        for piece in splitter.create_documents([segment]):
            local = piece.metadata["start_index"]
            if local < 0:  # the splitter could not locate it (never seen); search ourselves
                local = segment.find(piece.page_content)
            span = [seg_start + local, seg_start + local + len(piece.page_content)]
            if carry is not None:
                span[0], carry = carry, None
            if heading_level(piece.page_content) and len(piece.page_content) < MIN_CHUNK:
                carry = span[0]
                continue
            spans.append(span)
        if carry is not None:
            spans.append([carry, seg_end])
        for start, end in spans:
            body = text[start:end].strip()
            prefix = f"{title} · {path} · " if path else f"{title} · "
            chunks.append(
                Chunk(
                    id=f"{version[:16]}-{start}",
                    report_id=report_id,
                    version=version,
                    ordinal=len(chunks),
                    section=path,
                    start=start,
                    end=start + len(body),
                    text=body,
                    embed_text=prefix + body,
                    title=title,
                    region=meta.region,
                    year=meta.year,
                )
            )
    return chunks
