"""Time budgets of a job: its own deadline, its message's visibility, and the shutdown budget.

`scraper.worker` owns one `Shutdown` and starts it on SIGTERM; `scraper.runner` builds a `Budget` per job and
runs the job's action phase under `Budget.scope()`, an ``asyncio.timeout`` that `Shutdown.begin` pulls in to the
shutdown deadline. Retry decisions (`scraper.policy`) ask `Budget.remaining()`, which is the least of the three
(minus a margin before the visibility ends), so no retry ladder can outlive the message or the shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from scraper.consumer import Received


@dataclass
class Shutdown:
    deadline: float | None = None  # monotonic
    _scopes: set[asyncio.Timeout] = field(default_factory=set)

    @property
    def started(self) -> bool:
        return self.deadline is not None

    def begin(self, budget_s: float) -> None:
        """Start the shutdown clock; every running job's scope now ends by the deadline at the latest."""
        if self.deadline is not None:
            return
        self.deadline = time.monotonic() + budget_s
        loop_deadline = asyncio.get_running_loop().time() + budget_s
        for scope in self._scopes:
            when = scope.when()
            if when is None or when > loop_deadline:
                scope.reschedule(loop_deadline)

    def register(self, scope: asyncio.Timeout) -> None:
        self._scopes.add(scope)

    def unregister(self, scope: asyncio.Timeout) -> None:
        self._scopes.discard(scope)


class Budget:
    def __init__(self, message: Received, job_deadline_s: float, margin_s: float, shutdown: Shutdown) -> None:
        self._message = message
        self._deadline = time.monotonic() + job_deadline_s
        self._margin_s = margin_s
        self._shutdown = shutdown

    def ends_at(self) -> float:
        ends = min(self._deadline, self._message.visible_until - self._margin_s)
        if self._shutdown.deadline is not None:
            ends = min(ends, self._shutdown.deadline)
        return ends

    def remaining(self) -> float:
        return self.ends_at() - time.monotonic()

    @contextlib.asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """Runs the block until the budget ends; raises TimeoutError if it does first."""
        loop = asyncio.get_running_loop()
        # Visibility is extended by the heartbeat while the job runs, so the scope uses the job deadline and
        # the shutdown deadline; each attempt is also capped by `remaining()` when it starts.
        ends = self._deadline if self._shutdown.deadline is None else min(self._deadline, self._shutdown.deadline)
        async with asyncio.timeout_at(loop.time() + (ends - time.monotonic())) as scope:
            self._shutdown.register(scope)
            try:
                yield
            finally:
                self._shutdown.unregister(scope)
