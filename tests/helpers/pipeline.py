"""A whole pipeline on the local stack for end-to-end load and chaos tests, time-scaled by one setting.

``HUNTAZE_LOAD_TIME_SCALE`` (default 6) divides the durations that shape load: every rate-limit window and the
autoscaler's cooldowns. With 6, the seed's 10 jobs per 60 s become 10 per 10 s and the 300 s scale-in cooldown
50 s. Everything else keeps its production value from manifests/ (visibility 180 s / 300 s, maxReceiveCount,
timeouts, breaker timing), so a failure that depends on them is not hidden.

`running_pipeline(tmp, profile)` starts moto, redis-server and the stand-in (`localplane.stack.LocalStack`),
applies manifests/ + ecs-specs/ with the local overlay plus the profile's overlay through `huntazectl apply`,
keeps the stack's own controller service stopped, starts the local plane (gate runtime, scraper tasks with
Chromium, autoscaler), and on exit stops it all and fails if any process it started is still running. The
stack's controller (enforce mode, manifests/ with the local overlay only) would otherwise revert the profile
within seconds of the plane starting: it released a gate version with the local overlay's 6 per 10 s and put
the scaling policy back to max 2, target 20, so every scenario ran at that limit instead of its own (a burst of
500 then took 14+ minutes at 6 per 10 s, and the steady load at 10 per 10 s outgrew its queue-wait bound).
`Pipeline.send()` sends jobs like a producer and remembers them as `SentJob`s for `tests.helpers.invariants`.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.aws import clear_client_cache, client
from common.contract import Job
from common.producer import Producer
from controller.cli import main as huntazectl
from localplane import demo
from localplane.plane import LocalPlane
from localplane.service_runner import ServiceRunner
from localplane.stack import LocalStack, apply_argv, descendants
from tests.helpers import invariants
from tests.helpers.invariants import SentJob

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = float(os.environ.get("HUNTAZE_LOAD_TIME_SCALE", "6"))
_LIMIT = re.compile(r"^(\w+)=(\d+)/(\d+(?:\.\d+)?)s$")
SCRAPER_SERVICE = "huntaze-onlyfans-scraper"
# .ci/run's soak lanes (--dist loadgroup): the 500-job burst (Chromium busy) and the gate releases (an alarm that
# must trip within a canary) run in one lane, one after the other; in a CI run where they overlapped, the bad
# release's alarm missed its canary.
HEAVY_LANE = "whole-stack-heavy"
CONTROLLER_SERVICE = "huntaze-controller"  # ecs-specs/controller-service.yaml: the stack's own controller


def scaled(seconds: float) -> float:
    return seconds / TIME_SCALE


def scaled_limits(limits: str) -> str:
    """``global=10/60s,creator=3/60s`` in production seconds -> the same limits with windows divided by the scale."""
    parts = []
    for part in limits.split(","):
        match = _LIMIT.match(part.strip())
        if match is None:
            raise ValueError(f"{part!r}: write limits as scope=N/Ws in production seconds")
        scope, count, window = match.groups()
        parts.append(f"{scope}={count}/{max(1, round(float(window) * 1000 / TIME_SCALE))}ms")
    return ",".join(parts)


@dataclass(frozen=True)
class LoadProfile:
    """What a scenario changes from the local overlay, in production units (scaled when applied)."""

    limits: str = "global=10/60s"  # the seed's hard limit
    max_tasks: int = 2  # the scaling policy's max, bounded by this machine (2 cores)
    target_depth: int = 100  # target tracking's queue depth per task (the production value)
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60

    @property
    def window_s(self) -> float:
        """The shortest scaled limit window, in seconds."""
        windows = [_LIMIT.match(p.strip()) for p in self.limits.split(",")]
        return min(float(m.group(3)) for m in windows if m) / TIME_SCALE

    @property
    def platform_limit(self) -> str:
        """The scaled global limit as the scraper's ``HUNTAZE_PLATFORM_LIMIT`` (``N/Wms``): the gate's, again."""
        scoped = dict(part.split("=", 1) for part in scaled_limits(self.limits).split(","))
        return scoped["global"]

    def overlay(self) -> str:
        docs = [
            {"apiVersion": "huntaze.io/v1", "kind": "Function", "metadata": {"name": "huntaze-rate-limiter"},
             "spec": {"environment": {"HUNTAZE_RATE_LIMITS": scaled_limits(self.limits)}}},
            {"apiVersion": "huntaze.io/v1", "kind": "TaskDefinition", "metadata": {"name": "huntaze-onlyfans-scraper"},
             "spec": {"containerDefinitions": [{"name": "playwright-scraper", "environment": [
                 {"name": "HUNTAZE_PLATFORM_LIMIT", "value": self.platform_limit}]}]}},
            {"apiVersion": "huntaze.io/v1", "kind": "ScalingPolicy",
             "metadata": {"name": "huntaze-onlyfans-scraper-queue-depth"},
             "spec": {"minCapacity": 1, "maxCapacity": self.max_tasks, "targetTracking": {
                 "targetValue": self.target_depth,
                 "scaleInCooldown": math.ceil(scaled(self.scale_in_cooldown_s)),
                 "scaleOutCooldown": math.ceil(scaled(self.scale_out_cooldown_s))}}},
        ]
        return "\n---\n".join(json.dumps(d) for d in docs) + "\n"  # JSON is YAML


@dataclass
class Pipeline:
    stack: LocalStack
    plane: LocalPlane
    profile: LoadProfile
    sent: list[SentJob] = field(default_factory=list)
    desired_seen: list[int] = field(default_factory=list)

    @property
    def site_url(self) -> str:
        return self.stack.site.url

    def job(self, action: str, creator: str, *, text: str | None = None) -> Job:
        return demo.make_job(action, creator, self.site_url, user="fan_load", text=text)

    def send(self, jobs: Sequence[Job]) -> None:
        """Send in batches of 10 through `common.producer`; every job is remembered in send order."""
        producer = Producer()
        with producer:
            for job in jobs:
                producer.enqueue(job)
        for job in jobs:
            cid = str(job.metadata.correlation_id)
            self.sent.append(SentJob(seq=len(self.sent), correlation_id=cid, message_id=producer.message_ids[cid],
                                     body=job.to_body(), creator_id=job.creator_id, action=job.action.value,
                                     text=job.message_content))

    def send_raw(self, body: str) -> None:
        """A body that is not a valid job (poison), straight to the ingress queue as a broken producer would."""
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName="huntaze-rate-limiter-queue")["QueueUrl"]
        message_id = sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
        self.sent.append(SentJob(seq=len(self.sent), correlation_id=None, message_id=message_id, body=body,
                                 creator_id="?", action="poison"))

    def finished(self) -> int:
        return demo.progress(demo.results_bucket()).finished

    def wait_until_finished(self, timeout_s: float, on_tick: Callable[[], None] | None = None) -> int:
        """Wait until as many outcomes as jobs sent exist (results + dead letters); returns that count."""
        deadline = time.monotonic() + timeout_s
        done = self.finished()
        while done < len(self.sent) and time.monotonic() < deadline:
            if on_tick:
                on_tick()
            time.sleep(1)  # each check lists S3 and two queues: once a second is plenty
            done = self.finished()
        return done

    def desired_count(self) -> int:
        ecs = client("ecs")
        svc = ecs.describe_services(cluster="huntaze", services=[SCRAPER_SERVICE])["services"][0]
        count = int(svc["desiredCount"])
        self.desired_seen.append(count)
        return count

    def scraper(self) -> ServiceRunner:
        """The scraper service's runner (the plane also runs the stack's controller service, kept at 0 here)."""
        return next(s for s in self.plane.services.values() if s.service == SCRAPER_SERVICE)

    def running_tasks(self) -> int:
        """Live scraper task processes."""
        return sum(1 for t in self.scraper().tasks if t.proc.poll() is None)

    def restart_plane(self) -> None:
        """New execution environments and tasks (what AWS does after a configuration change)."""
        self.plane.stop()
        self.plane = LocalPlane(extra_env=self.plane.extra_env, log_dir=self.plane.log_dir, tick_s=1)
        self.plane.start()

    def queue_depth(self, name: str) -> tuple[int, int]:
        """(visible, in flight) of a queue."""
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def check_invariants(self) -> list[str]:
        return invariants.check(self.sent, invariants.Outcomes.read(), self.stack.site.state.messages())


@contextmanager
def running_pipeline(tmp_path: Path, profile: LoadProfile | None = None,
                     before_plane: Callable[[], None] | None = None) -> Iterator[Pipeline]:
    """The whole stack for one scenario; on exit everything is stopped and no process may be left."""
    chosen = profile or LoadProfile()
    before = set(descendants(os.getpid()))
    saved = dict(os.environ)
    overlay = tmp_path / "load-overlay.yaml"
    overlay.write_text(chosen.overlay())
    try:
        with LocalStack(tmp_path / "run") as stack:
            code = huntazectl(apply_argv(REPO, stack, (overlay,)))
            assert code == 0, "apply of the local stack failed"
            # Before the plane runs it: the stack's controller would re-apply the local overlay over the profile.
            client("ecs").update_service(cluster="huntaze", service=CONTROLLER_SERVICE, desiredCount=0)
            if before_plane is not None:
                before_plane()
            plane = LocalPlane(extra_env=stack.aws_env() | {"REDIS_URL": stack.redis.url}, log_dir=stack.run_dir,
                               tick_s=1)
            plane.start()
            pipeline = Pipeline(stack, plane, chosen)
            try:
                yield pipeline
            finally:
                pipeline.plane.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clear_client_cache()
    deadline = time.monotonic() + 15
    left = invariants.leftover_processes(before, descendants(os.getpid()))
    while left and time.monotonic() < deadline:  # children exit asynchronously after their parent stops them
        time.sleep(0.2)
        left = invariants.leftover_processes(before, descendants(os.getpid()))
    assert not left, f"processes left running after the scenario: {left}"
