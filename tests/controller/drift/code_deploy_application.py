"""Drift of a CodeDeployApplication, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    """Tag the application by hand (its compute platform cannot change, so tags are what can drift)."""
    client("codedeploy").tag_resource(ResourceArn=live.outputs["arn"], Tags=[{"Key": "owner", "Value": "bob"}])
    return "tags.owner"
