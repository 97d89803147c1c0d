"""Scraper worker benchmark against bare Playwright and crawlee-python, on the same unit of work, in one run.

Run: ``.venv/bin/python bench/scraper/bench_worker.py [--units 30] [--rounds 2] [--concurrency 1 3]``

The unit of work (bench/scraper/unit.py) is what a creator's two jobs do: one profile scrape and one send
through the stand-in's JavaScript form, logging in through the form on a creator's first visit. The worker gets
them as two FIFO messages (scrape_profile, send_message) of that creator; bare Playwright (bare_unit.py) and
crawlee-python (crawlee_unit.py) run the same steps in one fresh context per unit. Everything is real and local
(moto server, redis-server, the stand-in, Debian's Chromium); each tool runs as its own process, in interleaved
rounds (the order rotates each round) so that the host's changing load hits all three alike. Per run:

- units/s: (N - 1) / (last unit done - first unit done), a unit being done when the stand-in records its send;
- CPU-s per unit: user + system CPU of the whole process tree (python, the Playwright driver, every Chromium
  process; sampled every 0.2 s, the last value seen per process) when the N-th send is recorded, over N. It
  includes start-up and logins, for every tool alike;
- PSS peak: summed PSS of the tree (/proc/<pid>/smaps_rollup), sampled every second;
- cold start: process spawn to the first unit done.
Figures are medians over the rounds. Nothing here asserts time; the machine may be loaded by others, so compare
the tools within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import the checkout's packages
sys.path.insert(0, str(HERE))

from unit import FAN, creator_of, unit_text  # noqa: E402

from localplane.services import MotoServer, RedisServer  # noqa: E402
from standin import StandinServer  # noqa: E402


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

    def send_units(self, units: int, creators: int) -> None:
        """Each unit as two messages of its creator's group: scrape_profile, then send_message."""
        bodies = []
        for unit in range(units):
            creator = creator_of(unit, creators)
            common = {"creator_id": creator, "user_id": FAN, "timestamp": datetime.now(UTC).isoformat()}
            bodies.append({**common, "action": "scrape_profile", "profile_url": f"https://x.invalid/u/{creator}",
                           "metadata": {"correlation_id": f"bench-p-{uuid.uuid4().hex}"}})
            bodies.append({**common, "action": "send_message", "message_content": unit_text(unit),
                           "metadata": {"correlation_id": f"bench-s-{uuid.uuid4().hex}"}})
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps(body), "MessageGroupId": body["creator_id"],
                        "MessageDeduplicationId": uuid.uuid4().hex}
                       for i, body in enumerate(bodies[start : start + 10])]
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



CLK_TCK = os.sysconf("SC_CLK_TCK")


