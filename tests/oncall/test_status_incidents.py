"""Each diagnosis rule, staged for real on the local stack, named by ONE `huntazectl status -o json` refresh.

The stack is `huntazectl up`'s: the controller applies manifests/ + ecs-specs/ (local overlay) to a moto server,
the local plane runs the real gate in its Lambda runtime and the real scraper as ECS task processes against the
stand-in platform, publishes metrics and evaluates alarms (``HUNTAZE_TIME_SCALE=60``). Each test waits until its
incident is in place (a condition on AWS or Redis, not on status), then calls status once and checks the headline
names the cause, the evidence and the next command. Every test puts the stack back as it found it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from common import redis_keys
from common.aws import clear_client_cache, client
from controller.cli import main as huntazectl
from localplane.plane import LocalPlane
from localplane.stack import LocalStack

from .conftest import REPO, wait_until

SERVICE = "huntaze-onlyfans-scraper"
CONTROLLER = "huntaze-controller"
CLUSTER = "huntaze"
RESOURCE_ID = f"service/{CLUSTER}/{SERVICE}"


@dataclass
class Pipeline:
    stack: LocalStack
    plane: LocalPlane
    urls: dict[str, str]

    def depth(self, queue: str, attribute: str = "ApproximateNumberOfMessages") -> int:
        attrs = client("sqs").get_queue_attributes(QueueUrl=self.urls[queue], AttributeNames=[attribute])
        return int(attrs["Attributes"][attribute])

    def purge(self) -> None:
        """Delete what the test left (PurgeQueue is allowed once a minute, so messages are received and deleted);
        messages delayed by the gate stay (the limit test runs last)."""
        sqs = client("sqs")

        def drained() -> bool:
            for url in self.urls.values():
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
                for m in got:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            return all(sum(int(v) for v in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)[
                "Attributes"].values()) == 0 for url in self.urls.values())

        wait_until(drained, 120, "the queues to be drained after the test")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    saved = dict(os.environ)
    os.environ["HUNTAZE_TIME_SCALE"] = "60"
    try:
        with LocalStack(tmp_path_factory.mktemp("stack") / "run") as stack:
            assert huntazectl([
                "apply", "-f", str(REPO / "manifests"), "-f", str(REPO / "ecs-specs"), "--env", "local",
                "--var", f"REDIS_URL={stack.redis.url}", "--var", f"SITE_URL={stack.site.url}",
            ]) == 0
            plane = LocalPlane(extra_env=stack.aws_env() | {"REDIS_URL": stack.redis.url}, log_dir=stack.run_dir,
                               tick_s=1)
            plane.start()
            urls = {u.rsplit("/", 1)[-1]: u for u in client("sqs").list_queues()["QueueUrls"]}
            try:
                yield Pipeline(stack, plane, urls)
            finally:
                plane.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clear_client_cache()


@pytest.fixture
def clean(pipeline: Pipeline) -> Iterator[Pipeline]:
    yield pipeline
    pipeline.purge()


@pytest.fixture
def controller_stopped(clean: Pipeline) -> Iterator[Pipeline]:
    """The controller's ECS service scaled to 0 for the test, and back to 1 after it (once the test has put its
    staged change back, so the controller finds nothing to correct).

    The local stack runs `huntazectl controller` in enforce mode, as the account does: it corrects a hand edit
    within one cycle, before status can see the incident it causes. A hand edit only persists while nothing
    enforces the spec, which is what this stages (the controller stopped, as on-call may well find it). A cycle
    in progress when the service is scaled down may restore its own desired count: then it is scaled down again.
    """
    ecs = client("ecs")
    runner = next(r for r in clean.plane.services.values() if r.service == CONTROLLER)

    def desired() -> int:
        return int(ecs.describe_services(cluster=CLUSTER, services=[CONTROLLER])["services"][0]["desiredCount"])

    def stopped() -> bool:
        if desired() != 0:
            ecs.update_service(cluster=CLUSTER, service=CONTROLLER, desiredCount=0)
            return False
        return not runner.processes()

    wait_until(stopped, 120, "the controller service to stop", poll_s=1)
    try:
        yield clean
    finally:
        restarted = datetime.now(UTC)
        ecs.update_service(cluster=CLUSTER, service=CONTROLLER, desiredCount=1)

        def cycled() -> bool:  # its first cycle is over: the next test does not race a fresh controller
            at = (status()["controller"].get("last_cycle") or {}).get("at")
            return bool(runner.processes()) and at is not None and datetime.fromisoformat(at) >= restarted

        wait_until(cycled, 240, "the controller's first cycle after its restart", poll_s=2)


def status(*extra: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        huntazectl(["status", "-o", "json", *extra])
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


def headline(data: dict[str, Any]) -> dict[str, str]:
    head: dict[str, str] = data["diagnosis"][0]
    assert head["evidence"] and head["next"], head
    return head


def job_body(creator: str, n: int, site: str) -> str:
    return json.dumps({"action": "scrape_profile", "creator_id": creator, "user_id": "fan_1",
                       "profile_url": f"{site}/u/{creator}", "timestamp": datetime.now(UTC).isoformat(),
                       "metadata": {"correlation_id": f"incident-{creator}-{n}"}})


def test_status_healthy_stack_refresh_is_cheap(pipeline: Pipeline) -> None:
    wait_until(lambda: status()["scraper"].get("running") == 1, 60, "the scraper task to run")
    # Until the controller task's first cycle publishes its metric, its stalled alarm (missing data = breaching,
    # as on AWS) is in ALARM: a fresh stack settles to healthy within a cycle and an alarm evaluation.
    wait_until(lambda: status()["controller"].get("last_cycle"), 60, "the controller's first cycle")
    wait_until(lambda: headline(status())["rule"] == "healthy", 30,
               "the stalled alarm raised before the first cycle to clear")
    data = status()
    assert headline(data)["rule"] == "healthy", data["diagnosis"]
    assert data["api_calls"] < 40
    assert data["gate"]["redis_reachable"] is True


def test_status_watch_refreshes_until_interrupted(pipeline: Pipeline) -> None:
    import signal
    import subprocess
    import sys

    argv = [sys.executable, "-m", "controller", "status", "--watch", "--interval", "0.5", "-o", "json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        first, second = json.loads(proc.stdout.readline()), json.loads(proc.stdout.readline())
        assert first["at"] <= second["at"] and second["diagnosis"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130  # interrupted, as huntazectl reports Ctrl-C
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_poison_jobs_names_dlq_invalid_jobs_and_top_errors(clean: Pipeline) -> None:
    sqs = client("sqs")
    for i in range(12):  # a producer that forgot the timestamp and sends a creator id with spaces
        sqs.send_message(QueueUrl=clean.urls["huntaze-rate-limiter-queue"], MessageBody=json.dumps(
            {"action": "get_messages", "creator_id": f"bad creator {i}", "user_id": "u"}))
    wait_until(lambda: clean.depth("huntaze-rate-limiter-dlq") >= 12, 60, "the gate to dead-letter the poison jobs")
    head = headline(status())
    assert head["rule"] == "dlq_invalid_jobs"
    assert "creator_id" in head["cause"] and "timestamp" in head["cause"]
    assert "12 dead letters" in head["evidence"]
    assert head["next"].startswith("huntazectl dlq list")


def test_status_platform_failures_in_the_dlq_name_the_error_class(clean: Pipeline) -> None:
    sqs = client("sqs")
    for i in range(3):  # the scraper's dead-letter shape (scraper/consumer.py QueueClient.dead_letter)
        sqs.send_message(
            QueueUrl=clean.urls["huntaze-hybrid-workflows-dlq.fifo"],
            MessageBody=job_body("creator_a", i, clean.stack.site.url), MessageGroupId="creator_a",
            MessageDeduplicationId=f"dl-{i}",
            MessageAttributes={"error": {"DataType": "String", "StringValue": "HTTP 503 from /u/creator_a"},
                               "error_type": {"DataType": "String", "StringValue": "network"},
                               "origin_message_id": {"DataType": "String", "StringValue": f"o-{i}"}})
    head = headline(status())
    assert head["rule"] == "dlq_platform_failures"
    assert "error class network" in head["cause"] and "HTTP 503" in head["evidence"]
    assert head["next"].endswith("huntazectl dlq redrive --reason network")


def test_status_redis_stopped_names_redis_unreachable(clean: Pipeline) -> None:
    redis = clean.stack.redis
    redis.kill()
    try:
        head = headline(status())
        assert head["rule"] == "redis_unreachable"
        assert "ConnectionError" in head["evidence"] or "Timeout" in head["evidence"]
        assert "REDIS_URL" in head["next"]
    finally:
        redis.start()


def test_status_breaker_open_after_429s_names_breaker_and_when_it_closes(clean: Pipeline) -> None:
    import asyncio

    from redis.asyncio import Redis

    from scraper.breaker import CircuitBreaker

    async def trip() -> None:  # the scraper's own breaker, as its runner records 429s that outlived retries
        r = Redis.from_url(clean.stack.redis.url)
        breaker = CircuitBreaker(r, "onlyfans", threshold=5, open_s=120)
        for _ in range(5):
            await breaker.record_failure("429 Too Many Requests from the platform")
        await r.aclose()

    asyncio.run(trip())
    try:
        head = headline(status())
        assert head["rule"] == "breaker_open"
        assert "closes in" in head["cause"] and "429" in head["evidence"]
        assert head["next"].startswith("huntazectl status --watch")
    finally:
        import redis as sync_redis

        r = sync_redis.Redis.from_url(clean.stack.redis.url)
        for key in r.keys(redis_keys.breaker_prefix() + ":*"):
            r.delete(key)
        r.close()


def short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def task_exits(task_definition: str) -> int:
    """Tasks of ``task_definition`` that ECS shows stopped with a non-zero exit (what the local plane records)."""
    ecs = client("ecs")
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns[-100:])["tasks"] if arns else []
    return sum(1 for t in tasks if t.get("taskDefinitionArn") == task_definition
               and "exit code" in t.get("stoppedReason", "") and "code 0)" not in t.get("stoppedReason", ""))


def deployment_of(clean: Pipeline, task_definition: str | None) -> dict[str, Any] | None:
    """The local plane's last recorded deployment of ``task_definition`` (what `huntazectl rollout` reads)."""
    from dataclasses import asdict

    from localplane import deployments

    found = [asdict(d) for d in deployments.load(deployments.path_for(clean.stack.run_dir, CLUSTER, SERVICE))
             if task_definition is None or d.task_definition == task_definition]
    return found[-1] if found else None


