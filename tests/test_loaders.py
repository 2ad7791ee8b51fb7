"""Loading real files: encodings, formats, boilerplate, and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CORPUS

from qa.core.errors import InputError
from qa.ingest.loaders import decode_text, load, split_boilerplate

# (file, clean body starts with, clean body ends with, stripped header contains)
BODY_BOUNDS = [
    (
        "zichuan_2024.txt",
        "2024年,在市委市政府的坚强领导下",
        "构建党政同责、一岗双责、齐抓共管的维稳工作格局。",
        "| 发文日期: | 2025-01-10 |",
    ),
    (
        "dabancheng_2024.txt",
        "按照《新疆维吾尔自治区关于印发",
        "努力做到审批环节最少,办事效率最高。",
        "",
    ),
    (
        "luojiang_2024.txt",
        "区人大常委会:\n2024年,区政府坚持以习近平新时代中国特色社会主义思想为指导",
        "打造“法护世遗”普法新品牌。\n泉州市洛江区人民政府\n2025年2月13日",
        "泉州市洛江区人民政府关于2024年法治政府建设情况的报告",
    ),
    (
        "rongjiang_2023.txt",
        "2023年,在市委、市政府的正确领导下,蓉江新区深入学习贯彻习近平法治思想",
        "推动社会矛盾纠纷源头治理和多元调处化解。",
        "当前位置: 首页>蓉江资讯>通知公告",
    ),
    (
        "zhenjiang_sfj_2024.txt",
        "2024年,浈江区司法局始终坚持以习近平新时代中国特色社会主义思想为指导",
        "不断提升人民群众的获得感和安全感。",
        "韶关市浈江区司法局2024年法治政府建设年度报告",
    ),
]

FURNITURE = ["扫一扫", "相关解读", "文字解读", "附件下载", "此件主动公开", "当前位置", "分享到", "相关附件", "相关文章",
             "文章关键词", "日印发", "媒体报道", "访问量"]  # fmt: skip


@pytest.mark.parametrize(("name", "starts", "ends", "header"), BODY_BOUNDS, ids=[b[0] for b in BODY_BOUNDS])
def test_corpus_body_bounds(name: str, starts: str, ends: str, header: str) -> None:
    document = load(CORPUS / name)
    assert document.text.startswith(starts)
    assert document.text.endswith(ends)
    assert header in document.header
    for junk in FURNITURE:
        assert junk not in document.text, junk
    assert "\n\n" not in document.text  # runs of blank / whitespace-only lines are gone
    assert document.encoding == "utf-8"


def test_every_corpus_file_is_covered() -> None:
    assert sorted(b[0] for b in BODY_BOUNDS) == sorted(p.name for p in CORPUS.glob("*.txt"))


@pytest.mark.parametrize("encoding", ["gb18030", "gbk", "utf-8-sig", "utf-16"])
def test_encodings_are_detected(tmp_path: Path, encoding: str) -> None:
    original = load(CORPUS / "zichuan_2024.txt")
    raw = (CORPUS / "zichuan_2024.txt").read_text(encoding="utf-8")
    path = tmp_path / "zichuan_2024.txt"
    path.write_bytes(raw.encode(encoding))
    document = load(path)
    assert document.text == original.text
    assert document.encoding is not None
    if encoding.startswith("gb"):
        assert document.encoding.startswith("gb")


def test_short_gbk_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_bytes("办理行政复议案件151件,审结67件,综合纠错率达29.8%。".encode("gbk"))
    assert "行政复议案件151件" in load(path).text


def test_html_keeps_paragraphs_and_drops_furniture(tmp_path: Path) -> None:
    html = """<html><head><title>淄川区人民政府2024年度法治政府建设情况报告_淄川区人民政府</title>
    <script>var x = "扫一扫";</script><style>p{color:red}</style></head><body>
    <nav><a href="/">首页</a> &gt; <a>政务公开</a></nav>
    <div class="crumb">当前位置: 首页 &gt; 政务公开 &gt; 法治政府建设</div>
    <div class="article">
      <h1>淄川区人民政府2024年度法治政府建设情况报告</h1>
      <div class="info">发布日期:2025-01-10  来源:淄川区司法局</div>
      <p>2024年,在市委市政府的坚强领导下,坚持以习近平新时代中国特色社会主义思想为指导。</p>
      <p><strong>一、推进法治政府建设的主要举措和成效</strong></p>
      <p>办理行政复议案件<span>151</span>件,审结67件,综合纠错率达<b>29.8%</b>。</p>
      <p>&nbsp;</p><p>　</p>
      <p>(此件主动公开)</p>
    </div>
    <div class="share">分享到:</div><div>扫一扫在手机上查看当前页面</div>
    <div>相关解读</div><div>文字解读</div>
    <footer>版权所有:淄川区人民政府 网站标识码3703020001</footer>
    </body></html>"""
    path = tmp_path / "page.html"
    path.write_text(html, encoding="utf-8")
    document = load(path)
    assert document.text.splitlines() == [
        "2024年,在市委市政府的坚强领导下,坚持以习近平新时代中国特色社会主义思想为指导。",
        "一、推进法治政府建设的主要举措和成效",
        "办理行政复议案件151件,审结67件,综合纠错率达29.8%。",
    ]
    assert "淄川区人民政府2024年度法治政府建设情况报告" in document.header
    assert document.format == "html"


def test_gbk_html(tmp_path: Path) -> None:
    html = '<html><head><meta charset="gbk"></head><body><p>受理法律援助案件235件,其中刑事案件182件。</p></body></html>'
    path = tmp_path / "page.htm"
    path.write_bytes(html.encode("gbk"))
    assert load(path).text == "受理法律援助案件235件,其中刑事案件182件。"


def test_pdf(tmp_path: Path) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    path = tmp_path / "report.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.setFont("STSong-Light", 11)
    lines = [
        "淄川区人民政府2024年度法治政府建设情况报告",
        "一、推进法治政府建设的主要举措和成效",
        "加强行政复议案件指导办理,积极打造“265”行政复议调解工作机制,",  # wraps mid-sentence
        "办理行政复议案件151件,审结67件,综合纠错率达29.8%。",
    ]
    for i, line in enumerate(lines):
        pdf.drawString(40, 800 - 20 * i, line)
    pdf.showPage()
    pdf.setFont("STSong-Light", 11)
    pdf.drawString(40, 800, "二、存在的不足和原因")
    pdf.save()
    document = load(path)
    assert "工作机制,办理行政复议案件151件,审结67件,综合纠错率达29.8%。" in document.text
    assert document.text.splitlines()[0] == "一、推进法治政府建设的主要举措和成效"
    assert document.text.endswith("二、存在的不足和原因")
    assert "报告" in document.header


def test_docx_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    import docx

    word = docx.Document()
    word.add_paragraph("蓉江新区2023年度法治政府建设工作情况报告")
    word.add_paragraph("2023年,在市委、市政府的正确领导下,蓉江新区深入学习贯彻习近平法治思想。")
    table = word.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "指标", "数值"
    table.cell(1, 0).text, table.cell(1, 1).text = "行政复议案件", "151件"
    word.add_paragraph("一、工作成效")
    path = tmp_path / "report.docx"
    word.save(str(path))
    document = load(path)
    assert document.text.splitlines() == [
        "2023年,在市委、市政府的正确领导下,蓉江新区深入学习贯彻习近平法治思想。",
        "指标 | 数值",
        "行政复议案件 | 151件",
        "一、工作成效",
    ]


# ---- bad input ---------------------------------------------------------------------------------


def _raises(path: Path, fragment: str, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        load(path, **kwargs)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)  # the message names the file
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.txt", "no such file")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    _raises(tmp_path / "empty.txt", "empty")


def test_whitespace_only_file(tmp_path: Path) -> None:
    (tmp_path / "blank.txt").write_text(" \n\u3000\n\n", encoding="utf-8")
    _raises(tmp_path / "blank.txt", "no report text")


def test_binary_file(tmp_path: Path) -> None:
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    _raises(tmp_path / "image.txt", "binary")


def test_undecodable_bytes(tmp_path: Path) -> None:
    good = (CORPUS / "zichuan_2024.txt").read_bytes()
    (tmp_path / "broken.txt").write_bytes(good[:3000] + b"\xff\xfe\xfa\xc0\xc1" + good[3000:6000])
    _raises(tmp_path / "broken.txt", "cannot decode")


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "report.xlsx").write_bytes(b"PK\x03\x04")
    _raises(tmp_path / "report.xlsx", "unsupported file type '.xlsx'")


def test_size_cap(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("法治政府建设。" * 2000, encoding="utf-8")
    _raises(tmp_path / "big.txt", "over the 0 MB limit", max_bytes=1000)


def test_fake_pdf_and_docx(tmp_path: Path) -> None:
    (tmp_path / "fake.pdf").write_text("not a pdf", encoding="utf-8")
    _raises(tmp_path / "fake.pdf", "not a PDF")
    (tmp_path / "fake.docx").write_bytes(b"PK\x03\x04 broken zip")
    _raises(tmp_path / "fake.docx", "not a readable .docx")


def test_decode_refuses_utf16_without_bom() -> None:
    with pytest.raises(InputError, match="cannot decode"):
        decode_text("行政复议案件".encode("utf-16-le"), "x.txt")


def test_split_boilerplate_keeps_body_furniture_words() -> None:
    # A sentence that merely mentions 附件下载 is prose, not furniture.
    _, body, _ = split_boilerplate(
        "标题\n正文提到附件下载功能已上线,群众可在网站使用。\n扫一扫在手机打开当前页"
    )
    assert body == "正文提到附件下载功能已上线,群众可在网站使用。"


# ---- compressed input that unpacks to far more than it weighs ----------------------------------------

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_PARAGRAPH = "<w:p><w:r><w:t>依法行政，建设法治政府。</w:t></w:r></w:p>".encode()


def _paragraphs(megabytes: int):
    """A document.xml of about `megabytes` MB of real paragraphs, in 1 MB pieces (never all in memory)."""
    yield f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{_W}"><w:body>'.encode()
    piece = _PARAGRAPH * (1048576 // len(_PARAGRAPH))
    for _ in range(megabytes):
        yield piece
    yield b"</w:body></w:document>"


def _docx_with_body(path: Path, body) -> Path:
    """A real .docx whose word/document.xml is written from `body`'s pieces, streamed into the zip."""
    import io
    import zipfile

    import docx

    blank = io.BytesIO()
    docx.Document().save(blank)
    with (
        zipfile.ZipFile(blank) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out,
    ):
        for item in source.infolist():
            if item.filename == "word/document.xml":
                with out.open("word/document.xml", "w") as part:
                    for piece in body:
                        part.write(piece)
            else:
                out.writestr(item, source.read(item))
    return path


