"""Errors of the gate, one small tree. Each says what the handler does next; none escapes the handler.

    GateError
    ├── LimiterUnavailable     Redis unreachable, slow or failing: defer the job (fail closed), never DLQ it
    └── SendFailed             an SQS send failed: report the record as a batch item failure (SQS retries it)
"""

from __future__ import annotations


class GateError(Exception):
    """Base of the gate's errors."""


class LimiterUnavailable(GateError):
    """Redis could not decide: back off (defer the job) instead of dead-lettering it."""


class SendFailed(GateError):
    """SQS refused or failed a send: leave the record on the ingress queue to be retried."""
