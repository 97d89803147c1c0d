"""The Lambda entry point: ``gate.handler.handler`` (Python 3.12, arm64), fed by the SQS event source mapping
on huntaze-rate-limiter-queue with ``ReportBatchItemFailures``. Also called in-process by the local plane.

Thin on purpose: parse the event, let `gate.batch.Gate` decide and send, return the partial batch response.
Once started it never raises (an exception would fail and redeliver the whole batch, burning every record's
receive count); if something unexpected breaks, every record is reported as a batch item failure instead, which
loses nothing. Settings and clients are built on the first invocation of a container and reused; `reset()` drops
them. A gate that cannot start (a setting missing or malformed, its Redis secret unreadable) raises
`GateMisconfigured` on purpose: the invocation fails, Lambda counts an error (the gate's error alarm pages),
no record is judged, and the batch returns after the queue's visibility timeout. The ingress queue's
maxReceiveCount x visibility gives on-call an hour to fix it before redrive moves anything (docs/architecture.md,
"A gate that cannot start").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from common.settings import SettingsError, load_settings
from gate.batch import Gate
from gate.settings import GateSettings
from gate.telemetry import logger

_gate: Gate | None = None


class GateMisconfigured(RuntimeError):
    """The gate cannot start; the message names the setting or the resource to fix. Fails the invocation."""


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


def _started_gate() -> Gate:
    try:
        return current_gate()
    except SettingsError as exc:
        problem = str(exc)
    except Exception as exc:  # e.g. the Redis AUTH secret cannot be read: nothing can be judged either
        problem = f"{type(exc).__name__}: {exc}"
    logger.error("gate cannot start, failing the invocation (the batch stays on the queue): %s", problem)
    raise GateMisconfigured(f"gate cannot start: {problem}")


def _records(event: Any) -> list[Mapping[str, Any]]:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return [r for r in records if isinstance(r, Mapping)] if isinstance(records, list) else []


def handler(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    records = _records(event)
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        logger.append_keys(request_id=request_id)
    gate = _started_gate()
    try:
        failed = gate.process(records)
    except Exception:
        logger.exception("gate failed unexpectedly; reporting every record of the batch for redelivery")
        failed = [str(r["messageId"]) for r in records if "messageId" in r]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _init_phase() -> None:
    """Inside a Lambda runtime, build the gate while the module loads (Lambda's INIT phase, before the first
    event), so a cold container decides its first batch as fast as a warm one: the order settle (decide.lua, I4)
    then only has to cover the gap between two invocations' receives, not a cold start. A gate that cannot start
    is left for the first invocation, which raises `GateMisconfigured` with the cause."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    with contextlib.suppress(Exception):  # the first invocation reports it (GateMisconfigured, or deferrals)
        current_gate().limiter.warm()


_init_phase()
