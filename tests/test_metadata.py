"""Exact metadata for every sample report, and the derivation rules on their own."""

from __future__ import annotations

import pytest
from conftest import CORPUS

from qa import metadata
from qa.loaders import load
from qa.schemas import ReportMeta

EXPECTED = {
    "zichuan_2024.txt": ReportMeta(
        title="淄川区人民政府2024年度法治政府建设情况报告",
        issuer="淄川区人民政府",
        publisher="淄川区司法局",
        region="淄川区",
        year=2024,
        publish_date="2025-01-10",
        doc_number="",
        index_no="113703020042161591/2025-5500190",
    ),
    "dabancheng_2024.txt": ReportMeta(
        title="达坂城区人民政府2024年度法治政府建设情况报告",  # no title line: derived from 现将…报告如下
        issuer="达坂城区人民政府",
        region="达坂城区",
        year=2024,
    ),
    "luojiang_2024.txt": ReportMeta(
        title="泉州市洛江区人民政府关于2024年法治政府建设情况的报告",
        issuer="泉州市洛江区人民政府",
        region="洛江区",
        year=2024,
        publish_date="2025-02-13",
        doc_number="泉洛政文〔2025〕14号",
        index_no="QZ030101-0200-2025-00004",
    ),
    "rongjiang_2023.txt": ReportMeta(
        title="赣州蓉江新区2023年度法治政府建设工作情况报告",
        issuer="赣州蓉江新区",
        region="蓉江新区",
        year=2023,
        publish_date="2024-01-31",
    ),
    "zhenjiang_sfj_2024.txt": ReportMeta(
        title="韶关市浈江区司法局2024年法治政府建设年度报告",
        issuer="韶关市浈江区司法局",
        region="浈江区",
        year=2024,
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_metadata(name: str) -> None:
    assert metadata.extract(load(CORPUS / name)) == EXPECTED[name]


def test_all_corpus_files_have_expectations() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.glob("*.txt"))


@pytest.mark.parametrize(
    ("issuer", "region"),
    [
        ("泉州市洛江区人民政府", "洛江区"),
        ("韶关市浈江区司法局", "浈江区"),
        ("赣州蓉江新区", "蓉江新区"),
        ("新疆维吾尔自治区乌鲁木齐市达坂城区人民政府", "达坂城区"),
        ("某某省某某市某某县人民政府", "某某县"),
        ("深圳市人民政府", "深圳市"),
    ],
)
def test_region_from_issuer(issuer: str, region: str) -> None:
    assert metadata.find_region(issuer) == region


def test_year_is_the_year_reported_on_not_the_publish_year() -> None:
    assert metadata.find_year("某区2024年度法治政府建设情况报告", "2025年1月10日") == 2024


def test_sign_off_date_when_no_header_date() -> None:
    body = "正文第一段。\n某某区人民政府\n2025年3月5日"
    assert metadata.find_publish_date("", body) == "2025-03-05"
    assert metadata.find_issuer("", body) == "某某区人民政府"


def test_title_derived_from_body_when_missing() -> None:
    body = "按照要求,现将某某县人民政府2023年度法治政府建设情况报告如下:\n一、主要成效"
    assert metadata.find_title("", body) == "某某县人民政府2023年度法治政府建设情况报告"
