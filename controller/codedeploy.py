"""What the two CodeDeploy kinds share: ARNs, tags, and CodeDeploy's predefined Lambda deployment configurations.

Used by `controller.kinds.code_deploy_application` and `controller.kinds.code_deploy_deployment_group` (no kind
imports another). CodeDeploy names its resources, not ARNs, in every call but the tagging ones
(ListTagsForResource, TagResource, UntagResource), so the ARNs are built here from region, account and names.
"""

from __future__ import annotations

from typing import Any

from controller import traffic_shift
from controller.kinds.base import Context
from controller.kinds.prefetch import tags_of
from controller.normalize import tags_from_list, tags_to_list, user_tags
from controller.ownership import tag_changes

CONFIG_PREFIX = "CodeDeployDefault.Lambda"
# CodeDeploy's predefined Lambda deployment configurations, as the API names them.
LAMBDA_CONFIGS = tuple(CONFIG_PREFIX + name for name in traffic_shift.PREDEFINED)


def application_arn(ctx: Context, application: str) -> str:
    return f"arn:aws:codedeploy:{ctx.region}:{ctx.account_id}:application:{application}"


def deployment_group_arn(ctx: Context, application: str, group: str) -> str:
    return f"arn:aws:codedeploy:{ctx.region}:{ctx.account_id}:deploymentgroup:{application}/{group}"


def read_tags(ctx: Context, arn: str) -> dict[str, str]:
    """The user-visible tags of a CodeDeploy resource (from the pass' batched read when it has them)."""
    raw = tags_of(ctx, arn)
    if raw is None:
        raw = tags_from_list(ctx.client("codedeploy").list_tags_for_resource(ResourceArn=arn).get("Tags"))
    return user_tags(raw)


def sync_tags(ctx: Context, arn: str, desired: dict[str, str], live: dict[str, str]) -> None:
    codedeploy: Any = ctx.client("codedeploy")
    to_set, to_remove = tag_changes(desired, live)
    if to_set:
        codedeploy.tag_resource(ResourceArn=arn, Tags=tags_to_list(to_set))
    if to_remove:
        codedeploy.untag_resource(ResourceArn=arn, TagKeys=to_remove)
