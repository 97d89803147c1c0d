"""Pytest fixtures and Chromium helpers for tests that drive the stand-in platform.

`tests/standin/conftest.py` imports the fixtures from here, and any other test directory (the scraper's, the
demo's) can do the same, or the root conftest can list this module in `pytest_plugins`:

- `standin_server` (session): one `StandinServer` for the whole session.
- `standin` (per test): that server, reset before and after the test (no faults, messages, sessions or
  counters; hanging pages released). Tests that need their own config start a `StandinServer(config)`.
- `playwright` (session), `browser` (session): Chromium from `/usr/bin/chromium` launched headless with
  `CHROMIUM_ARGS`; at the end of the session every Chromium process it started must be gone.
- `browser_context` (per test): a fresh context, closed after the test.

A missing Chromium is a test failure that says what to install, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from standin.pages import RENDERER_CRASH_LAUNCH_ARGS
from standin.server import StandinServer

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_BASE_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
CHROMIUM_ARGS: tuple[str, ...] = CHROMIUM_BASE_ARGS + RENDERER_CRASH_LAUNCH_ARGS
PROCESS_EXIT_TIMEOUT_S = 10.0


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait for `predicate` to hold, checking every 20 ms; fail the test with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


def _parent_pids() -> dict[int, int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we listed /proc
            continue
        fields = text.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    return parents


def chromium_pids(root: int | None = None) -> set[int]:
    """Live (non-zombie) Chromium processes descending from `root` (default: this process)."""
    parents = _parent_pids()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = [root if root is not None else os.getpid()]
    while stack:
        for child in children.get(stack.pop(), []):
            stack.append(child)
            if _is_chromium(child):
                found.add(child)
    return found


def _is_chromium(pid: int) -> bool:
    try:
        return "chromium" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Debian Chromium with the project's launch flags; fails (not skips) when it is missing."""
    if not Path(CHROMIUM_PATH).exists():
        pytest.fail(f"{CHROMIUM_PATH} is missing: run `apt-get install chromium`", pytrace=False)
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=list(CHROMIUM_ARGS))


def close_and_check_gone(browser: Browser, pids: set[int]) -> None:
    """Close `browser` and fail unless every Chromium process in `pids` has exited."""
    browser.close()
    wait_until(lambda: not (pids & chromium_pids()), PROCESS_EXIT_TIMEOUT_S, f"Chromium processes {pids} to exit")


def login(page: Page, base_url: str, creator_id: str, password: str) -> None:
    """Log `creator_id` in through the real form; the page ends on the inbox (or on the error page)."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", creator_id)
    page.fill("input[name=password]", password)
    page.click("#login-button")
    page.wait_for_load_state("load")


@contextlib.contextmanager
def web_session(server: StandinServer, creator_id: str) -> Iterator[httpx.Client]:
    """An httpx client logged in as `creator_id` through `POST /login` (no browser; for request-level checks)."""
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        response = client.post("/login", data={"username": creator_id, "password": server.config.password})
        if response.status_code != 303:
            pytest.fail(f"login as {creator_id!r} answered {response.status_code}, expected 303")
        yield client


@pytest.fixture(scope="session")
def standin_server() -> Iterator[StandinServer]:
    with StandinServer() as server:
        yield server


@pytest.fixture
def standin(standin_server: StandinServer) -> Iterator[StandinServer]:
    """The session's stand-in server, reset to its start state before and after this test."""
    standin_server.reset()
    yield standin_server
    standin_server.reset()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the session; at teardown all of its processes must have exited."""
    already_running = chromium_pids()
    browser = launch_chromium(playwright)
    yield browser
    close_and_check_gone(browser, chromium_pids() - already_running)


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(accept_downloads=True)
    yield context
    context.close()