def _declare_size(path: Path, member: str, size: int) -> None:
    """Make the zip's central directory lie about one member's unpacked size."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + name_length] == member.encode():
            data[at + 24 : at + 28] = size.to_bytes(4, "little")
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} not in {path}")


_LOAD_AND_MEASURE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a regression fails with MemoryError, not the box
from pathlib import Path
from qa.core.errors import InputError
from qa.ingest.loaders import load
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load(Path(sys.argv[1]))
    print("loaded")
except InputError as ex:
    print(ex)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_a_docx_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    """Before: a 1.5 MB .docx whose document.xml unpacks to 300 MB was read whole (a 1 GiB one took 2.2 GB
    of memory before failing). Now the declared sizes refuse it, with memory measured in a fresh process."""
    import subprocess
    import sys

    path = _docx_with_body(tmp_path / "bomb.docx", _paragraphs(300))
    assert path.stat().st_size < 5 * 1048576  # well under the 20 MB file limit
    done = subprocess.run([sys.executable, "-c", _LOAD_AND_MEASURE, str(path)], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    message, grown_mb = done.stdout.strip().splitlines()
    assert message.startswith(str(path)), message  # which file
    assert re.search(r"unpacks to more than 100 MB \(its parts declare 30\d MB\)", message)  # why
    assert "zip bomb" in message
    assert "QA_MAX_FILE_MB" in message  # what to do
    assert int(grown_mb) < 50, done.stdout  # before: 300+ MB


def test_a_part_made_of_repetition_is_refused_under_the_size_limit(tmp_path: Path) -> None:
    path = _docx_with_body(tmp_path / "repeated.docx", _paragraphs(20))  # 20 MB, under the 100 MB limit
    error = _raises(path, "unpacks")
    assert "word/document.xml" in error.reason and "zip bomb" in error.reason


def test_the_unpacked_limit_follows_the_file_limit(tmp_path: Path) -> None:
    path = _docx_with_body(tmp_path / "report.docx", _paragraphs(2))
    assert path.stat().st_size < 100_000
    _raises(path, "unpacks to more than 0.5 MB", max_bytes=100_000)  # 5 × the file limit
    assert "依法行政" in load(path).text  # the default limit lets a 2 MB body through


def test_a_docx_that_lies_about_its_unpacked_size_is_refused_without_unpacking(tmp_path: Path) -> None:
    """A header that declares 1 KB for 50 MB: the part is read with that cap, never unpacked whole."""
    import tracemalloc

    path = _docx_with_body(tmp_path / "liar.docx", _paragraphs(50))
    _declare_size(path, "word/document.xml", 1000)
    tracemalloc.start()
    try:
        error = _raises(path, "damaged zip package")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "CRC" in error.reason
    assert peak < 10 * 1048576, peak  # the file itself is ~250 KB


def _pdf_with_pages(pages: int, content_bytes: int) -> bytes:
    """A PDF whose every page's content stream deflates `content_bytes` of blank space to a few KB."""
    import zlib

    content = zlib.compress(b"BT /F1 12 Tf 72 712 Td (Report) Tj ET\n" + b" " * content_bytes, 9)
    font = 3 + 2 * pages
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{3 + 2 * i} 0 R' for i in range(pages))}] /Count {pages} >>".encode()]  # fmt: skip
    for i in range(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode())  # fmt: skip
        objects.append(f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode() + content
                       + b"\nendstream")  # fmt: skip
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_a_pdf_whose_pages_unpack_past_the_limit_is_refused(tmp_path: Path) -> None:
    """pypdf bounds each stream (75 MB), not their sum, and keeps what it unpacked: 400 such pages in a
    20 MB file would hold 8 GB."""
    path = tmp_path / "pages.pdf"
    path.write_bytes(_pdf_with_pages(6, 1048576))
    error = _raises(path, "unpacks to more than 2.4 MB (the content of its first 3 pages)", max_bytes=500_000)
    assert "decompression bomb" in error.reason and "QA_MAX_FILE_MB" in error.reason


def test_a_pdf_stream_that_unpacks_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stream.pdf"
    path.write_bytes(_pdf_with_pages(1, 8 * 1048576))
    _raises(path, "unpacks to more than 2.4 MB (one of its compressed streams)", max_bytes=500_000)
