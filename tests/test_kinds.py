"""A report's kind from its own words (qa.genre.kinds): the title when it names one, else the genre's fixed forms
in the opening. Checked on the forms themselves and on every development report (evals/kinds.jsonl,
gold from the corpora's meta.jsonl)."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from qa.genre import kinds
from qa.ingest.identity import extract
from qa.ingest.loaders import load


@pytest.mark.parametrize(
    ("title", "opening", "kind"),
    [
        ("某县2023年国民经济和社会发展统计公报", "", kinds.BULLETIN),
        ("", "初步核算，全年地区生产总值100亿元，比上年增长5.0%。第一产业增加值…", kinds.BULLETIN),
        ("政 府 工 作 报 告", "", kinds.WORK),  # spaced out, as printed
        ("", "各位代表：\n现在，我代表县人民政府向大会报告工作，请予审议。", kinds.WORK),
        ("某区人民政府2022年政府信息公开工作年度报告", "", kinds.DISCLOSURE),
        (
            "",
            "根据《中华人民共和国政府信息公开条例》要求……（一）主动公开情况……（二）依申请公开情况",
            kinds.DISCLOSURE,
        ),
        ("某市司法局2024年法治政府建设年度报告", "", kinds.LAW),
        ("", "2024年，我局深入学习贯彻习近平法治思想，全面推进依法行政，法治政府建设取得新成效。", kinds.LAW),
        ("", "2024年，我镇围绕乡村振兴，持续推进人居环境整治。", kinds.OTHER),
    ],
)
def test_the_kind_is_read_from_the_title_or_the_genres_forms(title: str, opening: str, kind: str) -> None:
    assert kinds.report_kind(title, opening) == kind


def test_a_passing_mention_is_not_a_kind() -> None:
    # a 法治 report speaks of 政务公开 and of the 政府工作报告 in a long sentence: neither makes it one
    text = ("2024年，区政府把法治政府建设写入《政府工作报告》，坚持依法行政，深化政务公开，推进严格规范公正文明执法，"
            "行政复议办理质效持续提升。")  # fmt: skip
    assert kinds.report_kind("", text) == kinds.LAW


def test_every_development_report_has_its_kind() -> None:
    rows = [
        json.loads(line) for line in (ROOT / "evals/kinds.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    wrong = []
    for row in rows:
        document = load(ROOT / row["doc"])
        got = kinds.report_kind(extract(document).title, document.text)
        if got != row["kind"]:
            wrong.append((row["doc"], row["kind"], got))
    assert len(rows) == 47 and wrong == []


def test_lists_say_whose_law_report_it_is() -> None:
    assert kinds.kind_label(kinds.LAW, "部门") == "法治报告（部门）"
    assert kinds.kind_label(kinds.LAW, "人民政府") == "法治报告"
    assert kinds.kind_label(kinds.BULLETIN, "部门") == "统计公报"
    assert kinds.kind_label("", "") == "未识别"
