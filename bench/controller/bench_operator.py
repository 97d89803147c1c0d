"""Benchmark of the operator (`huntazectl controller run`) next to today's one-shot `apply`, on the same stacks.

Run: ``.venv/bin/python bench/controller/bench_operator.py [--size 200] [--idle-cycles 2] [--edits 2]
[--skip-noop | --skip-idle]``

Starts its own moto server. For the full stack (manifests/ + ecs-specs/) and a synthetic stack of ``--size``
resources (bench_reconcile's mix): applies it, then measures the same unit of work side by side, a no-op
reconcile pass of that stack: by `apply` (its `Reconciler.apply` call; read calls counted with a botocore hook),
by `apply` with batched reads off (as before issue 10), and by the controller (its second full cycle; read calls
and seconds from the cycle's journal record), and prints reads per resource and the ratios. Then, with the
production interval (60 s): the idle controller's CPU share (from /proc, between the end of one full cycle and
the end of the ``--idle-cycles``-th next one, so the window holds whole intervals: heartbeats, spec polling and
the cycles themselves), and the time from a console edit to its correction.
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import common.aws
from controller.cli import main as cli
from controller.journal import read_file_records
from controller.kinds.base import Prefetched
from controller.reconciler import Reconciler
from localplane.services import MotoServer

REPO = Path(__file__).resolve().parents[2]
FULL = ["-f", str(REPO / "manifests"), "-f", str(REPO / "ecs-specs"),
        "--var", "REDIS_URL=redis://127.0.0.1:9/0", "--var", "SITE_URL=http://127.0.0.1:9/site"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _bench_reconcile() -> Any:
    spec = importlib.util.spec_from_file_location("bench_reconcile", Path(__file__).with_name("bench_reconcile.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Reads:
    def __init__(self) -> None:
        self.reads = 0

    def record(self, model: Any, **_: Any) -> None:
        if model.name.startswith(("Describe", "Get", "List", "Head")):
            self.reads += 1


def _controller(args: list[str], journal: Path, interval: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "controller", "controller", "run", *args, "--env", "local", "--interval", interval,
            "--journal-file", str(journal), "--log-group", "none"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=journal.parent)


def _wait(check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise RuntimeError("timed out")


def _cycles(journal: Path) -> list[Any]:
    if not journal.exists():
        return []
    return [r for r in read_file_records(journal) if r.type == "cycle" and r.action == "full"]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _quiet_cli(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return cli(argv)


@contextlib.contextmanager
def _batched_reads(enabled: bool) -> Iterator[None]:
    """Batch reads on (as `apply` and the controller run now) or off (one read path per resource, as `apply` ran
    when issue 10 was filed: 2.45 reads per resource on the full stack)."""
    before = Prefetched.enabled
    Prefetched.enabled = enabled
    try:
        yield
    finally:
        Prefetched.enabled = before


def _apply_noop_pass(args: list[str], counter: Reads) -> tuple[float, int]:
    """Seconds and read calls of the reconcile pass of a no-op `huntazectl apply` (the real command, in this
    process, after an apply that created everything): `Reconciler.apply` only, so spec loading, the account
    lookup and the output are left out, as they are from a controller cycle."""
    measured: list[tuple[float, int]] = []
    original = Reconciler.apply

    def timed(self: Reconciler, *a: Any, **k: Any) -> Any:
        counter.reads = 0
        started = time.perf_counter()
        try:
            return original(self, *a, **k)
        finally:
            measured.append((time.perf_counter() - started, counter.reads))

    Reconciler.apply = timed  # type: ignore[method-assign]
    try:
        _quiet_cli(["apply", *args, "--env", "local", "--no-lock", "-o", "json"])
    finally:
        Reconciler.apply = original  # type: ignore[method-assign]
    (figures,) = measured
    return figures


def noop_row(name: str, args: list[str], resources: int, work: Path, counter: Reads) -> None:
    """One unit of work, three ways, side by side on the same stack and moto state: a no-op reconcile pass by
    `apply` (batched reads on, then off) and a no-op full cycle of the controller (its second one: like the
    apply pass, it runs in a process that has already done a pass, so clients and the Lambda zip are warm)."""
    assert _quiet_cli(["apply", *args, "--env", "local", "--no-lock"]) in (0, 1)
    apply_s, apply_reads = _apply_noop_pass(args, counter)
    with _batched_reads(False):
        before_s, before_reads = _apply_noop_pass(args, counter)
    journal = work / f"noop-{name}.jsonl"
    proc = _controller(args, journal, "2s", work / f"noop-{name}.log")
    try:
        cold, warm = _wait(lambda: _cycles(journal)[:2] if len(_cycles(journal)) >= 2 else None, 600)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    reads, seconds = warm.counts["read_calls"], warm.duration_s
    print(f"| {name} | {resources} | apply no-op pass | {apply_s:.2f} | {apply_reads} | "
          f"{apply_reads / resources:.2f} | 1 |")
    print(f"| {name} | {resources} | apply no-op pass, batched reads off (before issue 10) | {before_s:.2f} | "
          f"{before_reads} | {before_reads / resources:.2f} | reads x{before_reads / max(1, apply_reads):.2f}, "
          f"time x{before_s / apply_s:.2f} |")
    print(f"| {name} | {resources} | controller no-op cycle | {seconds:.2f} | {reads} | {reads / resources:.2f} | "
          f"reads x{reads / max(1, apply_reads):.2f}, time x{seconds / apply_s:.2f} (vs before issue 10: reads "
          f"x{reads / max(1, before_reads):.2f}, time x{seconds / before_s:.2f}); writes {warm.counts['write_calls']}"
          f"; first cycle {cold.duration_s:.2f} s, {cold.counts['read_calls']} reads |")


def noop_rows(size: int, work: Path, counter: Reads, moto: MotoServer) -> None:
    print("| stack | resources | what (a no-op pass of the stack) | seconds | read calls | reads per resource | "
          "vs apply no-op pass |")
    print("|---|---|---|---|---|---|---|")
    noop_row("full", FULL, _count(FULL), work, counter)
    synthetic = _bench_reconcile().synthetic_stack(work, size)
    moto.reset()
    common.aws.clear_client_cache()
    common.aws.add_event_hook("before-call", counter.record)
    noop_row(f"synthetic-{size}", ["-f", str(synthetic)], size, work, counter)


def _idle_cpu(proc: subprocess.Popen[bytes], journal: Path, intervals: int) -> None:
    """CPU share over whole intervals: from the end of the first full cycle (start-up excluded) to the end of
    the ``intervals``-th one after it."""
    first = len(_wait(lambda: _cycles(journal), 300))
    t0, c0 = time.monotonic(), _cpu_s(proc.pid)
    _wait(lambda: len(_cycles(journal)) >= first + intervals, 120 * intervals + 120)
    t1, c1 = time.monotonic(), _cpu_s(proc.pid)
    seconds = [c.duration_s for c in _cycles(journal)[first:first + intervals]]
    print(f"\nidle controller, full stack, --interval 60s: CPU {c1 - c0:.2f} s over {t1 - t0:.0f} s "
          f"({intervals} full intervals) = {100 * (c1 - c0) / (t1 - t0):.2f} % of a core (target < 1 %); "
          f"cycle wall times {', '.join(f'{s:.2f}' for s in seconds)} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--idle-cycles", type=int, default=2, help="full intervals in the idle CPU window")
    parser.add_argument("--skip-noop", action="store_true", help="only the idle CPU and console-edit figures")
    parser.add_argument("--edits", type=int, default=2)
    parser.add_argument("--skip-idle", action="store_true", help="only the no-op figures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    with MotoServer() as moto:
        os.environ.update({"AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
                           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_ACCOUNT_ID": "123456789012"})
        common.aws.clear_client_cache()
        counter = Reads()
        common.aws.add_event_hook("before-call", counter.record)
        if not args.skip_noop:
            noop_rows(args.size, work, counter, moto)
        if args.skip_idle:
            return

        moto.reset()
        common.aws.clear_client_cache()
        _quiet_cli(["apply", *FULL, "--env", "local", "--no-lock"])
        journal = work / "idle.jsonl"
        proc = _controller(FULL, journal, "60s", work / "idle.log")
        try:
            _idle_cpu(proc, journal, args.idle_cycles)
            sqs = common.aws.client("sqs")
            url = sqs.get_queue_url(QueueName="huntaze-rate-limiter-dlq")["QueueUrl"]
            for i in range(args.edits):
                time.sleep(random.uniform(1, 20))  # an edit at an arbitrary point of the interval
                sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(100 + i)})
                edited = time.monotonic()
                value = str(100 + i)
                _wait(lambda v=value: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
                      ["Attributes"]["VisibilityTimeout"] != v, 200)
                print(f"console edit #{i + 1} corrected after {time.monotonic() - edited:.1f} s "
                      "(target: within one interval + 5 s = 65 s)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    print(f"\n(work files in {work})")


def _count(args: list[str]) -> int:
    from controller.specs import LoadOptions, load

    paths = [a for i, a in enumerate(args) if i and args[i - 1] == "-f"]
    variables = dict(a.split("=", 1) for i, a in enumerate(args) if i and args[i - 1] == "--var")
    stack = load(LoadOptions(paths, "local", {"ENV": "local", "AWS_REGION": "us-east-1",
                                              "AWS_ACCOUNT_ID": "123456789012", **variables}))
    return len(stack.manifests)


if __name__ == "__main__":
    main()
