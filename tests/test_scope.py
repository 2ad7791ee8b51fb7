"""The question's scope and its routing: places from the gazetteer, years, national, filters, follow-ups.
Pure functions over registry records (no store needed)."""

from __future__ import annotations

import dataclasses

import pytest

from qa.answer.pipeline import Turn, plan
from qa.core.naming import labels
from qa.core.schemas import ReportMeta, ReportRecord
from qa.engines.chat import ChatEngine
from qa.genre import gazetteer
from qa.question import scope


def record(
    report_id: str, region_path: tuple[str, ...], year: int, issuer: str = "", code: str = ""
) -> ReportRecord:
    g = gazetteer.load()
    code = code or g.lookup(region_path[-1])[0]
    meta = ReportMeta(
        title="",
        issuer=issuer or f"{region_path[-1]}人民政府",
        region=region_path[-1],
        year=year,
        region_path=region_path,
        region_code=code,
        issuer_kind="部门" if issuer else "人民政府",
    )
    return ReportRecord(report_id, "v-" + report_id, meta, n_chunks=3)


LIBRARY = [
    record("zichuan.txt", ("山东省", "淄博市", "淄川区"), 2024),
    record("luojiang.txt", ("福建省", "泉州市", "洛江区"), 2024),
    record("chaoyang_cc.txt", ("吉林省", "长春市", "朝阳区"), 2024, code="220104"),
    record("jingyuan_gaj.txt", ("宁夏回族自治区", "固原市", "泾源县"), 2025, issuer="泾源县公安局"),
]


def routed(question: str, **filters) -> scope.Route:
    return scope.route(scope.parse(question, LIBRARY), question, LIBRARY, **filters)


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("北京市朝阳区2024年办理行政复议案件多少件？", "北京市朝阳区"),  # the library's 朝阳区 is in 长春
        ("青岛市城阳区办理行政复议案件多少件？", "青岛市城阳区"),
        ("枣庄市山亭区行政复议纠错率是多少？", "枣庄市山亭区"),
        ("东乌旗2021年一般公共预算收入", "东乌旗"),
        ("海淀区呢", "海淀区"),
    ],
)
def test_a_place_without_a_report_is_refused_and_named(question: str, named: str) -> None:
    route = routed(question)
    assert route.reports == () and f"没有{named}" in route.refusal


def test_national_question_is_refused() -> None:
    assert "全国" in routed("全国行政复议案件总数是多少？").refusal
    # a national programme named next to a place is not a national question
    assert routed("淄川区参加全国法治政府建设示范创建了吗").reports == ("zichuan.txt",)


def test_a_year_the_report_does_not_cover_is_refused_with_the_year_it_covers() -> None:
    route = routed("淄川区2019年办理行政复议案件多少件？")
    assert route.reports == () and "2019年" in route.refusal and "2024年度" in route.refusal
    assert routed("洛江区2025年有哪些工作安排？").reports == ("luojiang.txt",)  # next year's plans
    assert routed("淄川区2025年办理行政复议案件多少件？").refusal


def test_ambiguous_names_resolve_by_their_parent() -> None:
    assert routed("长春市朝阳区2024年行政复议").reports == ("chaoyang_cc.txt",)
    assert routed("朝阳区2024年行政复议").reports == ("chaoyang_cc.txt",)  # the only 朝阳区 we hold


def test_departments_are_matched_as_abbreviations() -> None:
    assert routed("泾源县公安局2025年组织了多少场培训？").reports == ("jingyuan_gaj.txt",)
    assert "泾源县司法局" in routed("泾源县司法局2025年组织了多少场培训？").refusal


def test_a_filter_that_excludes_the_named_place_is_said() -> None:
    route = routed("淄川区败诉率是多少？", report_ids=["luojiang.txt"])
    assert route.reports == () and "淄川区" in route.refusal and "洛江区" in route.refusal
    assert routed("淄川区败诉率是多少？", report_ids=["zichuan.txt"]).reports == ("zichuan.txt",)


