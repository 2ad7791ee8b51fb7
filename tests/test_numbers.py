"""The one number normaliser: find, normalise, compare, ground."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qa.genre.numbers import chinese_to_int, contains_number, find_numbers, parse_number, ungrounded


@pytest.mark.parametrize(
    ("text", "value", "unit", "approx"),
    [
        ("151件", "151", "件", False),
        ("1.1亿元", "110000000", "元", False),
        ("11000万元", "110000000", "元", False),
        ("29.8%", "29.8", "%", False),
        ("29.8％", "29.8", "%", False),
        ("517 宗", "517", "宗", False),
        ("2079余万元", "20790000", "元", True),
        ("3000余人次", "3000", "人次", True),
        ("百分之百", "100", "%", False),
        ("百分之二十九点八", "29.8", "%", False),
        ("十二件", "12", "件", False),
        ("一百五十一件", "151", "件", False),
        ("两万三千人", "23000", "人", False),
        ("1,305个", "1305", "个", False),
        ("１５１件", "151", "件", False),
        ("2.8万余人次", "28000", "人次", True),
        ("0.64个百分点", "0.64", "个百分点", False),  # a difference of rates: neither a % nor a count of 个
    ],
)
def test_parse(text: str, value: str, unit: str, approx: bool) -> None:
    number = parse_number(text)
    assert number is not None and number.raw == text
    assert number.value == Decimal(value) and number.unit == unit and number.approx == approx


def test_offsets_and_order() -> None:
    text = "办理行政复议案件151件,审结67件,综合纠错率达29.8%。"
    found = find_numbers(text)
    assert [n.raw for n in found] == ["151件", "67件", "29.8%"]
    assert all(text[n.start : n.end] == n.raw for n in found)


@pytest.mark.parametrize(
    "text",
    [
        "第一议题",
        "一是坚持",
        "[1][2]",
        "“十四五”规划",
        "一站式服务",
        "高效办成一件事",
        "一批典型案例",
        "资金万元",
    ],
)
def test_not_numbers(text: str) -> None:
    assert find_numbers(text) == []


def test_dates_are_one_number() -> None:
    assert [(n.raw, n.unit) for n in find_numbers("2025年2月13日印发")] == [("2025年2月13日", "date")]


def test_list_markers_and_citations_are_not_numbers() -> None:
    assert [n.raw for n in find_numbers("1. 受理案件151件[2]\n2、审结67件[3]")] == ["151件", "67件"]


@pytest.mark.parametrize(("text", "value"), [("一百五十一", 151), ("十二", 12), ("十", 10), ("两万三千", 23000),
                                             ("三百零五", 305), ("一亿一千万", 110000000)])  # fmt: skip
def test_chinese_numerals(text: str, value: int) -> None:
    assert chinese_to_int(text) == value


def test_equivalent_notations() -> None:
    assert contains_number("共一百五十一件", parse_number("151件"))
    assert contains_number("投入1.1亿元", parse_number("11000万元"))
    assert not contains_number("投入1.2亿元", parse_number("11000万元"))
    assert not contains_number("受理152件", parse_number("151件"))
    assert not contains_number("29.8人", parse_number("29.8%"))


def test_ungrounded_finds_invented_numbers_only() -> None:
    source = "办理行政复议案件151件,审结67件,综合纠错率达29.8%。"
    assert ungrounded("办理行政复议案件151件，纠错率29.8%", [source]) == []
    assert ungrounded("共一百五十一件", [source]) == []  # same quantity, other notation
    assert [n.raw for n in ungrounded("审结68件，纠错率30%", [source])] == ["68件", "30%"]


def test_percentage_points_are_not_percent() -> None:
    """提升3个百分点 is not 3%: a grounding check or a gold answer must never take one for the other."""
    [points] = find_numbers("城镇化率比上年末提高3个百分点。")
    [percent] = find_numbers("城镇化率为3%。")
    assert points.unit == "个百分点" and percent.unit == "%"
    assert find_numbers("提高0.64百分点")[0].unit == "个百分点"
    passage = ["常住人口城镇化率比上年末提高3个百分点。"]
    assert [n.raw for n in ungrounded("城镇化率提高了3%。", passage)] == ["3%"]  # not supported by 3个百分点
    assert ungrounded("城镇化率提高3个百分点。", passage) == []


def test_a_change_of_a_rate_is_asked_in_percentage_points() -> None:
    """破案率比上年提高了多少 is answered in 个百分点; 破案率是多少 in %; a count is neither."""
    from qa.answer.extractive import parse_question, states_asked_number
    from qa.question.query import read

    def asked(question: str):
        return parse_question(read(question, []))

    assert read("刑事案件破案率比上年提高了多少？", []).units == {"%", "个百分点"}
    assert read("刑事案件破案率是多少？", []).units == {"%"}
    assert states_asked_number(
        "刑事案件破案率比上年提高7.6个百分点。", asked("刑事案件破案率比上年提高了多少？")
    )
    assert not states_asked_number("刑事案件破案率比上年提高7.6个百分点。", asked("刑事案件破案率是多少？"))


def test_a_sum_must_be_stated_for_the_amount_asked_and_for_the_year_asked() -> None:
    """城镇居民人均可支配收入 is not answered by 农村居民人均可支配收入 in the same sentence; a question about one
    year is not answered by a figure over several (累计, 年均) — a wrong number with a citation is the worst
    outcome, so the engine says 文中未提及 instead."""
    from qa.answer.extractive import parse_question, states_asked_number
    from qa.question.query import read

    def asked(question: str):
        return parse_question(read(question, []))

    rural = "一般公共预算收入实现13.4亿元,增长17%;农村居民人均可支配收入实现16745元,增长7.2%。"
    urban = "城镇居民人均可支配收入实现35210元,增长6.1%。"
    assert not states_asked_number(rural, asked("辽阳县2019年城镇居民人均可支配收入是多少元？"))
    assert states_asked_number(urban, asked("辽阳县2019年城镇居民人均可支配收入是多少元？"))
    assert states_asked_number(rural, asked("辽阳县2019年一般公共预算收入是多少亿元？"))
    assert states_asked_number(  # the amount named earlier in the sentence, its figure in a later clause
        "全区人民调解纠纷案件共受理1661件,涉及金额5484.1213万元。", asked("洛江区人民调解涉及金额是多少？")
    )
    five_years = "预计全旗地区生产总值累计完成232.75亿元;一般公共预算收入累计完成25.32亿元。"
    assert not states_asked_number(five_years, asked("东乌旗2021年当年的一般公共预算收入是多少亿元？"))
    assert states_asked_number(five_years, asked("东乌旗五年来一般公共预算收入累计是多少亿元？"))
    assert states_asked_number(
        "一般公共预算收入完成5.1亿元。", asked("东乌旗2021年一般公共预算收入是多少亿元？")
    )


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        # several things counted in one question: the first is what a count must be attached to
        (
            "陵川县教育局2025年办结了多少件人大建议和政协提案？",
            "全年走访人大代表23人次,办结相关建议11件,提案11件。",
        ),
        ("闽清县2018年新培育了多少家农民合作社和家庭农场？", "新培育农民合作社52家、家庭农场75个。"),
        # the count before what it counts, a verb between
        (
            "四川省司法厅2021年先后召开了多少次厅党委会、厅长办公会？",
            "先后16次召开厅党委会、厅长办公会,深入学习。",
        ),
    ],
)
def test_counts_in_the_genres_compound_forms(question: str, sentence: str) -> None:
    from qa.answer.extractive import parse_question, states_asked_number
    from qa.question.query import read

    assert states_asked_number(sentence, parse_question(read(question, [])))


def test_a_count_of_something_else_still_does_not_answer() -> None:
    from qa.answer.extractive import parse_question, states_asked_number
    from qa.question.query import read

    asked = parse_question(read("先后召开了多少次厅党委会？", []))
    assert not states_asked_number("先后16次召开新闻发布会。", asked)
