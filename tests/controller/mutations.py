"""Per-kind "change it behind the controller's back" functions for the drift tests.

Each takes the resource's manifest and its live state (from the handler) and changes one field directly
with boto3, returning the diff path that must then show as drift. Kinds of the second kinds engineer add
their entries to `mutations_more.py` (same shape); test_reconcile.py merges both tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from common.aws import client
from controller.kinds.base import LiveResource
from controller.model import Manifest

Mutation = Callable[[Manifest, LiveResource], str]


def queue(manifest: Manifest, live: LiveResource) -> str:
    client("sqs").set_queue_attributes(QueueUrl=live.physical_id, Attributes={"VisibilityTimeout": "901"})
    return "visibilityTimeout"


def topic(manifest: Manifest, live: LiveResource) -> str:
    client("sns").set_topic_attributes(TopicArn=live.physical_id, AttributeName="DisplayName",
                                       AttributeValue="changed by hand")
    return "displayName"


def bucket(manifest: Manifest, live: LiveResource) -> str:
    client("s3").delete_bucket_lifecycle(Bucket=live.physical_id)
    return "lifecycle"


def log_group(manifest: Manifest, live: LiveResource) -> str:
    client("logs").put_retention_policy(logGroupName=live.physical_id, retentionInDays=365)
    return "retentionInDays"


def secret(manifest: Manifest, live: LiveResource) -> str:
    client("secretsmanager").update_secret(SecretId=live.physical_id, Description="edited in the console")
    return "description"


def role(manifest: Manifest, live: LiveResource) -> str:
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    client("iam").put_role_policy(RoleName=live.physical_id, PolicyName="logs", PolicyDocument=json.dumps(policy))
    return "inlinePolicies.logs"


MUTATIONS: dict[str, Mutation] = {
    "Queue": queue,
    "Topic": topic,
    "Bucket": bucket,
    "LogGroup": log_group,
    "Secret": secret,
    "Role": role,
}
