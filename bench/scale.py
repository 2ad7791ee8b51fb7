"""A national archive on one machine: build a store of N reports and measure search, offline answers, memory,
routing, one report added / removed, and a ranking question across all of them.

    python bench/scale.py --reports 3000 [--questions 200] [--json OUT] [--server]

Each synthetic report is a real sample report (data/reports) placed in a different real division from the
gazetteer (county-level first, then prefectures): the base report's places are renamed to the new ones, a
second base report's closing half is appended (real reports run 15–40 chunks), and every counted figure
(151件, 660人次…) is shifted by an amount of its own, so each report states figures no other report does.
The files go through the real pipeline — loader, identity (metadata + gazetteer), chunking, the writer lock,
Chroma, the registry, the derived indexes; only the embedding is skipped: each chunk gets the vector of the
base chunk it came from plus a little noise (embedding 60k chunks would take hours here). Questions are
the dev set's figure questions of the base report, asked of the new place; a question is routed right when
the answer cites only that place's report and states its (shifted) figure.

--server runs the same against a real `chroma run` (started on a free port, stopped at the end).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer.pipeline import ask  # noqa: E402
from qa.core.config import Settings  # noqa: E402
from qa.evals.evaluate import load_dataset, number_correct, percentile  # noqa: E402
from qa.genre import gazetteer  # noqa: E402
from qa.ingest.pipeline import COMPACT_EVERY, compact_index, ingest_file, ingest_paths  # noqa: E402
from qa.wiring import Services, open_services  # noqa: E402

DOCS = ROOT / "data" / "reports"
DATASET = ROOT / "evals" / "datasets" / "qa_dev.jsonl"
# Counted figures: an integer followed by a counting unit (never a year, a date or a percentage).
_COUNT = re.compile(
    r"(?<![\d.])(\d{1,6})(?=\s?余?(?:件|人次|名|人|场次|场|次|个|家|项|份|条|户|所|起|宗|期|批|篇|万元|亿元))"
)
RANKING_QUESTIONS = ("哪个区县的行政复议案件最多？", "哪些地方办理行政复议案件超过150件？")


@dataclass
class Base:
    report_id: str
    text: str
    path: tuple[str, ...]  # region path as the gazetteer names it
    vectors: np.ndarray  # its chunks' vectors, in order
    questions: list  # the dev set's figure questions of this report


@dataclass
class Variant:
    report_id: str
    division: gazetteer.Division
    base: Base
    tail: Base
    shift: int

    def names(self, gaz: gazetteer.Gazetteer) -> tuple[gazetteer.Division, ...]:
        return gaz.path(self.division.code)


def rename(
    text: str, old: tuple[str, ...], new: tuple[gazetteer.Division, ...], gaz: gazetteer.Gazetteer
) -> str:
    """Write the new division's names where the base report writes its own, level by level from the lowest
    (full names, and short names the gazetteer knows; the longest first)."""
    pairs: dict[str, str] = {}
    for depth, name in enumerate(reversed(old)):
        target = new[max(0, len(new) - 1 - depth)]
        pairs.setdefault(name, target.name)
        for code in gaz.lookup(name):
            alias = gaz.get(code).alias
            if gaz.get(code).name == name and len(alias) >= 2 and len(target.alias) >= 2:
                pairs.setdefault(alias, target.alias)
    pattern = re.compile("|".join(re.escape(a) for a in sorted(pairs, key=len, reverse=True)))
    return pattern.sub(lambda m: pairs[m.group(0)], text)


def shift_figures(text: str, shift: int) -> str:
    return _COUNT.sub(lambda m: str(int(m.group(1)) + shift), text)


def half(text: str) -> str:
    """The closing half of a report, from a line break, without its last lines (the sign-off and date
    name the issuer: a report signs once)."""
    cut = text.find("\n", len(text) // 2)
    lines = [line for line in (text[cut + 1 :] if cut >= 0 else "").splitlines() if line.strip()]
    return "\n".join(lines[:-4])


class ReuseEmbedder:
    """Gives each chunk of the report being ingested its base chunk's vector plus noise (set `current`)."""

    def __init__(self, real, rng: np.random.Generator) -> None:
        self.real, self.name, self.dim = real, real.name, real.dim
        self.rng = rng
        self.current: np.ndarray | None = None

    def embed_passages(self, texts, progress=None):
        rows = self.current[np.minimum(np.arange(len(texts)), len(self.current) - 1)]
        noisy = rows + self.rng.normal(0, 0.01, rows.shape).astype(np.float32)
        if progress:
            progress(len(texts))
        return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)

    def embed_query(self, text):
        return self.real.embed_query(text)


