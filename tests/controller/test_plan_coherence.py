"""The plan never shows a change apply will not make: a topic deleted by hand is recreated under the same name,
so the alarms that point at it are unchanged in `diff` and in `apply` alike (moto over HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.aws import client

Ctl = Callable[..., tuple[int, str, str]]
HEADER = "apiVersion: huntaze.io/v1\n"
TOPIC = f"{HEADER}kind: Topic\nmetadata:\n  name: t-alerts\nspec:\n  displayName: alerts\n"


def alarm(name: str) -> str:
    return (f"{HEADER}kind: Alarm\nmetadata:\n  name: {name}\nspec:\n  alarmActions: [{{topicRef: t-alerts}}]\n"
            "  namespace: AWS/SQS\n  metricName: ApproximateAgeOfOldestMessage\n"
            "  dimensions: {QueueName: q}\n  statistic: Maximum\n  period: 300\n  evaluationPeriods: 1\n"
            "  threshold: 1800\n  comparisonOperator: GreaterThanThreshold\n")


def test_deleted_topic_plan_creates_only_the_topic_and_apply_agrees(
    aws: str, ctl: Ctl, tmp_path: Path, aws_calls: Any
) -> None:
    names = [f"t-alarm-{i}" for i in range(5)]
    (tmp_path / "stack.yaml").write_text("---\n".join([TOPIC, *(alarm(n) for n in names)]))
    assert ctl("apply", "-f", str(tmp_path))[0] == 0
    arn = next(t["TopicArn"] for t in client("sns").list_topics()["Topics"] if t["TopicArn"].endswith(":t-alerts"))
    client("sns").delete_topic(TopicArn=arn)

    code, out, _ = ctl("diff", "-f", str(tmp_path))
    assert code == 1 and "drift: 1 to create" in out, out
    assert "+ Topic/t-alerts" in out and "Alarm/" not in out, out
    code, out, _ = ctl("apply", "--dry-run", "-f", str(tmp_path))
    assert "1 created, 5 unchanged" in out, out

    aws_calls.clear()
    code, out, err = ctl("apply", "-f", str(tmp_path))
    assert code == 0 and "1 created, 5 unchanged" in out, out + err
    assert {op for _, op in aws_calls.writes} <= {"CreateTopic", "SetTopicAttributes", "TagResource"}
    assert ctl("diff", "-f", str(tmp_path))[0] == 0


def test_diff_reports_owned_orphan_with_prune_hint_and_agrees_with_drift(
    aws: str, ctl: Ctl, stack_dir: Path
) -> None:
    assert ctl("apply", "-f", str(stack_dir))[0] == 0
    platform = (stack_dir / "platform.yaml").read_text()
    (stack_dir / "platform.yaml").write_text(platform.split("---\n", 1)[1])  # drop Topic/t-oncall from the specs
    code, out, _ = ctl("diff", "-f", str(stack_dir))
    assert code == 1, out
    assert "- Topic/t-oncall (owned by this stack, in no spec: apply --prune deletes them)" in out
    assert out.strip().splitlines()[-1] == "drift: 1 owned resource in no spec (apply --prune deletes them)"
    drift_code, drift_out, _ = ctl("drift", "-f", str(stack_dir))
    assert drift_code == code and "Topic/t-oncall: owned by this stack but in no spec" in drift_out


def test_diff_unadopted_resource_summary_and_exit_code_agree(aws: str, ctl: Ctl, tmp_path: Path) -> None:
    client("sqs").create_queue(QueueName="t-legacy")
    (tmp_path / "q.yaml").write_text(f"{HEADER}kind: Queue\nmetadata:\n  name: t-legacy\nspec: {{}}\n")
    code, out, _ = ctl("diff", "-f", str(tmp_path))
    assert code == 2, out
    assert "no drift" not in out
    assert out.strip().splitlines()[-1] == "1 error: the plan is incomplete"
    assert "! Queue/t-legacy" in out and "huntaze.io/adopt" in out
