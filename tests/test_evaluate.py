"""Eval scoring (pure functions on hand-made cases), the baseline gate, reports, history and the judge."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, run_cli
from openai_server import OpenAIServer, Reply

from qa.core.errors import EndpointUnreachable, OutputError, ProviderError
from qa.core.schemas import Answer, Source
from qa.evals import gate, history, judge
from qa.evals import report as evalreport
from qa.evals.evaluate import (
    EvalCase,
    SummaryGold,
    is_echo,
    list_coverage,
    load_dataset,
    load_summary_gold,
    number_correct,
    run_qa,
    score_answer,
    score_summary,
    summarize_summary_rows,
)
from qa.models.calllog import CallLog
from qa.models.llm import ChatLLM, make_client
from qa.summary.summarize import KeyFigure, Point, Summary

DATASETS = ROOT / "evals" / "datasets"


def case(answer: str, answer_type: str = "number") -> EvalCase:
    return EvalCase(id="x", doc="d.txt", question="q", answer=answer, answer_type=answer_type)


# ---- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("淄川区办理行政复议案件一百五十一件。", "151件", True),  # right number in other words
        ("办理行政复议案件151件[3]", "151件", True),
        ("办理行政复议案件115件", "151件", False),  # wrong number
        ("办理行政复议案件151人", "151件", False),  # right value, wrong unit
        ("兑现惠企资金11000万元", "1.1亿元", True),  # 1.1亿元 ≡ 11000万元
        ("兑现惠企资金1.1亿元", "11000万元", True),
        ("纠错率达29.8%", "29.8%", True),
        ("纠错率达百分之二十九点八", "29.8%", True),
        ("办理151件", "151件；67件", False),  # both numbers needed
        ("办理151件,审结67件", "151件；67件", True),
        ("", "151件", False),  # empty answer
    ],
)
def test_number_answers(answer: str, gold: str, expected: bool) -> None:
    assert number_correct(answer, gold) is expected


def test_partial_list_is_not_correct() -> None:
    gold = "推进行政执法规范化；加强依法履职尽责；加大法律服务供给力度；开拓法治宣传新形式"
    partial = "(一)推进行政执法规范化。(三)加大法律服务供给力度。"
    assert list_coverage(partial, gold) == 0.5
    assert score_answer(case(gold, "list"), partial) == (False, False)
    full = "(一)推进行政执法规范化。(二)加强依法履职尽责。(三)加大法律服务供给力度。(四)开拓法治宣传新形式。"
    assert score_answer(case(gold, "list"), full) == (True, False)


@pytest.mark.parametrize(
    ("answer", "answer_type", "correct", "refused"),
    [
        ("文中未提及", "unanswerable", True, True),  # refusing the unanswerable is right
        ("资料中没有相关信息。", "unanswerable", True, True),  # a refusal in other words
        ("淄川区：行政机关负责人出庭应诉率100%。[1]", "unanswerable", False, False),  # answering it is wrong
        ("文中未提及", "number", False, True),  # refusing an answerable one is wrong
        ("", "number", False, True),  # an empty answer counts as a refusal
        ("打造“265”行政复议调解工作机制[2]", "text", True, False),
    ],
)
def test_refusal_versus_answer(answer: str, answer_type: str, correct: bool, refused: bool) -> None:
    gold = (
        "文中未提及"
        if answer_type == "unanswerable"
        else ("151件" if answer_type == "number" else "265；行政复议调解")
    )
    assert score_answer(case(gold, answer_type), answer) == (correct, refused)


# ---- echoes of the prompt -------------------------------------------------------------------------

QUESTION = "淄川区办理行政复议案件多少件？"
PASSAGE = (
    "(三)有效化解矛盾纠纷,切实维护群众合法权益。不断加强调解员队伍建设,印发《淄川区村(社区)人民调解工作实务指引》,"
    "开展调解员培训660人次,调处矛盾纠纷2632件。加强行政复议案件指导办理,积极打造“265”行政复议调解工作机制,"
    "将调解贯穿行政复议办案全程,推行“复调并行,调解先行”审理模式,全力推进行政争议实质性化解。"
    "办理行政复议案件151件,审结67件,综合纠错率达29.8%。"
)
OTHER = "(六)坚持推动司法为民,不断提升群众司法获得感。深化“枫桥式人民法庭”创建,完善“法庭+”诉前多元解纷模式。"


@pytest.mark.parametrize(
    ("answer", "echo"),
    [
        ("淄川区办理行政复议案件151件[1]。", False),  # an answer
        ("办理行政复议案件151件,审结67件,综合纠错率达29.8%。[1]", False),  # one quoted sentence, cited
        # the extractive engine's shape: several quoted sentences, each with its [n]
        ("开展调解员培训660人次,调处矛盾纠纷2632件。[1]\n办理行政复议案件151件,审结67件。[1]", False),
        (QUESTION + "\n151件[1]", False),  # restates the question (against the rules) but answers it
        (QUESTION + "\n" + PASSAGE, True),  # the question and the passage copied back
        (f"问题：{QUESTION}\n资料：[1] {PASSAGE}\n[2] {OTHER}", True),  # the prompt copied back
        (PASSAGE + OTHER, True),  # the passages copied back: many sentences in one uncited run
        (QUESTION * 5, True),  # nothing but the question
        # the question and the sentence with the gold, nothing of its own
        (QUESTION + "办理行政复议案件151件[1]。", True),
    ],
)
def test_an_echo_of_the_prompt_is_told_from_an_answer(answer: str, echo: bool) -> None:
    assert is_echo(answer, QUESTION, [PASSAGE, OTHER]) is echo


def test_an_echo_is_never_credited_even_when_it_contains_the_gold() -> None:
    source = Source(n=1, report_id="zichuan_2024.txt", title="淄川区2024年法治政府建设情况报告", section="一、",
                    start=0, end=len(PASSAGE), text=PASSAGE, chunk_ids=("c1",))  # fmt: skip
    replies = {"a": QUESTION + "\n" + PASSAGE, "b": "办理行政复议案件151件[1]。"}

    def answer_fn(c: EvalCase, said: list) -> Answer:
        return Answer(question=c.question, text=replies[c.id], citations=[], unverified_numbers=[], refused=False,
                      engine="llm", model="m", prompt_ref="answer@1#x", sources=[source])  # fmt: skip

    cases = [EvalCase(id=i, doc="zichuan_2024.txt", question=QUESTION, answer="151件", answer_type="number")
             for i in ("a", "b")]  # fmt: skip
    assert number_correct(replies["a"], "151件")  # the echo "contains" the gold number
    result = run_qa(cases, answer_fn, {}, 5)
    rows = {r["id"]: r for r in result["rows"]}
    assert rows["a"]["echo"] is True and rows["a"]["correct"] is False and rows["a"]["refused"] is False
    assert rows["b"]["echo"] is False and rows["b"]["correct"] is True
    assert result["answer_accuracy"] == 0.5 and result["confidently_wrong"] == 0.5


# ---- provider errors during a run ------------------------------------------------------------------


def test_a_provider_error_fails_its_question_only_and_a_config_error_stops_the_run() -> None:
    cases = [
        EvalCase(id="a", doc="d.txt", question="办理行政复议案件多少件？", answer="151件", answer_type="number"),
        EvalCase(id="b", doc="d.txt", question="GDP是多少？", answer="文中未提及", answer_type="unanswerable"),
        EvalCase(id="c", doc="d.txt", question="审结多少件？", answer="67件", answer_type="number"),
        EvalCase(id="d", doc="d.txt", question="纠错率多少？", answer="29.8%", answer_type="number"),
    ]  # fmt: skip
    failures = {"a": ProviderError("model m: HTTP 500 from the endpoint (after 3 tries)"),
                "b": OutputError("model m: invalid JSON twice")}  # fmt: skip

    def answer_fn(c: EvalCase, said: list) -> Answer:
        if c.id in failures:
            raise failures[c.id]
        text = "审结67件[1]" if c.id == "c" else "纠错率达29.8%[1]"
        return Answer(question=c.question, text=text, citations=[], unverified_numbers=[], refused=False,
                      engine="llm", model="m", prompt_ref="answer@1#x")  # fmt: skip

    result = run_qa(cases, answer_fn, {}, 5)
    rows = {r["id"]: r for r in result["rows"]}
    assert rows["a"]["error"] == "model m: HTTP 500 from the endpoint (after 3 tries)"
    assert rows["b"]["error"] == "model m: invalid JSON twice"
    assert all(rows[i]["correct"] is False and rows[i]["refused"] is False for i in "ab")
    assert rows["c"]["error"] is None and rows["c"]["correct"] is True and rows["d"]["correct"] is True
    assert result["errors"] == 2 and result["n"] == 4
    assert result["answer_accuracy"] == round(2 / 3, 4)  # an errored question counts as wrong
    assert result["refusal_accuracy"] == 0.5  # an errored question neither refused nor answered: wrong
    assert result["confidently_wrong"] == 0.0  # an error is not an answer given

    def unreachable(c: EvalCase, said: list) -> Answer:
        raise EndpointUnreachable("cannot reach http://127.0.0.1:9/v1: start it or fix QA_LLM_BASE_URL")

    with pytest.raises(EndpointUnreachable, match="cannot reach"):  # every question would fail the same way
        run_qa(cases, unreachable, {}, 5)


def test_the_project_datasets_are_valid_and_their_evidence_is_in_the_reports() -> None:
    """Every evidence string is a substring of its report (NFKC + whitespace removed), as the contract says."""

    def squash(text: str) -> str:
        import unicodedata

        return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))

    texts = {p.name: squash(p.read_text(encoding="utf-8")) for p in CORPUS.glob("*.txt")}
    for name in ("qa_dev.jsonl", "qa_holdout.jsonl"):
        cases = load_dataset(DATASETS / name, CORPUS)
        for c in cases:
            for evidence in c.evidence:
                pool = texts.values() if c.doc == "*" else [texts[c.doc]]
                assert any(squash(evidence) in t for t in pool), (name, c.id, evidence)
            assert (c.answer_type == "unanswerable") == (c.answer == "文中未提及"), c.id
    dev = load_dataset(DATASETS / "qa_dev.jsonl", CORPUS)
    assert len(dev) >= 80
    assert sum(c.answer_type == "unanswerable" for c in dev) >= 10
    assert sum(c.doc == "*" for c in dev) >= 8
    for gold in load_summary_gold(DATASETS / "summary_gold.jsonl", CORPUS):
        raw = (CORPUS / gold.doc).read_text(encoding="utf-8")
        assert all(f in raw for f in gold.must_figures), gold.doc


# ---- summaries -----------------------------------------------------------------------------------

REPORT = "2024年,某区法治政府建设取得新成效。\n一、主要举措\n办理行政复议案件151件,审结67件,综合纠错率达29.8%。\n二、存在的不足\n一是人才不足。\n三、2025年工作安排\n一是加强培训。"


def make_summary(**changes) -> Summary:
    fields = dict(
        report_id="r.txt", template="summary_rule_of_law@1#00000000", title="某区2024年度法治政府建设情况报告",
        issuer="某区人民政府", region="某区", year=2024, overview="2024年,某区办理行政复议案件151件。",
        key_figures=[KeyFigure(indicator="行政复议案件", raw="151件", quote="办理行政复议案件151件,审结67件,综合纠错率达29.8%。",
                               chunk_id="c1", verified=True)],
        problems=[Point(text="一是人才不足。")], plans=[Point(text="一是加强培训。")],
    )  # fmt: skip
    fields.update(changes)
    return Summary(**fields)


def test_summary_scoring_metadata_figures_grounding_sections() -> None:
    gold = SummaryGold(doc="r.txt", title="某区2024年度法治政府建设情况报告", issuer="某区人民政府", region="某区",
                       year=2024, must_figures=["151件", "29.8%"], must_sections=["problems", "plans"])  # fmt: skip
    good = score_summary(
        gold, make_summary(overview="某区办理行政复议案件一百五十一件,纠错率29.8%。"), REPORT
    )
    assert good["ok"] and good["figures_missing"] == [] and good["numbers_ungrounded"] == []
    bad = score_summary(gold, make_summary(year=2025, overview="办理行政复议案件152件。", plans=[]), REPORT)
    assert bad["metadata"]["year"] is False and bad["metadata_wrong"] == {"year": "2025"}
    assert bad["figures_missing"] == ["29.8%"]  # 152件 is not 151件, and 29.8% is nowhere
    assert bad["numbers_ungrounded"] == ["152件"]
    assert bad["sections"] == {"problems": True, "plans": False}
    totals = summarize_summary_rows([good, bad])
    assert totals["figure_recall"] == 0.75 and totals["section_completeness"] == 0.75
    assert 0 < totals["number_grounding"] < 1 and totals["metadata_accuracy"] == 0.875


def test_a_key_figure_whose_quote_is_not_in_the_report_is_ungrounded() -> None:
    invented = KeyFigure(indicator="行政复议案件", raw="999件", quote="办理行政复议案件999件", chunk_id="c1")
    row = score_summary(SummaryGold(doc="r.txt"), make_summary(key_figures=[invented]), REPORT)
    assert row["numbers_ungrounded"] == ["999件"] and not row["ok"]


# ---- the gate ------------------------------------------------------------------------------------


def metrics(accuracy: float, rows: dict[str, bool], engine: str = "extractive") -> dict:
    return {
        "n": len(rows), "k": 5, "engine": engine, "model": None, "retrieval_recall_at_k": 1.0,
        "answer_accuracy": accuracy, "refusal_accuracy": 1.0, "citation_precision": 1.0, "number_grounding": 1.0,
        "p50_ms": 10.0, "p95_ms": 20.0,
        "rows": [{"id": i, "correct": ok, "retrieval_hit": True} for i, ok in rows.items()],
    }  # fmt: skip


def test_gate_flags_a_drop_beyond_tolerance_and_lists_questions() -> None:
    base = gate.make_baseline(metrics(0.9, {"a": True, "b": True, "c": False}), dataset="d", dataset_sha="s",
                              git_commit="abc")  # fmt: skip
    same = gate.compare(base, metrics(0.9, {"a": True, "b": True, "c": False}), "s")
    assert not same.regressed and same.newly_failing == [] and same.warnings == []
    worse = gate.compare(base, metrics(0.8, {"a": True, "b": False, "c": True}), "s")
    assert worse.regressed and [d.name for d in worse.regressions] == ["answer_accuracy"]
    assert worse.newly_failing == ["b"] and worse.newly_passing == ["c"]
    base["tolerances"]["answer_accuracy"] = 0.15  # a deliberate, reviewed tolerance for the average…
    swapped = gate.compare(base, metrics(0.8, {"a": True, "b": False, "c": True}), "s")
    assert swapped.regressions == [] and swapped.regressed  # …but b, which passed, fails: still a regression
    assert not gate.compare(base, metrics(0.9, {"a": True, "b": True, "c": True}), "s").regressed


def test_gate_warns_when_runs_are_not_comparable() -> None:
    base = gate.make_baseline(metrics(0.9, {"a": True}), dataset="d", dataset_sha="s1", git_commit=None)
    other = gate.compare(base, metrics(0.9, {"a": True, "new": True}, engine="llm"), "s2")
    assert len(other.warnings) == 2 and other.new_ids == ["new"]


def test_report_renders_failures_and_escapes_html() -> None:
    run = metrics(0.5, {"q-1": True, "q-2": False})
    run["rows"][1].update(question="<script>alert(1)</script>问题", gold="151件", answer="文中未提及", doc="d.txt",
                          answer_type="number", passages=[{"n": 1, "report": "d.txt", "section": "", "text": "段落"}])  # fmt: skip
    base = gate.make_baseline(
        metrics(1.0, {"q-1": True, "q-2": True}), dataset="d", dataset_sha="", git_commit=None
    )
    comparison = gate.compare(base, run)
    html = evalreport.to_html(run, comparison, dataset="d.jsonl")
    assert "&lt;script&gt;" in html and "<script>alert" not in html
    assert "REGRESSED" in html and "q-2" in html
    markdown = evalreport.to_markdown(run, comparison, dataset="d.jsonl")
    assert (
        "newly failing (1): q-2" in markdown and "| answer accuracy | 0.5000 | 1.0000 | -0.5000 |" in markdown
    )


def test_history_keeps_runs_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    for accuracy in (0.8, 0.9):
        history.append_run(path, history.run_record(metrics(accuracy, {"a": accuracy > 0.85}), dataset="d",
                                                    dataset_sha="s", git_commit="abc"))  # fmt: skip
    with path.open("a") as handle:
        handle.write('{"time": "2026-')  # a crash mid-append
    runs = history.read_runs(path)
    assert [r["metrics"]["answer_accuracy"] for r in runs] == [0.8, 0.9]
    assert runs[0]["failing"] == ["a"] and runs[1]["failing"] == []


# ---- the judge -----------------------------------------------------------------------------------


def test_judge_majority_of_runs_cached(tmp_path: Path) -> None:
    votes = iter(["correct", "incorrect", "correct"])

    def responder(request) -> Reply:
        return Reply(json.dumps({"verdict": next(votes), "reason": "对照标准答案"}, ensure_ascii=False))

    rows = [
        {"id": "t", "question": "品牌叫什么？", "gold": "法治侨", "answer": "打造双阳“法治侨”法治品牌[1]",
         "answer_type": "text", "refused": False},
        {"id": "n", "question": "多少件？", "gold": "151件", "answer": "151件", "answer_type": "number", "refused": False},
        {"id": "r", "question": "有哪些？", "gold": "甲；乙", "answer": "文中未提及", "answer_type": "list", "refused": True},
    ]  # fmt: skip
    with OpenAIServer(responder) as server:
        log = CallLog(tmp_path / "calls.sqlite")
        llm = ChatLLM(make_client(server.url, "k", 5, 0), "judge-model", log=log, cache=True)
        totals = judge.judge(rows, llm, runs=3)
        assert len(server.chat_requests()) == 3  # only the text answer is sent; a refusal costs nothing
        assert [r.body["seed"] for r in server.chat_requests()] == [0, 1, 2]
        assert rows[0]["judge"]["verdict"] == "correct" and rows[0]["judge"]["votes"] == [
            "correct",
            "incorrect",
            "correct",
        ]
        assert rows[2]["judge"]["verdict"] == "incorrect" and "judge" not in rows[1]
        assert totals["judge_accuracy"] == 0.5 and totals["calls"] == 3
        again = judge.judge([dict(rows[0])], llm, runs=3)
        assert len(server.chat_requests()) == 3 and again["cached"] == 3  # reruns cost nothing


def test_judge_cost_is_unknown_while_any_call_had_no_price(tmp_path: Path) -> None:
    verdict = Reply(json.dumps({"verdict": "correct", "reason": "一致"}, ensure_ascii=False))
    row = {"id": "t", "question": "品牌叫什么？", "gold": "法治侨", "answer": "法治侨[1]", "answer_type": "text",
           "refused": False}  # fmt: skip
    with OpenAIServer(lambda request: verdict) as server:
        llm = ChatLLM(make_client(server.url, "k", 5, 0), "local-model", log=CallLog(tmp_path / "calls.sqlite"),
                      cache=True)  # fmt: skip
        judge.judge([dict(row)], llm, runs=1)
        cached = judge.judge([dict(row)], llm, runs=1)
        assert cached["cost_usd"] == 0.0 and cached["unpriced"] == 0  # from the cache: free, and known
        # one verdict from the cache ($0) and one from a model nobody priced: the total is unknown, not $0
        mixed = judge.judge([dict(row), {**row, "id": "u", "answer": "法治侨品牌[1]"}], llm, runs=1)
    assert mixed["cached"] == 1 and mixed["unpriced"] == 1 and mixed["cost_usd"] is None


def test_judge_stops_at_a_rejected_key_instead_of_voting_invalid(tmp_path: Path) -> None:
    from qa.core.errors import ConfigError

    rows = [{"id": str(n), "question": "品牌叫什么？", "gold": "法治侨", "answer": "法治侨[1]", "answer_type": "text",
             "refused": False} for n in range(5)]  # fmt: skip
    with OpenAIServer(lambda request: Reply(status=401, error="Incorrect API key provided")) as server:
        llm = ChatLLM(
            make_client(server.url, "k", 5, 0), "judge-model", log=CallLog(tmp_path / "calls.sqlite")
        )
        with pytest.raises(ConfigError, match="rejected the API key"):
            judge.judge(rows, llm, runs=3)
        assert len(server.chat_requests()) == 1


def test_judge_ties_go_to_the_worse_verdict() -> None:
    assert judge.majority(["correct", "partial"]) == "partial"
    assert judge.majority(["correct", "correct", "incorrect"]) == "correct"


# ---- the command ---------------------------------------------------------------------------------


@pytest.fixture
def mini(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "zichuan_2024.txt", docs / "zichuan_2024.txt")
    dataset = tmp_path / "mini.jsonl"
    rows = [
        {"id": "a", "doc": "zichuan_2024.txt", "question": "淄川区办理行政复议案件多少件？", "answer": "151件",
         "answer_type": "number", "evidence": ["办理行政复议案件151件"]},
        {"id": "b", "doc": "zichuan_2024.txt", "question": "淄川区的GDP是多少？", "answer": "文中未提及",
         "answer_type": "unanswerable", "evidence": []},
        # a gold answer the report contradicts (it says 151件): the engine gets it "wrong" by construction
        {"id": "c", "doc": "zichuan_2024.txt", "question": "淄川区审结行政复议案件多少件？", "answer": "68件",
         "answer_type": "number", "evidence": ["审结67件"]},
    ]  # fmt: skip
    dataset.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return docs, dataset


def test_eval_baseline_update_compare_report_and_history(mini: tuple[Path, Path], tmp_path: Path) -> None:
    docs, dataset = mini
    baseline = tmp_path / "baseline.json"
    args = ["eval", "--dataset", str(dataset), "--docs", str(docs), "--baseline", str(baseline)]
    first = run_cli(*args, "--update-baseline")
    assert first.returncode == 0, first.stderr
    written = json.loads(baseline.read_text(encoding="utf-8"))
    assert written["outcomes"] == {"a": True, "b": True, "c": False}
    assert written["metrics"]["answer_accuracy"] == 0.5

    same = run_cli(*args, "--report", str(tmp_path / "report"), "--json", str(tmp_path / "out.json"))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no regression" in same.stdout
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert out["baseline"]["regressed"] is False and out["git_commit"] is not None
    assert {"report.md", "report.html", "report.json"} <= {p.name for p in (tmp_path / "report").iterdir()}

    # Someone's baseline says question c passed: this run is a regression, and c is named.
    written["outcomes"]["c"] = True
    written["metrics"]["answer_accuracy"] = 1.0
    baseline.write_text(json.dumps(written), encoding="utf-8")
    worse = run_cli(*args)
    assert worse.returncode == 1
    assert "newly failing (1): c" in worse.stdout and "REGRESSION" in worse.stdout
    assert "Traceback" not in worse.stderr

    runs = run_cli("history", "--json")
    recorded = json.loads(runs.stdout)
    assert len(recorded) == 3 and recorded[-1]["regressed"] is True and recorded[-1]["failing"] == ["c"]

    # Accepting c as failing takes a baseline update that says why; the reason is kept in the baseline.
    refused = run_cli(*args, "--update-baseline")
    assert refused.returncode != 0 and "--why" in refused.stderr and "(c)" in refused.stderr
    assert json.loads(baseline.read_text(encoding="utf-8"))["outcomes"]["c"] is True  # not written
    accepted = run_cli(*args, "--update-baseline", "--why", "c's gold needs a figure the report lacks")
    assert accepted.returncode == 0 and "baseline written" in accepted.stdout
    rewritten = json.loads(baseline.read_text(encoding="utf-8"))
    assert rewritten["outcomes"]["c"] is False
    assert rewritten["accepted"][-1]["ids"] == ["c"] and "lacks" in rewritten["accepted"][-1]["why"]
    assert run_cli(*args).returncode == 0  # against the updated baseline: no regression
    assert len({r["config_hash"] for r in recorded}) == 1


def test_eval_with_summary_gold_reports_summary_metrics(tmp_path: Path, mini: tuple[Path, Path]) -> None:
    docs, dataset = mini
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"doc": "zichuan_2024.txt", "region": "淄川区", "year": 2024,
                                "must_figures": ["151件", "29.8%"], "must_sections": ["problems", "plans"]},
                               ensure_ascii=False) + "\n", encoding="utf-8")  # fmt: skip
    result = run_cli("eval", "--dataset", str(dataset), "--docs", str(docs), "--summary-gold", str(gold),
                     "--json", str(tmp_path / "out.json"), "--no-history")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["summary"]
    assert summary["n"] == 1 and summary["figure_recall"] == 1.0 and summary["metadata_accuracy"] == 1.0
    assert summary["number_grounding"] == 1.0 and summary["section_completeness"] == 1.0


def test_bad_baseline_and_missing_files_are_clear_errors(mini: tuple[Path, Path], tmp_path: Path) -> None:
    docs, dataset = mini
    junk = tmp_path / "junk.json"
    junk.write_text("{not json", encoding="utf-8")
    result = run_cli("eval", "--dataset", str(dataset), "--docs", str(docs), "--baseline", str(junk))
    assert result.returncode == 1 and "junk.json" in result.stderr and "--update-baseline" in result.stderr
    missing = run_cli(
        "eval", "--dataset", str(dataset), "--docs", str(docs), "--summary-gold", str(tmp_path / "no.jsonl")
    )
    assert missing.returncode == 1 and "summary gold file not found" in missing.stderr
    judge_offline = run_cli("eval", "--dataset", str(dataset), "--docs", str(docs), "--judge")
    assert judge_offline.returncode == 1 and "--judge needs an LLM" in judge_offline.stderr
    assert all("Traceback" not in r.stderr for r in (result, missing, judge_offline))


def test_eval_with_the_llm_judge_shows_cost_before_and_totals_after(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "zichuan_2024.txt", docs / "zichuan_2024.txt")
    dataset = tmp_path / "judge.jsonl"
    dataset.write_text(json.dumps({
        "id": "t", "doc": "zichuan_2024.txt", "question": "淄川区行政复议推行什么审理模式？", "answer": "复调并行；调解先行",
        "answer_type": "text", "evidence": ["复调并行,调解先行"]}, ensure_ascii=False) + "\n", encoding="utf-8")  # fmt: skip

    def responder(request) -> Reply:
        if "评测员" in request.messages[0]["content"]:
            return Reply(json.dumps({"verdict": "correct", "reason": "一致"}, ensure_ascii=False))
        n = re.search(r"\[(\d+)\][^\[]*复调并行", request.prompt).group(1)
        return Reply(f"推行“复调并行,调解先行”审理模式[{n}]。")

    with OpenAIServer(responder) as server:
        env = {"QA_LLM_BASE_URL": server.url, "QA_LLM_MODEL": "gpt-4o-mini"}
        args = ["eval", "--dataset", str(dataset), "--docs", str(docs), "--judge", "--judge-runs", "2",
                "--json", str(tmp_path / "out.json"), "--no-history"]  # fmt: skip
        first = run_cli(*args, env=env)
        assert first.returncode == 0, first.stderr
        assert "judge: 1 text/list answers × 2 runs = 2 calls" in first.stderr  # before anything is sent
        assert "judge (gpt-4o-mini): 1 answers × 2 runs, 2 calls (0 cached" in first.stdout
        out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
        assert out["judge_accuracy"] == 1.0 and out["rows"][0]["judge"]["votes"] == ["correct", "correct"]
        judge_requests = [r for r in server.chat_requests() if "评测员" in r.messages[0]["content"]]
        assert len(judge_requests) == 2
        again = run_cli(*args, env=env)
        assert "2 calls (2 cached" in again.stdout  # verdicts are cached: a rerun costs nothing
        assert len([r for r in server.chat_requests() if "评测员" in r.messages[0]["content"]]) == 2


LLM_EVAL_ENV = {"QA_LLM_MODEL": "local-model", "QA_LLM_API_KEY": "test", "QA_LLM_RETRIES": "0"}


def _sentence_with(text: str, needle: str) -> str:
    """The sentence of a prompt that holds `needle` (what an echoing model copies back)."""
    at = text.index(needle)
    return text[text.rfind("。", 0, at) + 1 : text.find("。", at) + 1]


def test_eval_with_the_llm_records_a_provider_error_as_that_questions_row_and_goes_on(
    mini: tuple[Path, Path], tmp_path: Path
) -> None:
    docs, dataset = mini

    def responder(request) -> Reply:
        if "办理行政复议案件多少件" in request.prompt:  # question a: the server fails
            return Reply(status=500, error="upstream model crashed")
        if "GDP" in request.prompt:
            return Reply("文中未提及")
        return Reply("审结67件[1]。")

    history_file = tmp_path / "history.jsonl"
    with OpenAIServer(responder) as server:
        result = run_cli("eval", "--dataset", str(dataset), "--docs", str(docs), "--engine", "llm",
                         "--json", str(tmp_path / "out.json"), "--report", str(tmp_path / "report"),
                         "--history", str(history_file),
                         env={**LLM_EVAL_ENV, "QA_LLM_BASE_URL": server.url})  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # the run went on, then said it failed
    assert "Traceback" not in result.stderr
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    rows = {r["id"]: r for r in out["rows"]}
    assert "500" in rows["a"]["error"] and rows["a"]["correct"] is False and rows["a"]["refused"] is False
    assert rows["b"]["error"] is None and rows["b"]["correct"] is True  # the others were asked and scored
    assert rows["c"]["error"] is None and rows["c"]["answer"].startswith("审结67件")
    assert out["errors"] == 1 and out["answer_accuracy"] == 0.0 and out["refusal_accuracy"] == round(2 / 3, 4)
    assert "1 questions failed with an error" in result.stdout
    assert "a 淄川区办理行政复议案件多少件？" in result.stdout
    assert "1 of 3 questions failed with an error" in result.stderr
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Errors (1)" in markdown and "- a — 淄川区办理行政复议案件多少件？: " in markdown
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert rows["a"]["error"] in markdown and "<h2>Errors (1)</h2>" in html
    recorded = history.read_runs(history_file)
    assert len(recorded) == 1 and recorded[0]["errors"] == 1 and "a" in recorded[0]["failing"]


def test_eval_stops_at_a_rejected_key_with_its_message(mini: tuple[Path, Path], tmp_path: Path) -> None:
    docs, dataset = mini
    with OpenAIServer(lambda request: Reply(status=401, error="Incorrect API key provided")) as server:
        result = run_cli("eval", "--dataset", str(dataset), "--docs", str(docs), "--engine", "llm",
                         "--json", str(tmp_path / "out.json"), "--no-history",
                         env={**LLM_EVAL_ENV, "QA_LLM_BASE_URL": server.url})  # fmt: skip
        assert len(server.chat_requests()) == 1  # every question would fail the same way: asked once
    assert result.returncode == 2 and "API key" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.json").exists()


def test_eval_does_not_credit_a_model_that_echoes_the_question_and_passages(
    mini: tuple[Path, Path], tmp_path: Path
) -> None:
    docs, dataset = mini

    def responder(request) -> Reply:
        if "办理行政复议案件多少件" in request.prompt:  # the question and the sentence with the gold, copied
            copied = _sentence_with(request.prompt, "办理行政复议案件151件")
            return Reply("淄川区办理行政复议案件多少件？\n" + copied)
        return Reply("文中未提及")

    with OpenAIServer(responder) as server:
        result = run_cli("eval", "--dataset", str(dataset), "--docs", str(docs), "--engine", "llm",
                         "--json", str(tmp_path / "out.json"), "--report", str(tmp_path / "report"), "--no-history",
                         env={**LLM_EVAL_ENV, "QA_LLM_BASE_URL": server.url})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    rows = {r["id"]: r for r in out["rows"]}
    assert "151件" in rows["a"]["answer"]  # the echo "contains" the gold number…
    assert rows["a"]["echo"] is True and rows["a"]["correct"] is False  # …and is not credited
    assert rows["b"]["echo"] is False and rows["b"]["correct"] is True
    assert out["answer_accuracy"] == 0.0 and out["errors"] == 0
    assert "an echo of the prompt: not credited" in result.stdout
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "an echo of the prompt, not credited" in markdown