def test_follow_ups_inherit_only_when_they_name_no_scope() -> None:
    first = [Turn("user", "淄川区2024年办理行政复议案件多少件？"), Turn("assistant", "151件[1]")]
    assert plan("审结了多少件？", LIBRARY, first).route.reports == ("zichuan.txt",)
    swapped = plan("那洛江区呢？", LIBRARY, first)
    assert swapped.route.reports == ("luojiang.txt",) and "淄川" not in swapped.standalone
    own = plan("北京市朝阳区2024年办理行政复议案件多少件？", LIBRARY, first)
    assert own.route.reports == () and "淄川" not in own.standalone and "北京市朝阳区" in own.route.refusal
    # a question over the whole library starts afresh, whatever the turn before named
    for across in (
        "各地区行政复议纠错率分别是多少？",
        "哪个区县的行政复议纠错率最高？",
        "哪些地方办理行政复议案件超过一百件？",
    ):
        wide = plan(across, LIBRARY, first)
        assert not wide.scope.inherited and "淄川" not in wide.standalone and not wide.route.refusal, across
        assert set(wide.route.reports) >= {"zichuan.txt", "luojiang.txt"}
    refused = [
        Turn("user", "北京市朝阳区行政复议案件多少件？"),
        Turn("assistant", "资料库中没有北京市朝阳区的报告"),
    ]
    assert not plan("各地区行政复议纠错率分别是多少？", LIBRARY, refused).route.refusal
    # 分别 alone still means the places already named
    both = [Turn("user", "淄川区和洛江区办理行政复议案件多少件？"), Turn("assistant", "…")]
    assert set(plan("审结分别是多少件？", LIBRARY, both).route.reports) == {"zichuan.txt", "luojiang.txt"}


def test_gazetteer_short_names_and_generic_words() -> None:
    g = gazetteer.load()
    assert [g.get(c).name for c in g.lookup("东乌旗")] == ["东乌珠穆沁旗"]
    assert [g.get(c).name for c in g.lookup("巍山县")] == ["巍山彝族回族自治县"]
    assert g.mentions("老城区改造和城区建设") == []  # ordinary words, not 洛阳市老城区
    assert [m.text for m in g.mentions("洛阳市老城区")] == ["洛阳市", "老城区"]


def test_llm_answers_are_checked_against_the_scope(corpus_services) -> None:
    """Whatever the model writes, a sentence citing a passage of another report is dropped, and an answer
    left with nothing is a refusal that says why; a place with no report never reaches the model."""
    from fake_chat import FakeChatModel

    from qa.answer.pipeline import ask

    fake = FakeChatModel()
    answer = ask(
        "北京市朝阳区2024年办理行政复议案件多少件？", corpus_services.retriever, engine=ChatEngine(fake)
    )
    assert answer.refused and "北京市朝阳区" in answer.text and fake.history == []

    def cite_every_source(messages: list[dict]) -> str:
        # one sentence per source, as a model that ignores the scope might write
        import re

        numbers = re.findall(r"\[(\d+)\]", messages[-1]["content"])
        return "".join(f"办理案件若干[{n}]。" for n in dict.fromkeys(numbers))

    fake.enqueue(cite_every_source)
    answer = ask("淄川区办理行政复议案件多少件？", corpus_services.retriever, engine=ChatEngine(fake))
    assert {c.report_id for c in answer.citations} <= {"zichuan_2024.txt"}
    assert all(s.report_id == "zichuan_2024.txt" for s in answer.sources)


def test_sentences_citing_reports_outside_the_scope_are_dropped() -> None:
    from qa.answer.pipeline import drop_out_of_scope
    from qa.core.schemas import Source

    def source(n: int, report_id: str) -> Source:
        return Source(n, report_id, "", "", 0, 10, "办理案件151件", ())

    by_n = {1: source(1, "zichuan.txt"), 2: source(2, "luojiang.txt")}
    text, dropped = drop_out_of_scope("淄川区办理151件[1]。洛江区121件[2]。", by_n, ["zichuan.txt"])
    assert text == "淄川区办理151件[1]。" and dropped == ["洛江区121件。"]


