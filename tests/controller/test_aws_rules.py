"""AWS's documented name, length, range and pairing rules, checked offline by the kinds' spec models.

Each case is a manifest AWS would refuse (or, on moto, accept while AWS would not): `apply` must exit 2 with
``file:line: field: message`` before any AWS call. The first cases are the ones issue 12 found passing
`validate`: an 81-character queue name, a queue name with spaces and '!', a 5 MB SNS display name and a
standard queue whose dead-letter queue is FIFO.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.errors import SpecError
from controller.kinds.registry import handler
from controller.specs import LoadOptions, load

HEADER = "apiVersion: huntaze.io/v1\n"
VARS = {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "000000000000"}


def doc(kind: str, name: str, body: str = "") -> str:
    """One manifest; ``body`` holds the spec's lines (two-space indented), empty for ``spec: {}``."""
    return f"{HEADER}kind: {kind}\nmetadata:\n  name: {name}\nspec:{body or ' {}'}\n"


def queue(name: str, body: str = "") -> str:
    return doc("Queue", name, body)


ROLE_BODY = "\n  trustedServices: [lambda.amazonaws.com]"
ALARM_BODY = ("\n  namespace: AWS/SQS\n  metricName: NumberOfMessagesSent\n  statistic: Sum\n  threshold: 1"
              "\n  comparisonOperator: GreaterThanThreshold")

