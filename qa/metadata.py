"""Report metadata (title, issuer, region, year, dates, 文号, 索引号) from the header block, title line,
body and sign-off. Pure functions over text."""

from __future__ import annotations

import re
from pathlib import Path

from qa.schemas import Document, ReportMeta

_SEP = r"\s*[:：]?\s*\|?\s*"  # "key:value", "key: | value |" (header tables) and "key value"
_VALUE = r"([^\s|]+)"
_DATE = r"(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*日?"
_TITLE_WORDS = re.compile(r"报告|总结|情况")
_ADMIN_PREFIX = re.compile(r"^.*(?:省|自治区|特别行政区|(?<!新)市)(?=[\u4e00-\u9fff]{1,6}(?:区|县|旗))")


def _field(text: str, *names: str) -> str:
    for name in names:
        spaced = r"\s*".join(name)  # "索 引 号"
        match = re.search(spaced + _SEP + _VALUE, text)
        if match and not re.fullmatch(r"[|:：]+", match.group(1)):
            value = match.group(1)
            # "文号: | |" → the next table key, not a value
            if not re.search(r"[:：]$", value):
                return value
    return ""


def _date(text: str, *names: str) -> str | None:
    for name in names:
        match = re.search(r"\s*".join(name) + r"\s*[:：]?\s*\|?\s*" + _DATE, text)
        if match:
            return _iso(match)
    return None


def _iso(match: re.Match) -> str:
    year, month, day = match.group(1), int(match.group(2)), int(match.group(3))
    return f"{year}-{month:02d}-{day:02d}"


def find_title(header: str, body: str, fallback: str = "") -> str:
    """Header-table title, else a title line in the header, else one derived from the body."""
    table_title = re.search(r"标\s*题" + _SEP + r"([^|\n]+)", header)
    if table_title:
        return table_title.group(1).strip()
    for line in header.splitlines():
        line = line.strip()
        if (
            _TITLE_WORDS.search(line)
            and not re.match(r"^[•·|]|^(?:来源|发布|时间|当前位置)", line)
            and re.search(r"\d{4}", line)
        ):
            return re.split(r"[_\-—|]{1,2}(?=[^_\-—|]*$)", line)[0].strip() if "_" in line else line
    derived = re.search(r"现将(.{4,60}?报告)如下", body[:2000])
    if derived and not derived.group(1).startswith(("我区", "我县", "我市", "本区", "我局")):
        return derived.group(1)
    first_line = body.splitlines()[0].strip() if body.strip() else ""
    if first_line and len(first_line) <= 60 and _TITLE_WORDS.search(first_line):
        return first_line
    return fallback


def find_issuer(title: str, body: str) -> str:
    """The body the title names (text before 关于 / the year), else the sign-off line."""
    match = re.match(r"^(.{2,30}?)(?:关于|\d{4}年)", title)
    if match:
        return match.group(1).strip()
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    if len(lines) >= 2 and re.fullmatch(_DATE, lines[-1]) and len(lines[-2]) <= 30:
        return lines[-2]
    return ""


def find_region(issuer: str, title: str = "", body: str = "") -> str:
    """The district/county the report is about: 泉州市洛江区人民政府 → 洛江区, 赣州蓉江新区 → 蓉江新区."""
    for source in (issuer, title):
        if not source:
            continue
        new_area = re.search(r"([\u4e00-\u9fff]{2})新区", source)
        if new_area:
            return new_area.group(0)
        local = _ADMIN_PREFIX.sub("", source)
        match = re.search(r"([\u4e00-\u9fff]{2,4}?(?:区|县|旗))", local)
        if match:
            return match.group(1)
        city = re.search(r"([\u4e00-\u9fff]{2,4}?市)", source)
        if city:
            return city.group(1)
    return ""


def find_year(title: str, body: str) -> int | None:
    """The year reported on: the first year in the title, else in the opening of the body."""
    for text in (title, body[:600]):
        match = re.search(r"((?:19|20)\d{2})\s*年", text)
        if match:
            return int(match.group(1))
    return None


def find_publish_date(header: str, body: str) -> str | None:
    """Issue date (发文/成文 date) over the sign-off date over the web publish date."""
    issued = _date(header, "发文日期", "成文日期", "公文生成日期")
    if issued:
        return issued
    tail = "\n".join(body.strip().splitlines()[-3:])
    sign_off = re.search(r"(?m)^\s*" + _DATE + r"\s*$", tail)
    if sign_off:
        return _iso(sign_off)
    return _date(header, "发布日期", "发布时间", "时间")


def extract(document: Document) -> ReportMeta:
    """All metadata for a loaded document."""
    header, body = document.header, document.text
    title = find_title(header, body, fallback=Path(document.report_id).stem)
    issuer = find_issuer(title, body)
    publisher = _field(header, "发布机构", "发文机关")
    return ReportMeta(
        title=title,
        issuer=issuer,
        publisher=publisher if publisher and publisher != issuer else "",
        region=find_region(issuer, title, body),
        year=find_year(title, body),
        publish_date=find_publish_date(header, body),
        doc_number=_field(header, "备注/文号", "文号", "发文字号"),
        index_no=_field(header, "索引号"),
    )
