"""Role kind against moto, through the real reconciler: the trustedServices shortcut's trust policy."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from common import aws


def test_role_trusted_services_shortcut_lets_only_this_accounts_services_assume_it(kit: Any) -> None:
    m = kit.manifest("Role", "worker", {"trustedServices": ["lambda.amazonaws.com"]})
    kit.reconcile(m)
    raw = aws.client("iam").get_role(RoleName="worker")["Role"]["AssumeRolePolicyDocument"]
    doc = json.loads(urllib.parse.unquote(raw)) if isinstance(raw, str) else raw
    [statement] = doc["Statement"]
    assert statement["Principal"] == {"Service": ["lambda.amazonaws.com"]}
    # The confused-deputy guard: Lambda acting for another account cannot assume the role.
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": [kit.ctx.account_id]}}
    assert not kit.delta(m).has_drift
