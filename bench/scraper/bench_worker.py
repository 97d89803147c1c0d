"""Scraper worker benchmark: prints figures, asserts nothing about time.

Run: ``.venv/bin/python bench/scraper/bench_worker.py [--jobs 1000] [--ratio-jobs 150] [--env NAME=VALUE]``

Everything is real and local: a moto server (SQS FIFO + DLQ, S3, Secrets Manager), redis-server, the stand-in
site, Debian's Chromium. Figures:

1. Cold start: spawn of ``python -m scraper`` (browser adapter) to its first job done (one job waiting).
2. Overhead ratio: per-job time of the worker (concurrency 1) over a bare Playwright script doing the same page
   steps (fresh context with the stored session, open the profile, read five fields, close) in the same run,
   run before and after the worker (mean), both timed after every creator logged in once. The queue's
   visibility is 300 s as in manifests/queues.yaml (it covers the job deadline, so no per-job extension).
3. Throughput and memory over ``--jobs`` jobs at the default concurrency: jobs/s, and the memory of the worker's
   process tree (the worker, the Playwright driver, every Chromium process) sampled every ``--sample-every``
   seconds: summed RSS and summed PSS (``/proc/<pid>/smaps_rollup``), their peaks and their growth from job 100
   to the last job, and PSS per process kind through the run. Summed RSS counts pages shared between
   Chromium's processes once per process, so it overstates; summed PSS is the honest footprint (pages shared
   with processes outside the tree, e.g. another Chromium on the same host, are split with them too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from playwright.async_api import async_playwright

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import the checkout's packages

from localplane.services import MotoServer, RedisServer  # noqa: E402
from scraper.adapters.browser import PROFILE_FIELDS, PROFILE_JS  # noqa: E402
from scraper.settings import DEFAULT_CHROMIUM_ARGS  # noqa: E402
from standin import StandinServer  # noqa: E402

CREATORS = 25


@dataclass
class TreeMemory:
    """Memory of one process tree at one moment, in bytes, with a per-kind breakdown of PSS."""

    rss: int = 0
    pss: int = 0
    uss: int = 0
    processes: int = 0
    pss_by_kind: dict[str, int] = field(default_factory=dict)


def _kind(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "gone"
    exe = cmdline.split(b" ", 1)[0].rsplit(b"/", 1)[-1].decode(errors="replace")
    if "chrom" in exe:  # Chromium's children rewrite their command line into one space-separated string
        kind = re.search(rb"--type=([\w-]+)", cmdline)
        return f"chromium-{kind.group(1).decode() if kind else 'browser'}"
    if exe == "node":
        return "playwright-driver"
    return "worker" if "python" in exe else exe


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return found


def tree_memory(root: int) -> TreeMemory:
    """RSS, PSS and USS of `root` and all its descendants, from /proc/<pid>/smaps_rollup.

    Summed RSS counts every page shared between the processes (Chromium's binary, its zygote-forked
    renderers) once per process; summed PSS splits each shared page between the processes that map it, so it
    adds up to what the tree really occupies. USS (private pages only) is the floor.
    """
    memory = TreeMemory()
    for pid in _descendants(root):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        values = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in rollup.splitlines()[1:]
                  if line.split()[-1] == "kB"}
        memory.processes += 1
        memory.rss += values.get("Rss", 0)
        memory.pss += values.get("Pss", 0)
        memory.uss += values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)
        kind = _kind(pid)
        memory.pss_by_kind[kind] = memory.pss_by_kind.get(kind, 0) + values.get("Pss", 0)
    return memory


class Plane:
    def __init__(self, moto: MotoServer) -> None:
        self.endpoint = moto.url
        kwargs: dict[str, Any] = {"endpoint_url": moto.url, "region_name": "us-east-1",
                                  "aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        self.sqs = boto3.client("sqs", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        dlq = self.sqs.create_queue(QueueName=f"b-{uuid.uuid4().hex[:8]}-dlq.fifo",
                                    Attributes={"FifoQueue": "true"})["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue = self.sqs.create_queue(
            QueueName=f"b-{uuid.uuid4().hex[:8]}.fifo",
            Attributes={"FifoQueue": "true", "VisibilityTimeout": "300",  # as manifests/queues.yaml
                        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})},
        )["QueueUrl"]
        self.bucket = f"bench-{uuid.uuid4().hex[:8]}"
        self.s3.create_bucket(Bucket=self.bucket)
        sm = boto3.client("secretsmanager", **kwargs)
        for name, value in (("onlyfans/login", {"password": "standin-password"}),
                            ("onlyfans/api-key", {"api_key": "standin-api-key"})):
            with contextlib.suppress(sm.exceptions.ResourceExistsException):
                sm.create_secret(Name=name, SecretString=json.dumps(value))

    def send_jobs(self, count: int) -> None:
        for start in range(0, count, 10):
            entries = []
            for n in range(start, min(start + 10, count)):
                creator = f"bench{n % CREATORS}"
                body = {"action": "scrape_profile", "creator_id": creator, "user_id": "fan-1",
                        "timestamp": datetime.now(UTC).isoformat(), "profile_url": f"https://x.invalid/u/{creator}",
                        "metadata": {"correlation_id": f"bench-{uuid.uuid4().hex}"}}
                entries.append({"Id": str(n - start), "MessageBody": json.dumps(body), "MessageGroupId": creator,
                                "MessageDeduplicationId": uuid.uuid4().hex})
            self.sqs.send_message_batch(QueueUrl=self.queue, Entries=entries)


def worker_env(plane: Plane, redis: RedisServer, site: StandinServer, **extra: str) -> dict[str, str]:
    return {
        **os.environ, "AWS_ENDPOINT_URL": plane.endpoint, "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "REDIS_URL": redis.url,
        "HUNTAZE_WORKFLOWS_QUEUE_URL": plane.queue, "HUNTAZE_RESULTS_BUCKET": plane.bucket,
        "HUNTAZE_SITE_URL": site.url, "HUNTAZE_ADAPTER": "browser", "HUNTAZE_WAIT_TIME_S": "1",
        "HUNTAZE_HEALTH_PORT": "0", "HUNTAZE_HEALTH_HOST": "127.0.0.1", "HUNTAZE_LOG_LEVEL": "WARNING",
        **extra,
    }


def profile_pages(site: StandinServer) -> int:
    return int(site.state.stats()["by_route"].get("GET /u/{creator_id}", {}).get("200", 0))


@dataclass
class Run:
    """Figures of one worker run: timings and, when sampled, (jobs done, memory) samples through the run."""

    cold_start_s: float = 0.0
    jobs_per_s: float = 0.0
    samples: list[tuple[int, TreeMemory]] = field(default_factory=list)

    @property
    def per_job_s(self) -> float:
        return 1 / self.jobs_per_s

    def at(self, jobs: int) -> TreeMemory:
        """The first sample taken once `jobs` jobs were done (the last sample if none)."""
        return next((m for done, m in self.samples if done >= jobs), self.samples[-1][1])

    def peak(self, measure: str, first: int = 0, last: int = 1 << 62) -> int:
        values = [getattr(m, measure) for done, m in self.samples if first <= done <= last]
        return max(values, default=0)


def run_worker(env: dict[str, str], site: StandinServer, jobs: int, sample_every_s: float = 0.0,
               warmup: int = CREATORS) -> Run:
    """Spawn the worker, wait until `jobs` profile pages were served, stop it; return timings and memory.

    Throughput counts from job `warmup` on: by then the worker has logged every creator in once (the bare
    script does its logins before its clock starts too)."""
    base = profile_pages(site)
    spawned = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "scraper"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = Run()
    first = start_jobs = None
    deadline = spawned + 1800
    next_sample = spawned
    try:
        while (done := profile_pages(site) - base) < jobs:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker stopped or timed out after {done} jobs")
            now = time.monotonic()
            if done >= 1 and first is None:
                first = now
            if done >= warmup and start_jobs is None:
                start_jobs = (now, done)
            if sample_every_s and now >= next_sample:
                run.samples.append((done, tree_memory(proc.pid)))
                next_sample = now + sample_every_s
            time.sleep(0.01)
        end = time.monotonic()
        if sample_every_s:
            run.samples.append((jobs, tree_memory(proc.pid)))
        run.cold_start_s = (first or end) - spawned
        t0, d0 = start_jobs or (first or spawned, min(1, jobs - 1))
        run.jobs_per_s = max(jobs - d0, 1) / max(end - t0, 1e-6)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return run


async def bare_playwright(site: StandinServer, jobs: int) -> float:
    """Seconds per job for the same page steps in a plain Playwright script (sequential, one browser)."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=list(DEFAULT_CHROMIUM_ARGS))
        states: dict[str, Any] = {}
        for n in range(min(CREATORS, jobs)):  # log every creator in once, as the worker's session reuse does
            creator = f"bench{n}"
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{site.url}/login")
            await page.fill("input[name=username]", creator)
            await page.fill("input[name=password]", "standin-password")
            async with page.expect_navigation():
                await page.click("#login-button")
            states[creator] = await context.storage_state()
            await context.close()
        began = time.monotonic()
        for n in range(jobs):
            creator = f"bench{n % CREATORS}"
            context = await browser.new_context(storage_state=states[creator], accept_downloads=True)
            page = await context.new_page()
            await page.goto(f"{site.url}/u/{creator}", wait_until="load")
            await page.evaluate(PROFILE_JS, PROFILE_FIELDS)
            await context.close()
        elapsed = time.monotonic() - began
        await browser.close()
    return elapsed / jobs


