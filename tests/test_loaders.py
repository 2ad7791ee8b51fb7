"""Loading real files: encodings, formats, boilerplate, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS

from qa.errors import InputError
from qa.loaders import decode_text, load, split_boilerplate

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
