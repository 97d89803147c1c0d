"""The journal holds no secret whatever way it reached the controller, including the ways its known-value list
(secret-named environment variables) cannot catch: a Redis password given only on the command line
(``--var REDIS_URL=...``, templated into a Function's environment) and a Secret's JSON value read from an
environment variable whose name says nothing (``HUNTAZE_REDIS_AUTH_JSON``, as manifests/secrets.yaml does).

Two `controller run --once` processes: the first creates the stack, the second corrects a hand edit of the
Function's environment (so the journal records desired and live values). The file, the CloudWatch Logs group
and the process output are grepped for every secret.
"""

from __future__ import annotations

from pathlib import Path

from common.aws import client

REDIS_PASSWORD = "VarOnlyPw-93b1c7"
AUTH_TOKEN = "AuthJsonToken-4e8a2d"
AUTH_JSON = f'{{"token": "{AUTH_TOKEN}", "url": "rediss://:{AUTH_TOKEN}@cache.internal:6379/0"}}'
SPECS = """\
apiVersion: huntaze.io/v1
kind: Secret
metadata: {name: op/redis-auth}
spec:
  valueFrom: {env: HUNTAZE_REDIS_AUTH_JSON}
---
apiVersion: huntaze.io/v1
kind: Role
metadata: {name: op-varfn-role}
spec:
  trustedServices: [lambda.amazonaws.com]
---
apiVersion: huntaze.io/v1
kind: Function
metadata: {name: op-varfn}
spec:
  code: {packages: [PACKAGE]}
  handler: tinyfn.handler.handler
  roleRef: op-varfn-role
  environment:
    REDIS_URL: "${REDIS_URL}"
---
apiVersion: huntaze.io/v1
kind: LogGroup
metadata: {name: controller-journal}
spec:
  logGroupName: /huntaze/local/controller-journal
  retentionInDays: 1
"""


def test_journal_masks_secrets_from_command_line_vars_and_unnamed_env(controllers, aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "tinyfn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    specs = tmp_path / "var-specs"
    specs.mkdir()
    (specs / "stack.yaml").write_text(SPECS.replace("PACKAGE", str(package)))
    argv = ("--once", "--var", f"REDIS_URL=redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
    env = {"HUNTAZE_REDIS_AUTH_JSON": AUTH_JSON}

    first = controllers("var-create", *argv, specs=specs, env=env)
    assert first.wait_exit(180) == 0, first.output()
    sm = client("secretsmanager")
    assert sm.get_secret_value(SecretId="op/redis-auth")["SecretString"] == AUTH_JSON
    lam = client("lambda")
    assert REDIS_PASSWORD in lam.get_function_configuration(FunctionName="op-varfn")["Environment"]["Variables"][
        "REDIS_URL"]

    lam.update_function_configuration(FunctionName="op-varfn",
                                       Environment={"Variables": {"REDIS_URL": f"redis://:{AUTH_TOKEN}@x/1"}})
    second = controllers("var-correct", *argv, specs=specs, env=env)
    assert second.wait_exit(180) == 0, second.output()
    corrected = [r for r in second.records() if r.resource == "Function/op-varfn" and "corrected" in r.verdicts]
    assert corrected and any(c.field.startswith("environment") for c in corrected[-1].changes), second.records()
    assert REDIS_PASSWORD in lam.get_function_configuration(FunctionName="op-varfn")["Environment"]["Variables"][
        "REDIS_URL"]

    events = client("logs").filter_log_events(logGroupName="/huntaze/local/controller-journal")["events"]
    assert events, "the journal reached the CloudWatch Logs group"
    texts = {"file (create)": first.journal.read_text(), "file (correct)": second.journal.read_text(),
             "log group": "\n".join(e["message"] for e in events),
             "output": first.output() + second.output()}
    for where, text in texts.items():
        for secret in (REDIS_PASSWORD, AUTH_TOKEN):
            assert secret not in text, where
    assert "redis://***@127.0.0.1:6379/0" in texts["file (correct)"]