# (case id, manifest text, expected "line: field: message" fragment)
CASES: list[tuple[str, str, str]] = [
    ("queue-name-81-chars", queue("q" * 81),
     "a.yaml:4: metadata.name: queue name must be 1..80 characters (got 81)"),
    ("queue-name-spaces-and-bang", queue("x", "\n  queueName: 'my queue!'"),
     "a.yaml:6: spec.queueName: queue name 'my queue!' may contain only letters, digits, '-' and '_'"),
    ("queue-fifo-name-81-with-suffix", queue("q" * 76, "\n  fifo: true"),
     "a.yaml:4: metadata.name: queue name must be 1..80 characters (got 81)"),
    ("topic-display-name-1mb", doc("Topic", "t", "\n  displayName: " + "x" * (1024 * 1024)),
     "a.yaml:6: spec.displayName: displayName must be at most 100 characters (got 1048576)"),
    # 5 MB no longer reaches the model: the loader refuses a manifest file over 2 MiB before parsing it.
    ("topic-display-name-5mb", doc("Topic", "t", "\n  displayName: " + "x" * (5 * 1024 * 1024)),
     "a.yaml:1: file is 52"),
    ("standard-queue-fifo-dlq",
     queue("d", "\n  fifo: true") + "---\n" + queue("src", "\n  deadLetter:\n    queueRef: d"),
     "a.yaml:14: spec.deadLetter.queueRef: a standard queue needs a standard dead-letter queue, but Queue/d is "
     "FIFO"),
    ("fifo-queue-standard-dlq",
     queue("d") + "---\n" + queue("src", "\n  fifo: true\n  deadLetter:\n    queueRef: d"),
     "a.yaml:14: spec.deadLetter.queueRef: a FIFO queue needs a FIFO dead-letter queue, but Queue/d is standard"),
    ("topic-name-with-dot", doc("Topic", "alerts.v2"),
     "a.yaml:4: metadata.name: topic name 'alerts.v2' may contain only letters, digits, '-' and '_'"),
    ("topic-fifo-email-subscription",
     doc("Topic", "t", "\n  fifo: true\n  subscriptions:\n    - {protocol: email, endpoint: a@b.c}"),
     "a.yaml:5: spec: a FIFO topic delivers only to SQS queues (got email subscriptions)"),
    ("topic-unknown-protocol", doc("Topic", "t", "\n  subscriptions:\n    - {protocol: pigeon, endpoint: x}"),
     "spec.subscriptions[0].protocol: Input should be"),
    ("alarm-period-45", doc("Alarm", "a", ALARM_BODY + "\n  period: 45\n  evaluationPeriods: 1"),
     "a.yaml:11: spec.period: must be 10, 20, 30 or a multiple of 60"),
    ("alarm-window-over-a-day", doc("Alarm", "a", ALARM_BODY + "\n  period: 300\n  evaluationPeriods: 289"),
     "a.yaml:5: spec: evaluationPeriods x period is 86700 s; CloudWatch evaluates at most 86400 s"),
    ("alarm-action-not-an-arn", doc("Alarm", "a", ALARM_BODY + "\n  period: 60\n  evaluationPeriods: 1"
                                    "\n  alarmActions:\n    - arn: 'sns:alerts'"),
     "spec.alarmActions[0].arn: ARN 'sns:alerts' must have the form arn:PARTITION:SERVICE"),
    ("function-name-65", doc("Function", "f" * 65, "\n  code: {packages: [gate]}\n  roleArn: "
                             "arn:aws:iam::000000000000:role/r"),
     "a.yaml:4: metadata.name: function name must be 1..64 characters (got 65)"),
    ("function-memory-too-small", doc("Function", "f", "\n  code: {packages: [gate]}\n  memorySize: 64"
                                      "\n  roleArn: arn:aws:iam::000000000000:role/r"),
     "a.yaml:7: spec.memorySize: must be 128..10240 (got 64)"),
    ("function-timeout-too-long", doc("Function", "f", "\n  code: {packages: [gate]}\n  timeout: 901"
                                      "\n  roleArn: arn:aws:iam::000000000000:role/r"),
     "a.yaml:7: spec.timeout: must be 1..900 (got 901)"),
    ("function-env-over-4kb", doc("Function", "f", "\n  code: {packages: [gate]}\n  roleArn: "
                                  "arn:aws:iam::000000000000:role/r\n  environment:\n    BIG: '" + "v" * 4100
                                  + "'"),
     "a.yaml:5: spec: environment: Lambda allows 4096 bytes of variables in all (got 4103)"),
    ("function-env-name-digit-first", doc("Function", "f", "\n  code: {packages: [gate]}\n  roleArn: "
                                          "arn:aws:iam::000000000000:role/r\n  environment:\n    1X: a"),
     "spec.environment.1X: environment variable name '1X' may contain only letters, digits and '_', starting "
     "with a letter"),
    ("log-group-name-with-space", doc("LogGroup", "'/huntaze/my logs'"),
     "a.yaml:4: metadata.name: log group name '/huntaze/my logs' may contain only letters"),
    ("log-retention-not-allowed", doc("LogGroup", "/x", "\n  retentionInDays: 2"),
     "a.yaml:6: spec.retentionInDays: must be one of 1, 3, 5, 7"),
    ("bucket-name-uppercase", doc("Bucket", "Huntaze-Results"),
     "a.yaml:4: metadata.name: bucket name 'Huntaze-Results' may contain only lowercase letters"),
    ("bucket-name-ip", doc("Bucket", "x", "\n  bucketName: 192.168.1.10"),
     "a.yaml:6: spec.bucketName: bucket name '192.168.1.10' must not hold '..' or look like an IP address"),
    ("bucket-name-2-chars", doc("Bucket", "ab"), "a.yaml:4: metadata.name: bucket name must be 3..63 characters"),
    ("bucket-ia-transition-too-early", doc("Bucket", "b-results", "\n  lifecycle:\n    - id: r\n      transitions:"
                                          "\n        - {days: 7, storageClass: STANDARD_IA}"),
     "spec.lifecycle[0].transitions[0]: S3 moves objects to STANDARD_IA after 30 days at the earliest"),
    ("role-name-65", doc("Role", "r" * 65, ROLE_BODY),
     "a.yaml:4: metadata.name: role name must be 1..64 characters (got 65)"),
    ("role-path-without-slashes", doc("Role", "r", ROLE_BODY + "\n  path: service-role"),
     "a.yaml:7: spec.path: path 'service-role' may contain only printable ASCII, starting and ending with '/'"),
    ("role-managed-policy-not-arn", doc("Role", "r", ROLE_BODY + "\n  managedPolicyArns: [AdministratorAccess]"),
     "spec.managedPolicyArns[0]: ARN 'AdministratorAccess' must have the form arn:"),
    ("secret-name-with-space", doc("Secret", "'my secret'", "\n  valueFrom: {env: X}"),
     "a.yaml:4: metadata.name: secret name 'my secret' may contain only letters, digits"),
    ("cluster-name-with-dot", doc("Cluster", "huntaze.local"),
     "a.yaml:4: metadata.name: cluster name 'huntaze.local' may contain only letters, digits, '-' and '_'"),
    ("table-name-2-chars", doc("Table", "ab", "\n  partitionKey: {name: id}"),
     "a.yaml:4: metadata.name: tableName must be 3..255 characters (got 2)"),
    ("table-provisioned-without-throughput",
     doc("Table", "locks", "\n  partitionKey: {name: id}\n  billingMode: PROVISIONED"),
     "a.yaml:5: spec: billingMode PROVISIONED needs provisionedThroughput"),
    ("scaling-min-above-max", doc("ScalingPolicy", "p", "\n  serviceRef: s\n  minCapacity: 5\n  maxCapacity: 2"
                                  "\n  targetTracking: {targetValue: 10, customizedMetricSpecification: "
                                  "{namespace: N, metricName: M}}"),
     "spec: minCapacity (5) must be <= maxCapacity (2)"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_apply_manifest_breaking_an_aws_rule_fails_offline_with_file_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    offline_calls: object,
    ctl: Callable[..., tuple[int, str, str]],
    text: str,
    expected: str,
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    code, _, err = ctl("apply", "-f", "m")
    assert code == 2, err
    assert expected in err.replace("m/a.yaml", "a.yaml"), err
    assert offline_calls.calls == []  # type: ignore[attr-defined]


def test_load_queue_name_at_the_limits_is_valid(tmp_path: Path) -> None:
    """80 characters (".fifo" included) is allowed; the check is not off by one."""
    (tmp_path / "a.yaml").write_text(queue("q" * 80) + "---\n" + queue("f" * 75, "\n  fifo: true"))
    loaded = load(LoadOptions([str(tmp_path)], "local", VARS))
    assert len(loaded.manifests) == 2


def test_load_reports_every_broken_rule_not_only_the_first(tmp_path: Path) -> None:
    small = [c for c in CASES if len(c[1]) < 1024 * 1024][:6]  # the loader refuses a file over 2 MiB as a whole
    (tmp_path / "a.yaml").write_text("---\n".join(c[1] for c in small).replace("name: d\n", "name: d1\n", 1))
    with pytest.raises(SpecError) as caught:
        load(LoadOptions([str(tmp_path)], "local", VARS))
    assert len(caught.value.problems) >= 5, caught.value.problems


NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
NOT_NAME_CHARS = " !.@#/:*?é\t"


@settings(max_examples=60, deadline=None)
@given(name=st.text(alphabet=NAME_CHARS, min_size=1, max_size=80), fifo=st.booleans())
def test_queue_any_name_sqs_allows_is_accepted(name: str, fifo: bool) -> None:
    spec = handler("Queue").spec_model.model_validate(
        {"queueName": name[:75] + ".fifo" if fifo else name, "fifo": fifo}
    )
    assert spec.queue_name is not None and len(spec.queue_name) <= 80


@settings(max_examples=60, deadline=None)
@given(name=st.text(alphabet=NAME_CHARS, min_size=0, max_size=79), bad=st.sampled_from(NOT_NAME_CHARS),
       at=st.integers(min_value=0, max_value=79))
def test_queue_name_with_any_other_character_is_refused_naming_the_field(name: str, bad: str, at: int) -> None:
    broken = name[:at] + bad + name[at:]
    with pytest.raises(ValidationError) as caught:
        handler("Queue").spec_model.model_validate({"queueName": broken})
    assert caught.value.errors()[0]["loc"] == ("queueName",)


@settings(max_examples=60, deadline=None)
@given(extra=st.integers(min_value=1, max_value=500))
def test_topic_display_name_longer_than_100_is_refused(extra: int) -> None:
    with pytest.raises(ValidationError, match="at most 100 characters"):
        handler("Topic").spec_model.model_validate({"displayName": "x" * (100 + extra)})
    assert handler("Topic").spec_model.model_validate({"displayName": "x" * 100})
