"""Chromium lifecycle for the browser adapter (ARCHITECTURE.md decision 10).

Used by `scraper.adapters.browser`. One browser per worker. `BrowserManager.lease(creator)` hands a job attempt
a (context, page) pair of that creator:

- **Reuse.** After an attempt that ended well, the pair goes back to a pool (``HUNTAZE_CONTEXT_POOL_SIZE``,
  one per creator, least recently used closed first, closed after ``POOL_IDLE_S`` unused), so a creator's
  consecutive jobs share one context (its login state, one renderer) as a bare Playwright script would. Contexts
  are never shared between creators. After a failure or a crash the pair is closed and the next attempt starts
  fresh.
- **Crashes are crashes.** The page's ``crash`` event and the browser's ``disconnected`` event close the page at
  once, so the attempt's pending Playwright call fails within a second or two (`scraper.errors.BrowserCrashed`),
  never waiting for its timeout.
- **Minimal environment.** Chromium renders third-party pages, so it is launched with only the variables it
  needs (`browser_environment`): no REDIS_URL, no AWS credentials, no HUNTAZE_* settings.
- **Recycling.** After ``HUNTAZE_BROWSER_RECYCLE_JOBS`` attempts, or when the cgroup's memory use (``memory.current
  / memory.max`` under ``HUNTAZE_CGROUP_DIR``; cgroup v2, not psutil's host totals) passes
  ``HUNTAZE_MEMORY_THRESHOLD_RATIO``, new leases wait until the running ones end, then a new browser starts.
  If memory is still above the threshold after a memory recycle, relaunching again would not help: the manager
  backs off (the next memory recycle waits 10, then 20, 40... attempts) and reports it (`warning()`, shown on
  /health) instead of relaunching on every job.
- Relaunches when the browser disconnected (crashed or killed); records the last launch error so the health
  check can report "browser cannot launch".

Closing a browser through Playwright ends its process tree; the Playwright driver does the same if this
process dies, so no Chromium outlives the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

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


# What Chromium inherits from the worker's environment: enough to run, nothing that is a credential.
BROWSER_ENV_ALLOWED = ("PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "DISPLAY",
                       "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "FONTCONFIG_PATH", "FONTCONFIG_FILE")
MEMORY_BACKOFF_JOBS = 10
# A pooled context unused this long is closed: a creator's consecutive jobs come back within moments (its group
# keeps its slot), so a longer idle context only holds a renderer's memory.
POOL_IDLE_S = 5.0


def browser_environment(source: Mapping[str, str]) -> dict[str, str | float | bool]:
    """The environment Chromium is launched with: the allowed names only, so REDIS_URL, AWS_* credentials and
    HUNTAZE_* settings never reach a process that renders third-party pages."""
    return {name: source[name] for name in BROWSER_ENV_ALLOWED if name in source}


@dataclass
class Lease:
    """One creator's context and page, lent to one attempt; `keep` says whether it may be reused."""

    creator_id: str
    context: BrowserContext
    page: Page
    browser: Browser
    crashed: str = ""
    keep: bool = False
    _closing: asyncio.Future[None] | None = None
    _expiry: asyncio.TimerHandle | None = None
    _expiring: asyncio.Task[None] | None = None

    def expire_after(self, seconds: float, expire: Callable[[Lease], Awaitable[None]]) -> None:
        def fire() -> None:
            self._expiring = asyncio.ensure_future(expire(self))

        self._expiry = asyncio.get_running_loop().call_later(seconds, fire)

    def cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
    _listeners: list[tuple[Any, str, Callable[..., Any]]] = field(default_factory=list)

    def watch(self) -> None:
        """Close the page as soon as its renderer crashes or the browser disconnects, so that the attempt's
        pending call fails at once instead of waiting for its timeout."""
        def crashed(reason: str) -> Callable[..., None]:
            def handler(*_: Any) -> None:
                if not self.crashed:
                    self.crashed = reason
                    log.warning("browser crash detected", extra={"reason": reason})
                    self._closing = asyncio.ensure_future(_quietly(self.page.close()))
            return handler

        watched: tuple[tuple[Any, str, str], ...] = (
            (self.page, "crash", "the page's renderer crashed"),
            (self.browser, "disconnected", "the browser disconnected"))
        for emitter, event, reason in watched:
            handler = crashed(reason)
            emitter.on(event, handler)
            self._listeners.append((emitter, event, handler))

    def unwatch(self) -> None:
        for emitter, event, handler in self._listeners:
            with contextlib.suppress(Exception):
                emitter.remove_listener(event, handler)
        self._listeners.clear()


