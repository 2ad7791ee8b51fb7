"""bytes → clean text: encoding detection, HTML/PDF/DOCX extraction, web boilerplate removal.

The clean text keeps the report's own characters (no NFKC here): quotes and offsets point into it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import zipfile
from pathlib import Path

from qa.core.errors import InputError
from qa.core.schemas import Document
from qa.genre.outline import LEVEL_1, LEVEL_2, LEVEL_3, SEQUENCE_WORDS

SUPPORTED = {".txt": "txt", ".md": "md", ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx"}

_CJK = re.compile(r"[\u3400-\u9fff]")
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Encodings we accept from detection; anything else on a Chinese-report tool is almost always mojibake.
_ACCEPTED = {"gb18030", "gbk", "gb2312", "hz", "big5", "big5hkscs", "utf_8", "ascii", "utf_16", "utf_32"}
# A compressed file (a .docx is a zip; a PDF's streams are deflated) may unpack to at most this many times
# the file-size limit. A report's XML unpacks to 5–15× its packed size and its images to about 1×, so a
# report under the file limit fits; a zip bomb (1 MB on disk, 1 GiB unpacked) does not.
UNPACKED_PER_FILE_LIMIT = 5
# One part that unpacks this many times smaller is made of repetition, not of a report's text.
_BOMB_RATIO = 100
_BOMB_RATIO_FROM = 10 * 1024 * 1024  # bytes unpacked; small parts of repeated markup compress well too
_MAX_ENTRIES = 10_000  # a report's .docx has tens of parts, a few hundred with many images


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """Read a report file, refusing what cannot be a report before decoding anything."""
    if not path.exists():
        raise InputError("no such file or folder", str(path), code="input.not_found")
    if path.is_dir():
        raise InputError("is a folder, expected a file", str(path), code="input.is_folder")
    if path.suffix.lower() not in SUPPORTED:
        raise InputError(
            f"unsupported file type {path.suffix or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED))}",
            str(path),
            code="input.unsupported_type",
            suffix=path.suffix,
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(
            f"file is {size / 1048576:.1f} MB, over the {max_bytes / 1048576:.0f} MB limit "
            "(raise QA_MAX_FILE_MB to allow it)",
            str(path),
            code="input.too_large",
            size_mb=f"{size / 1048576:.1f}",
            limit_mb=f"{max_bytes / 1048576:.0f}",
        )
    if size == 0:
        raise InputError("file is empty", str(path), code="input.empty")
    return path.read_bytes()


def decode_text(data: bytes, path: str = "") -> tuple[str, str]:
    """Decode text bytes, detecting the encoding (BOM, UTF-8, then charset detection for GB18030/GBK…)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding.replace("-sig", "") + (" (BOM)")
            except UnicodeDecodeError:
                raise InputError(
                    f"starts with a {encoding} byte-order mark but is not valid {encoding}",
                    path,
                    code="input.bad_bom",
                    encoding=encoding,
                ) from None
    if b"\x00" in data[:4096]:
        raise InputError("looks like a binary file (NUL bytes), not text", path, code="input.binary")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding in _ACCEPTED:
        return str(best), best.encoding.replace("_", "-")
    # Detection is unsure on short Chinese files; GB18030 (superset of GBK/GB2312) is the usual case.
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    if text and _looks_like_chinese(text):
        return text, "gb18030"
    raise InputError(
        "cannot decode the text: not UTF-8, UTF-16 or GB18030/GBK (undecodable bytes); save it as UTF-8",
        path,
        code="input.undecodable",
    )


def _looks_like_chinese(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(bool(_CJK.match(c)) for c in letters) / len(letters) > 0.5


_BLOCK_TAGS = (
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
    "article", "blockquote", "pre", "dt", "dd", "center",
)  # fmt: skip
_DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "form", "iframe", "button",
              "select", "input", "textarea", "svg", "template")  # fmt: skip


def html_to_text(html: str) -> tuple[str, str]:
    """HTML → (page title, text with one paragraph per line)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    if soup.head:
        soup.head.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for cell in soup.find_all(("td", "th")):
        cell.insert_after(" ")
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_before("\n")
        block.insert_after("\n")
    return page_title, soup.get_text()


def pdf_to_text(data: bytes, path: str = "", unpacked_max: int | None = None) -> str:
    """A PDF's text, page by page. unpacked_max: the most bytes its pages' content streams may unpack to,
    all together (pypdf bounds each stream, not their sum, and keeps what it unpacked)."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError

    budget = unpacked_max
    try:
        with _pdf_stream_limit(unpacked_max):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise InputError(
                    "PDF is password-protected; save an unprotected copy", path, code="input.pdf_encrypted"
                )
            pages: list[str] = []
            for page in reader.pages:
                if budget is not None:
                    contents = page.get_contents()
                    budget -= len(contents.get_data()) if contents is not None else 0
                    if budget < 0:
                        why = f"the content of its first {len(pages) + 1} pages"
                        raise _too_big(unpacked_max or 0, why, path, **_PDF_BOMB)
                pages.append(page.extract_text() or "")
    except InputError:
        raise
    except LimitReachedError as ex:
        if unpacked_max and "decompress" in str(ex).lower():
            raise _too_big(unpacked_max, "one of its compressed streams", path, **_PDF_BOMB) from ex
        raise InputError(
            f"not a readable PDF: over a safety limit of the PDF reader ({ex})",
            path,
            code="input.pdf_unreadable",
        ) from ex
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as ex:
        raise InputError(f"not a readable PDF ({ex})", path, code="input.pdf_unreadable") from ex
    return _join_wrapped_lines("\n".join(pages))


