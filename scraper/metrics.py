"""The seed's scraper metrics, batched to CloudWatch (namespace ``Huntaze/OnlyFans``).

Called by `scraper.runner` (one `record_job` per finished or released job, with its error class when it failed;
`record_status` per target answer)
and `scraper.worker` (breaker opens; `flush` on an interval and at shutdown). Values are aggregated in memory
and sent as one PutMetricData call per flush (statistic sets for durations), so a busy worker makes a few
CloudWatch calls a minute, not one per job. A failed flush is logged and its data kept for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.aws import client

log = logging.getLogger(__name__)

SUCCESS_RATE = "scraping_success_rate"
DURATION = "scraping_duration_ms"
COUNT_429 = "onlyfans_429_count"
COUNT_4XX = "onlyfans_4xx_count"
COUNT_5XX = "onlyfans_5xx_count"
BREAKER_OPENS = "circuit_breaker_open_count"
JOBS = "scraping_jobs_count"
# Failed jobs per error class (`common.contract.ErrorType`), dimensions Environment + ErrorType: with JOBS, the
# failure rate by class that `huntazectl status` shows (the success rate alone cannot say why jobs fail).
FAILURES = "scraping_failure_count"
ERROR_TYPE_DIMENSION = "ErrorType"


@dataclass
class _Window:
    counts: dict[str, float] = field(default_factory=dict)
    failures: dict[str, float] = field(default_factory=dict)  # error class -> failed jobs
    successes: int = 0
    finished: int = 0
    durations: list[float] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.counts or self.finished or self.durations or self.failures)


class Metrics:
    def __init__(self, namespace: str, dimensions: dict[str, str] | None = None) -> None:
        self.namespace = namespace
        self._dimensions = [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()]
        self._lock = threading.Lock()
        self._window = _Window()
        self.totals: dict[str, float] = {}

    def _count(self, name: str, value: float = 1.0) -> None:
        self._window.counts[name] = self._window.counts.get(name, 0.0) + value
        self.totals[name] = self.totals.get(name, 0.0) + value

    def record_job(self, *, success: bool, duration_ms: float, error_type: str = "") -> None:
        """A job reached a final outcome (stored result) or was given back to the queue; a failure counts
        under its error class (``unknown`` when none is given)."""
        with self._lock:
            self._window.finished += 1
            self._window.successes += int(success)
            self._window.durations.append(duration_ms)
            self._count(JOBS)
            if not success:
                kind = error_type or "unknown"
                self._window.failures[kind] = self._window.failures.get(kind, 0.0) + 1
                self.totals[f"{FAILURES}:{kind}"] = self.totals.get(f"{FAILURES}:{kind}", 0.0) + 1

    def record_status(self, status_code: int | None) -> None:
        if status_code is None:
            return
        with self._lock:
            if status_code == 429:
                self._count(COUNT_429)
            elif 500 <= status_code <= 599:
                self._count(COUNT_5XX)
            elif 400 <= status_code <= 499:
                self._count(COUNT_4XX)

    def record_breaker_open(self) -> None:
        with self._lock:
            self._count(BREAKER_OPENS)

    def _datums(self, window: _Window) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        base = {"Timestamp": now, "Dimensions": self._dimensions}
        datums = [{**base, "MetricName": n, "Value": v, "Unit": "Count"} for n, v in window.counts.items()]
        datums += [{"Timestamp": now, "MetricName": FAILURES, "Value": v, "Unit": "Count",
                    "Dimensions": [*self._dimensions, {"Name": ERROR_TYPE_DIMENSION, "Value": kind}]}
                   for kind, v in window.failures.items()]
        if window.finished:
            rate = 100.0 * window.successes / window.finished
            datums.append({**base, "MetricName": SUCCESS_RATE, "Value": rate, "Unit": "Percent"})
        if window.durations:
            stats = {
                "SampleCount": float(len(window.durations)),
                "Sum": float(sum(window.durations)),
                "Minimum": float(min(window.durations)),
                "Maximum": float(max(window.durations)),
            }
            datums.append({**base, "MetricName": DURATION, "StatisticValues": stats, "Unit": "Milliseconds"})
        return datums

    def flush_sync(self) -> int:
        """Send what accumulated; returns the number of datums sent (0 if nothing or on error)."""
        with self._lock:
            window, self._window = self._window, _Window()
        if window.empty():
            return 0
        datums = self._datums(window)
        try:
            for start in range(0, len(datums), 1000):
                client("cloudwatch").put_metric_data(
                    Namespace=self.namespace, MetricData=datums[start : start + 1000]
                )
        except Exception as exc:  # keep the data; CloudWatch being down must not stop the worker
            log.warning("metrics flush failed; will retry", extra={"error": str(exc)})
            self._merge_back(window)
            return 0
        return len(datums)

    def _merge_back(self, window: _Window) -> None:
        with self._lock:
            for name, value in window.counts.items():
                self._window.counts[name] = self._window.counts.get(name, 0.0) + value
            for kind, value in window.failures.items():
                self._window.failures[kind] = self._window.failures.get(kind, 0.0) + value
            self._window.finished += window.finished
            self._window.successes += window.successes
            self._window.durations.extend(window.durations)

    async def flush(self) -> int:
        return await asyncio.to_thread(self.flush_sync)
