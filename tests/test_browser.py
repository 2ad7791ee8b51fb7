"""End to end in a real headless Chromium: `streamlit run app.py` as a subprocess over a store holding two
sample reports; ask, click the citation, see the highlighted passage; upload a report and see it listed;
see a report's summary card and the indicator table across the reports.

Screenshots of each step go to test-artifacts/ (git-ignored). Chromium comes from the system
(Debian's package): `scripts/ensure-chromium` installs it and `make test` runs that first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, SHARED_CACHE, free_port, make_settings

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "Chromium is not installed, so the browser test cannot run: run scripts/ensure-chromium "
            "(`make test` does it for you)"
        )
    return path


@pytest.fixture
def app_url(fail_closed: Path, tmp_path: Path) -> Iterator[str]:
    """The app served by a real `streamlit run` over a store with two reports; stopped by its pid."""
    from qa.ingest import ingest_file
    from qa.wiring import open_services

    services = open_services(make_settings(fail_closed))
    for name in ("zichuan_2024.txt", "luojiang_2024.txt"):
        assert (
            ingest_file(CORPUS / name, services.store, services.embedder, services.settings).status
            == "ingested"
        )
    del services

    port = free_port()
    env = {
        **os.environ,
        "QA_DATA_DIR": str(fail_closed),
        "QA_CACHE_DIR": str(SHARED_CACHE),
        "ANONYMIZED_TELEMETRY": "False",
    }
    log_path = tmp_path / "streamlit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app.py"),
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.browser
def test_ask_upload_summary_and_compare_in_a_real_browser(app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=20_000)

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)

    def tall_shot(page, name: str) -> None:
        """The whole page: Streamlit scrolls inside its main block, so grow the window to its height."""
        height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
        page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height) + 40, 6000))})
        page.wait_for_timeout(300)
        shot(page, name)
        page.set_viewport_size({"width": 1400, "height": 1000})

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(app_url)

            # 问答: the engine is shown, the question gets a cited answer
            chat_box = page.get_by_test_id("stChatInputTextArea")
            expect(chat_box).to_be_visible()
            expect(page.get_by_test_id("stSidebar")).to_contain_text("抽取式（离线，逐字引用原文）")
            shot(page, "01-start")
            chat_box.fill("淄川区办理行政复议案件多少件？")
            chat_box.press("Enter")
            answer = page.get_by_test_id("stChatMessage").nth(1)
            cite = answer.locator("a.qa-cite").first
            expect(cite).to_be_visible()
            expect(answer.get_by_test_id("stMarkdownContainer").first).to_contain_text("151件")
            quote = answer.locator("mark.qa-quote").first
            expect(quote).to_be_hidden()  # the source is collapsed until the citation is clicked
            shot(page, "02-answer")

            # clicking [n] opens its source with the supporting span highlighted
            cite.click()
            expect(quote).to_be_visible()
            expect(quote).to_contain_text("151件")
            expect(answer.locator("div.qa-passage").first).to_be_in_viewport()
            page.wait_for_timeout(500)  # let the expander finish opening before the picture
            shot(page, "03-citation")

            # 文档库: upload a report through the real file input, see it listed
            page.get_by_test_id("stSidebarNav").get_by_text("文档库").click()
            file_input = page.locator("input[type=file]")
            expect(file_input).to_be_attached()
            shot(page, "04-library")
            data = (CORPUS / "rongjiang_2023.txt").read_bytes()
            file_input.set_input_files(
                files=[{"name": "蓉江新区报告.txt", "mimeType": "text/plain", "buffer": data}]
            )
            expect(page.get_by_test_id("stFileUploader")).to_contain_text("蓉江新区报告.txt")
            page.get_by_role("button", name="导入").click()
            expect(page.get_by_test_id("stAlert").filter(has_text="新增：蓉江新区报告.txt")).to_be_visible()
            expect(page.get_by_role("heading", name="报告（3 份）")).to_be_visible()
            expect(page.get_by_role("combobox", name="查看报告")).to_have_value(
                "赣州蓉江新区2023年度法治政府建设工作情况报告（蓉江新区报告.txt）"
            )
            expect(page.get_by_test_id("stSidebar")).to_contain_text("3 份报告")
            shot(page, "05-uploaded")

            # 摘要: pick 淄川区, its card shows the figure with its quote and the ✓ mark
            page.get_by_test_id("stSidebarNav").get_by_text("摘要").click()
            page.get_by_role("combobox", name="报告").click()
            page.get_by_role(
                "option", name="淄川区人民政府2024年度法治政府建设情况报告（zichuan_2024.txt）"
            ).click()
            card = page.locator("div.qa-summary")
            expect(card).to_contain_text("办理行政复议案件")
            figure_row = card.locator("tr", has_text="151件").first
            expect(figure_row).to_contain_text("✓")
            expect(page.locator("span.qa-engine")).to_have_text("抽取式（离线，逐字引用原文）")
            expect(page.get_by_test_id("stDownloadButton").filter(has_text="下载 JSON")).to_be_visible()
            tall_shot(page, "06-summary")

            # 对比: the indicator table over the three reports, each value's quote one click away
            page.get_by_test_id("stSidebarNav").get_by_text("对比").click()
            expect(page.get_by_test_id("stDataFrame")).to_be_visible()
            sources = page.get_by_test_id("stExpander").filter(has_text="行政复议 收案").first
            sources.locator("summary").click()
            expect(sources.locator("mark.qa-quote").filter(has_text="151件")).to_be_visible()
            expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible()
            page.wait_for_timeout(500)  # let the chart draw before the picture
            tall_shot(page, "07-compare")
        except Exception:
            shot(page, "failure")
            raise
        finally:
            browser.close()
