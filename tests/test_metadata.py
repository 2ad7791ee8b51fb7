"""Exact metadata for every sample report, and the derivation rules on their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS

from qa.core.schemas import Document, ReportMeta
from qa.ingest import identity as metadata
from qa.ingest.loaders import load

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
        region_path=("山东省", "淄博市", "淄川区"),
        region_code="370302",
        level="区县",
        issuer_kind="人民政府",
        kind="法治报告",
    ),
    "dabancheng_2024.txt": ReportMeta(
        title="达坂城区人民政府2024年度法治政府建设情况报告",  # no title line: derived from 现将…报告如下
        issuer="达坂城区人民政府",
        region="达坂城区",
        year=2024,
        region_path=("新疆维吾尔自治区", "乌鲁木齐市", "达坂城区"),
        region_code="650107",
        level="区县",
        issuer_kind="人民政府",
        kind="法治报告",
    ),
    "luojiang_2024.txt": ReportMeta(
        title="泉州市洛江区人民政府关于2024年法治政府建设情况的报告",
        issuer="泉州市洛江区人民政府",
        region="洛江区",
        year=2024,
        publish_date="2025-02-13",
        made_public="2025-02-24",  # the page's 来源…时间 line
        doc_number="泉洛政文〔2025〕14号",
        index_no="QZ030101-0200-2025-00004",
        region_path=("福建省", "泉州市", "洛江区"),
        region_code="350504",
        level="区县",
        issuer_kind="人民政府",
        kind="法治报告",
    ),
    "rongjiang_2023.txt": ReportMeta(  # a development zone: not a division, it hangs under 赣州市
        title="赣州蓉江新区2023年度法治政府建设工作情况报告",
        issuer="赣州蓉江新区",
        region="蓉江新区",
        year=2023,
        publish_date="2024-01-31",
        made_public="2024-01-31",  # the page's 发布日期 (the deadline is judged by it)
        region_path=("江西省", "赣州市", "蓉江新区"),
        region_code="360700",
        level="区县",
        issuer_kind="管委会",
        kind="法治报告",
    ),
    "zhenjiang_sfj_2024.txt": ReportMeta(
        title="韶关市浈江区司法局2024年法治政府建设年度报告",
        issuer="韶关市浈江区司法局",
        region="浈江区",
        year=2024,
        region_path=("广东省", "韶关市", "浈江区"),
        region_code="440204",
        level="部门（县级）",
        issuer_kind="部门",
        kind="法治报告",
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_metadata(name: str) -> None:
    assert metadata.extract(load(CORPUS / name)) == EXPECTED[name]


def test_all_corpus_files_have_expectations() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.glob("*.txt"))


@pytest.mark.parametrize(
    ("issuer", "path"),
    [
        ("泉州市洛江区人民政府", ("福建省", "泉州市", "洛江区")),
        ("韶关市浈江区司法局", ("广东省", "韶关市", "浈江区")),
        ("赣州蓉江新区", ("江西省", "赣州市", "蓉江新区")),
        ("新疆维吾尔自治区乌鲁木齐市达坂城区人民政府", ("新疆维吾尔自治区", "乌鲁木齐市", "达坂城区")),
        ("深圳市人民政府", ("广东省", "深圳市")),
        ("东乌旗人民政府", ("内蒙古自治区", "锡林郭勒盟", "东乌珠穆沁旗")),  # short names from the gazetteer
        ("巍山县人民政府", ("云南省", "大理白族自治州", "巍山彝族回族自治县")),
        ("黔西南州人民政府", ("贵州省", "黔西南布依族苗族自治州")),
        ("襄樊市人民政府", ("湖北省", "襄阳市")),  # renamed in 2010
    ],
)
def test_place_from_issuer(issuer: str, path: tuple[str, ...]) -> None:
    from qa.genre import gazetteer

    place = metadata.find_place("", issuer, "", "")
    assert place is not None and place.path(gazetteer.load()) == path


def test_no_place_is_invented() -> None:
    """A made-up place, or none at all: the region stays empty (shown as 未识别), never a file name."""
    assert metadata.find_place("", "某某省某某市某某县人民政府", "", "") is None
    meta = metadata.extract(Document("03_wuyangxian_2021.txt", "x", "本单位认真开展工作。", "h", "txt"))
    assert meta.region == "" and meta.region_path == () and meta.title == ""


def test_self_reference_resolves_to_the_reports_own_place() -> None:
    """No title line: 区政府 / 我县 at the opening name the report's own government."""
    body = "2022年,区政府坚持依法行政。\n一、主要成效\n成立铜梁区宣讲团,开展活动。"
    meta = metadata.extract(Document("a.txt", "a.txt", body, "h", "txt"))
    assert meta.region_path == ("重庆市", "铜梁区") and meta.issuer == "铜梁区人民政府" and meta.year == 2022
    # the addressee is the superior, not the author
    body = "中共红河州委、红河州人民政府:\n2025年,县委、县政府坚持依法行政。印发《金平县实施办法》。"
    meta = metadata.extract(Document("b.txt", "b.txt", body, "h", "txt"))
    assert meta.region_path[-1] == "金平苗族瑶族傣族自治县" and meta.issuer_kind == "党委和政府"


