"""Errors of the controller, one small tree, and the one classification of AWS failures. Each says what to do next.

    HuntazeCtlError                 a person can fix it; printed as one line, exit 2
    ├── SpecError                   a manifest is wrong (file:line: field: problem); no AWS call was made
    ├── ReplacementRefused          an immutable field changed; rerun with --allow-replace KIND/NAME
    ├── LockHeld                    another writer holds the stack lock (names the holder and since when)
    ├── LeaseLost                   this process no longer holds the stack lock: it must not write
    └── ReconcileError              AWS refused or failed; carries the resource and whether retrying may help
        ├── TemporaryError          requeue after `delay` seconds (throttling, eventual consistency, "not yet")
        └── PermanentError          (= TerminalError) not retried until the spec or the live resource changes

`classify(exc)` turns *any* exception a kind verb raises into one `Verdict`: TEMPORARY (with the delay to requeue
after), TERMINAL, or NOT_FOUND. The operator loop (`controller.operator`) requeues temporary errors with
per-resource exponential backoff and parks terminal ones; a kind never retries a whole verb itself, it raises
(or lets botocore's error through) and the next attempt reads and diffs again. botocore's own retries (adaptive
mode, `common.aws`) stay for single calls. Kinds may raise `TemporaryError(resource, msg, delay=...)` for a "not
yet" they detect themselves, and `PermanentError` for what no retry can fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class HuntazeCtlError(Exception):
    """Base: a problem a person can act on."""


class SpecError(HuntazeCtlError):
    """One or more manifest problems, each ``file:line: field: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ReplacementRefused(HuntazeCtlError):
    pass


class LockHeld(HuntazeCtlError):
    """Another writer holds the stack lock; the message names it, since when, and how to break a stale lock."""


class LeaseLost(HuntazeCtlError):
    """This process no longer holds the stack lock (expired while paused, or taken over): it must stop writing."""


class Interrupted(HuntazeCtlError):
    """SIGINT/SIGTERM arrived: no further AWS call is started (the call in flight was allowed to finish)."""


class ReconcileError(HuntazeCtlError):
    def __init__(self, resource: str, message: str) -> None:
        self.resource = resource
        super().__init__(f"{resource}: {message}")


class TemporaryError(ReconcileError):
    def __init__(self, resource: str, message: str, delay: float = 5.0) -> None:
        self.delay = delay
        super().__init__(resource, f"{message} (will retry in {delay:.0f}s)")


class PermanentError(ReconcileError):
    pass


TerminalError = PermanentError


class ErrorClass(StrEnum):
    TEMPORARY = "temporary"  # requeue that resource after `delay` (then backoff); the retry reads and diffs again
    TERMINAL = "terminal"  # park it until its spec or its live state changes (or `controller resume`)
    NOT_FOUND = "not_found"  # the resource (or one it refers to) does not exist: read returns None / create


@dataclass(frozen=True)
class Verdict:
    error_class: ErrorClass
    code: str  # the AWS error code, or the exception's type name
    delay: float = 0.0  # seconds before the first retry (TEMPORARY only)

    @property
    def temporary(self) -> bool:
        return self.error_class is ErrorClass.TEMPORARY


# AWS error codes that mean "try again later": throttling, a conflicting operation still running, eventual
# consistency. The delay is the first requeue delay; the operator doubles it per consecutive failure.
TEMPORARY_CODES: dict[str, float] = {
    "Throttling": 5.0,
    "ThrottlingException": 5.0,
    "ThrottledException": 5.0,
    "RequestLimitExceeded": 5.0,
    "TooManyRequestsException": 5.0,
    "RequestThrottled": 5.0,
    "ProvisionedThroughputExceededException": 5.0,
    "SlowDown": 5.0,
    "ServiceUnavailable": 5.0,
    "InternalFailure": 5.0,
    "InternalError": 5.0,
    "RequestTimeout": 5.0,
    "ResourceConflictException": 5.0,  # Lambda: an update (or the create) is still in progress
    "ResourceInUseException": 5.0,
    "OperationAbortedException": 5.0,  # CloudWatch Logs / S3: a conflicting operation
    "ConcurrentModificationException": 5.0,
    "ConflictException": 5.0,
    "AWS.SimpleQueueService.QueueDeletedRecently": 61.0,  # SQS blocks a deleted queue's name for 60 s
    "QueueDeletedRecently": 61.0,
}
# AWS error codes no retry fixes: the spec, the permissions or the account must change first.
TERMINAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ValidationException",
        "ValidationError",
        "InvalidParameterException",
        "InvalidParameterCombination",
        "InvalidAttributeValue",
        "InvalidArgument",
        "MalformedPolicyDocument",
        "MalformedPolicyDocumentException",
        "LimitExceeded",
        "LimitExceededException",
        "CodeStorageExceededException",
        "KMSAccessDeniedException",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchEntity",
        "NoSuchBucket",
        "NotFound",
        "NotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ClusterNotFoundException",
        "ServiceNotFoundException",
        "ObjectNotFoundException",
    }
)
# "Not yet": IAM is eventually consistent, so a role created seconds ago is refused by Lambda for a while.
PROPAGATION_MESSAGES = ("cannot be assumed", "role defined for the function")
DEFAULT_TEMPORARY_DELAY_S = 5.0


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (duck-typed: this module never imports botocore)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def classify(exc: BaseException) -> Verdict:
    """The one decision for a failed attempt on a resource: temporary (with delay), terminal, or not found."""
    if isinstance(exc, TemporaryError):
        return Verdict(ErrorClass.TEMPORARY, "TemporaryError", exc.delay)
    if isinstance(exc, (PermanentError, SpecError, ReplacementRefused)):
        return Verdict(ErrorClass.TERMINAL, type(exc).__name__)
    if isinstance(exc, LookupError) and not error_code(exc):
        # A reference's output is not known yet (its resource failed or has not been reconciled this cycle).
        return Verdict(ErrorClass.TEMPORARY, "UnresolvedReference", DEFAULT_TEMPORARY_DELAY_S)
    code = error_code(exc)
    if code in TEMPORARY_CODES:
        return Verdict(ErrorClass.TEMPORARY, code, TEMPORARY_CODES[code])
    if code == "InvalidParameterValueException":
        if any(m in str(exc) for m in PROPAGATION_MESSAGES):
            return Verdict(ErrorClass.TEMPORARY, code, DEFAULT_TEMPORARY_DELAY_S)
        return Verdict(ErrorClass.TERMINAL, code)
    if code in TERMINAL_CODES:
        return Verdict(ErrorClass.TERMINAL, code)
    if code in NOT_FOUND_CODES:
        return Verdict(ErrorClass.NOT_FOUND, code, DEFAULT_TEMPORARY_DELAY_S)
    if code:
        # Unknown code: AWS's own rule, a server error (5xx) may pass, a client error (4xx) needs a change first.
        status = int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)
        if status >= 500:
            return Verdict(ErrorClass.TEMPORARY, code, DEFAULT_TEMPORARY_DELAY_S)
        return Verdict(ErrorClass.TERMINAL, code)
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or "EndpointConnectionError" in type(exc).__name__:
        return Verdict(ErrorClass.TEMPORARY, type(exc).__name__, DEFAULT_TEMPORARY_DELAY_S)
    return Verdict(ErrorClass.TERMINAL, type(exc).__name__)  # a bug or an unexpected shape: a person must look
