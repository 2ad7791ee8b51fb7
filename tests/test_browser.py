"""End to end in a real headless Chromium at 1440 px: `streamlit run app.py` as a subprocess over a store
holding four sample reports; the chat's start screen (reports, example questions), an example asked with its
citations numbered in reading order; ask, click the citation, see the highlighted passage; upload a report
and see it listed, a broken one refused in Chinese; a report's summary card; the indicator table across five
reports with every cell whole. Every page is checked for Streamlit's English widget text.

Screenshots of each step go to test-artifacts/ (git-ignored). Chromium comes from the system
(Debian's package): `scripts/ensure-chromium` installs it and `make test` runs that first.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
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
WIDTH = 1440  # an analyst's laptop screen: nothing may be cut off at this width
# Streamlit's own English widget text (app_pages.ui.WIDGET_SCRIPT puts it into Chinese); case matters: the icon
# font's ligatures ("upload") are text too.
ENGLISH = (
    "Browse files",
    "Drag and drop",
    "per file",
    "Upload",
    "Select all",
    "No results",
    "Clear all",
    "Skip to",
)
FIXTURE_REPORTS = ("zichuan_2024.txt", "luojiang_2024.txt", "dabancheng_2024.txt", "zhenjiang_sfj_2024.txt")


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "Chromium is not installed, so the browser test cannot run: run scripts/ensure-chromium "
            "(`make test` does it for you)"
        )
    return path


@contextlib.contextmanager
def serve(data_dir: Path, tmp_path: Path, reports: Sequence[str], address: str = "127.0.0.1",
          host: str = "127.0.0.1", extra_env: dict[str, str] | None = None) -> Iterator[str]:  # fmt: skip
    """A real `streamlit run` over a store with these reports, bound to address and reached as host;
    stopped by its pid."""
    from qa.ingest.pipeline import ingest_file
    from qa.wiring import open_services

    services = open_services(make_settings(data_dir))
    for name in reports:
        assert (
            ingest_file(CORPUS / name, services.store, services.embedder, services.settings).status
            == "ingested"
        )
    del services
    port = free_port()
    env = {
        **os.environ,
        "QA_DATA_DIR": str(data_dir),
        "QA_CACHE_DIR": str(SHARED_CACHE),
        "ANONYMIZED_TELEMETRY": "False",
        **(extra_env or {}),
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
                address,
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
    url = f"http://{host}:{port}"
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


@pytest.fixture
def app_url(fail_closed: Path, tmp_path: Path) -> Iterator[str]:
    """The app on localhost over a store with four reports (no sign-in: only this machine can reach it)."""
    with serve(fail_closed, tmp_path, FIXTURE_REPORTS) as url:
        yield url


def english_on(page) -> list[str]:
    """Streamlit widget text still in English anywhere on the page (sidebar, widgets, open popovers)."""
    text = page.locator("body").inner_text()
    return [phrase for phrase in ENGLISH if phrase in text]


def cut_cells(page) -> list[str]:
    """Table cells (st.table) whose text does not fit: clipped, or wider than the table's own box."""
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=stTable] td, [data-testid=stTable] th')]
            .filter((cell) => {
              const box = cell.closest('[data-testid=stTable]').getBoundingClientRect();
              const own = cell.getBoundingClientRect();
              return cell.scrollWidth > cell.clientWidth + 1 || own.right > box.right + 1
                || [...cell.querySelectorAll('*')].some((e) => e.scrollWidth > e.clientWidth + 1);
            })
            .map((cell) => cell.innerText)"""
    )


@pytest.mark.browser
def test_ask_upload_summary_and_compare_in_a_real_browser(app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=20_000)

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)

    def tall_shot(page, name: str) -> None:
        """The whole page: Streamlit scrolls inside its main block, so grow the window to its height."""
        height = page.evaluate("document.getElementById('stMain').scrollHeight")
        page.set_viewport_size({"width": WIDTH, "height": max(1000, min(int(height) + 40, 6000))})
        page.wait_for_timeout(300)
        shot(page, name)
        page.set_viewport_size({"width": WIDTH, "height": 1000})

    def in_chinese(page) -> None:
        assert english_on(page) == [], english_on(page)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(app_url)

            # 问答, empty: the loaded reports and three example questions built from them
            chat_box = page.get_by_test_id("stChatInputTextArea")
            expect(chat_box).to_be_visible()
            expect(page.get_by_test_id("stSidebar")).to_contain_text("抽取式（离线，逐字引用原文）")
            main = page.locator("#stMain")
            expect(main).to_contain_text("文档库共 4 份报告：达坂城区（2024）、洛江区（2024）")
            examples = main.get_by_test_id("stButton")
            expect(examples).to_have_count(3)
            expect(examples.nth(2)).to_contain_text("各地区行政复议纠错率分别是多少？")
            in_chinese(page)
            shot(page, "01-start")

            # the sidebar's report filter: its dropdown says 全选 (Streamlit draws "Select all")
            page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect").first.click()
            expect(page.get_by_role("option", name="全选")).to_be_visible()
            page.keyboard.type("没有这个报告")
            expect(page.get_by_text("没有匹配项")).to_be_visible()
            in_chinese(page)
            shot(page, "01b-filter")
            page.keyboard.press("Escape")
            main.get_by_text("文档库共 4 份报告").click()  # close the dropdown
            expect(page.get_by_role("listbox")).to_have_count(0)

            # an example question asked by its button: citations numbered 1, 2… as the answer reads
            examples.nth(2).click()
            example_answer = page.get_by_test_id("stChatMessage").nth(1)
            expect(example_answer.locator("a.qa-cite").first).to_be_visible()
            numbers = example_answer.locator("a.qa-cite").all_inner_texts()
            assert numbers[:2] == ["[1]", "[2]"], numbers
            assert [int(n.strip("[]")) for n in numbers] == sorted(int(n.strip("[]")) for n in numbers)
            # the sources render after the answer's text: wait for one per cited number before reading them
            cited_sources = example_answer.get_by_test_id("stExpander").filter(
                has_text=re.compile(r"\[\d+\] 《")
            )
            expect(cited_sources).to_have_count(len(set(numbers)))
            labels = example_answer.get_by_test_id("stExpander").locator("summary").all_inner_texts()
            sources = [int(m.group(1)) for m in (re.search(r"\[(\d+)\] 《", label) for label in labels) if m]
            assert sources == list(range(1, len(set(numbers)) + 1)), labels  # the list in the same order
            expect(example_answer.get_by_test_id("stExpander").filter(has_text="详细信息")).to_be_visible()
            in_chinese(page)
            shot(page, "02-example-answer")
            page.get_by_test_id("stSidebar").get_by_role("button", name="清空对话").click()
            expect(page.get_by_test_id("stChatMessage")).to_have_count(0)

            # a typed question gets a cited answer
            chat_box.fill("淄川区办理行政复议案件多少件？")
            chat_box.press("Enter")
            answer = page.get_by_test_id("stChatMessage").nth(1)
            cite = answer.locator("a.qa-cite").first
            expect(cite).to_be_visible()
            expect(cite).to_have_text("[1]")
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

            # 文档库: the uploader speaks Chinese; upload a report through the real file input, see it listed
            page.get_by_test_id("stSidebarNav").get_by_text("文档库").click()
            file_input = page.locator("input[type=file]")
            expect(file_input).to_be_attached()
            uploader = page.get_by_test_id("stFileUploader")
            expect(uploader).to_contain_text("选择文件")
            expect(uploader).to_contain_text("单个文件不超过 20MB")
            in_chinese(page)
            shot(page, "04-library")
            data = (CORPUS / "rongjiang_2023.txt").read_bytes()
            file_input.set_input_files(
                files=[{"name": "蓉江新区报告.txt", "mimeType": "text/plain", "buffer": data}]
            )
            expect(uploader).to_contain_text("蓉江新区报告.txt")
            page.get_by_role("button", name="导入").click()
            expect(page.get_by_test_id("stAlert").filter(has_text="新增：蓉江新区报告.txt")).to_contain_text(
                "导入完成：新增 1 份"
            )
            expect(page.get_by_role("heading", name="报告（5 份）")).to_be_visible()
            expect(page.get_by_role("combobox", name="查看报告")).to_have_value(
                "赣州蓉江新区2023年度法治政府建设工作情况报告（蓉江新区报告.txt）"
            )
            expect(page.get_by_test_id("stSidebar")).to_contain_text("5 份报告")
            table = page.get_by_test_id("stTable")
            expect(table).to_contain_text("泉州市洛江区人民政府关于2024年法治政府建设情况的报告")  # whole
            assert cut_cells(page) == [], cut_cells(page)
            shot(page, "05-uploaded")

            # a file that is not what its name says: refused in Chinese, the original in 详细信息
            file_input.set_input_files(
                files=[{"name": "改名的.pdf", "mimeType": "application/pdf", "buffer": data}]
            )
            expect(uploader).to_contain_text("改名的.pdf")
            page.get_by_role("button", name="导入").click()
            failed = page.get_by_test_id("stAlert").filter(has_text="失败：改名的.pdf")
            expect(failed).to_contain_text("不是有效的 PDF 文件")
            expect(page.get_by_test_id("stAlert").filter(has_text="没有导入任何报告")).to_be_visible()
            expect(page.get_by_text("导入完成")).to_have_count(0)
            original = page.get_by_test_id("stExpander").filter(has_text="详细信息（原始错误信息）")
            original.locator("summary").click()
            expect(original.get_by_text("not a PDF file (no %PDF header)")).to_be_visible()
            page.wait_for_timeout(500)  # let the expander finish opening before the picture
            in_chinese(page)
            shot(page, "05b-refused")

            # 摘要: pick 淄川区, its card shows the figure with its quote and the ✓ mark
            page.get_by_test_id("stSidebarNav").get_by_text("摘要").click()
            page.get_by_role("combobox", name="报告").click()
            page.get_by_role(
                "option", name="淄川区人民政府2024年度法治政府建设情况报告（zichuan_2024.txt）"
            ).click()
            card = page.locator("div.qa-summary")
            expect(card).to_contain_text("行政复议")
            figure_row = card.locator("tr", has_text="151件").first
            expect(figure_row).to_contain_text("✓")
            expect(page.locator("span.qa-engine")).to_have_text("抽取式（离线，逐字引用原文）")
            expect(page.get_by_test_id("stDownloadButton").filter(has_text="下载 JSON")).to_be_visible()
            expect(page.get_by_test_id("stExpander").filter(has_text="详细信息").first).to_be_visible()
            in_chinese(page)
            tall_shot(page, "06-summary")

            # 摘要 → 报告体检: each content the regulation asks for with the passage it rests on, the deadline
            page.get_by_role("tab", name="报告体检").click()
            page.get_by_role("combobox", name="报告").last.click()
            page.get_by_role(
                "option", name="达坂城区人民政府2024年度法治政府建设情况报告（dabancheng_2024.txt）"
            ).click()
            check = page.locator("div.qa-check")
            expect(check).to_contain_text("缺少的内容：第一责任人职责。")
            expect(check.locator("mark").first).to_contain_text("一、2024年法治政府建设主要举措和成效")
            expect(check).to_contain_text("写了不足，未写原因")
            expect(page.get_by_test_id("stDownloadButton").filter(has_text="体检表（Excel）")).to_be_visible()
            in_chinese(page)
            tall_shot(page, "06b-checkup")

            # 对比: five reports side by side; every cell whole at 1440 px (另有 cells wrap, never cut)
            page.get_by_test_id("stSidebarNav").get_by_text("对比").click()
            table = page.get_by_test_id("stTable").first
            expect(table).to_contain_text("9件（另有 83件）")
            expect(table.locator("th")).to_contain_text(["指标", "分组", "达坂城区（2024）"])
            others = table.locator("td", has_text="另有")
            assert others.count() >= 3
            assert cut_cells(page) == [], cut_cells(page)
            for cell in others.all():  # each 另有 cell inside the window, not scrolled off to the right
                box = cell.bounding_box()
                assert box and box["x"] + box["width"] <= WIDTH, (cell.inner_text(), box)
            sources = page.get_by_test_id("stExpander").filter(has_text="行政复议 收案").first
            sources.locator("summary").click()
            expect(sources.locator("mark.qa-quote").filter(has_text="151件")).to_be_visible()
            expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible()
            checkups = page.get_by_test_id("stTable").nth(1)  # 报告体检 as a column set over the same reports
            expect(checkups).to_contain_text("缺少的内容")
            expect(checkups.locator("tr", has_text="达坂城区")).to_contain_text("第一责任人职责")
            in_chinese(page)
            page.wait_for_timeout(500)  # let the chart draw before the picture
            tall_shot(page, "07-compare")
        except Exception:
            shot(page, "failure")
            raise
        finally:
            browser.close()


@pytest.mark.browser
def test_served_beyond_localhost_the_app_asks_for_sign_in_and_keeps_roles(
    fail_closed: Path, tmp_path: Path
) -> None:
    """Served to the network (bound to 0.0.0.0), sign-in is required with the default QA_AUTH=auto, for a
    connection over loopback too (the test reaches it on 127.0.0.1 only); a reader then sees no uploader and
    no 评测."""
    from playwright.sync_api import expect, sync_playwright

    from qa.team.auth import Users

    Users(fail_closed / "users.json").add("zhang", "reader", "zhang-password", "张三")
    with serve(fail_closed, tmp_path, FIXTURE_REPORTS[:1], address="0.0.0.0", host="127.0.0.1") as url, \
            sync_playwright() as playwright:  # fmt: skip
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url)
            expect(page.get_by_role("heading", name="登录 reportqa")).to_be_visible()
            expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "browser-08-sign-in.png"), full_page=True)
            page.get_by_label("用户名").fill("zhang")
            page.get_by_label("密码").fill("wrong-password")
            page.get_by_role("button", name="登录").click()
            expect(page.get_by_text("用户名或密码不正确。")).to_be_visible()
            page.get_by_label("密码").fill("zhang-password")
            page.get_by_role("button", name="登录").click()
            expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible()
            expect(page.get_by_test_id("stSidebar")).to_contain_text("当前用户：张三（读者）")
            nav = page.get_by_test_id("stSidebarNav")
            expect(nav).not_to_contain_text("评测")
            nav.get_by_text("文档库").click()
            expect(page.get_by_text("当前账号为只读")).to_be_visible()
            expect(page.locator("input[type=file]")).to_have_count(0)
            expect(page.get_by_test_id("stTable")).to_be_visible()  # the reader still sees the reports
            expect(page.get_by_test_id("stSidebar")).not_to_contain_text(
                "qa-data"
            )  # no server path for readers
            page.screenshot(path=str(ARTIFACTS / "browser-09-reader-library.png"), full_page=True)
        finally:
            browser.close()
