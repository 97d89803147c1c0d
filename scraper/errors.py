"""The scraper's error hierarchy: what a site adapter raises, and what the error policy decides from it.

Adapters translate whatever their transport raises (httpx, Playwright) into one of these, so the policy in
`scraper.policy` never looks at transport types. Each error names its seed error type
(``network | auth | rate_limit | validation | unknown``)::

    ScraperError
    ├── TargetRateLimited      429, carries Retry-After           rate_limit  -> wait Retry-After, feed breaker
    ├── TargetServerError      5xx                                network     -> retry 1/2/4 s, then release
    ├── TargetClientError      4xx other than 429                 validation  -> store failure, delete
    │   └── AuthRejected       401/403, or login refused          auth        -> store failure, delete
    ├── TargetUnreachable      connection refused/reset           network     -> retry like 5xx
    ├── ActionTimeout          a page or call did not finish      network     -> retry longer if it fits
    ├── BrowserCrashed         renderer or browser died           unknown     -> relaunch, retry once
    └── OutcomeUnknown         a send may or may not have landed  unknown     -> never resend blindly
"""

from __future__ import annotations

from common.contract import ErrorType


class ScraperError(Exception):
    """Base of every error an adapter raises. `error_type` is the seed's classification."""

    error_type: ErrorType = ErrorType.UNKNOWN
    status_code: int | None = None
    # True when a non-idempotent request may have reached the platform before the failure.
    ambiguous: bool = False


class TargetRateLimited(ScraperError):
    error_type = ErrorType.RATE_LIMIT
    status_code = 429

    def __init__(self, retry_after_s: float, detail: str = "") -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"target answered 429; retry after {retry_after_s:g}s {detail}".rstrip())


class TargetServerError(ScraperError):
    error_type = ErrorType.NETWORK

    def __init__(self, status_code: int, detail: str = "") -> None:
        self.status_code = status_code
        super().__init__(f"target answered {status_code}; retry later {detail}".rstrip())


class TargetClientError(ScraperError):
    error_type = ErrorType.VALIDATION

    def __init__(self, status_code: int, detail: str = "") -> None:
        self.status_code = status_code
        super().__init__(f"target refused the request with {status_code}; fix the job {detail}".rstrip())


class AuthRejected(TargetClientError):
    error_type = ErrorType.AUTH


class TargetUnreachable(ScraperError):
    error_type = ErrorType.NETWORK


class ActionTimeout(ScraperError):
    error_type = ErrorType.NETWORK
    ambiguous = True


class BrowserCrashed(ScraperError):
    error_type = ErrorType.UNKNOWN
    ambiguous = True


class OutcomeUnknown(ScraperError):
    """A non-idempotent action was interrupted and the platform cannot tell whether it landed."""

    error_type = ErrorType.UNKNOWN


class ConfigError(Exception):
    """The worker cannot start: the message says which setting or secret to fix."""