def test_year_is_the_year_reported_on_not_the_publish_year() -> None:
    assert metadata.find_year("某区2024年度法治政府建设情况报告", "2025年1月10日") == 2024


def test_sign_off_date_when_no_header_date() -> None:
    body = "正文第一段。\n某某区人民政府\n2025年3月5日"
    assert metadata.find_publish_date("", body) == "2025-03-05"
    assert metadata.find_issuer("", body) == "某某区人民政府"


def test_title_derived_from_body_when_missing() -> None:
    body = "按照要求,现将舞阳县人民政府2023年度法治政府建设情况报告如下:\n一、主要成效"
    assert metadata.find_title("", body) == "舞阳县人民政府2023年度法治政府建设情况报告"
    # "现将有关情况报告如下" names no report: no title rather than a made-up one
    assert metadata.find_title("", "2022年,区政府坚持…。现将有关情况报告如下。") == ""
    # a year or date the page prints after the title line is not part of the title
    for tail in (" 2021", "  2022-03-01"):
        body = f"凤庆县2021年国民经济和社会发展统计公报{tail}\n2021年，全县上下认真贯彻落实市委决策部署。"
        assert metadata.find_title("", body) == "凤庆县2021年国民经济和社会发展统计公报"


WEB = Path(__file__).resolve().parents[1] / "evals" / "corpus-web"


def test_identity_of_unseen_report_openings() -> None:
    """The 18 report openings of evals/corpus-web (other provinces, departments, no title lines): region
    and year right for at least 17 (the 政府工作报告 reviews 2018–2021 under a 2022 title)."""
    right = []
    for line in (WEB / "identity.jsonl").read_text("utf-8").splitlines():
        gold = json.loads(line)
        meta = metadata.extract(load(WEB / "docs" / gold["file"]))
        gold_path = gold["region"].split("·")
        # gold names divisions by their common short form (红河州 for 红河哈尼族彝族自治州)
        region_ok = len(meta.region_path) == len(gold_path) and all(
            got.startswith(want.rstrip("州县市区旗省")[:2])
            for got, want in zip(meta.region_path, gold_path, strict=True)
        )
        if region_ok and str(meta.year) in gold["year"]:
            right.append(gold["file"])
    assert len(right) >= 17, right


def test_the_parsed_gazetteer_is_kept_and_a_bad_copy_is_parsed_again(tmp_path: Path) -> None:
    """A cold `qa ask` loads the gazetteer from the cache folder instead of parsing jionlp's data (~0.35 s)."""
    from qa.genre import gazetteer

    try:
        gazetteer.keep_in(tmp_path)
        gazetteer.load.cache_clear()
        parsed = gazetteer.load()
        [kept] = tmp_path.glob("gazetteer-*.pickle")
        gazetteer.load.cache_clear()
        again = gazetteer.load()
        assert again is not parsed and again.divisions == parsed.divisions
        assert again.lookup("淄川区") == parsed.lookup("淄川区") != ()
        kept.write_bytes(b"not a pickle")
        gazetteer.load.cache_clear()
        assert gazetteer.load().divisions == parsed.divisions  # parsed again, and kept again
        assert kept.read_bytes() != b"not a pickle"
    finally:
        gazetteer.keep_in(None)
        gazetteer.load.cache_clear()


