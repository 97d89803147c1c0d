"""kill -9 in the middle of a cycle on a 200-resource synthetic stack, then a restart: the new process waits out
the dead one's lease, converges, and leaves no duplicate event source mappings, task definition revisions or
queues; its next full cycle writes nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from common.aws import client
from tests.operator.conftest import wait_until

QUEUES, TASK_DEFINITIONS, FUNCTIONS = 171, 20, 4  # + 4 mappings + 1 role = 200 resources


def write_synthetic_stack(root: Path) -> Path:
    package = root / "tinyfn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    docs = ["kind: Role\nmetadata: {name: op-syn-role}\nspec: {trustedServices: [lambda.amazonaws.com]}"]
    for i in range(QUEUES):
        docs.append(f"kind: Queue\nmetadata: {{name: op-syn-q{i:03d}}}\nspec: {{visibilityTimeout: {30 + i % 7}}}")
    for i in range(FUNCTIONS):
        docs.append(f"kind: Function\nmetadata: {{name: op-syn-fn{i}}}\nspec:\n  code: {{packages: [{package}]}}\n"
                    "  handler: tinyfn.handler.handler\n  roleRef: op-syn-role")
        docs.append(f"kind: EventSourceMapping\nmetadata: {{name: op-syn-map{i}}}\n"
                    f"spec: {{functionRef: op-syn-fn{i}, queueRef: op-syn-q{i:03d}}}")
    for i in range(TASK_DEFINITIONS):
        docs.append(f"kind: TaskDefinition\nmetadata: {{name: op-syn-td{i:02d}}}\nspec:\n  family: op-syn-td{i:02d}\n"
                    "  cpu: 256\n  memory: 512\n  containerDefinitions:\n"
                    f"    - {{name: app, image: 'example/app:{i}', essential: true}}")
    specs = root / "synthetic"
    specs.mkdir()
    (specs / "stack.yaml").write_text("\n---\n".join(f"apiVersion: huntaze.io/v1\n{d}" for d in docs) + "\n")
    return specs


@pytest.mark.soak
def test_controller_kill_9_mid_cycle_then_restart_converges_without_duplicates(controllers, aws, tmp_path) -> None:  # type: ignore[no-untyped-def]
    specs = write_synthetic_stack(tmp_path)
    ttl = ("--lease-ttl", "15s")  # a busy 200-resource cycle on a loaded machine: renewals need some slack
    first = controllers("doomed", *ttl, specs=specs, interval_s=600)
    wait_until(lambda: len(first.proxy.resource_writes()) >= 80, 300, "the first cycle to be well under way")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    assert not first.cycles(), "killed mid-cycle"
    second = controllers("survivor", *ttl, specs=specs, interval_s=600)
    done = wait_until(lambda: [c for c in second.cycles() if c.action == "full"], 300 + 15,
                      "the restarted controller's first full cycle")[0]
    assert done.counts["resources"] == 200, done.counts
    # Converged: the last cycle (a full one, or the requeue of a resource that failed temporarily) left nothing.
    wait_until(lambda: (c := second.cycles()[-1]).counts["errors"] == 0 and c.counts["pending"] == 0, 120,
               "every requeued resource to converge")
    lam, ecs, sqs = client("lambda"), client("ecs"), client("sqs")
    mappings = [m["FunctionArn"].split(":")[6] for m in lam.list_event_source_mappings()["EventSourceMappings"]]
    assert sorted(mappings) == [f"op-syn-fn{i}" for i in range(FUNCTIONS)], mappings
    for i in range(TASK_DEFINITIONS):
        revisions = ecs.list_task_definitions(familyPrefix=f"op-syn-td{i:02d}", status="ACTIVE")
        assert len(revisions["taskDefinitionArns"]) == 1, revisions
    assert len(sqs.list_queues(QueueNamePrefix="op-syn-q", MaxResults=1000)["QueueUrls"]) == QUEUES
    second.proxy.clear()
    second.signal(signal.SIGHUP)  # a full resync now: nothing left to do
    cycles = len(second.cycles())
    again = wait_until(lambda: [c for c in second.cycles()[cycles:] if c.action == "full"], 300, "a full resync")
    assert again[0].counts["written"] == 0 and second.proxy.resource_writes() == []
