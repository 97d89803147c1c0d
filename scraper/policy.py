"""The error policy of one job's attempts (seed "Playwright Scraper Error Handling", as amended).

`scraper.runner` runs the attempts of a job in a tenacity loop whose retry, stop and wait come from a
`RetryPlan`. Per error kind:

- 5xx or refused connection: retry after 1, 2, 4 s (x ``retry_base_s``, plus up to 25% jitter), three retries
  at most, and only while the wait plus the next attempt's timeout fit the budget; then give up (release).
- browser or renderer crash: retry once at once (the browser adapter relaunches a dead browser); then give up.
- timeout: retry with twice the timeout while that still fits the budget; then give up. Each attempt's timeout
  is stretched under local CPU pressure (`scraper.overload`) and capped by the remaining budget.
- 429, 4xx, anything else: no retry here; the runner decides (Retry-After visibility, failure result, …).

The budget (`scraper.budget.Budget`) is the least of the job deadline, the message's remaining visibility and
the shutdown budget, so every retry ladder is bounded by all three.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import RetryCallState

from scraper.budget import Budget
from scraper.errors import ActionTimeout, BrowserCrashed, TargetServerError, TargetUnreachable

MAX_SERVER_RETRIES = 3
MAX_CRASH_RETRIES = 1
JITTER_RATIO = 0.25
BUDGET_EDGE_S = 0.25


@dataclass
class RetryPlan:
    budget: Budget
    timeout_s: float
    retry_base_s: float = 1.0
    stretch: Callable[[], float] = lambda: 1.0  # >1 under local CPU pressure (`scraper.overload`)
    server_failures: int = 0
    crashes: int = 0
    timeouts: int = 0
    log: list[str] = field(default_factory=list)
    _next_wait: float = 0.0

    def _decide(self, error: BaseException | None) -> bool:
        """Count `error` and decide whether another attempt may run; sets the wait before it."""
        self._next_wait = 0.0
        if isinstance(error, TargetServerError | TargetUnreachable) and not error.ambiguous:
            self.server_failures += 1
            if self.server_failures > MAX_SERVER_RETRIES:
                return False
            base = self.retry_base_s * 2 ** (self.server_failures - 1)
            self._next_wait = base + random.uniform(0, base * JITTER_RATIO)
            return self._next_wait + self.timeout_s <= self.budget.remaining()
        if isinstance(error, BrowserCrashed):
            self.crashes += 1
            return self.crashes <= MAX_CRASH_RETRIES and self.timeout_s <= self.budget.remaining()
        if isinstance(error, ActionTimeout):
            self.timeouts += 1
            longer = self.timeout_s * 2
            if longer > self.budget.remaining():
                return False
            self.timeout_s = longer
            return True
        return False

    def retry(self, state: RetryCallState) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        error = state.outcome.exception()
        decision = self._decide(error)
        verdict = f"retry with {self.timeout_s:g}s" if decision else "give up"
        self.log.append(f"{type(error).__name__}: {verdict}")
        return decision

    def wait(self, state: RetryCallState) -> float:
        return self._next_wait

    def attempt_timeout(self) -> float:
        """The next attempt's timeout: the ladder's step, stretched under local CPU pressure, never past what
        is left of the job's deadline, its message's visibility and the shutdown budget."""
        # Just inside the budget, so the attempt's own timeout (which names the step) fires before the budget's.
        return max(min(self.timeout_s * self.stretch(), self.budget.remaining() - BUDGET_EDGE_S), 0.0)
