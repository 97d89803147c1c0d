"""Scraper worker benchmark: prints figures, asserts nothing about time.

Run: ``.venv/bin/python bench/scraper/bench_worker.py [--jobs 1000] [--ratio-jobs 150]``

Everything is real and local: a moto server (SQS FIFO + DLQ, S3, Secrets Manager), redis-server, the stand-in
site, Debian's Chromium. Figures:

1. Cold start: spawn of ``python -m scraper`` (browser adapter) to its first job done (one job waiting).
2. Overhead ratio: per-job time of the worker (concurrency 1) over a bare Playwright script doing the same page
   steps (fresh context with the stored session, open the profile, read five fields, close) in the same run.
3. Throughput and memory over ``--jobs`` jobs at the default concurrency: jobs/s, peak RSS of the worker plus
   its Chromium processes (sum over the process tree, sampled every 0.25 s), and its growth from job 100 to
   the last job.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from playwright.async_api import async_playwright

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import the checkout's packages

from localplane.services import MotoServer, RedisServer  # noqa: E402
from scraper.settings import DEFAULT_CHROMIUM_ARGS  # noqa: E402
from standin import StandinServer  # noqa: E402

CREATORS = 25


def tree_rss_bytes(root: int) -> int:
    """RSS of `root` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


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
            Attributes={"FifoQueue": "true", "VisibilityTimeout": "120",
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


def run_worker(env: dict[str, str], site: StandinServer, jobs: int, sample: bool = False
               ) -> dict[str, float]:
    """Spawn the worker, wait until `jobs` profile pages were served, stop it; return timings and RSS."""
    base = profile_pages(site)
    spawned = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "scraper"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures: dict[str, float] = {"peak_rss": 0.0}
    first = start_jobs = None
    deadline = spawned + 1800
    try:
        while (done := profile_pages(site) - base) < jobs:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker stopped or timed out after {done} jobs")
            now = time.monotonic()
            if done >= 1 and first is None:
                first = now
            if sample:
                rss = tree_rss_bytes(proc.pid)
                figures["peak_rss"] = max(figures["peak_rss"], rss)
                if done >= 100 and "rss_at_100" not in figures:
                    figures["rss_at_100"] = rss
                if done >= 10 and start_jobs is None:
                    start_jobs = (now, done)
            time.sleep(0.25 if sample else 0.01)
        end = time.monotonic()
        if sample:
            figures["rss_at_end"] = tree_rss_bytes(proc.pid)
        figures["cold_start_s"] = (first or end) - spawned
        t0, d0 = start_jobs or (first or spawned, 1 if jobs > 1 else 0)
        figures["jobs_per_s"] = max(jobs - d0, 1) / max(end - t0, 1e-6)
        figures["per_job_s"] = 1 / figures["jobs_per_s"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return figures


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
            for field in ("profile-name", "profile-bio", "posts-count", "followers-count", "likes-count"):
                await page.text_content(f"[data-testid={field}]")
            await context.close()
        elapsed = time.monotonic() - began
        await browser.close()
    return elapsed / jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--ratio-jobs", type=int, default=150)
    args = parser.parse_args()
    with MotoServer() as moto, RedisServer() as redis, StandinServer() as site:
        plane = Plane(moto)
        plane.send_jobs(1)
        cold = run_worker(worker_env(plane, redis, site), site, 1)
        print(f"cold start to first job done: {cold['cold_start_s']:.2f} s")

        plane.send_jobs(args.ratio_jobs)
        single = run_worker(worker_env(plane, redis, site, HUNTAZE_CONCURRENCY="1"), site, args.ratio_jobs)
        bare = asyncio.run(bare_playwright(site, args.ratio_jobs))
        print(f"per job, worker at concurrency 1: {single['per_job_s'] * 1000:.1f} ms; bare Playwright: "
              f"{bare * 1000:.1f} ms; overhead ratio {single['per_job_s'] / bare:.2f} (aim <= 1.3)")

        plane.send_jobs(args.jobs)
        load = run_worker(worker_env(plane, redis, site), site, args.jobs, sample=True)
        growth = (load["rss_at_end"] - load.get("rss_at_100", load["rss_at_end"])) / load.get("rss_at_100", 1)
        print(f"{args.jobs} jobs at default concurrency: {load['jobs_per_s']:.1f} jobs/s per worker")
        print(f"peak RSS worker+Chromium: {load['peak_rss'] / 2**20:.0f} MiB (aim < 1024); "
              f"at job 100: {load.get('rss_at_100', 0) / 2**20:.0f} MiB, at the end: "
              f"{load['rss_at_end'] / 2**20:.0f} MiB, growth {growth:+.1%} (aim < 10%)")


if __name__ == "__main__":
    main()
