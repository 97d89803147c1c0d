"""Drift of a Secret, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    client("secretsmanager").update_secret(SecretId=live.physical_id, Description="edited in the console")
    return "description"
