"""Drift of a Topic, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    client("sns").set_topic_attributes(TopicArn=live.physical_id, AttributeName="DisplayName",
                                       AttributeValue="changed by hand")
    return "displayName"