def back_on(clean: Pipeline, good: str) -> bool:
    """The service's latest deployment is of the good revision and COMPLETED (its tasks run)."""
    latest = deployment_of(clean, None) or {}
    return latest.get("task_definition") == good and latest.get("rollout_state") == "COMPLETED"


def spec_deployment_configuration() -> dict[str, Any]:
    """The scraper's deploymentConfiguration as ecs-specs/ declares it (circuit breaker with rollback) in
    CreateService's shape. AWS returns it from CreateService on; moto drops it there and shows it only after an
    UpdateService that carries it (docs/architecture.md), so the staged deploys below carry it, as AWS has it."""
    import yaml

    from controller.kinds.service import DeploymentConfiguration

    doc = yaml.safe_load((REPO / "ecs-specs" / "onlyfans-scraper-service.yaml").read_text())
    return DeploymentConfiguration.model_validate(doc["spec"]["deploymentConfiguration"]).native()


@contextlib.contextmanager
def bad_revision(clean: Pipeline) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """A hand-registered revision of the scraper's task definition with one bad environment value
    (HUNTAZE_CONCURRENCY=many): its tasks exit at start. Afterwards, as
    on-call would: the service back on the good revision with the spec's deploymentConfiguration, the bad one
    deregistered, and one task of the good revision running. Yields (good, bad, the spec's deploymentConfiguration)."""
    ecs = client("ecs")
    service = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    good, config = service["taskDefinition"], spec_deployment_configuration()
    spec = ecs.describe_task_definition(taskDefinition=good)["taskDefinition"]
    container = spec["containerDefinitions"][0]
    container["environment"] = [e if e["name"] != "HUNTAZE_CONCURRENCY" else {"name": e["name"], "value": "many"}
                                for e in container["environment"]]
    keep = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "cpu", "memory",
            "requiresCompatibilities", "runtimePlatform")
    bad = ecs.register_task_definition(**{k: spec[k] for k in keep if spec.get(k)})["taskDefinition"]
    scraper = next(r for r in clean.plane.services.values() if r.service == SERVICE)
    try:
        yield good, bad["taskDefinitionArn"], config
    finally:
        ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=good, deploymentConfiguration=config)
        ecs.deregister_task_definition(taskDefinition=bad["taskDefinitionArn"])
        wait_until(lambda: len(scraper.tasks) == 1 and all(t.task_definition == good for t in scraper.tasks),
                   90, "one task of the good revision to run", poll_s=1)


