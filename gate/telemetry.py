"""Logs and metrics of the gate (Powertools Logger and EMF Metrics), used by `gate.handler` and `gate.forwarder`.

One JSON log line per decision; its message keeps the seed's wording so the seed's Logs Insights query works
unchanged (``parse @message /allowed: (?<allowed>\\w+), retryAfter: (?<retry>\\d+), remainingTokens:
(?<tokens>\\d+)/``): all three values are printed as plain integers / booleans. The same line ends with
``reason: ...`` (parse ``/reason: (?<reason>\\w+)/``): when the breaker is open or Redis is unreachable, the
line says so rather than passing for a rate-limit decision.

Metrics go to stdout in CloudWatch Embedded Metric Format, namespace ``Huntaze/Gate``, once per invocation:
``rate_limit_allowed_count`` and ``rate_limit_rejected_count`` (the seed's), plus ``gate_deferred_count``
(every deferred copy queued: throttled, breaker open or Redis down), ``gate_breaker_deferred_count``,
``gate_invalid_count`` (dead-lettered), ``gate_duplicate_count`` and ``gate_errors_count`` (records reported
as batch item failures, and Redis outages).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "huntaze-gate"
NAMESPACE = "Huntaze/Gate"
ALLOWED = "rate_limit_allowed_count"
REJECTED = "rate_limit_rejected_count"
DEFERRED = "gate_deferred_count"
BREAKER = "gate_breaker_deferred_count"
INVALID = "gate_invalid_count"
DUPLICATE = "gate_duplicate_count"
ERRORS = "gate_errors_count"
ALL_METRICS = (ALLOWED, REJECTED, DEFERRED, BREAKER, INVALID, DUPLICATE, ERRORS)

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def decision_message(allowed: bool, retry_after: int, remaining: int, reason: str) -> str:
    """The seed's log wording, then the true reason in the same line (``reason: breaker_open``,
    ``reason: redis_unreachable``, ``reason: rate_limited``, ...): integers only, so the seed's ``\\d+`` patterns
    still match, and a reader of the line alone knows a deferral was not the rate limit."""
    return (
        f"Token bucket result allowed: {'true' if allowed else 'false'}, "
        f"retryAfter: {int(retry_after)}, remainingTokens: {max(0, int(remaining))}, reason: {reason}"
    )


def log_decision(allowed: bool, retry_after: int, remaining: int, reason: str, **fields: Any) -> None:
    logger.info(decision_message(allowed, retry_after, remaining, reason), extra={"reason": reason, **fields})


def publish(counts: Counter[str]) -> None:
    """Emit this invocation's counts (zeros included, so alarms see data, not gaps) as one EMF blob."""
    for name in ALL_METRICS:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts.get(name, 0))
    metrics.flush_metrics()
