"""Platform answers as scraper errors: one mapping of HTTP status (and Retry-After) for every adapter.

Used by `scraper.adapters.http` (API responses) and `scraper.adapters.browser` (page and form statuses). Kept
apart from the HTTP adapter so the browser adapter does not import httpx (and its CLI) at start-up.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

from scraper.errors import AuthRejected, TargetClientError, TargetRateLimited, TargetServerError

DEFAULT_RETRY_AFTER_S = 5.0


def retry_after_seconds(value: str | None, default: float = DEFAULT_RETRY_AFTER_S) -> float:
    """Retry-After as seconds: delta-seconds or an HTTP date; `default` when absent or unreadable."""
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max((moment - datetime.now(moment.tzinfo)).total_seconds(), 0.0)


def raise_for_status(status: int, retry_after: str | None, what: str) -> None:
    if status == 429:
        raise TargetRateLimited(retry_after_seconds(retry_after), what)
    if status >= 500:
        raise TargetServerError(status, what)
    if status in (401, 403):
        raise AuthRejected(status, what)
    if status >= 400:
        raise TargetClientError(status, what)
