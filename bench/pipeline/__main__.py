"""Whole-pipeline benchmark: ``nice .venv/bin/python -m bench.pipeline [--jobs 90] [--tasks 1,2,3] [--scale 6]``.

Prints figures, asserts nothing. Everything is real and local: moto over HTTP, redis-server, the stand-in, the
gate in the local Lambda runtime, scraper tasks driving Chromium, started and stopped here.

1. Throughput with the rate limit lifted (``global=100000/1s``), stage by stage, for 1, 2, 3 … scraper tasks
   (the scaling policy pinned to that count): the ingress queue is filled first, then the plane starts.
   Gate: jobs/s from start until the ingress queue is empty, and invocations per job. Scraper: jobs/s from the
   first result to the last, in total and per task. FIFO delivery: a bare consumer's receive+delete rate on the
   same emulator (this is moto's speed, not AWS's). The slowest stage is the bottleneck.
2. Latency under the time-scaled limit (the seed's 10 per 60 s, windows divided by ``--scale``), all four
   actions: per job p50/p95 of the ingress+gate stage (including deferral), the FIFO wait, scraping, end to
   end, beside the seed's targets scaled the same way.
3. Production estimates for 14,400 jobs/day, 10x and 100x (per-creator limits under a higher global one), from
   the measured per-job costs (`bench.pipeline.costs`), beside the design's $40-55/month.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.pipeline.costs import PerJob, estimate  # noqa: E402
from common.aws import clear_client_cache, client  # noqa: E402
from common.contract import Job  # noqa: E402
from common.producer import Producer  # noqa: E402
from controller.cli import main as huntazectl  # noqa: E402
from localplane.demo import make_job  # noqa: E402
from localplane.plane import LocalPlane  # noqa: E402
from localplane.stack import LocalStack, apply_argv  # noqa: E402

INGRESS, FIFO = "huntaze-rate-limiter-queue", "huntaze-hybrid-workflows.fifo"
ACTIONS = ("send_message", "scrape_profile", "get_messages", "download_media")
SEED_TARGETS_S = {"queue wait": 60.0, "scraping": 10.0, "end to end": 90.0}
DECISION_LOG_MARK = "Token bucket result"  # the gate's per-decision log line (the seed's query)


def overlay(limits: str, tasks: int) -> str:
    docs = [
        {"apiVersion": "huntaze.io/v1", "kind": "Function", "metadata": {"name": "huntaze-rate-limiter"},
         "spec": {"environment": {"HUNTAZE_RATE_LIMITS": limits}}},
        {"apiVersion": "huntaze.io/v1", "kind": "ScalingPolicy",
         "metadata": {"name": "huntaze-onlyfans-scraper-queue-depth"},
         "spec": {"minCapacity": tasks, "maxCapacity": tasks}},
    ]
    return "\n---\n".join(json.dumps(d) for d in docs) + "\n"


@contextmanager
def stack_with(limits: str, tasks: int) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        path = Path(tmp) / "overlay.yaml"
        path.write_text(overlay(limits, tasks))
        try:
            with LocalStack(Path(tmp) / "run") as stack:
                quiet = io.StringIO()
                with contextlib.redirect_stdout(quiet):
                    code = huntazectl(apply_argv(REPO, stack, (path,)))
                if code != 0:
                    raise SystemExit(f"apply of the local stack failed:\n{quiet.getvalue()}")
                yield stack
        finally:
            os.environ.clear()
            os.environ.update(saved)
            clear_client_cache()


def make_jobs(count: int, site: str, creators: int = 30) -> list[Job]:
    return [make_job(ACTIONS[i % len(ACTIONS)], f"creator_{i % creators:02d}", site, user="fan_bench",
                     text=f"bench {i}") for i in range(count)]


def send(jobs: list[Job]) -> dict[str, str]:
    with Producer() as producer:
        for job in jobs:
            producer.enqueue(job)
    return producer.message_ids


def depth(name: str) -> int:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return sum(int(attrs.get(k, 0)) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                                "ApproximateNumberOfMessagesDelayed"))


def results() -> list[dict[str, Any]]:
    s3 = client("s3")
    out = []
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"] if "results" in b["Name"]]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="results/"):
            for obj in page.get("Contents", []):
                record = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                out.append(record | {"_bytes": obj["Size"]})
    return out


def result_count() -> int:
    s3 = client("s3")
    total = 0
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"] if "results" in b["Name"]]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="results/"):
            total += page.get("KeyCount", 0)
    return total


def redis_calls(url: str) -> int:
    r = redis.Redis.from_url(url)
    try:
        stats = r.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_ping"))
    finally:
        r.close()


def log_bytes(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in run_dir.glob("*.log") if p.name not in ("moto.log", "redis.log"))


def decisions(run_dir: Path) -> int:
    path = run_dir / "functions.log"
    return path.read_text(errors="replace").count(DECISION_LOG_MARK) if path.exists() else 0


def time_invocations(plane: LocalPlane) -> list[float]:
    """Seconds per gate invocation (handler + the local runtime's pipe), measured around each mapping's invoke."""
    durations: list[float] = []
    for runner in plane.mappings.values():
        invoke = runner.runtime.invoke

        def timed(event: dict[str, Any], _invoke: Any = invoke) -> dict[str, Any]:
            began = time.perf_counter()
            try:
                reply: dict[str, Any] = _invoke(event)
                return reply
            finally:
                durations.append(time.perf_counter() - began)

        runner.runtime.invoke = timed  # type: ignore[method-assign]
    return durations


@dataclass
class StageRun:
    tasks: int
    jobs: int
    gate_s: float
    invocations: int
    scrape_s: float
    finished: int
    redis_ops: int
    result_bytes: float
    log_bytes: int
    decisions: int
    invoke_s: list[float]

    @property
    def gate_rate(self) -> float:
        return self.jobs / self.gate_s if self.gate_s else math.inf

    @property
    def scrape_rate(self) -> float:
        return (self.finished - 1) / self.scrape_s if self.scrape_s > 0 else 0.0


def run_unlimited(tasks: int, count: int, timeout_s: float) -> StageRun:
    with stack_with("global=100000/1s", tasks) as stack:
        jobs = make_jobs(count, stack.site.url)
        send(jobs)
        calls_before = redis_calls(stack.redis.url)
        plane = LocalPlane(extra_env=stack.aws_env() | {"REDIS_URL": stack.redis.url}, log_dir=stack.run_dir,
                           tick_s=1)
        started = time.monotonic()
        plane.start()
        invoke_s = time_invocations(plane)
        gate_done = first = last = 0.0
        done = 0
        try:
            while time.monotonic() - started < timeout_s and done < count:
                now = time.monotonic()
                if not gate_done and depth(INGRESS) == 0:
                    gate_done = now - started
                seen = result_count()
                if seen and not first:
                    first = now
                if seen > done:
                    done, last = seen, now
                time.sleep(0.25)  # sampling the queues and the bucket; the plane works in its own threads
            invocations = sum(r.invocations for r in plane.mappings.values())
        finally:
            plane.stop()
        records = results()
        return StageRun(tasks, count, gate_done, invocations, last - first, done,
                        redis_calls(stack.redis.url) - calls_before,
                        statistics.fmean(r["_bytes"] for r in records) if records else 0.0,
                        log_bytes(stack.run_dir), decisions(stack.run_dir), invoke_s)


def fifo_delivery(count: int, groups: int = 50) -> float:
    """Messages/s a bare consumer receives and deletes from the FIFO queue (moto's capacity here)."""
    with stack_with("global=10/60s", 1):
        sqs = client("sqs")
        url = sqs.get_queue_url(QueueName=FIFO)["QueueUrl"]
        for start in range(0, count, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": "{}", "MessageGroupId": f"g{(start + i) % groups}",
                 "MessageDeduplicationId": uuid.uuid4().hex} for i in range(min(10, count - start))])
        received = 0
        started = time.monotonic()
        while received < count and time.monotonic() - started < 120:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if got:
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
            received += len(got)
        return received / (time.monotonic() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")


def run_latency(scale: float, windows: int, timeout_s: float) -> tuple[dict[str, list[float]], dict[str, float]]:
    window_ms = round(60_000 / scale)
    limit = 10
    with stack_with(f"global={limit}/{window_ms}ms", 2) as stack:
        plane = LocalPlane(extra_env=stack.aws_env() | {"REDIS_URL": stack.redis.url}, log_dir=stack.run_dir,
                           tick_s=1)
        plane.start()
        calls_before = redis_calls(stack.redis.url)
        count = windows * limit
        sent_at: dict[str, datetime] = {}
        try:
            started = time.monotonic()
            for i, job in enumerate(make_jobs(count, stack.site.url, creators=10)):
                time.sleep(max(0.0, started + i * window_ms / 1000 / limit - time.monotonic()))  # the load's pace
                fresh = job.model_copy(update={"timestamp": datetime.now(UTC)})
                for mid in send([fresh]).values():
                    sent_at[mid] = fresh.timestamp
            deadline = time.monotonic() + timeout_s
            while result_count() < count and time.monotonic() < deadline:
                time.sleep(1)  # results land as scrapers finish
            invocations = sum(r.invocations for r in plane.mappings.values())
        finally:
            plane.stop()
        stages: dict[str, list[float]] = {"ingress + gate": [], "FIFO wait": [], "queue wait": [], "scraping": [],
                                          "end to end": []}
        records = results()
        for rec in records:
            if rec["message_id"] not in sent_at:
                continue
            e2e = (datetime.fromisoformat(rec["timestamp"]) - sent_at[rec["message_id"]]).total_seconds()
            fifo = rec["metrics"]["queue_wait_time_ms"] / 1000
            in_scraper = rec["metrics"]["total_time_ms"] / 1000
            gate = max(0.0, e2e - fifo - in_scraper)
            stages["ingress + gate"].append(gate)
            stages["FIFO wait"].append(fifo)
            stages["queue wait"].append(gate + fifo)
            stages["scraping"].append(rec["metrics"]["scraping_time_ms"] / 1000)
            stages["end to end"].append(e2e)
        per_job = {"jobs": float(len(records)), "invocations": invocations / max(1, len(records)),
                   "redis_ops": (redis_calls(stack.redis.url) - calls_before) / max(1, len(records)),
                   "decisions": decisions(stack.run_dir) / max(1, len(records)),
                   "log_bytes": log_bytes(stack.run_dir) / max(1, len(records)),
                   "result_bytes": statistics.fmean(r["_bytes"] for r in records) if records else 0.0}
        return stages, per_job


def print_stages(runs: list[StageRun], fifo_rate: float) -> None:
    print("\n1. Throughput with the limit lifted (global=100000/1s), per stage")
    print(f"{'tasks':>5} {'jobs':>5} {'gate jobs/s':>12} {'gate inv/job':>13} {'invoke p50 ms':>14} "
          f"{'scraper jobs/s':>15} {'per task':>9} {'redis ops/job':>14}")
    for r in runs:
        print(f"{r.tasks:>5} {r.finished:>5} {r.gate_rate:>12.1f} {r.invocations / r.jobs:>13.2f} "
              f"{pct(r.invoke_s, 0.5) * 1000:>14.0f} {r.scrape_rate:>15.2f} {r.scrape_rate / r.tasks:>9.2f} "
              f"{r.redis_ops / max(1, r.finished):>14.1f}")
    print(f"FIFO delivery (bare consumer, receive 10 + delete batch, on the moto emulator): {fifo_rate:.0f} msg/s")
    best = runs[-1]
    stages = {"gate": best.gate_rate, "FIFO delivery": fifo_rate, "scraper tasks": best.scrape_rate}
    slowest = min(stages, key=lambda k: stages[k])
    print(f"bottleneck at {best.tasks} task(s): {slowest} ({stages[slowest]:.2f} jobs/s; "
          + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()) + ")")


