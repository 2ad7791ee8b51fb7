"""Sign-in against a real `streamlit run app.py` and a real headless Chromium, over loopback only: a server
open to the network asks every connection to sign in (a forwarder on this machine presenting
Host: localhost included); a proxy header is never local; failed sign-ins stay paused across reloads and a
restart; a signed-in user stays signed in across reloads, deep links and new tabs until signing out; a
reader's deep link to a restricted page gets a Chinese message, not the page."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CORPUS
from test_browser import ARTIFACTS, CHROMIUM_ARGS, FIXTURE_REPORTS, WIDTH, chromium_path, serve

pytestmark = pytest.mark.browser
SIGN_IN = "登录 reportqa"


@contextlib.contextmanager
def forwarder(target_port: int) -> Iterator[int]:
    """A plain TCP forwarder on 127.0.0.1 (as `ssh -L` or socat would be) to the app's port; it adds no header."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@contextlib.contextmanager
def browser() -> Iterator:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(context):
    page = context.new_page()
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    page.set_default_timeout(30_000)
    return page


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def sign_in(page, name: str, password: str) -> None:
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def _static_fonts() -> list[str]:
    """Streamlit's bundled font files (the page loads them from /static/media/ before anyone signs in)."""
    import streamlit

    folder = Path(streamlit.__file__).parent / "static" / "static" / "media"
    return sorted(p.name for p in folder.glob("*.woff2"))


def session_cookie(context, page) -> list[dict]:
    """The sign-in cookie, once the page has posted its ticket and the server answered (up to 10 s)."""
    for _ in range(100):
        cookies = [c for c in context.cookies() if c["name"] == "reportqa_session"]
        if cookies:
            return cookies
        page.wait_for_timeout(100)
    raise AssertionError("the page got no sign-in cookie")


def add_users(data_dir: Path, **roles: str) -> None:
    from qa.team.auth import Users

    users = Users(data_dir / "users.json")
    for name, role in roles.items():
        users.add(name, role, f"{name}-password")


def test_a_server_open_to_the_network_asks_a_forwarded_localhost_to_sign_in(
    fail_closed: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    add_users(fail_closed, zhang="reader")
    with serve(fail_closed, tmp_path, FIXTURE_REPORTS[:1], address="0.0.0.0", host="localhost") as url, \
            forwarder(port_of(url)) as forwarded, browser() as chromium:  # fmt: skip
        page = new_page(chromium.new_context())
        for address in (url, f"http://localhost:{forwarded}", f"http://127.0.0.1:{forwarded}"):
            page.goto(
                address
            )  # Host: localhost… and a loopback peer, but the server listens on every address
            expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
            expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)
            expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
        expect(page.get_by_label("用户名")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "signin-01-forwarded-localhost.png"), full_page=True)


def test_a_request_with_a_proxy_header_is_never_local(fail_closed: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with serve(fail_closed, tmp_path, FIXTURE_REPORTS[:1], address="127.0.0.1") as url, browser() as chromium:
        local = new_page(chromium.new_context())
        local.goto(url)  # this machine's own browser: no sign-in
        expect(local.get_by_test_id("stChatInputTextArea")).to_be_visible()
        for header in (
            {"X-Forwarded-For": "127.0.0.1"},
            {"Forwarded": "for=127.0.0.1"},
            {"X-Real-IP": "::1"},
        ):
            page = new_page(chromium.new_context(extra_http_headers=header))
            page.goto(url)
            expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
            expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)


def test_failed_sign_ins_stay_paused_across_reloads_and_a_restart(fail_closed: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    add_users(fail_closed, zhang="editor")
    with browser() as chromium:
        with serve(fail_closed, tmp_path, FIXTURE_REPORTS[:1], address="0.0.0.0") as url:
            page = new_page(chromium.new_context())
            page.goto(url)
            for attempt in range(5):
                if attempt in (2, 4):
                    page.reload()  # F5 between tries changes nothing
                sign_in(page, "zhang", f"wrong-{attempt}")
                expect(
                    page.get_by_text("之后再试" if attempt == 4 else "用户名或密码不正确。")
                ).to_be_visible()
            page.reload()
            sign_in(page, "zhang", "zhang-password")  # the right password waits the pause out too
            expect(page.get_by_text("账号 zhang 已暂停登录")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "signin-02-paused.png"), full_page=True)
        with serve(fail_closed, tmp_path, (), address="0.0.0.0") as url:  # the server restarts
            page = new_page(chromium.new_context())
            page.goto(url)
            sign_in(page, "zhang", "zhang-password")
            expect(page.get_by_text("账号 zhang 已暂停登录")).to_be_visible()
            expect(page.get_by_test_id("stChatInputTextArea")).to_have_count(0)
    audit = (fail_closed / "audit.jsonl").read_text(encoding="utf-8")
    assert audit.count('"sign-in-failed"') == 5 and "from 127.0.0.1" in audit