_PDF_BOMB = {"bomb": "a decompression bomb", "save_as": "text or print it to a new PDF"}


def _pdf_stream_limit(unpacked_max: int | None) -> contextlib.AbstractContextManager[object]:
    """pypdf's limit on what one stream may unpack to, lowered to ours when ours is lower (a pypdf without
    `apply_configuration` keeps its own 75 MB)."""
    try:
        from pypdf import apply_configuration, get_configuration
    except ImportError:
        return contextlib.nullcontext()
    if unpacked_max is None:
        return contextlib.nullcontext()
    current = get_configuration()
    names = ("zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
             "brotli_maximum_output_length", "array_based_stream_maximum_output_length")  # fmt: skip
    lowered = {name: min(getattr(current, name), unpacked_max) for name in names if hasattr(current, name)}
    return apply_configuration(**lowered)


def _join_wrapped_lines(text: str) -> str:
    """PDF text breaks lines inside sentences; rejoin a line that does not end a sentence."""
    out: list[str] = []
    for line in (ln.strip() for ln in text.splitlines()):
        if not line:
            continue
        joinable = (
            out and not re.search(r"[。！？：:；;）)」”]$", out[-1]) and not _HEADING_START.match(out[-1])
        )
        if joinable and not _HEADING_START.match(line):
            out[-1] += line
        else:
            out.append(line)
    return "\n".join(out)


def unpacked_limit(max_bytes: int) -> int:
    """How many bytes a compressed report file may unpack to: a multiple of the file-size limit."""
    return max_bytes * UNPACKED_PER_FILE_LIMIT


def _too_big(
    limit: int, why: str, path: str, *, bomb: str = "a zip bomb", save_as: str = "PDF or text"
) -> InputError:
    return InputError(
        f"unpacks to more than {_mb(limit)} ({why}): {bomb} or not a report, so it is refused. "
        f"If it is a real report, save it as {save_as}, or raise QA_MAX_FILE_MB (a file may unpack to "
        f"{UNPACKED_PER_FILE_LIMIT}× it)",
        path,
        code="input.unpacks_too_large",
        limit_mb=_mb(limit).removesuffix(" MB"),
    )


def _mb(size: int) -> str:
    return f"{size / 1048576:,.0f} MB" if size >= 10 * 1048576 else f"{size / 1048576:.1f} MB"


