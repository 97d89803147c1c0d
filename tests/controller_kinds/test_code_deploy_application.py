"""CodeDeployApplication kind against moto over HTTP (the local emulator, whose CodeDeploy gaps are filled by
`localplane.codedeploy_api`), through the real reconciler: create, a no-op that writes nothing, tags repaired,
a compute platform change refused, ownership and delete."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common import aws
from controller.diff import ABSENT
from controller.kinds.registry import handler
from controller.reconciler import Action, ApplyOptions, Reconciler

APP: dict[str, Any] = {"computePlatform": "Lambda", "tags": {"team": "platform"}}


def test_code_deploy_application_created_then_second_apply_writes_nothing(kit: Any) -> None:
    m = kit.manifest("CodeDeployApplication", "huntaze-gate", APP)
    live = kit.reconcile(m)
    app = aws.client("codedeploy").get_application(applicationName="huntaze-gate")["application"]
    assert app["computePlatform"] == "Lambda"
    assert live.fields["tags"]["team"] == "platform" and live.owned
    assert live.outputs["arn"] == "arn:aws:codedeploy:us-east-1:123456789012:application:huntaze-gate"

    writes = kit.writes("codedeploy", "resourcegroupstaggingapi")
    [again] = Reconciler(kit.ctx).apply(kit.stack_of(m), ApplyOptions())
    assert again.action is Action.UNCHANGED
    assert writes.calls == []


def test_code_deploy_application_tags_changed_by_hand_are_drift_with_values_and_repaired(kit: Any) -> None:
    m = kit.manifest("CodeDeployApplication", "huntaze-gate", APP)
    live = kit.reconcile(m)
    codedeploy = aws.client("codedeploy")
    codedeploy.tag_resource(ResourceArn=live.outputs["arn"], Tags=[{"Key": "team", "Value": "someone"},
                                                                   {"Key": "owner", "Value": "bob"}])
    drift = {d.path: (d.desired, d.live) for d in kit.delta(m).drift}
    assert drift == {"tags.team": ("platform", "someone"), "tags.owner": (ABSENT, "bob")}
    writes = kit.writes("codedeploy")
    kit.reconcile(m)
    assert sorted(writes.calls) == ["TagResource", "UntagResource"]
    assert not kit.delta(m).has_drift


def test_code_deploy_application_compute_platform_change_is_refused(kit: Any) -> None:
    kit.reconcile(kit.manifest("CodeDeployApplication", "huntaze-gate", APP))
    changed = kit.manifest("CodeDeployApplication", "huntaze-gate", {**APP, "computePlatform": "Server"})
    assert kit.delta(changed).needs_replacement
    [result] = Reconciler(kit.ctx).apply(kit.stack_of(changed), ApplyOptions())
    assert result.action is Action.REFUSED
    assert "deployment groups" in result.message
    app = aws.client("codedeploy").get_application(applicationName="huntaze-gate")["application"]
    assert app["computePlatform"] == "Lambda"


def test_code_deploy_application_list_owned_ignores_others_and_delete_removes_it(kit: Any) -> None:
    kit.reconcile(kit.manifest("CodeDeployApplication", "huntaze-gate", APP))
    aws.client("codedeploy").create_application(applicationName="someone-elses", computePlatform="Lambda")
    kind = handler("CodeDeployApplication")
    owned = kind.list_owned(kit.ctx)
    assert [str(live.key) for live in owned] == ["CodeDeployApplication/huntaze-gate"]
    kind.delete(owned[0], kit.ctx)
    kind.delete(owned[0], kit.ctx)  # already gone: AWS (and the patched emulator) answer success
    assert kind.list_owned(kit.ctx) == []
    names = aws.client("codedeploy").list_applications()["applications"]
    assert names == ["someone-elses"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"computePlatform": "Fargate"}, "Input should be 'Lambda', 'Server' or 'ECS'"),
        ({"applicationName": "a b"}, "may contain only letters, digits"),
        ({"applicationName": "x" * 101}, "must be 1..100 characters"),
    ],
)
def test_code_deploy_application_spec_breaking_a_codedeploy_rule_is_rejected(change: dict[str, Any],
                                                                            message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        handler("CodeDeployApplication").spec_model.model_validate({**APP, **change})
