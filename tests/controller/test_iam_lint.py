"""IAM lint of the stack's roles, offline: parliament (with its community auditors) finds nothing, secret ARNs
match one secret only, and every trust policy carries the confused-deputy conditions.

The specs are the repo's own (manifests/, ecs-specs/), loaded with a test account id; parliament reads AWS's
action and resource catalogue from its package (no network).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from parliament import analyze_policy_string

from controller.kinds.alarm import alarm_name
from controller.model import Manifest
from tests.controller.conftest import load_full_stack

ACCOUNT = "123456789012"
# Findings accepted on purpose, with why. Keep this short: each entry is a reviewed exception.
# (role, policy, issue) -> why
_CONTROLLER = ("Role/huntaze-controller-task-role", "controller")
ACCEPTED: dict[tuple[str, str, str], str] = {
    (*_CONTROLLER, "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "the controller manages the stack's Roles, queue/topic attributes (redrive policies) and the bucket's public"
        " access block: each scoped to the stack's names (role/huntaze-*, huntaze-* queues and topics, its bucket)",
    (*_CONTROLLER, "PRIVILEGE_ESCALATION"):
        "creating and updating the gate Function, passing it a stack role and mapping its queue is what the"
        " controller is for; PassRole is limited to role/huntaze-* and to lambda/ecs-tasks (iam:PassedToService)",
    (*_CONTROLLER, "RESOURCE_POLICY_PRIVILEGE_ESCALATION"):
        "the controller sets the results bucket's lifecycle rules (which expire objects) and deliberately has no"
        " s3:DeleteObject; the rules come from the reviewed spec, on the stack's one bucket",
}
# ECS must call ecr:GetAuthorizationToken to pull an image (AWS's own AmazonECSTaskExecutionRolePolicy grants it);
# it has no resource-level permissions, and the role is assumable only by ECS for this account. Accepted in any
# role when it is the only credential-returning action of the finding.
_ECR_LOGIN_ONLY = ["ecr:getauthorizationtoken"]


def _accepted(role: str, policy: str, finding: Any) -> bool:
    if (role, policy, finding.issue) in ACCEPTED:
        return True
    return finding.issue == "CREDENTIALS_EXPOSURE" and finding.location.get("actions") == _ECR_LOGIN_ONLY
# Secrets Manager appends "-" and six random characters to every secret ARN: "-??????" matches exactly one
# secret, "-*" also matches any other secret whose name starts with the same prefix.
SECRET_ARN = re.compile(r"^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-\?{6}$")


def _roles() -> list[Manifest]:
    roles = [m for m in load_full_stack().manifests if m.kind == "Role"]
    assert roles, "the stack has no Role"
    return roles


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    statements = doc["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("role", _roles(), ids=lambda m: str(m.key))
def test_iam_lint_inline_policies_have_zero_parliament_findings(role: Manifest) -> None:
    findings = []
    for name, doc in role.spec.inline_policies.items():
        analyzed = analyze_policy_string(json.dumps(doc), include_community_auditors=True)
        findings += [(name, f.issue, f.detail, f.location) for f in analyzed.findings
                     if not _accepted(str(role.key), name, f)]
    assert findings == []


@pytest.mark.parametrize("role", _roles(), ids=lambda m: str(m.key))
def test_iam_lint_secret_arns_match_one_secret_only(role: Manifest) -> None:
    for doc in role.spec.inline_policies.values():
        for statement in _statements(doc):
            for resource in _as_list(statement.get("Resource", [])):
                if ":secretsmanager:" in resource:
                    assert SECRET_ARN.match(resource), f"{role.key}: {resource} must end in -??????"


@pytest.mark.parametrize("role", _roles(), ids=lambda m: str(m.key))
def test_iam_lint_trust_policy_restricts_source_account_and_arn(role: Manifest) -> None:
    trust = role.spec.trust_policy(ACCOUNT)
    assert trust is not None
    for statement in _statements(trust):
        services = _as_list(statement.get("Principal", {}).get("Service", []))
        if statement["Effect"] != "Allow" or not services:
            continue
        condition = statement.get("Condition", {})
        accounts = _as_list(condition.get("StringEquals", {}).get("aws:SourceAccount", []))
        assert accounts == [ACCOUNT], (role.key, statement)
        if "ecs-tasks.amazonaws.com" in services:
            arns = _as_list(condition.get("ArnLike", {}).get("aws:SourceArn", []))
            assert arns and all(a.startswith("arn:aws:ecs:") and f":{ACCOUNT}:" in a for a in arns), statement


def test_iam_lint_parliament_finds_a_widened_statement() -> None:
    """The lint can fail: the widening a reviewer fears (any secret, any resource) is a finding."""
    widened = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "s3:PutObject"], "Resource": "*"}]}
    findings = analyze_policy_string(json.dumps(widened), include_community_auditors=True).findings
    assert "RESOURCE_STAR" in {f.issue for f in findings}
    assert not any(_accepted("Role/x", "p", f) for f in findings)
    assert not SECRET_ARN.match("arn:aws:secretsmanager:us-east-1:123456789012:secret:redis/auth-token-*")


def test_iam_lint_controller_writes_exactly_the_stacks_alarms() -> None:
    """Least privilege: the controller may change the stack's alarms and no other alarm of the account."""
    stack = load_full_stack().manifests
    [role] = [m for m in stack if str(m.key) == _CONTROLLER[0]]
    [write] = [s for s in _statements(role.spec.inline_policies[_CONTROLLER[1]]) if s.get("Sid") == "AlarmsWrite"]
    assert "cloudwatch:PutMetricAlarm" in _as_list(write["Action"])
    granted = {arn.rsplit(":alarm:", 1)[1] for arn in _as_list(write["Resource"])}
    assert granted == {alarm_name(m) for m in stack if m.kind == "Alarm"}
    others = [s for s in _statements(role.spec.inline_policies[_CONTROLLER[1]]) if s is not write]
    assert not any("cloudwatch:PutMetricAlarm" in _as_list(s.get("Action", [])) for s in others)
