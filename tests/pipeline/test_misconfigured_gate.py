"""A gate that cannot start must not dead-letter valid jobs (issue 13, item 3), through the local plane.

The stack is applied with the manifests' own queue settings (ingress visibility 180 s, maxReceiveCount 20), then
a release with a broken configuration goes out (a required variable removed, published as a version the ``live``
alias then serves, as a bad deploy would). The gate fails whole invocations; every job stays on the ingress
queue, in flight, none in the DLQ, none judged. After `huntazectl rollout undo function` (the alias back to the
good version: new execution environments), every job completes once the visibility timeout returns it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from common.aws import client
from controller.cli import main
from tests.helpers.pipeline import running_pipeline

# The invariants include per-creator order: after the fix the whole backlog returns to both pollers at once,
# the case the gate's first-sight order settle exists for (docs/architecture.md, I4).


FUNCTION = "huntaze-rate-limiter"
INGRESS = "huntaze-rate-limiter-queue"
ON_CALL_BUDGET_S = 3600  # docs/architecture.md: an hour for the alarm to page and a fix to land


def function_env() -> dict[str, str]:
    config: dict[str, Any] = client("lambda").get_function_configuration(FunctionName=FUNCTION)
    return dict(config["Environment"]["Variables"])


def release_function_env(variables: dict[str, str]) -> None:
    """$LATEST with ``variables``, published and served by the live alias at once (a bad release)."""
    lam = client("lambda")
    lam.update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": variables})
    version = lam.publish_version(FunctionName=FUNCTION)["Version"]
    lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=version,
                     RoutingConfig={"AdditionalVersionWeights": {}})


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_misconfigured_gate_holds_valid_jobs_on_the_queue_until_fixed_then_completes_them(tmp_path: Path) -> None:
    good: dict[str, str] = {}

    def break_gate() -> None:
        # The stack's own controller (enforce mode) would revert a hand-made release at its first pass, and the
        # mapping runner follows the alias within a second: keep it stopped for this scenario.
        client("ecs").update_service(cluster="huntaze", service="huntaze-controller", desiredCount=0)
        good.update(function_env())
        release_function_env({k: v for k, v in good.items() if k != "HUNTAZE_WORKFLOWS_QUEUE_URL"})

    with running_pipeline(tmp_path, before_plane=break_gate) as pipe:
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName=INGRESS)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) * int(attrs["VisibilityTimeout"]) >= ON_CALL_BUDGET_S

        pipe.send([pipe.job("send_message", f"creator_{i % 3}", text=f"creator_{i % 3} misconf {i:02d}")
                   for i in range(12)])
        runner = next(iter(pipe.plane.mappings.values()))
        deadline = time.monotonic() + 120
        while (runner.errors < 2 or pipe.queue_depth(INGRESS) != (0, 12)) and time.monotonic() < deadline:
            time.sleep(0.5)  # waiting on the plane's poller, which runs in its own thread
        assert runner.errors >= 2, "the misconfigured gate did not fail its invocations"
        assert pipe.queue_depth(INGRESS) == (0, 12), "valid jobs left the ingress queue while the gate was broken"
        assert pipe.queue_depth("huntaze-rate-limiter-dlq") == (0, 0)
        assert pipe.finished() == 0
        assert "HUNTAZE_WORKFLOWS_QUEUE_URL" in (pipe.stack.run_dir / "functions.log").read_text(errors="replace")

        assert main(["rollout", "undo", "function", FUNCTION]) == 0
        done = pipe.wait_until_finished(timeout_s=int(attrs["VisibilityTimeout"]) + 240)
        problems = pipe.check_invariants()
    assert done == 12
    assert problems == []
