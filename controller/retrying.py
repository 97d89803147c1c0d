"""Bounded polling for kinds (`wait_for`), and the "already gone" helper (`absent_ok`).

The reconciler no longer retries whole verbs: a failed attempt is classified by `controller.errors.classify` and
requeued (ACK's model, see `controller.reconciler`). `aws_retry`/`call` remain only for kind modules that still
wrap single calls (being removed from the kinds; botocore's adaptive retries cover single calls); what they retry
is exactly what `classify` calls temporary. Error codes are duck-typed from ``.response``: no boto3 import here.
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

from controller.errors import TemporaryError, classify, error_code

T = TypeVar("T")
__all__ = ["absent_ok", "aws_retry", "call", "error_code", "is_retryable", "wait_for"]

MAX_ATTEMPTS = 6
MAX_DELAY_S = 90.0


@contextlib.contextmanager
def absent_ok(code: str = "ResourceNotFoundException") -> Iterator[None]:
    """Swallow the AWS error `code` (a resource already gone, or an API that does not know it); raise the rest."""
    try:
        yield
    except Exception as exc:
        if error_code(exc) != code:
            raise


def is_retryable(exc: BaseException) -> bool:
    return classify(exc).temporary


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
