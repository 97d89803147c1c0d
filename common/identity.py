"""Stable message identity (ARCHITECTURE.md decision 3), used by the gate and the scraper.

The seed hashed (action, creator_id, timestamp): distinct jobs sent in the same tick collide (FIFO silently drops
the second) and a gate-made timestamp changes on redelivery. The identity is instead the producer's
``metadata.correlation_id`` or, failing that, the id of the first ingress SQS message that carried the job
(the gate copies it along as the ``origin_message_id`` attribute when it defers).
"""

from __future__ import annotations

import hashlib

from common.contract import Job

# The message attribute carrying a job's place in its creator's order: the producer's enqueue time (us), kept
# by the gate across deferrals (common.producer sets it, gate.records reads it).
FIRST_SEEN_ATTR = "first_seen"


def message_identity(job: Job, origin_message_id: str) -> str:
    if job.metadata.correlation_id:
        return f"cid:{job.metadata.correlation_id}"
    return f"sqs:{origin_message_id}"


def deduplication_id(identity: str) -> str:
    """FIFO MessageDeduplicationId: 64 hex characters, within SQS's 128-character limit."""
    return hashlib.sha256(identity.encode()).hexdigest()