def test_a_signed_in_user_stays_signed_in_across_reloads_deep_links_and_tabs(
    fail_closed: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    add_users(fail_closed, li="editor")
    with serve(fail_closed, tmp_path, FIXTURE_REPORTS[:1], address="0.0.0.0") as url, browser() as chromium:
        context = chromium.new_context()
        page = new_page(context)
        page.goto(f"{url}/summary")  # a link to a page, before signing in
        expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)  # no menu beside the sign-in form
        sign_in(page, "li", "li-password")
        expect(page.get_by_role("heading", name="摘要")).to_be_visible()  # the page the link named
        expect(page.get_by_test_id("stSidebar")).to_contain_text("当前用户：li（编辑）")
        cookies = session_cookie(context, page)
        [cookie] = cookies
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and "li-password" not in cookie["value"]
        assert page.evaluate("document.cookie").find("reportqa_session") == -1  # no script can read it
        page.reload()
        expect(page.get_by_role("heading", name="摘要")).to_be_visible()  # F5: the same page, still signed in
        page.goto(url)
        expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible()
        expect(page.get_by_test_id("stSidebar")).to_contain_text("当前用户：li（编辑）")
        page.goto(f"{url}/library")  # a deep link typed into the address bar
        expect(page.locator("input[type=file]")).to_have_count(1)  # the editor's uploader, no sign-in
        data = (CORPUS / "rongjiang_2023.txt").read_bytes()  # the upload endpoint lets an editor's session in
        page.locator("input[type=file]").set_input_files(
            files=[{"name": "蓉江新区报告.txt", "mimeType": "text/plain", "buffer": data}]
        )
        page.get_by_role("button", name="导入").click()
        expect(page.get_by_test_id("stAlert").filter(has_text="新增：蓉江新区报告.txt")).to_be_visible()
        other = new_page(context)  # a new tab
        other.goto(f"{url}/summary")
        expect(other.get_by_test_id("stSidebar")).to_contain_text("当前用户：li（编辑）")
        page.screenshot(path=str(ARTIFACTS / "signin-03-after-reload.png"), full_page=True)
        page.get_by_role("button", name="退出登录").click()
        expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
        other.reload()  # the session ended on the server: every tab signs in again
        expect(other.get_by_role("heading", name=SIGN_IN)).to_be_visible()
        fresh = new_page(chromium.new_context(storage_state={"cookies": cookies, "origins": []}))
        fresh.goto(url)  # the old cookie, replayed, opens nothing
        expect(fresh.get_by_role("heading", name=SIGN_IN)).to_be_visible()


def test_a_readers_deep_links_to_restricted_pages_get_a_message(fail_closed: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    add_users(fail_closed, zhang="reader")
    with serve(fail_closed, tmp_path, FIXTURE_REPORTS[:1], address="0.0.0.0") as url, browser() as chromium:
        page = new_page(chromium.new_context())
        page.goto(url)
        sign_in(page, "zhang", "zhang-password")
        expect(page.get_by_test_id("stSidebar")).to_contain_text("当前用户：zhang（读者）")
        assert session_cookie(page.context, page)  # before leaving the page that gets it
        page.goto(f"{url}/eval")
        expect(page.get_by_text("评测需要管理员权限。")).to_be_visible()
        expect(page.get_by_role("button", name="运行评测")).to_have_count(0)
        expect(page.get_by_test_id("stSidebarNav")).not_to_contain_text("评测")
        page.screenshot(path=str(ARTIFACTS / "signin-04-reader-eval.png"), full_page=True)
        page.goto(f"{url}/library")
        expect(page.get_by_text("当前账号为只读")).to_be_visible()
        expect(page.locator("input[type=file]")).to_have_count(0)
        expect(page.get_by_role("button", name="删除")).to_have_count(0)
        # below the pages: Streamlit's own endpoints check the role too
        assert page.request.get(f"{url}/media/none.bin").status == 404  # a reader may download (none here)
        upload = page.request.put(
            f"{url}/_stcore/upload_file/s/f",
            multipart={"file": {"name": "x.txt", "mimeType": "text/plain", "buffer": b"x"}},
        )
        assert upload.status == 403  # a reader may not upload, whatever the page shows
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(f"{url}/media/none.bin", timeout=10)
        assert anonymous.value.code == 403  # no session, no download
        fonts = re.findall(
            r"/static/media/[\w.-]+\.woff2", urllib.request.urlopen(f"{url}/", timeout=10).read().decode()
        )
        fonts = fonts or [f"/static/media/{name}" for name in _static_fonts()]
        with urllib.request.urlopen(
            f"{url}{fonts[0]}", timeout=10
        ) as font:  # no session: the page still has its fonts
            assert font.status == 200 and font.read(4) == b"wOF2"


def test_only_this_machine_downloads_without_a_session(fail_closed: Path, tmp_path: Path) -> None:
    with serve(fail_closed, tmp_path, (), address="127.0.0.1") as url:
        with pytest.raises(urllib.error.HTTPError) as local:
            urllib.request.urlopen(f"{url}/media/none.bin", timeout=10)
        assert local.value.code == 404  # through to Streamlit: nothing by that name
        request = urllib.request.Request(f"{url}/media/none.bin", headers={"X-Forwarded-For": "127.0.0.1"})
        with pytest.raises(urllib.error.HTTPError) as proxied:
            urllib.request.urlopen(request, timeout=10)
        assert proxied.value.code == 403
