"""Drift of a Table, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    """Turn point-in-time recovery off by hand (the lease table's spec says on)."""
    client("dynamodb").update_continuous_backups(
        TableName=live.physical_id, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    return "pointInTimeRecovery"
