"""The browser site adapter: Playwright driving Chromium through the platform's UI (``HUNTAZE_ADAPTER=browser``).

Built by `scraper.adapters.registry`; `scraper.runner` opens one session per job attempt. A session is the
creator's pooled context and page when the creator's previous attempt ended well, else a fresh context
(`scraper.browser.BrowserManager.lease`) seeded with the creator's stored session state, so a creator logs in
once per worker, not per job; when the site sends the page to ``/login`` the session logs in through
the form (password from Secrets Manager, ``HUNTAZE_LOGIN_SECRET_ID``, JSON ``{"password": ...}``; never logged)
and stores the new state (for the ``MAX_STORED_SESSIONS`` most recently used creators: the map stays bounded).
Downloads use ``expect_download`` and are uploaded to S3 before the context closes.

Selectors are the stand-in's contract (see `standin.pages`). Playwright's errors become `scraper.errors` here:
its TimeoutError is `ActionTimeout`, a crashed page or browser is `BrowserCrashed`, a refused connection is
`TargetUnreachable`, and page status codes go through the same mapping as the HTTP adapter's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from playwright.async_api import BrowserContext, Page, Response
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from common.contract import Job
from scraper.adapters.base import (
    ActionOutput,
    AdapterContext,
    SiteSession,
    media_ids,
    profile_creator,
    sent_with_ref,
)
from scraper.adapters.status import raise_for_status
from scraper.browser import BrowserManager
from scraper.errors import (
    ActionTimeout,
    AuthRejected,
    BrowserCrashed,
    ScraperError,
    TargetClientError,
    TargetUnreachable,
)
from scraper.results import MediaSink
from scraper.secrets import json_field

log = logging.getLogger(__name__)
T = TypeVar("T")
StorageState = Any
MAX_STORED_SESSIONS = 1000  # creators whose logged-in state is kept; the least recently used is dropped
_CRASH_MARKERS = ("crash", "Target closed", "has been closed", "Browser closed", "disconnected")
PROFILE_FIELDS = ("profile-name", "profile-bio", "posts-count", "followers-count", "likes-count")
# One round trip for the five fields instead of one per field; a missing field reads as null.
PROFILE_JS = """names => Object.fromEntries(names.map(n => {
  const e = document.querySelector(`[data-testid=${n}]`); return [n, e ? e.textContent.trim() : null]; }))"""
_MESSAGES_JS = """els => els.map(e => ({id: e.dataset.messageId, sender: e.dataset.sender,
  sent_at: e.dataset.sentAt, client_ref: e.dataset.clientRef || null, text: e.textContent}))"""


def translate(exc: Exception, what: str) -> ScraperError:
    """A Playwright error as the scraper error the policy understands."""
    if isinstance(exc, ScraperError):
        return exc
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, PlaywrightTimeout):
        return ActionTimeout(f"{what}: {text}")
    if any(marker in text for marker in _CRASH_MARKERS):
        return BrowserCrashed(f"{what}: {text}")
    if "ERR_CONNECTION_REFUSED" in text or "ERR_CONNECTION_RESET" in text:
        return TargetUnreachable(f"{what}: {text}")
    error = ScraperError(f"{what}: {text}")
    error.ambiguous = True
    return error


async def guarded(what: str, step: Callable[[], Awaitable[T]]) -> T:
    try:
        return await step()
    except ScraperError:
        raise
    except (PlaywrightError, PlaywrightTimeout) as exc:
        raise translate(exc, what) from None


class BrowserSession:
    def __init__(self, adapter: BrowserAdapter, context: BrowserContext, page: Page, creator_id: str) -> None:
        self._adapter = adapter
        self._context = context
        self._page = page
        self._creator = creator_id

    async def _open(self, path: str) -> Response:
        """Navigate to a site path, logging in first if the site asks; raises on error statuses."""
        url = self._adapter.site_url + path
        response = await guarded(f"GET {path}", lambda: self._page.goto(url, wait_until="load"))
        if urlsplit(self._page.url).path == "/login":
            response = await self._login(path)
        if response is None:
            raise BrowserCrashed(f"GET {path}: the page gave no response")
        if response.status >= 400:  # reading a header is a round trip to the driver: only when it matters
            raise_for_status(response.status, await response.header_value("retry-after"), f"GET {path}")
        return response

    async def _login(self, next_path: str) -> Response | None:
        page = self._page
        if "next=" not in page.url:
            await guarded("GET /login", lambda: page.goto(
                f"{self._adapter.site_url}/login?next={quote(next_path, safe='')}", wait_until="load"))
        await guarded("fill login form", lambda: page.fill("input[name=username]", self._creator))
        await guarded("fill login form", lambda: page.fill("input[name=password]", self._adapter.password))

        async def submit() -> Response | None:
            async with page.expect_navigation(wait_until="load") as navigation:
                await page.click("#login-button")
            return await navigation.value

        response = await guarded("POST /login", submit)
        if response is not None and response.status == 401:
            raise AuthRejected(401, f"login as {self._creator} was refused: check the login secret")
        if response is not None and response.status < 400:
            self._adapter.remember(self._creator, await self._context.storage_state())
            log.info("logged in; session stored for reuse")
        return response

    async def scrape_profile(self, job: Job) -> ActionOutput:
        target = profile_creator(job)
        response = await self._open(f"/u/{quote(target)}")
        texts = await guarded("read profile", lambda: self._page.evaluate(PROFILE_JS, PROFILE_FIELDS))
        missing = [name for name in PROFILE_FIELDS if texts.get(name) is None]
        if missing:
            raise ScraperError(f"the profile page of {target} has no {', '.join(missing)}: the site's markup "
                               "changed; update the browser adapter's selectors")
        data = {"creator_id": target, "name": texts["profile-name"], "bio": texts["profile-bio"],
                "posts": int(texts["posts-count"]), "followers": int(texts["followers-count"]),
                "likes": int(texts["likes-count"])}
        return ActionOutput(response.status, data)

    async def _thread(self, job: Job) -> tuple[int, list[dict[str, Any]]]:
        response = await self._open(f"/inbox/{quote(job.user_id)}")
        messages = await guarded("read messages", lambda: self._page.eval_on_selector_all(
            "[data-testid=message]", _MESSAGES_JS))
        return response.status, list(messages)

    async def get_messages(self, job: Job) -> ActionOutput:
        status, messages = await self._thread(job)
        return ActionOutput(status, {"messages": messages})

    async def find_sent(self, job: Job, client_ref: str) -> ActionOutput | None:
        _, messages = await self._thread(job)
        return sent_with_ref(messages, client_ref)

    async def send_message(self, job: Job, client_ref: str) -> ActionOutput:
        page = self._page
        try:
            await self._open(f"/inbox/{quote(job.user_id)}?client_ref={quote(client_ref)}")
            await guarded("fill message", lambda: page.fill("textarea#message-input", job.message_content or ""))
        except ScraperError as error:
            error.ambiguous = False  # nothing was submitted yet
            raise
        await guarded("click send", lambda: page.click("button#send-button"))
        status = page.locator("[data-testid=send-status]")
        await guarded("wait for send status", lambda: page.wait_for_function(
            "() => ['sent', 'error'].includes(document.querySelector('[data-testid=send-status]').textContent)"))
        if (await status.text_content()) == "sent":
            message_id = await status.get_attribute("data-message-id")
            return ActionOutput(201, {"id": message_id, "client_ref": client_ref})
        code = int(await status.get_attribute("data-status") or "0")
        if code == 0:
            unanswered = TargetUnreachable("send: the page's request failed without an answer")
            unanswered.ambiguous = True
            raise unanswered
        raise_for_status(code, await status.get_attribute("data-retry-after"), "send")
        raise TargetClientError(code, "send: unexpected answer")

    async def download_media(self, job: Job, sink: MediaSink) -> ActionOutput:
        await self._open("/media")
        for media_id in media_ids(job):
            link = f'a[data-testid=media-link][data-media-id="{media_id}"]'
            if await guarded("find media", lambda link=link: self._page.locator(link).count()) == 0:  # type: ignore[misc]
                raise TargetClientError(404, f"media {media_id} is not listed for {self._creator}")

            async def fetch(link: str = link) -> tuple[bytes, str]:
                async with self._page.expect_download() as info:
                    await self._page.click(link)
                download = await info.value
                failure = await download.failure()
                if failure:
                    raise TargetUnreachable(f"download failed: {failure}")
                return Path(await download.path()).read_bytes(), download.suggested_filename

            data, filename = await guarded(f"download {media_id}", fetch)
            await sink.put(media_id, filename, data, "application/octet-stream")
        return ActionOutput(200, {"media": sink.stored})


class BrowserAdapter:
    name = "browser"

    def __init__(self, context: AdapterContext) -> None:
        self.settings = context.settings
        self.site_url = context.settings.site_url.rstrip("/")
        self._read_secret = context.read_secret
        self.manager = BrowserManager(context.settings)
        self.password = ""
        self._states: OrderedDict[str, StorageState] = OrderedDict()  # least recently used first

    async def start(self) -> None:
        async def launch() -> None:
            with contextlib.suppress(BrowserCrashed):  # reported by the health check; retried on first job
                await self.manager.start()

        raw, _ = await asyncio.gather(self._read_secret(self.settings.login_secret_id), launch())
        self.password = json_field(raw, "password", self.settings.login_secret_id)

    def remember(self, creator_id: str, state: StorageState) -> None:
        self._states[creator_id] = state
        self._states.move_to_end(creator_id)
        while len(self._states) > MAX_STORED_SESSIONS:  # a long-lived worker sees ever more creators
            self._states.popitem(last=False)

    @contextlib.asynccontextmanager
    async def session(self, creator_id: str, timeout_s: float) -> AsyncIterator[SiteSession]:
        def options() -> dict[str, Any]:  # for a new context only; a pooled one keeps its own login state
            fresh: dict[str, Any] = {"accept_downloads": True}
            if creator_id in self._states:
                self._states.move_to_end(creator_id)
                fresh["storage_state"] = self._states[creator_id]
            return fresh

        async with self.manager.lease(creator_id, options) as lease:
            # Playwright's own timeout fires just before the runner's, so the error says which step hung.
            lease.context.set_default_timeout(timeout_s * 950)
            lease.context.set_default_navigation_timeout(timeout_s * 950)
            try:
                yield BrowserSession(self, lease.context, lease.page, creator_id)
            except ScraperError as error:
                if lease.crashed and not isinstance(error, BrowserCrashed):
                    crashed = BrowserCrashed(f"{lease.crashed}: {error}")
                    crashed.ambiguous = error.ambiguous
                    raise crashed from None
                raise
            lease.keep = True  # the attempt ended well: the creator's next job reuses this context

    def problem(self) -> str | None:
        return self.manager.problem()

    async def end_run(self, creator_id: str) -> None:
        """Called by the worker when a creator's consecutive jobs are done: free its pooled context."""
        await self.manager.release_creator(creator_id)

    def warning(self) -> str | None:
        return self.manager.warning()

    def stats(self) -> dict[str, int]:
        """Browser counters for /health: launches, contexts opened, and leases that reused a pooled context."""
        return {"browser_launches": self.manager.launches, "contexts_opened": self.manager.opened,
                "contexts_reused": self.manager.reused}

    async def aclose(self) -> None:
        await self.manager.aclose()


def create(context: AdapterContext) -> BrowserAdapter:
    return BrowserAdapter(context)