def check_package(data: bytes, limit: int, path: str = "") -> None:
    """Refuse a zip package (.docx) that unpacks to more than `limit` bytes, before a parser unpacks it.

    The declared sizes are checked first (nothing is unpacked); then every part is read in 1 MB pieces,
    counting what actually comes out, so a header that lies about its size is caught too."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            entries = package.infolist()
            if len(entries) > _MAX_ENTRIES:
                raise InputError(
                    f"holds {len(entries):,} parts (a report's .docx has tens): a zip bomb or not a report; "
                    "save the report as PDF or text",
                    path,
                    code="input.zip_bomb",
                )
            declared = sum(entry.file_size for entry in entries)
            if declared > limit:
                raise _too_big(limit, f"its parts declare {_mb(declared)}", path)
            for entry in entries:
                ratio = entry.file_size / max(1, entry.compress_size)
                if entry.file_size >= _BOMB_RATIO_FROM and ratio > _BOMB_RATIO:
                    raise InputError(
                        f"part {entry.filename} unpacks {ratio:,.0f} times larger ({_mb(entry.file_size)}): a zip "
                        "bomb, not a report's text; save the report as PDF or text",
                        path,
                        code="input.zip_bomb",
                    )
            unpacked = 0
            for entry in entries:
                with package.open(entry) as part:
                    while piece := part.read(1 << 20):
                        unpacked += len(piece)
                        if unpacked > limit:
                            raise _too_big(limit, "what its parts hold", path)
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as ex:
        # a wrong CRC here is a part that unpacks to other bytes than it declares: damaged or crafted
        raise InputError(
            f"not a readable .docx file (a damaged zip package: {ex})", path, code="input.docx_unreadable"
        ) from ex


def docx_to_text(data: bytes, path: str = "") -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, ValueError, KeyError) as ex:
        raise InputError(f"not a readable .docx file ({ex})", path, code="input.docx_unreadable") from ex
    except Exception as ex:  # zipfile.BadZipFile and lxml errors surface as assorted types
        raise InputError(
            f"not a readable .docx file ({type(ex).__name__}: {ex})", path, code="input.docx_unreadable"
        ) from ex
    lines: list[str] = []
    for child in document.element.body.iterchildren():
        if child.tag.endswith("}p"):
            lines.append(Paragraph(child, document).text)
        elif child.tag.endswith("}tbl"):
            for row in Table(child, document).rows:
                lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(lines)


# ---- boilerplate -------------------------------------------------------------------------------

_SPACE = "\u00a0\u3000\u2002\u2003\u2009\u200b\ufeff \t\r"
_HEADING_START = re.compile(rf"^(?:{LEVEL_1}|{LEVEL_2}|{LEVEL_3}(?!\d))")
# Lines that are page furniture wherever they occur.
_JUNK_ANYWHERE = re.compile(
    r"^(?:扫一扫.*|分享到[:：]?.*|附件下载|相关附件[:：]?|相关文章|相关链接|文章关键词[:：]?.*|[(（]此件主动公开[)）]"
    r"|【?(?:打印|关闭|打印本页|关闭窗口|返回顶部|收藏)】?(?:\s*【?(?:打印|关闭|打印本页|关闭窗口|返回顶部|收藏)】?)*"
    r"|字号[:：]?.*[大中小].*|微信|微博|QQ空间|上一篇[:：]?.*|下一篇[:：]?.*)$"
)
_HEADER_LINE = re.compile(
    r"^(?:当前位置|您的位置|首页\s*[>＞»]|.*[>＞»]\s*\S+\s*[>＞»]|[•·]|\|"
    r"|(?:发布日期|发布时间|发文日期|成文日期|公文生成日期|来源|信息来源|时间|访问量|浏览次数|点击数|索\s*引\s*号"
    r"|备注/文号|文\s*号|发布机构|发文机关|主题分类|公开方式|责任部门|作者|编辑)\s*[:：])"
)
_FOOTER_LINE = re.compile(
    r"^(?:相关解读|文字解读|图片解读|视频解读|访谈解读|媒体报道|政策解读|解读材料|分享到.*|版权所有.*|主办单位.*|承办单位.*"
    r"|网站标识码.*|.*ICP备.*|.*公网安备.*|技术支持.*|联系我们.*|网站地图.*|责任编辑[:：].*"
    r"|\S+(?:办公室|办公厅)\s*\d{4}年\d{1,2}月\d{1,2}日\s*印发|抄送[:：].*)$"
)


def split_boilerplate(text: str) -> tuple[str, str, str]:
    """Raw page text → (header, clean body, footer).

    The header keeps navigation, header tables and the title line (metadata reads them); the body
    starts at the first line of prose or a salutation and ends at the sign-off.
    """
    lines = [ln.strip(_SPACE) for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln and not _JUNK_ANYWHERE.match(ln)]
    start = 0
    while start < len(lines) and _is_header_line(lines[start]):
        start += 1
    end = len(lines)
    while end > start and _FOOTER_LINE.match(lines[end - 1]):
        end -= 1
    return "\n".join(lines[:start]), "\n".join(lines[start:end]), "\n".join(lines[end:])


def _is_header_line(line: str) -> bool:
    if _HEADING_START.match(line) or line.startswith(("一是", SEQUENCE_WORDS[0])):
        return False
    if _HEADER_LINE.match(line):
        return True
    # Short lines with no sentence punctuation before the body: site name, issuer, title line.
    return len(line) <= 80 and not re.search(r"[，,。；;！？!?：:]", line)


def load(path: Path, max_bytes: int = 20 * 1024 * 1024, report_id: str | None = None) -> Document:
    """Read, decode and clean one report file. Raises InputError naming the file."""
    data = read_bytes(path, max_bytes)
    fmt = SUPPORTED[path.suffix.lower()]
    shown = str(path)
    encoding: str | None = None
    page_title = ""
    if fmt in ("txt", "md"):
        raw, encoding = decode_text(data, shown)
    elif fmt == "html":
        decoded, encoding = decode_text(data, shown)
        page_title, raw = html_to_text(decoded)
    elif fmt == "pdf":
        if not data.startswith(b"%PDF"):
            raise InputError("not a PDF file (no %PDF header)", shown, code="input.not_pdf")
        raw = pdf_to_text(data, shown, unpacked_limit(max_bytes))
    else:
        if not data.startswith(b"PK"):
            raise InputError("not a .docx file (not a zip package)", shown, code="input.not_docx")
        check_package(data, unpacked_limit(max_bytes), shown)
        raw = docx_to_text(data, shown)
    header, body, footer = split_boilerplate(raw)
    if page_title:
        header = page_title + ("\n" + header if header else "")
    if not body.strip():
        hint = " (a scanned PDF? run OCR first)" if fmt == "pdf" else ""
        code = "input.scanned_pdf" if fmt == "pdf" else "input.no_report_text"
        raise InputError(f"no report text found after removing page furniture{hint}", shown, code=code)
    if len(_CJK.findall(body)) + len(re.findall(r"[A-Za-z]{2,}", body)) < 5:
        raise InputError(
            "no readable text in the file (binary or garbled?)", shown, code="input.no_readable_text"
        )
    return Document(
        report_id=report_id or path.name,
        source_path=str(path),
        text=body,
        content_hash=hashlib.sha256(data).hexdigest(),
        format=fmt,
        encoding=encoding,
        header=header,
        footer=footer,
    )
