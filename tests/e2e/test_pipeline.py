"""The whole pipeline on the embedded local stack, as `huntazectl up` runs it.

The controller applies manifests/ + ecs-specs/ (local overlay: at most 6 jobs in any 10 s) to a moto server; the
local plane polls the ingress mapping into the real gate handler and runs the real scraper as an ECS task process
driving real Chromium against the stand-in platform. Jobs go in through the ingress queue like a producer's.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.aws import clear_client_cache, client
from common.contract import Job
from controller.cli import main as huntazectl
from localplane import demo
from localplane.plane import LocalPlane
from localplane.stack import LocalStack
from standin.testing import chromium_pids
from tests.helpers.invariants import max_in_any_window

REPO = Path(__file__).resolve().parents[2]
WINDOW_S = 10
LIMIT = 6


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    try:
        with LocalStack(tmp_path / "run") as running:
            code = huntazectl([
                "apply", "-f", str(REPO / "manifests"), "-f", str(REPO / "ecs-specs"), "--env", "local",
                "--var", f"REDIS_URL={running.redis.url}", "--var", f"SITE_URL={running.site.url}",
            ])
            assert code == 0
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)
        clear_client_cache()


def send_messages_in_order(count: int, site_url: str) -> list[Job]:
    jobs = []
    for i in range(count):
        creator = ("creator_a", "creator_b")[i % 2]
        jobs.append(Job.model_validate({
            "action": "send_message", "creator_id": creator, "user_id": "fan_1",
            "message_content": f"{creator} message {i:02d}", "timestamp": datetime.now(UTC).isoformat(),
        }))
    return jobs


@pytest.mark.soak  # about 60 s: a dozen jobs at the seed's limit, time-scaled
def test_pipeline_jobs_end_with_results_in_order_once_each_at_the_limit(stack: LocalStack, tmp_path: Path) -> None:
    jobs = send_messages_in_order(12, stack.site.url) + demo.demo_jobs(4, stack.site.url)
    plane = LocalPlane(extra_env=stack.aws_env() | {"REDIS_URL": stack.redis.url}, log_dir=stack.run_dir, tick_s=1)
    plane.start()
    try:
        sqs = client("sqs")
        ingress = sqs.get_queue_url(QueueName="huntaze-rate-limiter-queue")["QueueUrl"]
        for job in jobs[:12]:  # one at a time, so the producer's order per creator is defined
            sqs.send_message(QueueUrl=ingress, MessageBody=job.to_body())
        demo.send(jobs[12:])
        started = time.monotonic()
        outcome = demo.wait_for(len(jobs), timeout_s=240)
        elapsed = time.monotonic() - started
        browsers = {pid for s in plane.services.values() for t in s.tasks for pid in chromium_pids(t.proc.pid)}
    finally:
        plane.stop()

    assert outcome.dead_lettered == 0
    assert outcome.done == len(jobs), f"only {outcome.done} of {len(jobs)} jobs have a stored result"
    # 16 jobs at 6 per 10 s need at least two full windows after the first admissions
    assert elapsed >= 2 * WINDOW_S - 2
    sent = [m for m in stack.site.state.messages() if m.text.startswith("creator_")]
    texts = [m.text for m in sent]
    assert len(texts) == len(set(texts)) == 12, "a send_message reached the platform twice, or not at all"
    # The hard limit where the platform feels it (the scraper's platform slot), by the stand-in's arrival times.
    most = max_in_any_window([m.received_at.timestamp() for m in sent], WINDOW_S)
    assert most <= LIMIT, f"{most} sends reached the platform within one {WINDOW_S} s window (limit {LIMIT})"
    for creator in ("creator_a", "creator_b"):
        mine = [t for t in texts if t.startswith(creator)]
        assert mine == sorted(mine), f"{creator}'s messages arrived out of order: {mine}"
    bucket = demo.results_bucket()
    assert bucket is not None
    listing = client("s3").list_objects_v2(Bucket=bucket, Prefix="results/creator_a/send_message/")
    record = json.loads(client("s3").get_object(Bucket=bucket, Key=listing["Contents"][0]["Key"])["Body"].read())
    assert record["status"] == "success"
    assert browsers, "the scraper task was expected to be running Chromium"
    survivors = [pid for pid in browsers if alive(pid)]
    assert not survivors, f"Chromium processes outlived their scraper task: {survivors}"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