def causes_left(data: dict[str, Any]) -> list[str]:
    """The live causes status still names, less the one the staging itself causes: with the controller stopped
    (`controller_stopped`), its cycle-stalled alarm fires once no cycle metric arrives (missing data = breaching)."""
    return [f["rule"] for f in data["diagnosis"] if f["kind"] == "cause" and f["rule"] != "healthy"
            and not (f["rule"] == "alarm" and f["cause"].startswith("alarm controller_cycle_stalled"))]


def rollout_undo(clean: Pipeline) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert huntazectl(["rollout", "undo", "service", SERVICE, "--run-dir", str(clean.stack.run_dir)]) == 0
    return out.getvalue()


def breaker(config: dict[str, Any], *, enable: bool, rollback: bool) -> dict[str, Any]:
    return {**config, "deploymentCircuitBreaker": {"enable": enable, "rollback": rollback}}


@pytest.mark.soak
def test_status_bad_env_value_in_task_definition_names_the_crash_loop(controller_stopped: Pipeline) -> None:
    """The bad revision deployed by hand with the circuit breaker off, while the controller is stopped: its new
    tasks exit at start, again and again (the old task runs on, as in a rolling deploy). Status names the crash
    loop, the variable, and `huntazectl diff`; on-call runs `huntazectl rollout undo service`, the service goes
    back to the good revision, and status no longer names the loop."""
    clean, ecs = controller_stopped, client("ecs")
    run_dir = ("--run-dir", str(clean.stack.run_dir))
    with bad_revision(clean) as (good, bad, config):
        ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=bad,
                           deploymentConfiguration=breaker(config, enable=False, rollback=False))
        wait_until(lambda: task_exits(bad) >= 2, 90, "two task exits of the bad revision", poll_s=1)
        data = status(*run_dir)
        head = headline(data)
        assert head["rule"] == "scraper_crash_loop", data["diagnosis"]
        assert "HUNTAZE_CONCURRENCY" in head["cause"] and "'many'" in head["cause"], head
        assert "task exits" in head["evidence"] and short(bad) in head["evidence"]
        assert head["next"].startswith("huntazectl diff") and f"rollout undo service {SERVICE}" in head["next"]
        assert data["scraper"]["desired"] == 1 and data["scraper"]["running"] >= 1  # the old task runs on
        assert deployment_of(clean, bad)["rollout_state"] == "IN_PROGRESS"  # type: ignore[index]

        assert short(good) in rollout_undo(clean)
        wait_until(lambda: back_on(clean, good), 60, "the rollback to the good revision to complete", poll_s=1)
        data = status(*run_dir)
        assert causes_left(data) == [], data["diagnosis"]
        assert "deployment_rolled_back" not in [f["rule"] for f in data["diagnosis"]]  # undone by hand, no note
        assert deployment_of(clean, bad)["rollout_state"] == "FAILED"  # type: ignore[index]  # superseded