def mib(value: float) -> str:
    return f"{value / 2**20:.0f} MiB"


def report_memory(run: Run, jobs: int) -> None:
    start = min(100, jobs)
    for measure in ("rss", "pss"):
        at_start, at_end = getattr(run.at(start), measure), getattr(run.samples[-1][1], measure)
        early = run.peak(measure, start, start + max(jobs // 10, 1))
        late = run.peak(measure, jobs - max(jobs // 10, 1), jobs)
        print(f"  summed {measure.upper()}: peak {mib(run.peak(measure))}; job {start} {mib(at_start)} -> "
              f"job {jobs} {mib(at_end)} ({(at_end - at_start) / max(at_start, 1):+.1%}); peak over jobs "
              f"{start}-{start + max(jobs // 10, 1)} {mib(early)} vs last {max(jobs // 10, 1)} jobs "
              f"{mib(late)} ({(late - early) / max(early, 1):+.1%})")
    print("  PSS through the run (jobs done: total | by process kind):")
    for step in range(1, 11):
        memory = run.at(jobs * step // 10)
        kinds = ", ".join(f"{k} {mib(v)}" for k, v in sorted(memory.pss_by_kind.items(), key=lambda kv: -kv[1]))
        print(f"    {jobs * step // 10:>5}: {mib(memory.pss)} in {memory.processes} processes | {kinds}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--ratio-jobs", type=int, default=150, help="0 skips the overhead-ratio phase")
    parser.add_argument("--sample-every", type=float, default=0.5, help="seconds between memory samples")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra worker setting, e.g. HUNTAZE_BROWSER_RECYCLE_JOBS=100 (repeatable)")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    with MotoServer() as moto, RedisServer() as redis, StandinServer() as site:
        plane = Plane(moto)
        plane.send_jobs(1)
        cold = run_worker(worker_env(plane, redis, site, **extra), site, 1, warmup=0)
        print(f"cold start to first job done: {cold.cold_start_s:.2f} s")

        if args.ratio_jobs:
            before = asyncio.run(bare_playwright(site, args.ratio_jobs))
            plane.send_jobs(args.ratio_jobs)
            single = run_worker(worker_env(plane, redis, site, **{**extra, "HUNTAZE_CONCURRENCY": "1"}), site,
                                args.ratio_jobs)
            after = asyncio.run(bare_playwright(site, args.ratio_jobs))
            bare = (before + after) / 2  # the host's load drifts: bracket the worker's run
            print(f"per job, worker at concurrency 1: {single.per_job_s * 1000:.1f} ms; bare Playwright: "
                  f"{bare * 1000:.1f} ms (before {before * 1000:.1f}, after {after * 1000:.1f}); "
                  f"overhead ratio {single.per_job_s / bare:.2f} (aim <= 1.3)")

        plane.send_jobs(args.jobs)
        load = run_worker(worker_env(plane, redis, site, **extra), site, args.jobs, args.sample_every)
        print(f"{args.jobs} jobs at default concurrency: {load.jobs_per_s:.1f} jobs/s per worker")
        print("memory of the worker + Playwright driver + Chromium (aim: peak < 1024 MiB, growth < 10%); "
              "summed PSS is the honest footprint, summed RSS counts shared pages once per process:")
        report_memory(load, args.jobs)


if __name__ == "__main__":
    main()
