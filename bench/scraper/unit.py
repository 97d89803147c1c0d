"""The benchmark's unit of work, as plain Playwright steps, for the bare and crawlee-python runners.

One unit = one creator's profile scrape + one send through the stand-in's JavaScript form, in one context:
the same two jobs the worker runs as a scrape_profile and a send_message message of that creator. The first
visit of a creator is bounced to ``/login`` and logs in through the form (as the worker does); its login state is
kept per creator and reused by later units (the worker keeps it in its pooled context and stored state).
Selectors and the profile read are the scraper's own (`scraper.adapters.browser`), so all tools read the same.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scraper.adapters.browser import PROFILE_FIELDS, PROFILE_JS
from scraper.settings import DEFAULT_CHROMIUM_ARGS

LAUNCH_OPTIONS: dict[str, Any] = {"executable_path": "/usr/bin/chromium", "headless": True,
                                  "chromium_sandbox": False, "args": list(DEFAULT_CHROMIUM_ARGS)}
PASSWORD = "standin-password"
FAN = "fan-1"


def creator_of(unit: int, creators: int) -> str:
    return f"bench{unit % creators}"


def unit_text(unit: int) -> str:
    return f"bench unit {unit}"


async def login_if_bounced(page: Any, creator: str) -> bool:
    if "/login" not in page.url:
        return False
    await page.fill("input[name=username]", creator)
    await page.fill("input[name=password]", PASSWORD)
    async with page.expect_navigation(wait_until="load"):
        await page.click("#login-button")
    return True


async def read_profile(page: Any, creator: str) -> dict[str, Any]:
    texts = await page.evaluate(PROFILE_JS, list(PROFILE_FIELDS))
    assert texts["profile-name"], f"no profile for {creator}: {texts}"
    return dict(texts)


async def send(page: Any, base: str, text: str, ref: str) -> str:
    await page.goto(f"{base}/inbox/{FAN}?client_ref={quote(ref)}", wait_until="load")
    await page.fill("textarea#message-input", text)
    await page.click("button#send-button")
    await page.wait_for_function(
        "() => ['sent', 'error'].includes(document.querySelector('[data-testid=send-status]').textContent)")
    status = page.locator("[data-testid=send-status]")
    assert await status.text_content() == "sent", await status.text_content()
    message_id = await status.get_attribute("data-message-id")  # the send's id, as the worker stores it
    assert message_id, "the send status has no message id"
    return message_id


async def run_unit(page: Any, base: str, unit: int, creators: int) -> bool:
    """Profile (after logging in if bounced) then send; True if it logged in."""
    creator = creator_of(unit, creators)
    await page.goto(f"{base}/u/{creator}", wait_until="load")
    logged_in = await login_if_bounced(page, creator)
    await read_profile(page, creator)
    await send(page, base, unit_text(unit), f"bench-{unit}")
    return logged_in


def stamp() -> float:
    return time.time()


def unit_args() -> argparse.Namespace:
    """The command line both runners take (bench_worker.py passes it)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--units", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--creators", type=int, default=6)
    return parser.parse_args()
