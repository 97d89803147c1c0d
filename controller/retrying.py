"""Retries for AWS throttling and eventual consistency, shared by the reconciler and the kind modules.

`controller.reconciler` wraps every handler verb with `aws_retry`; kinds use `aws_retry` (or `call`) around
single calls that AWS is known to refuse for a while after a related write (a role just created is not yet
assumable by Lambda; a queue name is blocked for 60 s after deletion), and `wait_for` to poll a condition
with a bounded deadline. Errors are classified by their AWS error code, duck-typed from ``.response`` so this
module does not import boto3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from controller.errors import TemporaryError

T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
        "ResourceConflictException",  # Lambda: an update is in progress
        "ResourceInUseException",
        "OperationAbortedException",  # CloudWatch Logs / S3: a conflicting operation
        "ConcurrentModificationException",
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "QueueDeletedRecently",
    }
)
# Codes that mean "a resource just written is not visible yet" when they follow a write we made.
PROPAGATION_MESSAGES = ("cannot be assumed", "role defined for the function", "does not exist")

MAX_ATTEMPTS = 6
MAX_DELAY_S = 90.0


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


@contextlib.contextmanager
def absent_ok(code: str = "ResourceNotFoundException") -> Iterator[None]:
    """Swallow the AWS error `code` (a resource already gone, or an API that does not know it); raise the rest."""
    try:
        yield
    except Exception as exc:
        if error_code(exc) != code:
            raise


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, TemporaryError):
        return True
    code = error_code(exc)
    if code in RETRYABLE_CODES:
        return True
    if code == "InvalidParameterValueException":
        return any(m in str(exc) for m in PROPAGATION_MESSAGES[:2])
    return False


def _reraise(state: RetryCallState) -> Any:
    outcome = state.outcome
    assert outcome is not None
    return outcome.result()


def aws_retry(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator: retry retryable AWS errors with jittered exponential backoff, then re-raise the last one."""
    return retry(
        retry=retry_if_exception(is_retryable),
        wait=wait_exponential_jitter(multiplier=0.2, max=10.0, jitter=0.2),
        stop=stop_after_attempt(MAX_ATTEMPTS) | stop_after_delay(MAX_DELAY_S),
        retry_error_callback=_reraise,
        reraise=True,
    )(fn)


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)`` under `aws_retry`."""
    return aws_retry(fn)(*args, **kwargs)


def wait_for(
    check: Callable[[], T | None], what: str, timeout_s: float = 60.0, resource: str = "?"
) -> T:
    """Poll ``check`` (jittered backoff) until it returns a value; `TemporaryError` after ``timeout_s``."""

    @retry(
        retry=retry_if_exception(lambda e: isinstance(e, _NotYet)),
        wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.1),
        stop=stop_after_delay(timeout_s),
        reraise=True,
    )
    def poll() -> T:
        value = check()
        if value is None:
            raise _NotYet
        return value

    try:
        return poll()
    except _NotYet:
        raise TemporaryError(resource, f"still waiting for {what} after {timeout_s:.0f}s") from None


class _NotYet(Exception):
    pass
