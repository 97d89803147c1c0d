"""Drift of a Dashboard, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

import json

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    cloudwatch = client("cloudwatch")
    name = live.fields["dashboardName"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
    body["widgets"] = body["widgets"][1:]  # the first widget: the last is the controller's ownership footer
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    return "body.widgets"
