"""Drift of a CodeDeployDeploymentGroup, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    """Move the group to all-at-once by hand (the spec says a canary)."""
    client("codedeploy").update_deployment_group(
        applicationName=live.outputs["applicationName"], currentDeploymentGroupName=live.physical_id,
        deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce")
    return "deploymentConfigName"