def load_bases(services: Services) -> list[Base]:
    ingest_paths([DOCS], services.store, services.embedder, services.settings)
    cases = [c for c in load_dataset(DATASET, DOCS) if c.answer_type == "number" and "%" not in c.answer]
    bases = []
    for record in services.store.reports():
        chunks = services.store.report_chunks(record.report_id)
        got = services.store.chunks.get(ids=[c.id for c in chunks], include=["embeddings"])
        by_id = dict(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32), strict=True))
        if len(record.meta.region_path) < 2:
            continue
        bases.append(Base(record.report_id, (DOCS / record.report_id).read_text(encoding="utf-8"), record.meta.region_path,
                          np.stack([by_id[c.id] for c in chunks]),
                          [c for c in cases if c.doc == record.report_id and _COUNT.search(c.answer)]))  # fmt: skip
    return bases


def plan_variants(
    n: int, bases: list[Base], gaz: gazetteer.Gazetteer, rng: np.random.Generator
) -> list[Variant]:
    by_level = {level: sorted((d for d in gaz.divisions.values() if d.level == level), key=lambda d: d.code)
                for level in (gazetteer.COUNTY, gazetteer.PREFECTURE)}  # fmt: skip
    pool = list(rng.permutation(by_level[gazetteer.COUNTY])) + list(
        rng.permutation(by_level[gazetteer.PREFECTURE])
    )
    if n > len(pool):
        raise SystemExit(f"--reports {n}: the gazetteer has {len(pool)} county and prefecture divisions")
    return [Variant(f"{d.code}_{d.name}_{bases[i % len(bases)].report_id.rsplit('_', 1)[-1]}", d,
                    bases[i % len(bases)], bases[(i + 2) % len(bases)], 3 + (i * 37) % 211)
            for i, d in enumerate(pool[:n])]  # fmt: skip


def write_variant(variant: Variant, folder: Path, gaz: gazetteer.Gazetteer) -> Path:
    new = variant.names(gaz)
    text = rename(variant.base.text, variant.base.path, new, gaz) + "\n" + rename(half(variant.tail.text),
                                                                                  variant.tail.path, new, gaz)  # fmt: skip
    path = folder / variant.report_id
    path.write_text(shift_figures(text, variant.shift), encoding="utf-8")
    return path