@pytest.mark.parametrize(
    ("title", "path"),
    [
        ("魏县人民政府关于2024年法治政府建设情况的报告", ("河北省", "邯郸市", "魏县")),
        ("理县2023年法治政府建设年度报告", ("四川省", "阿坝藏族羌族自治州", "理县")),
        ("费县司法局2024年度法治政府建设工作报告", ("山东省", "临沂市", "费县")),
    ],
)
def test_a_county_with_a_two_character_name_is_found_where_the_genre_names_it(title, path) -> None:
    """Dozens of counties have two-character names (魏县, 理县, 费县, 沛县…). Bare, they are read as words
    (管理县级…); before 人民政府 / 司法局 / 法治 / a year they are the report's place."""
    body = f"{title}\n2024年,县政府坚持依法行政,加强管理县级财政。\n一、主要成效\n开展法治宣传。"
    meta = metadata.extract(Document("x.txt", "x.txt", body, "h", "txt"))
    assert meta.region_path == path


def test_a_department_report_without_a_title_is_placed_by_the_level_it_speaks_at() -> None:
    """区教育局…, 在区委区政府的领导下: a district's department, so the district the text names (杭州市上城区),
    not the province its opening also cites (《浙江省…纲要》)."""
    body = (
        "2024年,区教育局认真学习贯彻《法治政府建设实施纲要(2021—2025年)》《浙江省法治政府建设实施纲要"
        "(2021-2025年)》及区政府办公室下发《关于印发〈杭州市上城区2024年法治政府建设工作要点〉的通知》等要求,"
        "在区委区政府的坚强领导下,扎实推进依法治教工作。\n一、主要举措\n全省首批试点。"
    )
    meta = metadata.extract(Document("dept.txt", "dept.txt", body, "h", "txt"))
    assert meta.region_path == ("浙江省", "杭州市", "上城区")


def test_the_year_before_an_organ_is_not_part_of_its_name() -> None:
    meta = metadata.extract(
        Document(
            "w.txt",
            "w.txt",
            "2020年辽阳县人民政府工作报告\n各位代表:\n现在我代表县人民政府向大会报告工作。",
            "h",
            "txt",
        )
    )
    assert meta.issuer == "辽阳县人民政府"


@pytest.mark.parametrize(
    ("organ", "path"),
    [
        ("宁县教育局", ("甘肃省", "庆阳市", "宁县")),
        ("理县市场监督管理局", ("四川省", "阿坝藏族羌族自治州", "理县")),
        ("魏县交通运输局", ("河北省", "邯郸市", "魏县")),
    ],
)
def test_a_department_named_by_the_pages_publisher_field_is_the_issuer(organ, path) -> None:
    """索引号: … 发布机构: 宁县教育局 on one header line, a title without a place: the publisher field is the
    issuer, and a two-character county before any department's name (教育局, 市场监督管理局…) is a place."""
    header = f"索引号: 621026jyj000/20250226-00012 发布机构: {organ}\n生效日期: 2025-02-26 废止日期:"
    body = "2024年度法治政府建设工作报告\n近年来,在县委、县政府的领导下,局党组坚持依法行政。\n一、基本情况\n开展普法。"
    meta = metadata.extract(Document("d.txt", "d.txt", body, "h", "txt", header=header))
    assert (meta.issuer, meta.region_path, meta.level) == (organ, path, "部门（县级）")


@pytest.mark.parametrize(
    ("title", "opening", "place", "issuer"),
    [
        (
            "",
            "2024年以来,礼让街街道办事处在区委、区政府的领导下,扎实推动法治政府建设。",
            "礼让街街道",
            "礼让街街道办事处",
        ),
        (
            "",
            "2023年,青山镇人民政府坚持以习近平法治思想为指导。现将有关情况报告如下:",
            "青山镇",
            "青山镇人民政府",
        ),
        (
            "下洋镇2023年法治政府建设年度报告",
            "现将下洋镇人民政府2023年法治政府建设工作汇报如下:",
            "下洋镇",
            "下洋镇人民政府",
        ),
        ("河口乡2022年法治政府建设情况报告", "2022年,我乡坚持依法行政。", "河口乡", ""),
    ],
)
def test_a_township_or_street_is_placed_by_the_name_its_organ_speaks_as(
    title, opening, place, issuer
) -> None:
    """The gazetteer stops at counties: a street's or township's report is placed by its title or by the organ
    its opening speaks as, at the level 乡镇（街道）, so a question naming it finds it."""
    body = "\n".join(filter(None, [title, opening, "一、主要做法", "开展法治宣传12场。"]))
    meta = metadata.extract(Document("t.txt", "t.txt", body, "h", "txt"))
    assert (meta.region, meta.issuer, meta.level) == (place, issuer, "乡镇（街道）")
    assert meta.region_code == ""  # never a division it is not


