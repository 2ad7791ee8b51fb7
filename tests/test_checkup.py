"""报告体检 (qa.summary.checkup, qa.summary.checkup_docs, `qa check`): the contents 《法治政府建设与责任落实
督察工作规定》 asks of an annual report, judged on the genre's forms (a part of its own, a combined
不足及下步打算 part, a mention in the text, a page cut short) and against a gold written by reading five
sample reports and five web openings (evals/checkup_gold.jsonl); the deadline; the documents."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import ROOT, make_settings

from qa.core.schemas import ReportMeta
from qa.genre import kinds
from qa.summary.checkup import Checkup, check_report, timeliness
from qa.summary.checkup_docs import TABLE_COLUMNS, checkup_markdown, file_names, table_bytes
from qa.summary.summarize import ReportView

GOLD = ROOT / "evals" / "checkup_gold.jsonl"


def view(
    text: str, kind: str = kinds.LAW, year: int | None = 2024, published: str | None = None
) -> ReportView:
    meta = ReportMeta(title="某县2024年度法治政府建设情况报告", region="某县", year=year, publish_date=published,
                      kind=kind)  # fmt: skip
    return ReportView("某县.txt", meta, text, [], "hash")


def by_key(checkup: Checkup) -> dict:
    return {f.key: f for f in checkup.findings}


FULL = """某县2024年度法治政府建设情况报告
2024年，县政府深入推进法治政府建设。现将有关情况报告如下：
一、主要举措和成效
（一）加强规范性文件管理。全年审查规范性文件12件，纠正3件。
（二）化解行政争议。办理行政复议案件45件。
二、党政主要负责人履行推进法治建设第一责任人职责情况
县长主持召开常务会议专题研究法治建设4次。
三、存在的不足和原因
一是执法队伍专业化水平不高。主要原因是培训投入不足。
四、2025年工作安排
（一）加强执法队伍建设。
"""


def test_a_report_with_every_part_of_its_own_has_each_by_its_heading() -> None:
    found = by_key(check_report(view(FULL)))
    for key in ("measures", "leaders", "problems", "plans"):
        assert found[key].present and found[key].evidence.by == "标题", key
    assert found["measures"].evidence.quote == "一、主要举措和成效"
    assert found["measures"].figures == 3  # 12件, 3件, 45件 — the leaders' part is not counted as a measure
    assert found["leaders"].figures == 1
    assert found["problems"].note == ""  # 主要原因是… gives the cause
    assert not found["other"].present and found["other"].status == "未写（可选）"


def test_a_missing_part_is_named_with_where_it_was_looked_for() -> None:
    text = FULL.split("三、存在的不足和原因")[0] + "四、2025年工作安排\n（一）加强执法队伍建设。\n"
    checkup = check_report(view(text))
    assert checkup.missing == ["不足和原因"]
    problems = by_key(checkup)["problems"]
    assert problems.status == "缺" and "不足" in problems.note and problems.evidence is None


def test_a_heading_that_promises_causes_is_not_a_cause() -> None:
    text = FULL.replace("主要原因是培训投入不足。", "二是基层法治力量薄弱。")
    assert by_key(check_report(view(text)))["problems"].note == "写了不足，未写原因"


def test_problems_and_plans_in_one_part_are_both_found() -> None:
    text = FULL.split("三、存在的不足和原因")[0] + (
        "三、存在的问题及下步打算\n执法规范化程度有待提高，原因在于培训不够。\n下一步，我们将加强执法队伍建设。\n"
    )
    found = by_key(check_report(view(text)))
    assert found["problems"].present and found["plans"].present
    assert found["plans"].evidence.quote == found["problems"].evidence.quote == "三、存在的问题及下步打算"
    assert found["plans"].chars < found["problems"].chars + found["plans"].chars  # the part splits at 下一步


def test_a_part_mentioned_only_in_the_text_says_so() -> None:
    text = FULL.replace("二、党政主要负责人履行推进法治建设第一责任人职责情况\n", "").replace(
        "县长主持", "县长认真履行推进法治建设第一责任人职责，主持"
    )
    leaders = by_key(check_report(view(text)))["leaders"]
    assert leaders.status == "有（正文提及，未单列）" and leaders.evidence.by == "正文"
    assert "第一责任人" in leaders.evidence.quote and leaders.evidence.section == "一、主要举措和成效"


def test_a_mention_in_next_years_plans_does_not_report_the_past_year() -> None:
    text = FULL.replace("二、党政主要负责人履行推进法治建设第一责任人职责情况\n", "").replace(
        "（一）加强执法队伍建设。", "（一）落实党政主要负责人履行推进法治建设第一责任人职责规定。"
    )
    checkup = check_report(view(text))
    assert by_key(checkup)["leaders"].status == "缺" and checkup.missing == ["第一责任人职责"]


def test_a_page_cut_short_is_not_judged_missing() -> None:
    text = FULL.split("二、党政主要负责人")[0].rstrip() + "……"
    checkup = check_report(view(text))
    assert checkup.missing == []
    assert by_key(checkup)["problems"].status == "无法判断" and "节选" in checkup.note


def test_another_kind_of_report_is_not_judged() -> None:
    checkup = check_report(view("各位代表：现在，我代表县人民政府向大会报告工作。", kind=kinds.WORK))
    assert not checkup.applicable and checkup.findings == () and "政府工作报告" in checkup.note
    other = check_report(view("节假日放假安排通知：春节放假7天。", kind=kinds.OTHER))
    assert not other.applicable and other.note.startswith(
        "本报告不是法治政府建设年度报告"
    )  # not "本报告是其他"


@pytest.mark.parametrize(
    ("year", "published", "signed", "status", "said"),
    [
        (2024, "2025-01-10", None, "按时", "在时限之前"),
        (2024, "2025-04-01", None, "按时", "正是时限当天"),
        (2017, "2018-04-03", None, "逾期", "晚于时限2天"),
        # the page's date is when it was made public: a sign-off before the deadline does not make it on time
        (2024, "2025-04-15", "2025-03-28", "逾期", "晚于时限14天"),
        (2024, None, "2025-01-20", "无法判断", "无法确认何时公开"),
        (
            2024,
            None,
            "2025-04-10",
            "逾期",
            "公开只会更晚",
        ),  # signed after the deadline: late whatever the page
        (2024, None, None, "无法判断", "没有日期"),
        (None, "2025-01-10", None, "无法判断", "没有写明年度"),
    ],
)
def test_public_by_the_first_of_april_of_the_year_after(year, published, signed, status, said) -> None:
    judged = timeliness(year, published, signed)
    assert judged.status == status and said in judged.note


def test_documents_are_in_chinese_with_no_internal_references(tmp_path: Path) -> None:
    text = FULL
    chunked = ReportView("某县.txt", view(text).meta, text, [], "hash")
    checkup = check_report(chunked)
    markdown = checkup_markdown(checkup)
    assert "《法治政府建设与责任落实督察工作规定》" in markdown and "标题「三、存在的不足和原因」" in markdown
    assert "hash" not in markdown and "measures" not in markdown
    csv_data, xlsx_data = table_bytes([checkup, check_report(view("各位代表：", kind=kinds.WORK))])
    assert csv_data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(csv_data.decode("utf-8-sig"))))
    assert rows[0] == list(TABLE_COLUMNS) and rows[1][TABLE_COLUMNS.index("不足和原因")] == "有"
    assert rows[2][TABLE_COLUMNS.index("是否按时公开")] == "不适用"
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_data)).active
    assert sheet.title == "报告体检" and sheet.cell(1, 1).value == "报告" and sheet.max_row == 3


def test_two_reports_of_one_stem_get_their_own_files() -> None:
    assert file_names(["a.pdf", "a.docx", "b.txt"]) == {"a.pdf": "a.pdf", "a.docx": "a.docx", "b.txt": "b"}


def _gold() -> list[dict]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("gold", _gold(), ids=lambda g: Path(g["doc"]).stem)
def test_the_checkup_matches_the_gold(gold: dict, tmp_path: Path) -> None:
    from qa.summary.batch import view_from_file

    settings = make_settings(tmp_path)
    checkup = check_report(view_from_file(ROOT / gold["doc"], settings, settings.embedder))
    found = by_key(checkup)
    for key, expected in gold["contents"].items():
        f = found[key]
        got = (
            f.evidence.by
            if f.present
            else ("无法判断" if not f.judged else "未写" if not f.required else "缺")
        )
        assert got == expected, (key, f)
        if f.present:  # the evidence is the report's own words, where it says it is
            assert f.evidence.quote.rstrip("…") in checkup_text(gold["doc"])[f.evidence.start :][:200]
    if "cause" in gold:
        assert ("未写原因" in found["problems"].note) == (not gold["cause"])
    assert checkup.timeliness.status == gold["timeliness"]


def checkup_text(doc: str) -> str:
    from qa.ingest.loaders import load

    return load(ROOT / doc).text


def test_qa_check_writes_each_report_and_the_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from qa.cli.main import main

    docs = [
        ROOT / "data" / "reports" / "zichuan_2024.txt",
        ROOT / "evals" / "corpus-web" / "docs" / "13_xinjiang_2017.txt",
    ]
    out = tmp_path / "check"
    assert main(["check", *map(str, docs), "--out", str(out)]) == 0
    assert (
        (out / "zichuan_2024.check.md")
        .read_text(encoding="utf-8")
        .startswith("# 报告体检：淄川区（2024年度）")
    )
    record = json.loads((out / "13_xinjiang_2017.check.json").read_text(encoding="utf-8"))
    assert record["timeliness"]["on_time"] is False and record["findings"][0]["evidence"]["chunk_id"]
    rows = list(csv.reader(io.StringIO((out / "check.csv").read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["淄川区", "新疆维吾尔自治区"]
    assert (out / "check.xlsx").is_file()
    assert "逾期" in capsys.readouterr().out


def test_qa_check_of_an_unknown_report_says_what_to_do(capsys: pytest.CaptureFixture) -> None:
    from qa.cli.main import main

    assert main(["check", "no-such-report"]) == 1
    assert "qa ls" in capsys.readouterr().err


def test_qa_check_of_a_missing_file_says_the_file_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from qa.cli.main import main

    assert main(["check", str(tmp_path / "nope.txt")]) == 1
    said = capsys.readouterr().err
    assert "no such file" in said and "nope.txt" in said and "in the store" not in said


HEADLESS = """某县2024年度法治政府建设情况报告
2024年，县政府坚持依法行政，全年审查规范性文件12件，办理行政复议案件45件。
县长认真履行推进法治建设第一责任人职责，全年主持召开专题会议3次，研究法治建设重大事项6件。
工作中仍存在一些不足，基层执法人员业务能力有待提高。究其原因，一方面是培训投入不够，另一方面是人员流动较大。
2025年，县政府将坚持问题导向，持续加强执法队伍建设。
"""


def test_a_report_without_headings_is_judged_by_its_paragraphs() -> None:
    found = by_key(check_report(view(HEADLESS)))
    assert all(
        found[k].present and found[k].evidence.by == "正文"
        for k in ("measures", "leaders", "problems", "plans")
    )
    assert "未写原因" not in found["problems"].note  # 究其原因 follows the sentence that names the 不足
    assert (
        found["leaders"].figures == 2
    )  # counted over its paragraph (3次, 6件), not its first sentence alone
    assert found["plans"].evidence.quote.startswith("2025年，县政府将")


def test_a_page_cut_short_says_what_could_not_be_judged() -> None:
    from qa.summary.checkup_docs import verdict

    checkup = check_report(view(FULL.split("二、党政主要负责人")[0].rstrip() + "……"))
    said = verdict(checkup)
    assert "都能找到" not in said and "无法判断（文本不完整）" in said and "第一责任人职责" in said


# A text shaped like the regulation — articles, a chapter line, the contents as an enumerated article —
# with article numbers and a deadline made up (not the official ones), so that the test shows they are read
# from the text given, never known in advance.
SHAPED_LIKE_THE_REGULATION = """法治政府建设与责任落实督察工作规定（测试用文本，条款号和日期为虚构）
第一章 总则
第一条 为了推进法治政府建设，制定本规定。
第二条 本规定适用于地方各级党委和政府、县级以上政府部门。
第二章 年度报告
第三条 法治政府建设年度报告内容一般包括：
（一）上一年度推进法治政府建设的主要举措和成效；
（二）上一年度推进法治政府建设存在的不足和原因；
（三）上一年度党政主要负责人履行推进法治建设第一责任人职责，加强法治政府建设的有关情况；
（四）下一年度推进法治政府建设的主要安排；
（五）其他需要报告的情况。
第四条 每年3月31日之前，地方各级政府和县级以上政府部门的法治政府建设年度报告，除涉及党和国家秘密的，应当通过报刊、网站等新闻媒体向社会公开。
"""


def test_the_regulations_text_gives_the_articles_the_wording_and_the_deadline() -> None:
    from qa.genre.regulation_text import UNREAD, read_basis

    basis = read_basis(SHAPED_LIKE_THE_REGULATION, "规定.txt")
    assert (basis.contents_article, basis.deadline_article) == ("第三条", "第四条")
    assert (basis.due_month, basis.due_day) == (3, 31)
    assert basis.cited == "《法治政府建设与责任落实督察工作规定》第三条、第四条"
    assert dict(basis.asks)["leaders"].startswith("上一年度党政主要负责人履行推进法治建设第一责任人职责")
    assert "规定.txt" in basis.note and "条款号未能" not in basis.note
    # without the text: by name, and said so
    assert (
        UNREAD.cited == "《法治政府建设与责任落实督察工作规定》" and "条款号未能与正式文本核对" in UNREAD.note
    )
    # the contents in other words (a provincial guide's paraphrase) are still found, the deadline written in
    # numerals too
    reworded = SHAPED_LIKE_THE_REGULATION.replace(
        "推进法治政府建设的主要举措和成效", "法治政府建设主要举措及成效"
    )
    reworded = reworded.replace("每年3月31日之前", "每年三月三十一日前")
    basis = read_basis(reworded, "规定.docx")
    assert dict(basis.asks)["measures"] == "上一年度法治政府建设主要举措及成效"
    assert (basis.due_month, basis.due_day) == (3, 31)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("某县2024年度法治政府建设情况报告\n一、主要举措和成效\n全年审查规范性文件12件。", "no_articles"),
        ("第一条 为了规范行政执法，制定本办法。\n第二条 本办法自公布之日起施行。", "no_contents"),
    ],
)
def test_a_text_that_is_not_the_regulation_is_refused(text: str, code: str) -> None:
    from qa.genre.regulation_text import NotTheRegulation, read_basis

    with pytest.raises(NotTheRegulation) as raised:
        read_basis(text, "x.txt")
    assert raised.value.code == code


def test_a_checkup_cites_what_the_text_gives(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from qa.cli.main import main
    from qa.genre.regulation_text import read_basis

    basis = read_basis(SHAPED_LIKE_THE_REGULATION, "规定.txt")
    checkup = check_report(view(FULL, published="2025-04-01"), basis)
    markdown = checkup_markdown(checkup)
    assert "依据：《法治政府建设与责任落实督察工作规定》第三条、第四条" in markdown
    assert "每年3月31日（含）之前向社会公开上一年度报告（第四条）" in markdown
    assert checkup.timeliness.due == "2025-03-31" and checkup.timeliness.on_time is False  # the text's day
    assert by_key(checkup)["plans"].asks == "下一年度推进法治政府建设的主要安排"
    assert checkup.to_dict()["basis"]["contents_article"] == "第三条"
    # the CLI: --regulation FILE, the article numbers in every document
    rules = tmp_path / "规定.txt"
    rules.write_text(SHAPED_LIKE_THE_REGULATION, encoding="utf-8")
    out = tmp_path / "check"
    report = ROOT / "data" / "reports" / "zichuan_2024.txt"
    assert main(["check", str(report), "--regulation", str(rules), "--out", str(out)]) == 0
    assert "第三条、第四条" in (out / "zichuan_2024.check.md").read_text(encoding="utf-8")
    assert "第三条" in capsys.readouterr().out
    # a file that is not the regulation: refused before any report is read, the file named, non-zero
    assert main(["check", str(report), "--regulation", str(report), "--out", str(tmp_path / "x")]) == 1
    said = capsys.readouterr().err
    assert "zichuan_2024.txt" in said and "whole text" in said and not (tmp_path / "x").exists()


def test_a_sentence_that_says_what_must_be_done_does_not_give_a_content() -> None:
    """各级政府及其部门主要负责人要切实履行…第一责任人职责: an exhortation, not a report of what the leaders did."""
    text = ("某县2024年度法治政府建设情况报告\n2024年，县政府推进法治政府建设。\n一、主要举措和成效\n"
            "全年审查规范性文件12件。各级政府及其部门主要负责人要切实履行推进法治建设第一责任人职责。\n"
            "二、存在的不足和原因\n执法人员不足，原因是编制紧张。\n三、2025年工作安排\n加强执法队伍建设。\n")  # fmt: skip
    leaders = by_key(check_report(view(text)))["leaders"]
    assert not leaders.present and leaders.status == "缺"
    said = text.replace("要切实履行", "切实履行")  # the same sentence as a report of what was done
    assert by_key(check_report(view(said)))["leaders"].status == "有（正文提及，未单列）"


def test_qa_check_takes_a_stored_report_by_the_name_qa_ls_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """zichuan_2024.txt as `qa ls` lists it, run from a folder where no such file is: the stored report."""
    from qa.cli.main import main

    assert main(["ingest", str(ROOT / "data" / "reports" / "zichuan_2024.txt")]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["check", "zichuan_2024.txt", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "zichuan_2024.check.md").is_file()


def test_an_out_that_is_a_file_is_said_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from qa.cli.main import main

    taken = tmp_path / "已有文件.pdf"
    taken.write_bytes(b"%PDF-1.4")
    report = str(ROOT / "data" / "reports" / "zichuan_2024.txt")
    for command in (["check", report], ["summarize", report], ["compare"]):
        assert main([*command, "--out", str(taken)]) == 1, command
        said = capsys.readouterr()
        assert "已有文件.pdf" in said.err and "give a folder" in said.err and "unexpected" not in said.err
        assert "报告体检" not in said.out  # nothing done first