def print_latency(stages: dict[str, list[float]], scale: float) -> None:
    print(f"\n2. Latency per job under the time-scaled limit (10 per {60 / scale:.0f} s, x{scale:g}), seconds")
    print(f"{'stage':<16} {'p50':>7} {'p95':>7} {'seed target p95 scaled (raw)':>30}")
    for name, values in stages.items():
        target = SEED_TARGETS_S.get(name)
        scaled = "" if target is None else f"< {target / scale:.1f} (< {target:.0f})"
        if name == "scraping":
            scaled = f"< {SEED_TARGETS_S['scraping']:.0f} (real time: Chromium is not time-scaled)"
        print(f"{name:<16} {pct(values, 0.5):>7.2f} {pct(values, 0.95):>7.2f} {scaled:>30}")


def print_estimates(per_job: PerJob) -> None:
    print("\n3. Production estimates from the measured per-job costs (peak = 2x the mean rate)")
    print(f"   per job: {per_job.gate_invocations:.2f} gate invocations x {per_job.gate_seconds * 1000:.0f} ms, "
          f"{per_job.redis_ops:.1f} Redis ops, {per_job.ingress_requests:.2f} ingress + "
          f"{per_job.fifo_sends:.2f} FIFO-send SQS requests, {per_job.result_bytes:.0f} B result, "
          f"{per_job.log_bytes:.0f} B logs; {per_job.scraper_jobs_per_s_per_task:.2f} jobs/s per task")
    rows = [("design (seed)", 14_400), ("10x", 144_000), ("100x", 1_440_000)]
    print(f"{'volume':<14} {'jobs/day':>10} {'tasks':>6} {'λ conc.':>8} {'Redis ops/s':>12} {'$/month':>9}  breakdown")
    for label, volume in rows:
        est = estimate(volume, per_job)
        parts = ", ".join(f"{k.split(' ')[0]} {v:.0f}" for k, v in est.monthly.items())
        print(f"{label:<14} {volume:>10,} {est.tasks:>6} {est.lambda_concurrency:>8} {est.redis_ops_s:>12.1f} "
              f"{est.total:>9.0f}  {parts}")
    print("   the design's own estimate: $40-55/month at 14,400 jobs/day (1-10 tasks, Redis t4g.micro, CloudWatch)")
    print("   10x and 100x need per-creator limits under a higher global one: one global 10/min caps the platform "
          "at 14,400/day")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=90, help="jobs per throughput run (default 90)")
    parser.add_argument("--tasks", default="1,2,3", help="scraper task counts to measure (default 1,2,3)")
    parser.add_argument("--scale", type=float, default=6.0, help="time scale of the latency run (default 6)")
    parser.add_argument("--windows", type=int, default=4, help="limit windows of load in the latency run")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    began = time.monotonic()
    runs = [run_unlimited(int(n), args.jobs, args.timeout) for n in args.tasks.split(",")]
    fifo_rate = fifo_delivery(200)
    print_stages(runs, fifo_rate)
    stages, measured = run_latency(args.scale, args.windows, args.timeout)
    print_latency(stages, args.scale)
    one = runs[0]
    per_job = PerJob(
        gate_invocations=measured["invocations"],
        gate_seconds=statistics.fmean(one.invoke_s) if one.invoke_s else one.gate_s / max(1, one.invocations),
        redis_ops=measured["redis_ops"],
        ingress_requests=0.1 + 2 * measured["invocations"] + max(0.0, measured["decisions"] - 1),
        fifo_sends=measured["invocations"],
        scraper_jobs_per_s_per_task=one.scrape_rate or 0.1,
        result_bytes=measured["result_bytes"],
        log_bytes=measured["log_bytes"],
    )
    print_estimates(per_job)
    print(f"\n(benchmark ran {time.monotonic() - began:.0f} s on {os.cpu_count()} cores, under `nice`, machine shared)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