@pytest.mark.soak
def test_status_bad_revision_rolled_back_by_the_circuit_breaker_clears_to_a_note(
        controller_stopped: Pipeline) -> None:
    """The bad revision deployed with the spec's deploymentConfiguration (circuit breaker with rollback): after
    three failed new tasks the breaker rolls the service back to the good revision by itself. Status names no
    cause of it any more (only the stopped controller's alarm) and notes the rolled-back deployment with its
    revision, the exit reason and `rollout status`."""
    clean, ecs = controller_stopped, client("ecs")
    run_dir = ("--run-dir", str(clean.stack.run_dir))
    with bad_revision(clean) as (good, bad, config):
        assert config["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}  # ecs-specs/ (production)
        ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=bad, deploymentConfiguration=config)
        wait_until(lambda: (deployment_of(clean, bad) or {}).get("rollout_state") == "ROLLED_BACK"
                   and back_on(clean, good), 120, "the circuit breaker to roll the bad revision back", poll_s=1)
        assert ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["taskDefinition"] == good
        data = status(*run_dir)
        assert causes_left(data) == [], data["diagnosis"]
        (note,) = [f for f in data["diagnosis"] if f["rule"] == "deployment_rolled_back"]
        assert note["kind"] == "note"
        assert short(bad) in note["cause"] and f"rolled back to {short(good)}" in note["cause"]
        assert "HUNTAZE_CONCURRENCY" in note["cause"] and "'many'" in note["cause"], note
        assert "circuit breaker" in note["evidence"] and "ROLLED_BACK" in note["evidence"]
        assert note["next"].startswith(f"huntazectl rollout status service {SERVICE}")


