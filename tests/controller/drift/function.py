"""Drift of a Function, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    client("lambda").update_function_configuration(FunctionName=live.fields["functionName"], Timeout=61)
    return "timeout"
