"""The alarm "controller has not completed a cycle in 3 intervals" (manifests/controller.yaml) goes to ALARM when
a real controller process stops completing cycles (SIGSTOP) and back to OK when it resumes (SIGCONT), evaluated by
the local plane's alarm evaluator on the metric the controller publishes, with its notifications on the alarm's
SNS topic.

Time-scaled as the local plane does it: the alarm spec is the production one with the local overlay
(manifests/controller.yaml + manifests/overlays/local.yaml), the evaluator divides its period by ``scale``, and the
controller runs at the interval the scaled period stands for (the alarm's period is the controller's interval).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import yaml

from common.aws import client
from controller.kinds.alarm import AlarmSpec
from controller.specs import LoadOptions, load
from localplane.alarms import AlarmEvaluator
from tests.operator.conftest import REPO, wait_until

ALARM = "controller_cycle_stalled_critical"
TOPIC = "huntaze-alerts-critical"
INTERVAL_S = 3.0  # the controller's scaled interval: production 60 s


def _docs(path: Path, wanted: set[tuple[str, str]]) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return [d for d in docs if (d.get("kind"), d.get("metadata", {}).get("name")) in wanted]


def _alarm_specs(target: Path, pager_arn: str) -> Path:
    """The alarm and its topic exactly as manifests/ declares them, with their local overlay documents; the topic
    also delivers to the test's pager queue (a subscription outside the spec would be pruned by the controller)."""
    wanted = {("Alarm", ALARM), ("Topic", TOPIC)}
    base = [d for f in sorted((REPO / "manifests").glob("*.yaml")) for d in _docs(f, wanted)]
    assert {(d["kind"], d["metadata"]["name"]) for d in base} == wanted
    topic = next(d for d in base if d["kind"] == "Topic")
    topic["spec"].setdefault("subscriptions", []).append({"protocol": "sqs", "endpoint": pager_arn})
    (target / "overlays").mkdir(parents=True)
    (target / "stack.yaml").write_text(yaml.safe_dump_all(base, sort_keys=False))
    overlay = _docs(REPO / "manifests" / "overlays" / "local.yaml", wanted)
    (target / "overlays" / "local.yaml").write_text(yaml.safe_dump_all(overlay, sort_keys=False))
    return target


def _state() -> str:
    alarms = client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    return str(alarms[0]["StateValue"]) if alarms else "absent"


def _evaluated(evaluator: AlarmEvaluator, state: str) -> bool:
    evaluator.tick()
    return _state() == state


def _notifications(queue_url: str) -> list[str]:
    sqs = client("sqs")
    found = []
    for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        body = json.loads(json.loads(message["Body"])["Message"])
        if body["AlarmName"] == ALARM:
            found.append(str(body["NewStateValue"]))
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_controller_stalled_alarm_fires_while_stopped_and_clears_on_resume(
    controllers, aws, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="pager")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    specs = _alarm_specs(tmp_path / "alarm-specs", queue_arn)
    loaded = load(LoadOptions([str(specs)], "local", {"ENV": "local", "AWS_REGION": "us-east-1",
                                                       "AWS_ACCOUNT_ID": "123456789012"}))
    alarm = next(m.spec for m in loaded.manifests if m.kind == "Alarm")
    assert isinstance(alarm, AlarmSpec) and alarm.period is not None
    assert (alarm.namespace, alarm.metric_name, alarm.treat_missing_data) == (
        "Huntaze/Controller", "CycleCompleted", "breaching")
    evaluator = AlarmEvaluator(scale=alarm.period / INTERVAL_S)
    stall_s = alarm.evaluation_periods * INTERVAL_S

    ctl = controllers("stalling", specs=specs, interval_s=INTERVAL_S)
    wait_until(lambda: ctl.cycles() and _state() != "absent", 90, "the first cycle creating the alarm")

    wait_until(lambda: _evaluated(evaluator, "OK"), 60, "OK while the controller completes cycles", poll_s=0.5)
    ctl.signal(signal.SIGSTOP)
    cycles_before = len(ctl.cycles())
    wait_until(lambda: _evaluated(evaluator, "ALARM"), stall_s + 60,
               f"ALARM after {alarm.evaluation_periods} intervals without a cycle", poll_s=0.5)
    assert len(ctl.cycles()) == cycles_before  # stopped: no cycle completed while it fired
    ctl.signal(signal.SIGCONT)
    wait_until(lambda: _evaluated(evaluator, "OK"), 90, "OK again once the controller completes a cycle",
               poll_s=0.5)
    assert len(ctl.cycles()) > cycles_before

    pages: list[str] = []
    wait_until(lambda: pages.extend(_notifications(queue)) or pages[-2:] == ["ALARM", "OK"], 30,
               "the ALARM and OK notifications on the critical topic")
    transitions = [(t.old, t.new) for t in evaluator.transitions if t.alarm == ALARM]
    assert transitions[-2:] == [("OK", "ALARM"), ("ALARM", "OK")], transitions
