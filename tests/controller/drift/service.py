"""Drift of a Service, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    client("ecs").tag_resource(resourceArn=live.physical_id, tags=[{"key": "edited-by", "value": "hand"}])
    return "tags.edited-by"
