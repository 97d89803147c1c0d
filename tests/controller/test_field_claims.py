"""Field rules computed per stack, through huntazectl against moto over HTTP: a Service's desiredCount is drift
unless a ScalingPolicy in the same stack claims it (then it is ignored, and the report says which policy)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from common.aws import client

Ctl = Callable[..., tuple[int, str, str]]
HEAD = "apiVersion: huntaze.io/v1\n"
ECS_STACK = f"""{HEAD}kind: Cluster
metadata: {{name: t-cluster}}
spec: {{}}
---
{HEAD}kind: TaskDefinition
metadata: {{name: t-task}}
spec:
  family: t-task
  cpu: 256
  memory: 512
  containerDefinitions:
    - {{name: app, image: "app:1"}}
---
{HEAD}kind: Service
metadata: {{name: t-service}}
spec:
  clusterRef: t-cluster
  taskDefinitionRef: t-task
  desiredCount: 1
  capacityProviderStrategy:
    - {{capacityProvider: FARGATE_SPOT, weight: 70}}
    - {{capacityProvider: FARGATE, weight: 30}}
  networkConfiguration:
    awsvpcConfiguration: {{subnetsFrom: default-vpc}}
"""
POLICY = f"""{HEAD}kind: ScalingPolicy
metadata: {{name: t-depth}}
spec:
  serviceRef: t-service
  minCapacity: 1
  maxCapacity: 4
  targetTracking:
    targetValue: 10
    customizedMetricSpecification: {{namespace: AWS/SQS, metricName: ApproximateNumberOfMessagesVisible}}
"""


def _scale_by_hand(count: int) -> None:
    client("ecs").update_service(cluster="t-cluster", service="t-service", desiredCount=count)


def test_service_desired_count_without_policy_is_drift_that_apply_repairs(
    aws: str, ctl: Ctl, tmp_path: Path
) -> None:
    (tmp_path / "ecs.yaml").write_text(ECS_STACK)
    assert ctl("apply", "-f", str(tmp_path))[0] == 0
    _scale_by_hand(5)
    code, out, _ = ctl("diff", "-f", str(tmp_path))
    assert code == 1 and "~ Service/t-service" in out and "    desiredCount" in out, out
    code, out, err = ctl("apply", "-f", str(tmp_path))
    assert code == 0 and "1 updated" in out, out + err
    assert client("ecs").describe_services(cluster="t-cluster", services=["t-service"])["services"][0][
        "desiredCount"] == 1
    assert ctl("diff", "-f", str(tmp_path))[0] == 0


def test_service_desired_count_claimed_by_policy_in_stack_is_ignored_with_reason(
    aws: str, ctl: Ctl, tmp_path: Path
) -> None:
    (tmp_path / "ecs.yaml").write_text(ECS_STACK + "---\n" + POLICY)
    assert ctl("apply", "-f", str(tmp_path))[0] == 0
    _scale_by_hand(3)  # what Application Auto Scaling does
    code, out, _ = ctl("diff", "-f", str(tmp_path))
    assert code == 0, out
    code, out, _ = ctl("drift", "-f", str(tmp_path), "--format", "json", "-v")
    assert code == 0, out
    [service] = [r for r in json.loads(out)["resources"] if r["resource"] == "Service/t-service"]
    [field] = [f for f in service["fields"] if f["path"] == "desiredCount"]
    assert (field["verdict"], field["desired"], field["live"]) == ("ignored", 1, 3)
    assert "Application Auto Scaling via ScalingPolicy/t-depth" in field["reason"]


def test_service_desired_count_outside_policy_bounds_is_drift_and_apply_fixes_it(
    aws: str, ctl: Ctl, tmp_path: Path
) -> None:
    (tmp_path / "ecs.yaml").write_text(ECS_STACK + "---\n" + POLICY)
    assert ctl("apply", "-f", str(tmp_path))[0] == 0
    _scale_by_hand(9)  # maxCapacity is 4: no scaling policy would leave it here
    code, out, _ = ctl("diff", "-f", str(tmp_path))
    assert code == 1 and "outside 1..4" in out and "drift: 1 to update" in out, out
    code, out, err = ctl("apply", "-f", str(tmp_path))
    assert code == 0 and "1 updated" in out, out + err
    assert ctl("diff", "-f", str(tmp_path))[0] == 0