def test_a_place_that_is_part_of_a_name_the_report_uses_is_not_a_scope() -> None:
    """山东省行政执法人员培训云平台 in the 淄川区 report names a platform, not a question about 山东省."""
    texts = {"zichuan.txt": "组织1027名行政执法人员完成山东省行政执法人员培训云平台30学时公共法律知识学习。"}

    def text_of(report_id: str) -> str:
        return texts.get(report_id, "")

    question = "有多少名行政执法人员在山东省行政执法人员培训云平台完成了学习？"
    route = scope.route(scope.parse(question, LIBRARY), question, LIBRARY, text_of=text_of)
    assert not route.refusal and route.reports == ("zichuan.txt",)
    # the same province asked about as a place is still refused
    asked = "山东省行政复议案件多少件？"
    assert "没有山东省" in scope.route(scope.parse(asked, LIBRARY), asked, LIBRARY, text_of=text_of).refusal


def test_a_two_character_county_is_routed_to_its_report_not_answered_by_another() -> None:
    """以魏县政府为被告…: 魏县 must route to 魏县's report (a bare two-character name was dropped, and the
    question was answered across the library with another county's figure)."""
    library = [*LIBRARY, record("weixian.txt", ("河北省", "邯郸市", "魏县"), 2024)]
    for question in ("以魏县政府为被告的行政诉讼案件有几件？", "魏县有多少名行政执法人员？"):
        route = scope.route(scope.parse(question, library), question, library)
        assert route.reports == ("weixian.txt",) and not route.refusal
    refused = scope.route(scope.parse("以理县政府为被告的行政诉讼案件有几件？", library),
                          "以理县政府为被告的行政诉讼案件有几件？", library)  # fmt: skip
    assert refused.refusal and "理县" in refused.refusal


def test_reports_of_one_place_are_told_apart_where_answers_name_them() -> None:
    """Two reports under one label (two years of 淄川区; a 公安局's two years) are named by what differs,
    so an answer never says 淄川区 twice for two reports; a label held by one report stays as it is."""
    library = [
        *LIBRARY,
        record("zichuan_2023.txt", ("山东省", "淄博市", "淄川区"), 2023),
        record("jingyuan_gaj_2024.txt", ("宁夏回族自治区", "固原市", "泾源县"), 2024, issuer="泾源县公安局"),
    ]
    named = labels(library)
    assert named["zichuan.txt"] == "淄川区（2024年）" and named["zichuan_2023.txt"] == "淄川区（2023年）"
    assert named["jingyuan_gaj.txt"] == "泾源县公安局（2025年）"
    assert named["luojiang.txt"] == "洛江区"
    assert len(set(named.values())) == len(library)
    twins = [
        record("a.txt", ("山东省", "淄博市", "淄川区"), 2024),
        record("b.txt", ("山东省", "淄博市", "淄川区"), 2024),
    ]
    assert labels(twins) == {"a.txt": "淄川区（a.txt）", "b.txt": "淄川区（b.txt）"}


# ---- refusing only on evidence: the genre's forms, not one report's sentence --------------------------------


def with_meta(base: ReportRecord, **changes) -> ReportRecord:
    return ReportRecord(base.report_id, base.version, dataclasses.replace(base.meta, **changes), n_chunks=3)


def test_a_year_inside_a_date_dates_a_figure_and_chooses_no_report() -> None:
    """截至2023年3月15日 asked of a 2022 report: the date is the figure's, the report is still the one asked."""
    assert scope.parse("截至2023年3月15日，淄川区周例会开了多少期？", LIBRARY).years == ()
    assert scope.parse("淄川区2023年12月办理了多少件？", LIBRARY).years == ()
    assert scope.parse("淄川区2023年办理行政复议案件多少件？", LIBRARY).years == (2023,)
    assert routed("截至2025年1月10日，淄川区周例会开了多少期？").reports == ("zichuan.txt",)


