"""Drift of a Bucket, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    client("s3").delete_bucket_lifecycle(Bucket=live.physical_id)
    return "lifecycle"
