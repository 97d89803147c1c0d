"""Drift of a LogGroup, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    client("logs").put_retention_policy(logGroupName=live.physical_id, retentionInDays=365)
    return "retentionInDays"