@pytest.mark.parametrize(
    ("body", "issuer"),
    [
        ("2021年,司法厅坚持以习近平法治思想为指导,认真贯彻四川省委、省政府部署。\n一、主要成效\n四川省全面推进依法治省。",
         "四川省司法厅"),
        ("2024年,区教育局认真学习贯彻《杭州市上城区2024年法治政府建设工作要点》,在区委区政府的领导下推进依法治校。\n一、举措",
         "上城区教育局"),
        ("政府工作报告\n——2024年1月10日在平遥县第十七届人民代表大会第三次会议上\n各位代表:\n现在,我代表县人民政府向大会报告工作。",
         "平遥县人民政府"),
        ("政府工作报告(第十七届人民代表大会第三次会议)\n各位代表:\n现在,我代表平遥县人民政府,向大会报告政府工作。\n一、工作回顾",
         "平遥县人民政府"),
        ("一、总体情况\n2022年度,平遥县人民政府办公室政务公开工作本着“公开为常态”的原则,不断优化公开平台。",
         "平遥县人民政府办公室"),
        # after the genre's opening clause under whose lead it worked, named in full or by its level
        ("2025年,在市委、市政府的正确领导下,沈阳市司法局坚持以习近平新时代中国特色社会主义思想为指导。\n一、主要工作",
         "沈阳市司法局"),
        ("2024年,在市委、市政府的坚强领导下,市司法局坚持以习近平法治思想为指导,推进赣州市法治政府建设。\n一、主要成效",
         "赣州市司法局"),
    ],
)  # fmt: skip
def test_an_organ_that_names_itself_without_its_place_is_named_with_the_reports_place(body, issuer) -> None:
    """司法厅坚持… / 区教育局认真… / 我代表县人民政府 / a first line after the heading 一、总体情况: the report's
    own organ, named with the place the report is read to be of."""
    assert metadata.extract(Document("o.txt", "o.txt", body, "h", "txt")).issuer == issuer


@pytest.mark.parametrize(
    ("title", "body", "year"),
    [
        ("", "政府工作报告\n各位代表:\n现在,我代表县人民政府向大会报告工作。\n一、2019年工作回顾\n一年来…", 2019),
        ("", "政府工作报告\n——2019年12月26日在甲县第十六届人民代表大会第三次会议上\n各位代表:\n现在,我代表县人民政府向大会报告工作。", 2019),
        ("", "政府工作报告\n——2023年4月25日在甲县第十七届人民代表大会第四次会议上\n各位代表:\n现在,我代表县人民政府向大会报告工作。", 2022),
        ("2020年甲县人民政府工作报告", "各位代表:\n现在,我代表县人民政府向大会报告工作,请予审议。\n过去的一年…", 2019),
    ],
)  # fmt: skip
def test_a_work_report_is_dated_by_the_year_it_reviews(title, body, year) -> None:
    """Its review heading (2019年工作回顾), else its byline's delivery date (December: that year; April: the
    year before), else the year before its title's (2020年…政府工作报告 reviews 2019)."""
    assert metadata.reviewed_year(title, body) == year


def test_a_copying_sites_date_is_not_a_publish_date_and_the_pages_time_line_is() -> None:
    """收录时间 is when another site took the report: neither its issue date nor when it was made public.
    The 时间 of a page's 来源…时间 line is when the page published it."""
    copied = metadata.extract(Document("c.txt", "c.txt", "某区2022年国民经济和社会发展统计公报\n"
                                       "收录时间:2024-07-15来源:某区统计局\n一、综合\n全区实现生产总值267亿元。",
                                       "h", "txt"))  # fmt: skip
    assert copied.publish_date is None and copied.made_public == ""
    page = metadata.extract(Document("p.txt", "p.txt", "某区人民政府关于2024年法治政府建设情况的报告\n"
                                     "来源:某区人民政府门户网站 时间:2025-02-24 19:03\n一、主要举措\n办理行政复议案件12件。",
                                     "h", "txt"))  # fmt: skip
    assert page.made_public == "2025-02-24"