@pytest.mark.soak
def test_status_bad_revision_stopped_by_the_breaker_without_rollback_names_the_failed_deployment(
        controller_stopped: Pipeline) -> None:
    """The circuit breaker on but rollback off: after three failed new tasks the deployment is FAILED, no new
    task starts, the old task runs on and the service still points at the bad revision. Status names the failed
    deployment (not a crash loop: nothing restarts), and clears once on-call has run `rollout undo`."""
    clean, ecs = controller_stopped, client("ecs")
    run_dir = ("--run-dir", str(clean.stack.run_dir))
    with bad_revision(clean) as (good, bad, config):
        ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=bad,
                           deploymentConfiguration=breaker(config, enable=True, rollback=False))
        wait_until(lambda: (deployment_of(clean, bad) or {}).get("rollout_state") == "FAILED", 120,
                   "the circuit breaker to stop the deployment", poll_s=1)
        data = status(*run_dir)
        head = headline(data)
        assert head["rule"] == "deployment_failed", data["diagnosis"]
        assert short(bad) in head["cause"] and "'many'" in head["cause"], head
        assert "circuit breaker" in head["evidence"] and "rollback is off" in head["evidence"]
        assert head["next"].startswith(f"huntazectl rollout status service {SERVICE}")

        rollout_undo(clean)
        wait_until(lambda: back_on(clean, good), 60, "the good revision's deployment to complete", poll_s=1)
        assert causes_left(status(*run_dir)) == []


