"""Scraper releases under load, end to end on the local stack (issue 14, part 2 and the service half of part 5).

A bad release (its tasks never answer their health check) stops at the circuit breaker and rolls back while the
old scraper task keeps draining the queue; a good release then replaces the task one by one. Every job ends
once (`tests.helpers.invariants`): no job lost, none sent twice, per-creator order. The releases are made the
way the controller makes them (RegisterTaskDefinition, then UpdateService with the Service spec's
deploymentConfiguration); the local controller service is scaled to 0 first so that it does not reconcile the
hand-made revisions back to the spec in the middle.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.aws import client
from localplane.deployments import COMPLETED, ROLLED_BACK
from localplane.service_runner import LOCAL_COMMAND_LABEL, ServiceRunner
from standin.testing import wait_until
from tests.helpers.pipeline import SCRAPER_SERVICE, Pipeline, running_pipeline

REPO = Path(__file__).resolve().parents[2]
REGISTER_KEYS = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions",
                 "requiresCompatibilities", "cpu", "memory", "runtimePlatform")


def deployment_configuration() -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "ecs-specs/onlyfans-scraper-service.yaml").read_text())
    config: dict[str, Any] = doc["spec"]["deploymentConfiguration"]
    assert config["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    return config


def stop_controller_service() -> None:
    client("ecs").update_service(cluster="huntaze", service="huntaze-controller", desiredCount=0)


def release(command: str | None, marker: str) -> str:
    """A new revision of the scraper's task definition (``command``: another local command), rolled out."""
    ecs = client("ecs")
    current = ecs.describe_services(cluster="huntaze", services=[SCRAPER_SERVICE])["services"][0]["taskDefinition"]
    spec = ecs.describe_task_definition(taskDefinition=current)["taskDefinition"]
    args = {k: spec[k] for k in REGISTER_KEYS if k in spec}
    container = args["containerDefinitions"][0]
    container["environment"] = [*container.get("environment", []), {"name": "RELEASE", "value": marker}]
    if command is not None:
        container["dockerLabels"] = {**container.get("dockerLabels", {}), LOCAL_COMMAND_LABEL: command}
    made = ecs.register_task_definition(**args)["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="huntaze", service=SCRAPER_SERVICE, taskDefinition=made,
                       deploymentConfiguration=deployment_configuration())
    return str(made)


def scraper(pipe: Pipeline) -> ServiceRunner:
    return next(s for s in pipe.plane.services.values() if s.service == SCRAPER_SERVICE)


def outcome(pipe: Pipeline, task_definition: str) -> str | None:
    found = [d.rollout_state for d in scraper(pipe).history if d.task_definition == task_definition]
    return found[-1] if found else None


def load(pipe: Pipeline, count: int, tag: str) -> None:
    pipe.send([pipe.job("send_message", f"creator_{i % 3}", text=f"{tag} {i:03d}") for i in range(count)])


def live_pids(pipe: Pipeline) -> set[int]:
    return {t.proc.pid for t in scraper(pipe).tasks if t.healthy and t.proc.poll() is None}


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_bad_release_rolls_back_under_load_then_good_release_replaces_the_task_no_job_lost(tmp_path: Path) -> None:
    with running_pipeline(tmp_path, before_plane=stop_controller_service) as pipe:
        wait_until(lambda: len(live_pids(pipe)) == 1, 120, "the scraper's first task")
        [first] = live_pids(pipe)
        load(pipe, 12, "before")
        wait_until(lambda: len(pipe.stack.site.state.messages()) >= 2, 180, "the first sends")
        bad = release("python -c \"import time; time.sleep(3600)\"", "bad")  # alive, never healthy
        load(pipe, 12, "during-bad")
        started = time.monotonic()
        wait_until(lambda: outcome(pipe, bad) == ROLLED_BACK, 400, "the breaker's rollback of the bad release")
        rollback_s = time.monotonic() - started
        [failed] = [d for d in scraper(pipe).history if d.task_definition == bad]
        assert failed.failed_tasks == 3 and "circuit breaker" in failed.rollout_state_reason, failed
        assert first in live_pids(pipe), "the old task was stopped during the bad release"
        done = pipe.wait_until_finished(timeout_s=300)
        assert done == len(pipe.sent), f"{done} of {len(pipe.sent)} jobs ended"
        assert pipe.check_invariants() == []

        good = release(None, "good")
        load(pipe, 12, "during-good")
        wait_until(lambda: outcome(pipe, good) == COMPLETED, 300, "the good release to complete")
        assert first not in live_pids(pipe) and len(live_pids(pipe)) == 1
        assert all(t.task_definition == good for t in scraper(pipe).tasks)
        done = pipe.wait_until_finished(timeout_s=300)
        assert done == len(pipe.sent), f"{done} of {len(pipe.sent)} jobs ended"
        assert pipe.check_invariants() == []
        print(f"bad release rolled back in {rollback_s:.0f} s; {len(pipe.sent)} jobs, none lost or sent twice")