@pytest.mark.parametrize(
    ("kind", "year", "covered"),
    [
        ("政府工作报告", 2024, True),  # dated by the year it reviews…
        ("政府工作报告", 2025, True),  # …delivered early the year after
        ("政府工作报告", 2023, False),
        ("法治报告", 2024, True),
        ("法治报告", 2025, False),
        ("统计公报", 2025, False),
    ],
)
def test_a_work_report_covers_the_year_it_reviews_and_the_year_it_is_delivered(kind, year, covered) -> None:
    """A 政府工作报告 is dated by the year it reviews (2024) and delivered in 2025; a 法治 report or a bulletin of
    2024 is about 2024 only (unless published in the year asked)."""
    library = [with_meta(record("zhongning.txt", ("宁夏回族自治区", "中卫市", "中宁县"), 2024), kind=kind)]
    question = f"中宁县{year}年地区生产总值是多少？"
    route = scope.route(scope.parse(question, library), question, library)
    assert (route.reports == ("zhongning.txt",)) is covered
    assert covered or "中宁县的报告是2024年度的" in route.refusal


def test_a_report_covers_the_year_it_was_published_in() -> None:
    """A 2024 report published on 2025-03-10 is what the library holds for 2025 too (the answer says which year
    it is on); a year neither reported on nor published in is refused."""
    library = [
        with_meta(record("zichuan.txt", ("山东省", "淄博市", "淄川区"), 2024), publish_date="2025-03-10")
    ]
    for year, covered in ((2025, True), (2023, False)):
        question = f"淄川区{year}年办理行政复议案件多少件？"
        route = scope.route(scope.parse(question, library), question, library)
        assert (route.reports == ("zichuan.txt",)) is covered, year


@pytest.mark.parametrize(
    ("opening", "asked", "answers"),
    [
        ("2021年,司法厅坚持以习近平新时代中国特色社会主义思想为指导", "四川省司法厅", True),
        ("2024年,区教育局认真学习贯彻习近平法治思想", "成都市武侯区教育局", True),
        ("2022年,县市场监督管理局深入贯彻落实", "泾源县市场监管局", True),  # the genre's abbreviation
        ("2021年,省公安厅坚持以习近平新时代中国特色社会主义思想为指导", "四川省司法厅", False),
    ],
)
def test_a_department_report_whose_issuer_was_not_read_answers_by_how_it_names_itself(
    opening: str, asked: str, answers: bool
) -> None:
    """A headerless department report says who it is in its opening (司法厅…, 区教育局…): a question naming
    that department of the report's place is about it; another department of the place is not."""
    g = gazetteer.load()
    place = next(p for p in ("四川省", "武侯区", "泾源县") if asked.startswith(p) or p in asked)
    path = {
        "四川省": ("四川省",),
        "武侯区": ("四川省", "成都市", "武侯区"),
        "泾源县": ("宁夏回族自治区", "固原市", "泾源县"),
    }
    library = [
        with_meta(record("dept.txt", path[place], 2024, code=g.lookup(place)[0]), issuer="", issuer_kind="")
    ]
    question = f"{asked}2024年办理了多少件？"
    route = scope.route(scope.parse(question, library), question, library, text_of=lambda _: opening + "。")
    assert (route.reports == ("dept.txt",)) is answers, route
    if not answers:  # the refusal says what the library holds for the place instead
        assert f"资料库中没有{asked}的报告；" in route.refusal and "有：" in route.refusal


def test_a_township_report_is_found_by_the_place_its_title_names() -> None:
    """下洋镇 is below the gazetteer's counties: its report (no region read) is named by its title, and the county
    written before it (徐闻县下洋镇) says where the township is, not another report to look for."""
    base = record("town.txt", ("山东省", "淄博市", "淄川区"), 2023)
    town = with_meta(
        base, title="下洋镇2023年法治政府建设年度报告", region="", region_code="", region_path=(), issuer=""
    )
    library = [town, *LIBRARY]
    for question in ("徐闻县下洋镇2023年举办了几次法治讲座？", "下洋镇2023年举办了几次法治讲座？"):
        route = scope.route(scope.parse(question, library), question, library)
        assert route.reports == ("town.txt",), (question, route)


def test_a_count_of_reports_asks_across_them_whatever_the_librarys_size() -> None:
    """几份/两份/12份报告 asks over several reports; 这份报告 is one."""
    from qa.question.scope import asks_across_reports

    for question in (
        "这三份报告里哪份提到了行政复议？",
        "12份报告中有几份写了败诉率？",
        "两份报告的纠错率分别是多少？",
    ):
        assert asks_across_reports(question), question
    assert not asks_across_reports("这份报告的纠错率是多少？")