async def _quietly(step: Awaitable[Any]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(step, CLOSE_TIMEOUT_S)


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
        self._pool: OrderedDict[str, Lease] = OrderedDict()  # idle leases by creator, least recently used first
        pool = settings.context_pool_size
        self.pool_size = settings.concurrency if pool is None else pool
        self.reused = 0
        self.opened = 0
        self._memory_backoff_jobs = 0  # after a memory recycle that did not help: attempts to wait before the next
        self._memory_check_at = 0
        self._memory_relaunched = False
        self.memory_warning: str | None = None

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
                env=browser_environment(os.environ),
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
        for pooled in self._pool.values():
            pooled.cancel_expiry()
        self._pool.clear()  # closing the browser closes its contexts
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
        self._check_memory()

    def _check_memory(self) -> None:
        if self.jobs_since_launch < self._memory_check_at:
            return
        ratio = self.probe.ratio()
        high = ratio is not None and ratio >= self.settings.memory_threshold_ratio
        if self._memory_relaunched:  # the first check after a memory recycle: did it help?
            self._memory_relaunched = False
            if high:
                # Relaunching did not bring memory down: something else holds it. Back off instead of relaunching
                # on every job, and say so on /health.
                self._memory_backoff_jobs = max(self._memory_backoff_jobs * 2, MEMORY_BACKOFF_JOBS)
                self._memory_check_at = self.jobs_since_launch + self._memory_backoff_jobs
                self.memory_warning = (f"cgroup memory still at {ratio:.0%} after a browser recycle; next memory "
                                       f"check in {self._memory_backoff_jobs} jobs")
                log.warning("memory stays high after a recycle; backing off",
                            extra={"ratio": round(ratio or 0, 3), "jobs": self._memory_backoff_jobs})
            else:
                self._memory_backoff_jobs, self.memory_warning = 0, None
            return
        if high:
            self._recycle_reason = f"cgroup memory at {ratio:.0%}"
            self._memory_relaunched = True
            self._memory_check_at = 0

    async def _open(self, creator_id: str, browser: Browser, options: dict[str, Any]) -> Lease:
        pooled = self._pool.pop(creator_id, None)
        if pooled is not None:
            pooled.cancel_expiry()
            if pooled.browser is browser and not pooled.page.is_closed():
                self.reused += 1
                return pooled
            await _quietly(pooled.context.close())
        try:
            context = await browser.new_context(**options)
            page = await context.new_page()
        except Exception as exc:
            raise BrowserCrashed(f"cannot open a browser context: {exc}") from None
        self.opened += 1
        return Lease(creator_id, context, page, browser)

    async def release_creator(self, creator_id: str) -> None:
        """The creator's run of consecutive jobs is over (its group's batch is done): close its pooled context now
        instead of keeping a renderer for a next job that is not coming soon."""
        pooled = self._pool.pop(creator_id, None)
        if pooled is not None:
            pooled.cancel_expiry()
            await _quietly(pooled.context.close())

    async def _expire(self, lease: Lease) -> None:
        """A pooled context idle for POOL_IDLE_S: its creator's run of jobs is over; free its renderer."""
        if self._pool.get(lease.creator_id) is lease:
            del self._pool[lease.creator_id]
            await _quietly(lease.context.close())

    async def _return(self, lease: Lease) -> None:
        if not lease.keep or lease.crashed or self.pool_size == 0 \
                or self._recycle_reason is not None or lease.browser is not self._browser or lease.page.is_closed():
            await _quietly(lease.context.close())
            return
        self._pool[lease.creator_id] = lease
        lease.expire_after(POOL_IDLE_S, self._expire)
        while len(self._pool) > self.pool_size:
            _, oldest = self._pool.popitem(last=False)
            oldest.cancel_expiry()
            await _quietly(oldest.context.close())

    @contextlib.asynccontextmanager
    async def lease(self, creator_id: str, options: Callable[[], dict[str, Any]]) -> AsyncIterator[Lease]:
        """The creator's pooled (context, page), or a new one opened with `options()`. Set ``lease.keep`` when
        the attempt ended well, so the next job of this creator reuses it; else it is closed."""
        browser = await self._ready()
        try:
            lease = await self._open(creator_id, browser, options())
            lease.watch()
            try:
                yield lease
            finally:
                lease.unwatch()
                await self._return(lease)
        finally:
            async with self._idle:
                self._active -= 1
                self.jobs_since_launch += 1
                self._check_recycle()
                self._idle.notify_all()

    def warning(self) -> str | None:
        """Something on-call should know that does not make the task unhealthy (shown on /health)."""
        return self.memory_warning

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
