"""The pipeline's queues as on-call sees them: each source queue and the DLQ its RedrivePolicy names.

Called by `controller.oncall.dlq` (which queue a dead letter goes back to) and `controller.oncall.collect`
(the status screen's queue rows). Found from AWS itself (ListQueues + RedrivePolicy), so a renamed queue or
another environment needs no code change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from common.aws import client
from controller.errors import HuntazeCtlError

QUEUE_PREFIX = "huntaze-"
ATTRIBUTES = ["QueueArn", "RedrivePolicy", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed", "FifoQueue", "VisibilityTimeout"]
# Short names people type: `--queue ingress` or `--queue workflows`.
ROLES = {"ingress": "huntaze-rate-limiter-queue", "workflows": "huntaze-hybrid-workflows.fifo"}


@dataclass(frozen=True)
class QueueState:
    name: str
    url: str
    arn: str
    fifo: bool
    visible: int
    in_flight: int
    delayed: int
    dlq_arn: str | None = None
    max_receive_count: int | None = None


@dataclass(frozen=True)
class DeadLetterPair:
    """A DLQ and the source queue its messages came from (where a redrive sends them back)."""

    dlq: QueueState
    source: QueueState


def _state(url: str, attrs: dict[str, Any]) -> QueueState:
    policy = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else {}
    return QueueState(
        name=url.rsplit("/", 1)[-1], url=url, arn=attrs.get("QueueArn", ""),
        fifo=attrs.get("FifoQueue") == "true" or url.endswith(".fifo"),
        visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        dlq_arn=policy.get("deadLetterTargetArn"),
        max_receive_count=int(policy["maxReceiveCount"]) if policy.get("maxReceiveCount") else None,
    )


def pipeline_queues(prefix: str = QUEUE_PREFIX) -> list[QueueState]:
    """Every queue whose name starts with ``prefix``, with its depth counters (1 + N API calls)."""
    sqs = client("sqs")
    urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    out = []
    for url in urls:
        try:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=ATTRIBUTES)["Attributes"]
        except sqs.exceptions.QueueDoesNotExist:
            continue
        out.append(_state(url, attrs))
    return out


def dead_letter_pairs(queues: list[QueueState] | None = None) -> list[DeadLetterPair]:
    queues = queues if queues is not None else pipeline_queues()
    by_arn = {q.arn: q for q in queues}
    pairs = [DeadLetterPair(dlq=by_arn[q.dlq_arn], source=q) for q in queues if q.dlq_arn in by_arn]
    if not pairs:
        raise HuntazeCtlError(
            f"no queue named {QUEUE_PREFIX}* has a dead-letter queue here: is AWS_ENDPOINT_URL/AWS_REGION the "
            "stack's (huntazectl up prints them), and was the stack applied?"
        )
    return pairs


def select_pairs(pairs: list[DeadLetterPair], queue: str | None) -> list[DeadLetterPair]:
    """``None``/``all`` → every pair; ``ingress``/``workflows`` or a queue name (source or DLQ) → that one."""
    if queue in (None, "all"):
        return pairs
    wanted = ROLES.get(str(queue), str(queue))
    chosen = [p for p in pairs if wanted in (p.source.name, p.dlq.name)]
    if not chosen:
        names = ", ".join(sorted({*ROLES, *(p.dlq.name for p in pairs)}))
        raise HuntazeCtlError(f"--queue {queue!r} names no dead-letter queue; use one of: all, {names}")
    return chosen
