"""Questions across reports about a catalogue indicator are answered from the comparison table: ranked, each
value cited, with the count of reports that do not state it (qa.question.ranking + qa.answer.pipeline.ranked)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qa.answer.pipeline import ask
from qa.question import ranking


@pytest.mark.parametrize(
    ("question", "indicator", "op", "threshold"),
    [
        ("哪个区县的行政复议纠错率最高？", "admin_review_correction", "max", None),
        ("哪些地方办理行政复议案件超过一百件？", "admin_review_received", "above", Decimal(100)),
        ("行政诉讼败诉率低于5%的有哪些地区？", "admin_litigation_loss_rate", "below", Decimal(5)),
        ("各区法律援助案件分别是多少？", "legal_aid_cases", "each", None),
        ("这些地区的法律援助案件一共多少件？", "legal_aid_cases", "sum", None),
    ],
)
def test_the_question_names_an_indicator_and_what_to_do(question, indicator, op, threshold) -> None:
    asked = ranking.parse(question)
    assert asked is not None and (asked.indicator.key, asked.op, asked.threshold) == (
        indicator,
        op,
        threshold,
    )


@pytest.mark.parametrize(
    "question", ["淄川区办理行政复议案件多少件？", "哪些地区提到了法治督察？", "纠错率是什么意思？"]
)
def test_other_questions_are_left_to_the_passages(question) -> None:
    assert ranking.parse(question) is None


def test_a_ranking_across_the_library_is_cited_from_the_table(corpus_services) -> None:
    answer = ask("哪些地方办理行政复议案件超过100件？", corpus_services.retriever)
    assert not answer.refused and not answer.unverified_numbers
    lines = [line for line in answer.text.splitlines() if line[:1].isdigit()]
    # the three reports stating more than 100 cases, highest first, each with its own passage
    assert [line.split("：")[1].split(" [")[0] for line in lines] == ["151件", "125宗", "121件"]
    assert "5 份报告写明" in answer.text
    by_n = {c.n: c for c in answer.citations}
    assert len(by_n) == 3 and all(c.quote and c.quote in c.passage for c in by_n.values())
    assert "151件" in by_n[1].quote and by_n[1].report_id == "zichuan_2024.txt"


def test_reports_not_stating_it_are_counted_never_guessed(corpus_services) -> None:
    answer = ask("哪个地区的行政诉讼败诉率最高？", corpus_services.retriever)
    assert "1. 洛江区：11.11% [1]" in answer.text
    assert "4 份未写明（不计入）" in answer.text and not answer.unverified_numbers
    assert [c.report_id for c in answer.citations] == ["luojiang_2024.txt"]


def test_a_total_is_said_to_be_computed_and_case_counts_add_up_whatever_their_unit(corpus_services) -> None:
    answer = ask("各地区的法律援助案件一共多少件？", corpus_services.retriever)
    # 517宗 + 235件 + 193件: 宗 counts cases as 件 does; the total is marked as computed, not quoted
    assert "以上 3 份报告的数值相加为 945件（计算值，不是报告原文，宗按件计）" in answer.text
    assert len(answer.citations) == 3 and not answer.unverified_numbers


def test_a_report_whose_other_measure_passes_is_named_not_dropped(corpus_services) -> None:
    """淄川 states 9件 against the district government (its cell) and 83件 accepted by the court (另有)."""
    answer = ask("哪些地区行政诉讼案件超过30件？", corpus_services.retriever)
    assert "淄川区：" not in answer.text
    assert "另有 1 份报告（淄川区）写了另一口径的数值高于 30件，未列入" in answer.text
    assert not answer.unverified_numbers


def test_when_no_report_passes_the_threshold_the_stated_values_are_shown_cited(corpus_services) -> None:
    answer = ask("哪些地方办理行政复议案件超过1000件？", corpus_services.retriever)
    assert answer.text.startswith("没有报告的“行政复议 收案”高于 1000件")
    lines = [line for line in answer.text.splitlines() if line[:1].isdigit()]
    assert lines[0] == "1. 淄川区：151件 [1]" and len(lines) == 5  # the closest first
    assert len(answer.citations) == 5 and not answer.unverified_numbers