def build(services: Services, variants: list[Variant], folder: Path, gaz, rng) -> float:
    fake = ReuseEmbedder(services.embedder, rng)
    started = time.perf_counter()
    last = started
    for i, variant in enumerate(variants, 1):
        fake.current = np.vstack(
            [variant.base.vectors, variant.tail.vectors[len(variant.tail.vectors) // 2 :]]
        )
        ingest_file(write_variant(variant, folder, gaz), services.store, fake, services.settings)
        if i % COMPACT_EVERY == 0 or i == len(variants):  # as qa ingest does
            compact_index(services.store)
        if time.perf_counter() - last > 30 or i == len(variants):
            last = time.perf_counter()
            print(f"  built {i}/{len(variants)} reports, {last - started:6.0f} s", flush=True)
    return time.perf_counter() - started


def questions_of(variants: list[Variant], gaz, count: int, rng) -> list[tuple[str, str, str]]:
    """(question naming the variant's place, the variant's report id, its shifted figure)."""
    names = {}
    for d in gaz.divisions.values():
        names.setdefault(d.name, []).append(d.code)
    asked = []
    for index in rng.permutation(len(variants)):
        variant = variants[index]
        if not variant.base.questions:
            continue
        case = variant.base.questions[int(rng.integers(len(variant.base.questions)))]
        new = variant.names(gaz)
        question = rename(case.question, variant.base.path, new, gaz)
        place = new[-1].name if len(names[new[-1].name]) == 1 else new[-2].name + new[-1].name
        if new[-1].name not in question and new[-1].alias not in question:
            question = f"{place}{question}"
        elif place != new[-1].name:
            question = question.replace(new[-1].name, place, 1)
        asked.append((question, variant.report_id, shift_figures(case.answer, variant.shift)))
        if len(asked) >= count:
            break
    return asked


def timed(run) -> tuple[float, object]:
    started = time.perf_counter()
    out = run()
    return (time.perf_counter() - started) * 1000, out


def measure(services: Services, variants: list[Variant], folder: Path, gaz, rng, n_questions: int) -> dict:
    asked = questions_of(variants, gaz, n_questions, rng)
    retriever = services.retriever
    first_ms, _ = timed(lambda: retriever.search("行政复议案件", k=5))  # builds / loads the derived index
    searches = [timed(lambda q=q: retriever.search(q, k=5))[0] for q, _, _ in asked]
    asks, right, wrong = [], 0, []
    for question, report_id, figure in asked:
        ms, answer = timed(lambda q=question: ask(q, retriever))
        asks.append(ms)
        cited = {c.report_id for c in answer.citations}
        if not answer.refused and cited == {report_id} and number_correct(answer.text, figure):
            right += 1
        else:
            wrong.append({"question": question, "report": report_id, "figure": figure, "answer": answer.text[:160],
                          "cited": sorted(cited)})  # fmt: skip
    ranking = {}
    for question in RANKING_QUESTIONS:
        ms, answer = timed(lambda q=question: ask(q, retriever))
        ranking[question] = {"ms": round(ms, 1), "citations": len(answer.citations), "refused": answer.refused,
                             "answer": answer.text[:300]}  # fmt: skip
    # one report added, then removed: the write plus the first search that sees it
    used = {v.division.code for v in variants}
    extra = next(v for v in plan_variants(len(variants) + 1, [variants[0].base], gaz, np.random.default_rng(7))
                 if v.division.code not in used)  # fmt: skip
    fake = ReuseEmbedder(services.embedder, rng)
    fake.current = extra.base.vectors
    add_ms, _ = timed(lambda: (ingest_file(write_variant(extra, folder, gaz), services.store, fake, services.settings),
                               retriever.search("行政复议案件", k=5)))  # fmt: skip
    remove_ms, _ = timed(
        lambda: (services.store.remove_report(extra.report_id), retriever.search("行政复议案件", k=5))
    )
    return {
        "reports": len(services.store.reports()),
        "chunks": services.store.count_chunks(),
        "first_search_ms": round(first_ms, 1),
        "search_p50_ms": round(percentile(searches, 50), 1),
        "search_p95_ms": round(percentile(searches, 95), 1),
        "ask_p50_ms": round(percentile(asks, 50), 1),
        "ask_p95_ms": round(percentile(asks, 95), 1),
        "routed_accuracy": round(right / len(asked), 3) if asked else None,
        "questions": len(asked),
        "add_one_s": round(add_ms / 1000, 2),
        "remove_one_s": round(remove_ms / 1000, 2),
        "ranking": ranking,
        "misrouted": wrong[:20],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(path: Path) -> tuple[subprocess.Popen, str]:
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if chroma is None:
        raise SystemExit("--server needs the `chroma` command (pip install chromadb)")
    port = free_port()
    server = subprocess.Popen([chroma, "run", "--path", str(path), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("chroma run did not start within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=3000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--server", action="store_true", help="run against a real `chroma run` server")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gaz = gazetteer.load()
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = ROOT / ".qa-test-cache"
        bases = load_bases(open_services(Settings(data_dir=root / "bases", cache_dir=cache)))
        chroma_url = ""
        if args.server:
            server, chroma_url = start_server(root / "server")
        try:
            services = open_services(
                Settings(data_dir=root / "store", cache_dir=cache, chroma_url=chroma_url)
            )
            variants = plan_variants(args.reports, bases, gaz, rng)
            folder = root / "files"
            folder.mkdir()
            build_s = build(services, variants, folder, gaz, rng)
            rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            figures = {"store": "chroma server" if args.server else "embedded", "build_s": round(build_s, 1),
                       "rss_after_build_mb": round(rss_build),
                       **measure(services, variants, folder, gaz, rng, args.questions),
                       "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}  # fmt: skip
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
    rows = [(k, v) for k, v in figures.items() if k not in ("ranking", "misrouted")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for question, got in figures["ranking"].items():
        print(
            f"{question}  {got['ms']} ms, {got['citations']} citations{' (refused)' if got['refused'] else ''}"
        )
        print(f"    {got['answer'][:200]}")
    for miss in figures["misrouted"][:5]:
        print(
            f"misrouted: {miss['question']} → {miss['answer'][:80]} (cited {miss['cited']}, wanted {miss['figure']})"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
