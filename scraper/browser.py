"""Chromium lifecycle for the browser adapter (ARCHITECTURE.md decision 10).

Used by `scraper.adapters.browser`. One browser per worker; every job attempt gets a fresh context from
`BrowserManager.context()` (the adapter passes the creator's stored session state in). The manager:

- launches Debian's Chromium (``HUNTAZE_CHROMIUM_PATH``) through Playwright with the project's flags;
- recycles the browser after ``HUNTAZE_BROWSER_RECYCLE_JOBS`` contexts, or when the cgroup's memory use
  (``memory.current / memory.max`` under ``HUNTAZE_CGROUP_DIR``; cgroup v2, not psutil's host totals) passes
  ``HUNTAZE_MEMORY_THRESHOLD_RATIO``: new contexts wait until the running ones close, then a new browser starts;
- relaunches when the browser disconnected (crashed or killed);
- records the last launch error so the health check can report "browser cannot launch".

Closing a browser through Playwright ends its process tree; the Playwright driver does the same if this
process dies, so no Chromium outlives the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

from scraper.errors import BrowserCrashed
from scraper.settings import ScraperSettings

log = logging.getLogger(__name__)
CLOSE_TIMEOUT_S = 10.0


class MemoryProbe:
    """cgroup v2 memory use of this container: ``memory.current`` over ``memory.max`` (or a configured limit)."""

    def __init__(self, cgroup_dir: str, limit_bytes: int = 0) -> None:
        self.dir = Path(cgroup_dir)
        self.limit_bytes = limit_bytes

    def _read(self, name: str) -> str | None:
        try:
            return (self.dir / name).read_text().strip()
        except OSError:
            return None

    def ratio(self) -> float | None:
        """Used fraction of the limit, or None when the cgroup files are absent or there is no limit."""
        current = self._read("memory.current")
        if current is None or not current.isdigit():
            return None
        limit_text = self._read("memory.max")
        limit = int(limit_text) if limit_text and limit_text.isdigit() else self.limit_bytes
        if limit <= 0:
            return None
        return int(current) / limit


class BrowserManager:
    def __init__(self, settings: ScraperSettings, probe: MemoryProbe | None = None) -> None:
        self.settings = settings
        self.probe = probe or MemoryProbe(settings.cgroup_dir, settings.memory_limit_bytes)
        self.launches = 0
        self.recycles: list[str] = []
        self.jobs_since_launch = 0
        self.last_launch_error: str | None = None
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._active = 0
        self._recycle_reason: str | None = None
        self._idle = asyncio.Condition()
        self._launch_lock = asyncio.Lock()

    @property
    def browser(self) -> Browser | None:
        return self._browser

    async def start(self) -> None:
        self._playwright = await async_playwright().start()
        await self._launch()

    async def _launch(self) -> None:
        if self._playwright is None:
            raise BrowserCrashed("the browser manager was not started")
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=self.settings.chromium_path,
                headless=self.settings.headless,
                args=self.settings.chromium_args(),
            )
        except Exception as exc:
            self.last_launch_error = f"browser cannot launch from {self.settings.chromium_path}: {exc}"[:500]
            log.error("browser launch failed", extra={"error": self.last_launch_error})
            raise BrowserCrashed(self.last_launch_error) from None
        browser.on("disconnected", lambda _: log.warning("browser disconnected"))
        self._browser = browser
        self.launches += 1
        self.jobs_since_launch = 0
        self.last_launch_error = None
        log.info("browser launched", extra={"launches": self.launches, "version": browser.version})

    async def _close_browser(self) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT_S)

    async def _ready(self) -> Browser:
        """A connected browser, after any pending recycle has drained the running contexts."""
        async with self._idle:
            await self._idle.wait_for(lambda: self._recycle_reason is None or self._active == 0)
            async with self._launch_lock:
                if self._recycle_reason is not None:
                    self.recycles.append(self._recycle_reason)
                    log.info("recycling the browser", extra={"reason": self._recycle_reason})
                    self._recycle_reason = None
                    await self._close_browser()
                if self._browser is None or not self._browser.is_connected():
                    await self._close_browser()
                    await self._launch()
                assert self._browser is not None
                self._active += 1
                return self._browser

    def _check_recycle(self) -> None:
        if self._recycle_reason is not None:
            return
        if self.jobs_since_launch >= self.settings.browser_recycle_jobs:
            self._recycle_reason = f"{self.jobs_since_launch} jobs since launch"
            return
        ratio = self.probe.ratio()
        if ratio is not None and ratio >= self.settings.memory_threshold_ratio:
            self._recycle_reason = f"cgroup memory at {ratio:.0%}"

    @contextlib.asynccontextmanager
    async def context(self, **options: Any) -> AsyncIterator[BrowserContext]:
        browser = await self._ready()
        try:
            try:
                context = await browser.new_context(**options)
            except Exception as exc:
                raise BrowserCrashed(f"cannot open a browser context: {exc}") from None
            try:
                yield context
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(context.close(), CLOSE_TIMEOUT_S)
        finally:
            async with self._idle:
                self._active -= 1
                self.jobs_since_launch += 1
                self._check_recycle()
                self._idle.notify_all()

    def problem(self) -> str | None:
        if self.last_launch_error is not None:
            return self.last_launch_error
        if self._playwright is None:
            return "browser not started"
        return None

    async def aclose(self) -> None:
        await self._close_browser()
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
