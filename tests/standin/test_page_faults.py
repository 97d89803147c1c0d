"""Page-level faults in real Chromium: a page that crashes the renderer and a page that never loads."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from playwright.sync_api import BrowserContext, Error, Playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from standin import Faults
from standin.server import StandinServer
from standin.testing import chromium_pids, close_and_check_gone, launch_chromium, login, wait_until

pytestmark = pytest.mark.browser


def test_crash_creator_page_crashes_renderer_and_leaves_no_chromium(
    standin: StandinServer, playwright: Playwright
) -> None:
    already_running = chromium_pids()
    browser = launch_chromium(playwright)
    try:
        context = browser.new_context()
        page = context.new_page()
        login(page, standin.url, "crashy", standin.config.password)
        standin.set_faults(Faults(crash_creators=["crashy"]))
        with page.expect_event("crash", timeout=15_000):
            try:
                page.goto(f"{standin.url}/u/crashy", timeout=15_000)
            except Error as exc:  # goto may itself report the crash, depending on timing
                assert "crash" in str(exc).lower()
        healthy = context.new_page()
        healthy.goto(f"{standin.url}/u/other")
        assert healthy.text_content("[data-testid=profile-name]")
        api = httpx.get(f"{standin.url}/api/v1/creators/crashy/profile", headers={"X-API-Key": "standin-api-key"})
        assert api.status_code == 200
        spawned = chromium_pids() - already_running
        assert spawned
    finally:
        close_and_check_gone(browser, chromium_pids() - already_running)


@pytest.mark.parametrize("path", ["/u/crashy", "/inbox", "/inbox/fan-1", "/media"],
                         ids=["profile", "inbox", "thread", "media"])
def test_crash_creator_every_page_kind_crashes_its_renderer(
    path: str, standin: StandinServer, browser_context: BrowserContext
) -> None:
    page = browser_context.new_page()
    page.goto(f"{standin.url}/login?next=%2Fu%2Fother")
    page.fill("input[name=username]", "crashy")
    page.fill("input[name=password]", standin.config.password)
    with page.expect_navigation():
        page.click("#login-button")
    standin.set_faults(Faults(crash_creators=["crashy"]))
    with page.expect_event("crash", timeout=15_000), pytest.raises(Error, match="crash"):
        page.goto(f"{standin.url}{path}", timeout=15_000)


def test_hang_creator_page_times_out_while_server_answers_others(
    standin: StandinServer, browser_context: BrowserContext
) -> None:
    page = browser_context.new_page()
    login(page, standin.url, "hanger", standin.config.password)
    standin.set_faults(Faults(hang_creators=["hanger"]))
    with pytest.raises(PlaywrightTimeoutError):
        page.goto(f"{standin.url}/u/hanger", timeout=1_000, wait_until="load")
    assert standin.active_hangs == 1
    assert httpx.get(f"{standin.url}/login", timeout=5).status_code == 200
    other = browser_context.new_page()
    other.goto(f"{standin.url}/u/somebody-else", timeout=5_000)
    page.close()
    wait_until(lambda: standin.active_hangs == 0, 5.0, "the hanging response to end after the client left")


def test_hang_open_response_server_stops_promptly_without_leaking_threads() -> None:
    threads_before = set(threading.enumerate())
    server = StandinServer().start()
    with httpx.Client(base_url=server.url) as client:
        client.post("/login", data={"username": "hanger", "password": server.config.password})
        server.set_faults(Faults(hang_creators=["hanger"]))
        with client.stream("GET", "/inbox") as response:
            assert response.status_code == 200
            wait_until(lambda: server.active_hangs == 1, 5.0, "the page to hang")
            started = time.monotonic()
            server.stop()
            stop_s = time.monotonic() - started
            body = response.read()
    assert stop_s < 5.0  # generous: shutdown releases hangs instead of waiting for them
    assert body.endswith(b"</html>")
    assert set(threading.enumerate()) <= threads_before
