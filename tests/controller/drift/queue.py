"""Drift of a Queue, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    client("sqs").set_queue_attributes(QueueUrl=live.physical_id, Attributes={"VisibilityTimeout": "901"})
    return "visibilityTimeout"