@pytest.mark.soak
def test_status_workers_missing_names_backlog_workers_not_the_limit(controller_stopped: Pipeline) -> None:
    """The scraper scaled to zero by hand (its scalable target too, or the autoscaler would add a task back) while
    the controller is stopped: a job waits in the FIFO queue, and status blames the missing workers, not the
    limit; the queue-age alarm fires on the same data."""
    clean = controller_stopped
    aas, ecs = client("application-autoscaling"), client("ecs")
    target = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[RESOURCE_ID])["ScalableTargets"][0]
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE_ID,
                                 ScalableDimension="ecs:service:DesiredCount", MinCapacity=0, MaxCapacity=0)
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=0)
    try:
        wait_until(lambda: status()["scraper"].get("running") == 0, 90, "the scraper tasks to stop", poll_s=1)
        client("sqs").send_message(QueueUrl=clean.urls["huntaze-rate-limiter-queue"],
                                   MessageBody=job_body("creator_w", 1, clean.stack.site.url))
        wait_until(lambda: clean.depth("huntaze-hybrid-workflows.fifo") >= 1, 60, "the gate to forward the job")
        data = status()
        head = headline(data)
        assert head["rule"] == "backlog_workers", (data["diagnosis"], data["dead_letters"])
        assert "running 0 of desired 0" in head["evidence"]
        assert head["next"].startswith("huntazectl describe Service/huntaze-onlyfans-scraper")
        # the queue-age alarm follows on the same real data: 600 s scaled by 60 is 10 s
        wait_until(lambda: any(a["name"] == "workflows_queue_age_high" for a in status()["alarms"]["in_alarm"]),
                   60, "the queue-age alarm", poll_s=1)
        firing = {a["name"]: a for a in status()["alarms"]["in_alarm"]}
        assert firing["workflows_queue_age_high"]["runbook"] == "docs/runbook.md#workflows-queue-age-high"
        assert firing["workflows_queue_age_high"]["value"] > 600
    finally:
        aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RESOURCE_ID,
                                     ScalableDimension="ecs:service:DesiredCount",
                                     MinCapacity=target["MinCapacity"], MaxCapacity=target["MaxCapacity"])
        ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1)
        wait_until(lambda: status()["scraper"].get("running") == 1, 90, "the scraper to run again", poll_s=1)


