"""The mark a rollback leaves on an ECS service, so the controller holds instead of releasing the same revision again.

Written by whoever takes a service back from a task definition revision: the local plane's service runner when
its circuit breaker or alarm rollback fires (`localplane.service_runner`, standing in for ECS), and `huntazectl
rollout undo service` (on-call, on AWS as locally). Read by the Service kind (`controller.kinds.service`), which
turns it into a `controller.kinds.base.Hold` while the TaskDefinition spec still resolves to the rolled-back
revision; the Service kind removes the mark when it releases another revision.

The mark is a set of service tags (``huntaze.io/rolled-back-*``), so it lives where the service lives and any
controller replica, on any machine, reads it with the DescribeServices call it makes anyway. Tag values allow
only letters, digits, spaces and ``_ . : / = + - @`` on AWS: the reason is reduced to those. The tags are not
the spec's: the Service kind leaves them out of the compared tags.

On AWS, ECS does not write this mark when *its* breaker rolls back; the Service kind also reads ECS's own record
while it lasts (`from_deployments`: a FAILED deployment of another task definition still listed beside the
PRIMARY one). ECS drops that entry once the failed tasks are gone; ListServiceDeployments keeps the rollback
(status ROLLBACK_SUCCESSFUL) but moto does not implement it, so it is not read yet (docs/architecture.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PREFIX = "huntaze.io/rolled-back-"
FROM, BY, REASON, AT = (PREFIX + "from", PREFIX + "by", PREFIX + "reason", PREFIX + "at")
KEYS = (FROM, BY, REASON, AT)
ENGINE, ON_CALL = "deployment-engine", "rollout-undo"
_TAG_VALUE_BAD = re.compile(r"[^\w .:/=+\-@]", re.UNICODE)
TAG_VALUE_MAX = 256


@dataclass(frozen=True)
class RollbackMark:
    rolled_back: str  # the task definition ARN the service was taken back from
    by: str  # ENGINE or ON_CALL
    reason: str
    at: str = ""

    def tags(self) -> dict[str, str]:
        return {FROM: self.rolled_back, BY: self.by, REASON: tag_value(self.reason),
                AT: self.at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def tag_value(text: str) -> str:
    """``text`` with the characters AWS refuses in a tag value replaced, cut to 256 characters."""
    return " ".join(_TAG_VALUE_BAD.sub(" ", text).split())[:TAG_VALUE_MAX]


def split(tags: Mapping[str, str]) -> tuple[dict[str, str], RollbackMark | None]:
    """The tags without the mark, and the mark (None when there is none)."""
    rest = {k: v for k, v in tags.items() if not k.startswith(PREFIX)}
    if FROM not in tags:
        return rest, None
    return rest, RollbackMark(tags[FROM], tags.get(BY, ENGINE), tags.get(REASON, ""), tags.get(AT, ""))


def from_deployments(service: Mapping[str, Any]) -> RollbackMark | None:
    """ECS's own record of a rollback while it lasts: a FAILED deployment of another task definition than the
    service's, still listed (AWS keeps it while its tasks drain)."""
    current = service.get("taskDefinition")
    for deployment in service.get("deployments") or []:
        if deployment.get("rolloutState") == "FAILED" and deployment.get("taskDefinition") not in (None, current):
            reason = str(deployment.get("rolloutStateReason") or "ECS reports the deployment FAILED")
            return RollbackMark(str(deployment["taskDefinition"]), ENGINE, reason, str(deployment.get("updatedAt", "")))
    return None


def mark_service(ecs: Any, service_arn: str, mark: RollbackMark) -> None:
    ecs.tag_resource(resourceArn=service_arn, tags=[{"key": k, "value": v} for k, v in mark.tags().items()])


def clear_service(ecs: Any, service_arn: str) -> None:
    ecs.untag_resource(resourceArn=service_arn, tagKeys=list(KEYS))
