"""The journal never holds a secret value (grep over the local file, the CloudWatch Logs group and the process
output): a Secret created from a file, and a Redis password inside a Function's environment URL that drifts and
is corrected."""

from __future__ import annotations

from pathlib import Path

from common.aws import client
from tests.operator.conftest import INTERVAL_S, wait_until

SECRET_VALUE = "TopSecretValue-7c41e9"
REDIS_PASSWORD = "RedisPw-5d2f08"
SPECS = f"""\
apiVersion: huntaze.io/v1
kind: Secret
metadata: {{name: op/api-key}}
spec:
  valueFrom: {{file: api-key.txt}}
---
apiVersion: huntaze.io/v1
kind: Role
metadata: {{name: op-fn-role}}
spec:
  trustedServices: [lambda.amazonaws.com]
---
apiVersion: huntaze.io/v1
kind: Function
metadata: {{name: op-fn}}
spec:
  code: {{packages: [PACKAGE]}}
  handler: tinyfn.handler.handler
  roleRef: op-fn-role
  environment:
    REDIS_URL: redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0
---
apiVersion: huntaze.io/v1
kind: LogGroup
metadata: {{name: controller-journal}}
spec:
  logGroupName: /huntaze/local/controller-journal
  retentionInDays: 1
"""


def test_journal_never_contains_a_known_secret_value(controllers, aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "tinyfn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    specs = tmp_path / "secret-specs"
    specs.mkdir()
    (specs / "api-key.txt").write_text(SECRET_VALUE)
    (specs / "stack.yaml").write_text(SPECS.replace("PACKAGE", str(package)))
    ctl = controllers("secretive", specs=specs)
    wait_until(ctl.cycles, 120, "the first cycle (creates the secret and the function)")
    lam = client("lambda")
    lam.update_function_configuration(FunctionName="op-fn", Environment={"Variables": {"REDIS_URL": "redis://x/1"}})
    corrected = wait_until(
        lambda: [r for r in ctl.records() if r.resource == "Function/op-fn" and "corrected" in r.verdicts],
        INTERVAL_S + 60, "the environment drift to be corrected and journaled")
    assert any(c.field.startswith("environment") for c in corrected[-1].changes)
    assert REDIS_PASSWORD in lam.get_function_configuration(FunctionName="op-fn")["Environment"]["Variables"][
        "REDIS_URL"]
    wait_until(lambda: len(ctl.cycles()) >= 3, 3 * INTERVAL_S + 60, "the journal to be flushed to the log group")
    events = client("logs").filter_log_events(logGroupName="/huntaze/local/controller-journal")["events"]
    assert events, "the journal reached the CloudWatch Logs group"
    for where, text in (("file", ctl.journal.read_text()), ("log group", "\n".join(e["message"] for e in events)),
                        ("output", ctl.output())):
        assert SECRET_VALUE not in text, where
        assert REDIS_PASSWORD not in text, where
    assert "redis://***@127.0.0.1:6379/0" in ctl.journal.read_text()