def write_journal(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("a") as fh:
        for record in records:
            fh.write(json.dumps({"cycle_id": "c1", "time": datetime.now(UTC).isoformat(), "stack": "huntaze-local",
                                 **record}) + "\n")


def test_status_console_edit_names_spec_drift_from_the_controller_journal(controller_stopped: Pipeline,
                                                                          tmp_path: Path) -> None:
    """A boto3 "console edit"; the drift is found by the real reconciler (`huntazectl drift`) and journaled in the
    operator's record format (controller/journal.py of issue 10) as its loop writes it in observe mode. The local
    controller service (enforce mode) is stopped meanwhile: its cycle would otherwise race the edit, correct it
    and journal a correction that later tests' headlines would see."""
    clean = controller_stopped
    fifo = clean.urls["huntaze-hybrid-workflows.fifo"]
    client("sqs").set_queue_attributes(QueueUrl=fifo, Attributes={"VisibilityTimeout": "30"})
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            huntazectl(["drift", "-f", str(REPO / "manifests"), "-f", str(REPO / "ecs-specs"), "--env", "local",
                        "--var", f"REDIS_URL={clean.stack.redis.url}", "--var", f"SITE_URL={clean.stack.site.url}",
                        "--format", "json"])
        report = json.loads(out.getvalue())
        text = json.dumps(report)
        assert "huntaze-hybrid-workflows.fifo" in text and "visibilityTimeout" in text
        journal = tmp_path / "journal.jsonl"
        write_journal(journal, [
            {"type": "resource", "resource": "Queue/huntaze-hybrid-workflows.fifo", "action": "drifted",
             "verdicts": ["drift", "observed"], "mode": "observe",
             "changes": [{"field": "visibilityTimeout", "desired": 300, "live_before": 30}]},
            {"type": "cycle", "action": "full", "counts": {"resources": 31, "drifted": 1}, "lease_holder": "ctl-1"},
        ])
        data = status("--journal", str(journal))
        head = headline(data)
        assert head["rule"] == "spec_drifted"
        assert "Queue/huntaze-hybrid-workflows.fifo" in head["cause"] and "visibilityTimeout" in head["cause"]
        assert head["next"].startswith("huntazectl drift")
        assert data["controller"]["lease_holder"] == "ctl-1"
    finally:
        client("sqs").set_queue_attributes(QueueUrl=fifo, Attributes={"VisibilityTimeout": "300"})


def test_status_field_flipped_by_a_rogue_writer_names_the_field(clean: Pipeline, tmp_path: Path) -> None:
    """The operator's guard record (issue 10: a field corrected and flipped back 3 times) as its loop writes it."""
    journal = tmp_path / "journal.jsonl"
    write_journal(journal, [{
        "type": "guard", "resource": "Service/huntaze-onlyfans-scraper", "action": "non-converging",
        "verdicts": ["non-converging"], "guard": {
            "resource": "Service/huntaze-onlyfans-scraper", "field": "desiredCount", "desired": 1, "live": 3,
            "flips": 3, "flip_times": ["2026-12-01T03:00:00+00:00", "2026-12-01T03:01:00+00:00",
                                       "2026-12-01T03:02:00+00:00"]}}])
    head = headline(status("--journal", str(journal)))
    assert head["rule"] == "field_flipping"
    assert "desiredCount" in head["cause"] and "flipped back 3 times" in head["evidence"]
    assert head["next"].startswith("huntazectl describe Service/huntaze-onlyfans-scraper")


@pytest.mark.soak
def test_status_breaker_opened_by_real_429s_from_the_standin(clean: Pipeline) -> None:
    """The stand-in answers 429 to everything; the real scraper's breaker opens; status names it at once."""
    import redis as sync_redis

    from standin import Faults, RateLimitFault

    clean.stack.site.set_faults(Faults(rate_limit=RateLimitFault(limit=0, window_s=600, retry_after_s=1)))
    r = sync_redis.Redis.from_url(clean.stack.redis.url)
    try:
        sqs = client("sqs")
        for i in range(8):
            sqs.send_message(QueueUrl=clean.urls["huntaze-rate-limiter-queue"],
                             MessageBody=job_body(f"creator_{i}", 100 + i, clean.stack.site.url))
        wait_until(lambda: any(r.exists(k) for k in r.keys("huntaze:*breaker*open*")), 240,
                   "the scraper's breaker to open on 429s", poll_s=1)
        head = headline(status())
        assert head["rule"] == "breaker_open", head
        assert "429" in head["evidence"]
    finally:
        clean.stack.site.set_faults(Faults())
        for key in r.keys("huntaze:*breaker*"):
            r.delete(key)
        r.close()


@pytest.mark.soak
def test_dlq_redrive_of_fixed_jobs_completes_them_exactly_once(clean: Pipeline) -> None:
    """5xx storm: the real scraper dead-letters send_message jobs (network); the platform recovers; `dlq redrive`
    completes each exactly once (the stand-in records each send once), and redriving a copy of a done job sends
    nothing again."""
    import redis as sync_redis

    from standin import Error5xxFault, Faults

    sqs = client("sqs")
    texts = [f"redrive me {i} {datetime.now(UTC).timestamp()}" for i in range(2)]
    bodies = [json.dumps({"action": "send_message", "creator_id": "creator_r", "user_id": f"fan_{i}",
                          "message_content": text, "timestamp": datetime.now(UTC).isoformat(),
                          "metadata": {"correlation_id": f"redrive-{i}-{int(datetime.now(UTC).timestamp())}"}})
              for i, text in enumerate(texts)]
    clean.stack.site.set_faults(Faults(error_5xx=Error5xxFault(rate=1.0, status=503)))
    try:
        for body in bodies:
            sqs.send_message(QueueUrl=clean.urls["huntaze-rate-limiter-queue"], MessageBody=body)
        wait_until(lambda: clean.depth("huntaze-hybrid-workflows-dlq.fifo") >= 2, 400,
                   "the scraper to dead-letter both jobs after its receives", poll_s=2)
    finally:
        clean.stack.site.set_faults(Faults())
    r = sync_redis.Redis.from_url(clean.stack.redis.url)
    for key in r.keys(redis_keys.breaker_prefix() + ":*"):  # on-call would wait for it to close; the test does not
        r.delete(key)
    r.close()

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert huntazectl(["dlq", "redrive", "--reason", "network", "-o", "json"]) == 0
    assert json.loads(out.getvalue())["redriven"] == 2

    def sends(text: str) -> int:
        return sum(1 for m in clean.stack.site.state.messages() if m.text == text)

    wait_until(lambda: all(sends(t) >= 1 for t in texts), 240, "both redriven jobs to be sent", poll_s=1)
    wait_until(lambda: clean.depth("huntaze-hybrid-workflows.fifo", "ApproximateNumberOfMessagesNotVisible") == 0
               and clean.depth("huntaze-hybrid-workflows.fifo") == 0, 120, "the FIFO queue to settle")
    assert [sends(t) for t in texts] == [1, 1]

    # a copy of a job already done reaches the DLQ again (a duplicate delivery); redriving it sends nothing
    sqs.send_message(QueueUrl=clean.urls["huntaze-hybrid-workflows-dlq.fifo"], MessageBody=bodies[0],
                     MessageGroupId="creator_r", MessageDeduplicationId="copy-of-done",
                     MessageAttributes={"error": {"DataType": "String", "StringValue": "HTTP 503"},
                                        "error_type": {"DataType": "String", "StringValue": "network"}})
    with contextlib.redirect_stdout(io.StringIO()):
        assert huntazectl(["dlq", "redrive", "--reason", "network"]) == 0
    wait_until(lambda: clean.depth("huntaze-hybrid-workflows.fifo") == 0 and clean.depth(
        "huntaze-hybrid-workflows.fifo", "ApproximateNumberOfMessagesNotVisible") == 0, 120, "the copy to be settled")
    assert [sends(t) for t in texts] == [1, 1]


@pytest.mark.soak  # 35 s: a backlog must build at the limit
def test_status_backlog_at_the_limit_names_the_rate_limit(pipeline: Pipeline) -> None:
    """Last in the module: its deferred jobs are left to the stack's shutdown (no drain)."""
    clean = pipeline
    sqs = client("sqs")
    ingress = clean.urls["huntaze-rate-limiter-queue"]
    for start in range(0, 20, 10):  # 20 jobs, the local limit admits 6 in any 10 s
        sqs.send_message_batch(QueueUrl=ingress, Entries=[
            {"Id": str(i), "MessageBody": job_body(f"creator_{i % 4}", i, clean.stack.site.url)}
            for i in range(start, start + 10)])

    def deferred() -> bool:
        return clean.depth("huntaze-rate-limiter-queue", "ApproximateNumberOfMessagesDelayed") >= 6

    wait_until(deferred, 60, "the gate to defer jobs beyond the limit")
    data = status()
    head = headline(data)
    assert head["rule"] == "backlog_rate_limit", data["diagnosis"]
    assert "/6 admitted in the last 10s" in head["evidence"]
    (limit,) = data["gate"]["limits"]  # the local overlay's global=6/10s, as the gate's own limiter counts it
    assert (limit["scope"], limit["limit"], limit["window_s"]) == ("global", 6, 10)
    assert limit["admitted_in_window"] <= 6 and limit["reserved_ahead"] >= 1
    # the backlog drains at the limit: its admissions show in the window (a gap between groups may read 0)
    wait_until(lambda: 1 <= status()["gate"]["limits"][0]["admitted_in_window"] <= 6, 60,
               "admissions in the gate's window", poll_s=0.5)