class TreeSampler(threading.Thread):
    """CPU-seconds and peak PSS of a process tree, sampled on a thread until `stop()`."""

    def __init__(self, root: int, interval_s: float = 0.2, pss_every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval_s = interval_s
        self.pss_every_s = pss_every_s
        self.pss_peak = 0
        self._ticks: dict[tuple[int, str], int] = {}
        self._kinds: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def sample_cpu(self) -> float:
        with self._lock:
            for pid in _descendants(self.root):
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                # utime, stime are fields 14 and 15 of stat; starttime (22) tells a reused pid apart
                key = (pid, fields[19])
                self._ticks[key] = int(fields[11]) + int(fields[12])
                kind = _kind(pid).split("-")[0]  # worker (python), playwright (node), chromium
                kind = "python" if kind == "worker" else kind
                if kind in ("python", "playwright", "chromium") or key not in self._kinds:
                    self._kinds[key] = kind  # the last name seen: a wrapper (sh) execs Chromium
            return sum(self._ticks.values()) / CLK_TCK

    def cpu_by_kind(self) -> dict[str, float]:
        with self._lock:
            out: dict[str, float] = {}
            for key, ticks in self._ticks.items():
                kind = self._kinds.get(key, "?")
                out[kind] = out.get(kind, 0.0) + ticks / CLK_TCK
            return out

    def run(self) -> None:
        next_pss = 0.0
        while not self._stopped.is_set():
            self.sample_cpu()
            if time.monotonic() >= next_pss:
                self.pss_peak = max(self.pss_peak, tree_memory(self.root).pss)
                next_pss = time.monotonic() + self.pss_every_s
            self._stopped.wait(self.interval_s)

    def stop(self) -> None:
        self._stopped.set()


@dataclass
class Figures:
    tool: str
    concurrency: int
    round: int
    units_per_s: float
    cpu_s_per_unit: float
    pss_peak_mib: float
    cold_start_s: float
    load: float  # 1-minute load average when the run started
    load_end: float  # ... and when it ended
    cpu_python: float = 0.0  # CPU-s per unit of the tool's own Python process
    cpu_browser: float = 0.0  # ... of its browser: the Playwright driver (node) and the Chromium tree
    requests_per_unit: dict[str, float] = field(default_factory=dict)  # the stand-in's count per route / units
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health_stats(port: int) -> dict[str, Any]:
    """The worker's counters from its /health (jobs, browser contexts opened and reused)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return dict(json.load(response).get("stats", {}))
    except (OSError, ValueError) as exc:
        return {"error": str(exc)}


class Bench:
    def __init__(self, moto: MotoServer, redis: RedisServer, site: StandinServer, units: int, creators: int,
                 profile: str | None = None) -> None:
        self.plane = Plane(moto)
        self.profile = profile
        self.redis = redis
        self.site = site
        self.units = units
        self.creators = creators

    def _command(self, tool: str, concurrency: int, health_port: int) -> tuple[list[str], dict[str, str]]:
        if tool == "worker":
            self.plane.send_units(self.units, self.creators)
            env = worker_env(self.plane, self.redis, self.site, HUNTAZE_CONCURRENCY=str(concurrency),
                             HUNTAZE_LOG_LEVEL="WARNING", HUNTAZE_HEALTH_PORT=str(health_port))
            if self.profile:
                return [sys.executable, "-m", "bench.scraper.profile_worker", self.profile], env
            return [sys.executable, "-m", "scraper"], env
        script = {"bare": "bare_unit.py", "crawlee": "crawlee_unit.py"}[tool]
        return ([sys.executable, str(HERE / script), "--base", self.site.url, "--units", str(self.units),
                 "--concurrency", str(concurrency), "--creators", str(self.creators)],
                {**os.environ, "CRAWLEE_STORAGE_DIR": str(Path("/tmp") / f"crawlee-{uuid.uuid4().hex[:8]}")})

    def run(self, tool: str, concurrency: int, rnd: int) -> Figures:
        self.site.reset()
        self.redis_flush()
        health_port = free_port()
        command, env = self._command(tool, concurrency, health_port)
        load = os.getloadavg()[0]
        spawned = time.time()
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        deadline = time.monotonic() + 900
        try:
            while len(self.site.state.messages()) < self.units:
                if proc.poll() is not None and len(self.site.state.messages()) < self.units:
                    raise SystemExit(f"{tool} exited early ({proc.returncode}): "
                                     f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"{tool} timed out")
                time.sleep(0.05)
            cpu_s = sampler.sample_cpu()
            by_kind = {k: round(v / self.units, 3) for k, v in sampler.cpu_by_kind().items()}
            stats = health_stats(health_port) if tool == "worker" else {}
        finally:
            sampler.stop()
            if tool == "worker":
                proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sends = self.site.state.messages()
        texts = [m.text for m in sends]
        assert sorted(texts) == sorted(unit_text(u) for u in range(self.units)), f"{tool}: wrong sends"
        times = sorted(m.received_at.timestamp() for m in sends)
        by_route = self.site.state.stats()["by_route"]
        assert isinstance(by_route, dict)
        requests = {route: round(sum(counts.values()) / self.units, 2) for route, counts in by_route.items()}
        cpu_python = by_kind.get("python", 0.0)
        return Figures(tool, concurrency, rnd, (len(times) - 1) / max(times[-1] - times[0], 1e-6),
                       cpu_s / self.units, sampler.pss_peak / 2**20, times[0] - spawned, load, os.getloadavg()[0],
                       cpu_python, cpu_s / self.units - cpu_python, requests,
                       {"cpu_s_per_unit_by_process": by_kind, "worker_stats": stats})

    def redis_flush(self) -> None:
        import redis as redis_client

        client = redis_client.Redis.from_url(self.redis.url)
        client.flushall()
        client.close()


TOOLS = ("worker", "bare", "crawlee")
UNIT_OF_WORK = (
    "unit of work, the same for every tool: for one creator, GET /u/<creator> (bounced once per creator to /login "
    "and logged in through the form), read the 5 profile fields in one evaluate, GET /inbox/fan-1?client_ref=..., "
    "fill the JS form, click send, wait until the status is 'sent' or 'error', check it is 'sent' and read the "
    "send's message id. The worker runs it as two FIFO jobs of the creator (scrape_profile, send_message) and also "
    "does its product work (SQS receive/delete, idempotency in Redis, result in S3, breaker); bare and crawlee run "
    "it in one context per unit. The stand-in's request count per unit is printed per tool to show the pages are "
    "the same.")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _paired(runs: list[Figures], c: int, metric: str, other: str, ratio: bool = True) -> list[float]:
    """Per round: worker's `metric` over (or minus) `other` tool's, in the same round (same load)."""
    out = []
    for rnd in sorted({r.round for r in runs}):
        mine = [r for r in runs if r.round == rnd and r.concurrency == c]
        worker = next((r for r in mine if r.tool == "worker"), None)
        peer = next((r for r in mine if r.tool == other), None)
        if worker and peer:
            a, b = getattr(worker, metric), getattr(peer, metric)
            out.append(a / b if ratio else a - b)
    return out


def report(runs: list[Figures]) -> None:
    print("\n" + UNIT_OF_WORK)
    concurrencies = sorted({r.concurrency for r in runs})
    print("\nper round, worker against the others in the same round (the rounds are interleaved, so each pair saw "
          "about the same load):")
    print(f"{'round':>5} {'c':>2} {'CPU w/bare':>10} {'py w-bare':>10} {'browser w/bare':>14} "
          f"{'units/s w/crawlee':>17} {'cold w-bare s':>13} {'load':>10}")
    for rnd in sorted({r.round for r in runs}):
        for c in concurrencies:
            mine = {r.tool: r for r in runs if r.round == rnd and r.concurrency == c}
            w, b, k = (mine.get(t) for t in TOOLS)
            if not w:
                continue
            loads = [r.load for r in mine.values()] + [r.load_end for r in mine.values()]
            cpu = f"{w.cpu_s_per_unit / b.cpu_s_per_unit:.2f}x" if b else "-"
            py = f"{w.cpu_python - b.cpu_python:+.3f}" if b else "-"
            browser = f"{w.cpu_browser / b.cpu_browser:.2f}x" if b else "-"
            speed = f"{w.units_per_s / k.units_per_s:.2f}x" if k else "-"
            cold = f"{w.cold_start_s - b.cold_start_s:+.2f}" if b else "-"
            print(f"{rnd:>5} {c:>2} {cpu:>10} {py:>10} {browser:>14} {speed:>17} {cold:>13} "
                  f"{min(loads):>4.1f}-{max(loads):<4.1f}")

    print("\nmedian over rounds (units/s higher is better; CPU-s/unit, PSS and cold start lower); CPU split into "
          "the tool's Python process and its browser (Playwright driver + Chromium tree):")
    print(f"{'tool':<8} {'c':>2} {'runs':>4} {'units/s':>8} {'CPU-s/unit':>11} {'python':>7} {'browser':>8} "
          f"{'PSS peak MiB':>13} {'cold start s':>13} {'load':>6}")
    table: dict[tuple[str, int], dict[str, float]] = {}
    for tool in TOOLS:
        for c in concurrencies:
            mine = [r for r in runs if r.tool == tool and r.concurrency == c]
            if not mine:
                continue
            row = {k: _median([getattr(r, k) for r in mine])
                   for k in ("units_per_s", "cpu_s_per_unit", "cpu_python", "cpu_browser", "pss_peak_mib",
                             "cold_start_s", "load")}
            row["pss_max"] = max(r.pss_peak_mib for r in mine)
            table[(tool, c)] = row
            print(f"{tool:<8} {c:>2} {len(mine):>4} {row['units_per_s']:>8.2f} {row['cpu_s_per_unit']:>11.3f} "
                  f"{row['cpu_python']:>7.3f} {row['cpu_browser']:>8.3f} {row['pss_peak_mib']:>13.0f} "
                  f"{row['cold_start_s']:>13.2f} {row['load']:>6.1f}")

    print("\nthe same unit of work? the stand-in's requests per unit, by route (median over rounds):")
    for c in concurrencies:
        per_tool: dict[str, dict[str, float]] = {}
        for tool in TOOLS:
            mine = [r for r in runs if r.tool == tool and r.concurrency == c]
            if mine:
                routes = sorted({route for r in mine for route in r.requests_per_unit})
                per_tool[tool] = {route: _median([r.requests_per_unit.get(route, 0.0) for r in mine])
                                  for route in routes}
        for tool, routes in per_tool.items():
            print(f"  c={c} {tool:<8} " + ", ".join(f"{route} {n:g}" for route, n in routes.items()))
        if len({json.dumps(routes, sort_keys=True) for routes in per_tool.values()}) > 1:
            print(f"  c={c}: NOT the same pages for every tool: compare the rows above")
        worker_runs = [r for r in runs if r.tool == "worker" and r.concurrency == c]
        for r in worker_runs:
            stats = r.extra.get("worker_stats", {})
            print(f"  c={c} worker round {r.round}: jobs {stats.get('jobs_finished')}, browser contexts opened "
                  f"{stats.get('contexts_opened')}, reused {stats.get('contexts_reused')} (a unit's send reuses "
                  "its scrape's context)")

    print("\ntargets: CPU per unit <= 1.1x bare; units/s >= crawlee; PSS peak < 800 MiB; cold start <= bare + 1 s "
          "(median of the per-round ratios; in brackets the ratio of the medians)")
    for c in concurrencies:
        worker, bare, crawlee = (table.get((t, c)) for t in TOOLS)
        if not worker:
            continue
        if bare:
            cpu = _median(_paired(runs, c, "cpu_s_per_unit", "bare"))
            py = _median(_paired(runs, c, "cpu_python", "bare", ratio=False))
            browser = _median(_paired(runs, c, "cpu_browser", "bare"))
            cold = _median(_paired(runs, c, "cold_start_s", "bare", ratio=False))
            print(f"  c={c}: CPU worker/bare {cpu:.2f}x [{worker['cpu_s_per_unit'] / bare['cpu_s_per_unit']:.2f}x] "
                  f"{'met' if cpu <= 1.1 else 'NOT met'} (python {py:+.3f} CPU-s/unit, browser {browser:.2f}x); "
                  f"cold start worker - bare {cold:+.2f} s {'met' if cold <= 1.0 else 'NOT met'}")
        if crawlee:
            speed = _median(_paired(runs, c, "units_per_s", "crawlee"))
            print(f"  c={c}: units/s worker/crawlee {speed:.2f}x "
                  f"[{worker['units_per_s'] / crawlee['units_per_s']:.2f}x] {'met' if speed >= 1.0 else 'NOT met'}")
        print(f"  c={c}: worker PSS peak {worker['pss_max']:.0f} MiB (highest run) "
              f"{'met' if worker['pss_max'] < 800 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=30, help="units per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--creators", type=int, default=6)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--tools", nargs="+", default=list(TOOLS))
    parser.add_argument("--out", help="append each run's figures as a JSON line to this file")
    parser.add_argument("--profile", metavar="DIR", help="run the worker under yappi (bench/scraper/profile_worker.py) "
                        "and write its profile to DIR; its cost figures are then not comparable")
    args = parser.parse_args()
    runs: list[Figures] = []
    print(UNIT_OF_WORK, flush=True)
    with MotoServer() as moto, RedisServer() as redis, StandinServer() as site:
        bench = Bench(moto, redis, site, args.units, args.creators, args.profile)
        for rnd in range(1, args.rounds + 1):
            for c in args.concurrency:
                shift = (rnd - 1) % len(args.tools)  # each tool goes first, middle and last in turn
                for tool in args.tools[shift:] + args.tools[:shift]:
                    figures = bench.run(tool, c, rnd)
                    runs.append(figures)
                    print(f"round {rnd} {tool:<8} c={c}: {figures.units_per_s:.2f} units/s, "
                          f"{figures.cpu_s_per_unit:.3f} CPU-s/unit (python {figures.cpu_python:.3f}, browser "
                          f"{figures.cpu_browser:.3f}), PSS peak {figures.pss_peak_mib:.0f} MiB, cold start "
                          f"{figures.cold_start_s:.2f} s, load {figures.load:.1f}-{figures.load_end:.1f}; by process "
                          f"{figures.extra['cpu_s_per_unit_by_process']}", flush=True)
                    if args.out:
                        with open(args.out, "a") as out:
                            out.write(json.dumps(figures.__dict__) + "\n")
    report(runs)


if __name__ == "__main__":
    main()
