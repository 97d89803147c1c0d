"""Drift of a EventSourceMapping, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    uuid = live.physical_id.rsplit(":", 1)[-1]
    client("lambda").update_event_source_mapping(UUID=uuid, BatchSize=3)
    return "batchSize"
