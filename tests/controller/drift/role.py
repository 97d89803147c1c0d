"""Drift of a Role, made behind the controller's back (see `tests.controller.drift`)."""

from __future__ import annotations

import json

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest


def mutate(manifest: Manifest, live: LiveResource) -> str:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    client("iam").put_role_policy(RoleName=live.physical_id, PolicyName="logs", PolicyDocument=json.dumps(policy))
    return "inlinePolicies.logs"
