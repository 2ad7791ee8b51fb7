"""Time to the first answer in the Streamlit app, offline, on the sample corpus (ingested beforehand,
not timed). Target: the first answer within 2 s of the app being up.

  in-process  streamlit.testing AppTest in a fresh Python process: the start-up run (imports, store,
              embedder, first page), the first answer (cold: BM25 index, query embedding), a warm answer
  browser     `streamlit run app.py` + headless Chromium: server healthy, page ready (chat box shown),
              first answer rendered with its citation link, warm answer

    python bench/app.py [--docs data/reports] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLD_Q = "淄川区办理行政复议案件多少件？"
WARM_Q = "洛江区新收行政复议申请多少件？"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def ingest(docs: Path, data_dir: Path, cache_dir: Path) -> int:
    from qa.core.config import Settings
    from qa.ingest.pipeline import ingest_paths
    from qa.wiring import open_services

    services = open_services(Settings(data_dir=data_dir, cache_dir=cache_dir))
    results = ingest_paths([docs], services.store, services.embedder, services.settings)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        sys.exit(f"ingest failed: {failed}")
    return len(results)


def apptest_child() -> None:
    """Runs in a fresh process (so imports count); prints the timings as JSON."""
    started = time.perf_counter()
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app_pages" / "main.py"), default_timeout=120).run()
    startup = time.perf_counter() - started
    timings = {"startup_s": startup}
    for label, question in (("first_answer_s", COLD_Q), ("warm_answer_s", WARM_Q)):
        began = time.perf_counter()
        at.chat_input[0].set_value(question).run()
        timings[label] = time.perf_counter() - began
        body = at.chat_message[-1].markdown[0].value
        if 'class="qa-cite"' not in body:
            sys.exit(f"no cited answer for {question!r}: {body[:200]}")
    print(json.dumps(timings))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_run(env: dict[str, str], log_path: Path) -> dict[str, float]:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    timings: dict[str, float] = {}
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    sys.exit(f"streamlit exited:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.05)
        timings["server_healthy_s"] = time.perf_counter() - started
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            expect.set_options(timeout=60_000)
            opened = time.perf_counter()
            page.goto(url)
            chat_box = page.get_by_test_id("stChatInputTextArea")
            expect(chat_box).to_be_visible()
            timings["page_ready_s"] = time.perf_counter() - opened
            for i, (label, question) in enumerate((("first_answer_s", COLD_Q), ("warm_answer_s", WARM_Q))):
                began = time.perf_counter()
                chat_box.fill(question)
                chat_box.press("Enter")
                answer = page.get_by_test_id("stChatMessage").nth(2 * i + 1)
                expect(answer.locator("a.qa-cite").first).to_be_visible()
                timings[label] = time.perf_counter() - began
            browser.close()
        timings["server_start_to_first_answer_s"] = time.perf_counter() - started - timings["warm_answer_s"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=Path, default=ROOT / "data" / "reports")
    parser.add_argument("--no-browser", action="store_true", help="only the in-process AppTest timings")
    parser.add_argument("--apptest-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.apptest_child:
        apptest_child()
        return
    shared_cache = ROOT / ".qa-test-cache"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        cache_dir = shared_cache if shared_cache.exists() else Path(tmp) / "cache"
        n = ingest(args.docs, data_dir, cache_dir)
        env = {**os.environ, "QA_DATA_DIR": str(data_dir), "QA_CACHE_DIR": str(cache_dir),
               "ANONYMIZED_TELEMETRY": "False"}  # fmt: skip
        for name in [k for k in env if k.startswith("QA_LLM") or k == "OPENAI_API_KEY"]:
            del env[name]  # offline engine
        print(f"sample corpus: {n} reports ingested into {data_dir} (not timed); engine: offline extractive")

        child = subprocess.run(
            [sys.executable, __file__, "--apptest-child"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        if child.returncode != 0:
            sys.exit(f"AppTest run failed:\n{child.stdout[-2000:]}\n{child.stderr[-3000:]}")
        t = json.loads(child.stdout.strip().splitlines()[-1])
        print("in-process (AppTest, fresh interpreter)")
        print(f"  start-up run (imports, store, embedder, page)  {t['startup_s']:6.2f} s")
        print(f"  first answer (cold)                            {t['first_answer_s']:6.2f} s")
        print(f"  warm answer                                    {t['warm_answer_s']:6.2f} s")

        if args.no_browser:
            return
        if not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()):
            print("browser: skipped, Chromium not installed (scripts/ensure-chromium)")
            return
        b = browser_run(env, Path(tmp) / "streamlit.log")
        print("browser (streamlit run + headless Chromium)")
        print(f"  server start → healthy                         {b['server_healthy_s']:6.2f} s")
        print(f"  page open → chat box ready (first session)     {b['page_ready_s']:6.2f} s")
        print(f"  question → first answer rendered (cold)        {b['first_answer_s']:6.2f} s")
        print(f"  question → answer rendered (warm)              {b['warm_answer_s']:6.2f} s")
        print(
            f"  server start → first answer, all included      {b['server_start_to_first_answer_s']:6.2f} s"
        )
        verdict = "met" if b["first_answer_s"] <= 2 else "MISSED"
        print(f"target: first answer within 2 s of the app being up: {verdict}")


if __name__ == "__main__":
    main()
