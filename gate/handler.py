"""The Lambda entry point: ``gate.handler.handler`` (Python 3.12, arm64), fed by the SQS event source mapping
on huntaze-rate-limiter-queue with ``ReportBatchItemFailures``. Also called in-process by the local plane.

Thin on purpose: parse the event, let `gate.batch.Gate` decide and send, return the partial batch response.
It never raises (an exception would fail and redeliver the whole batch, burning every record's receive count);
if something unexpected breaks, every record is reported as a batch item failure instead, which loses nothing.
Settings and clients are built on the first invocation of a container and reused; `reset()` drops them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.settings import load_settings
from gate.batch import Gate
from gate.settings import GateSettings
from gate.telemetry import logger

_gate: Gate | None = None


def current_gate() -> Gate:
    global _gate  # noqa: PLW0603 - one gate per Lambda container, reused across invocations
    if _gate is None:
        settings = load_settings(GateSettings)
        logger.setLevel(settings.log_level)
        _gate = Gate.from_settings(settings)
    return _gate


def reset() -> None:
    """Forget the cached gate (tests, or after the environment changed)."""
    global _gate  # noqa: PLW0603
    _gate = None


def _records(event: Any) -> list[Mapping[str, Any]]:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return [r for r in records if isinstance(r, Mapping)] if isinstance(records, list) else []


def handler(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    records = _records(event)
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(request_id=request_id)
    try:
        failed = current_gate().process(records)
    except Exception:
        logger.exception("gate failed unexpectedly; reporting every record of the batch for redelivery")
        failed = [str(r["messageId"]) for r in records if "messageId" in r]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
