"""Benchmark of `huntazectl apply`: apply-from-empty time, no-op reconcile time, API read calls per resource.

Run: ``.venv/bin/python bench/controller/bench_reconcile.py [--sizes 50,100,200] [--concurrency 4]``

Starts its own moto server (over HTTP, like the tests), counts every AWS call through a botocore
``before-call`` hook on the shared session of `common.aws`, and prints one row per stack: the basic test stack,
the full stack in manifests/ (when present), and synthetic stacks of the given sizes (a mix of every kind
in controller/kinds/{queue,topic,bucket,log_group,secret,role}.py, half the queues with a dead-letter queue).
Prints figures only; it asserts nothing about time. Growth is judged from the per-resource columns; the
no-op ``reads/res`` column is issue 10's batched-reads target (at most 1.2 on the full stack); the columns after
``|`` are the peer, the same no-op in the same run with batched reads switched off (one read path per resource,
as before batching).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import common.aws
from controller.errors import SpecError
from controller.kinds.base import Context, Prefetched
from controller.reconciler import ApplyOptions, Reconciler
from controller.specs import LoadedStack, LoadOptions, load
from localplane.services import MotoServer

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
_UNKNOWN_VARIABLE = re.compile(r"unknown variable \$\{(\w+)\}")
WRITE_PREFIXES = ("Create", "Put", "Update", "Delete", "Register", "Tag", "Untag", "Set", "Attach", "Detach",
                  "Subscribe", "Associate", "Restore", "Add", "Remove")


@dataclass
class Figures:
    name: str
    resources: int
    apply_s: float
    apply_calls: int
    apply_writes: int
    noop_s: float
    noop_calls: int
    noop_writes: int
    unbatched_s: float
    unbatched_reads: int
    noop_operations: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def noop_reads(self) -> int:
        return self.noop_calls - self.noop_writes


class Counter:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.last: list[str] = []

    def record(self, model: object, **_: object) -> None:
        self.calls.append(model.name)  # type: ignore[attr-defined]

    def take(self) -> tuple[int, int]:
        calls, self.calls = self.calls, []
        self.last = calls
        return len(calls), sum(1 for c in calls if c.startswith(WRITE_PREFIXES))


def synthetic_stack(root: Path, size: int) -> Path:
    """``size`` resources: repeating blocks of 8 (DLQ + queue, FIFO queue, topic, log group, role, bucket,
    secret)."""
    docs: list[str] = []
    head = "apiVersion: huntaze.io/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n"
    for i in range(size):
        slot = i % 8
        block = i // 8
        kind, name, spec = {
            0: ("Queue", f"b{block}-dlq", "  messageRetentionPeriod: 1209600\n"),
            1: ("Queue", f"b{block}-jobs", f"  visibilityTimeout: 120\n  deadLetter:\n    queueRef: b{block}-dlq\n"),
            2: ("Queue", f"b{block}-flow", "  fifo: true\n  contentBasedDeduplication: true\n"),
            3: ("Topic", f"b{block}-alerts", "  displayName: alerts\n"),
            4: ("LogGroup", f"/bench/b{block}", "  retentionInDays: 14\n"),
            5: ("Role", f"b{block}-role", "  trustedServices: [lambda.amazonaws.com]\n  inlinePolicies:\n"
                "    q:\n      Statement:\n        Effect: Allow\n        Action: sqs:SendMessage\n"
                "        Resource: '*'\n"),
            6: ("Bucket", f"bench-b{block}-results", "  lifecycle:\n    - id: expire\n      expirationDays: 7\n"),
            7: ("Secret", f"bench/b{block}/token", "  valueFrom:\n    env: BENCH_SECRET\n"),
        }[slot]
        docs.append(head.format(kind=kind, name=name) + spec)
    path = root / f"synthetic-{size}"
    path.mkdir()
    (path / "stack.yaml").write_text("---\n".join(docs))
    return path


def load_with_placeholders(paths: list[str], variables: dict[str, str]) -> LoadedStack:
    """Load; deploy-time variables other than ENV/AWS_* (a Redis URL...) get placeholder values."""
    extra: dict[str, str] = {}
    while True:
        try:
            return load(LoadOptions(paths, "local", {**variables, **extra}))
        except SpecError as exc:
            names = {m for p in exc.problems for m in _UNKNOWN_VARIABLE.findall(p)} - set(extra)
            if not names:
                raise
            extra.update({n: f"http://127.0.0.1:9/{n.lower()}" for n in names})


def measure(name: str, stack: LoadedStack, ctx_factory: Callable[[], Context], counter: Counter,
            concurrency: int) -> Figures:
    options = ApplyOptions(concurrency=concurrency)
    started = time.perf_counter()
    results = Reconciler(ctx_factory()).apply(stack, options)
    apply_s = time.perf_counter() - started
    failed = [r for r in results if r.failed]
    if failed:
        raise SystemExit(f"{name}: apply failed: {failed[0].key}: {failed[0].message}")
    apply_calls, apply_writes = counter.take()
    started = time.perf_counter()
    Reconciler(ctx_factory()).apply(stack, options)
    noop_s = time.perf_counter() - started
    noop_calls, noop_writes = counter.take()
    noop_operations = collections.Counter(counter.last)
    # The peer: the same no-op with batched reads switched off (one read path per resource, as before issue 10).
    started = time.perf_counter()
    Reconciler(replace(ctx_factory(), prefetched=Unbatched())).apply(stack, options)
    unbatched_s = time.perf_counter() - started
    unbatched_calls, unbatched_writes = counter.take()
    n = len(stack.manifests)
    figures = Figures(name, n, apply_s, apply_calls, apply_writes, noop_s, noop_calls, noop_writes,
                      unbatched_s, unbatched_calls - unbatched_writes)
    figures.noop_operations = noop_operations
    return figures


class Unbatched(Prefetched):
    """No batch read: every kind reads its resources one by one (the read path before batching)."""

    enabled = False

    def memo(self, namespace: str, key: str, compute: Callable[[], T]) -> T:
        return compute()


def print_table(rows: list[Figures]) -> None:
    print(f"{'stack':<18}{'res':>5}{'apply s':>9}{'ms/res':>8}{'calls/res':>10}{'writes':>8}"
          f"{'no-op s':>9}{'ms/res':>8}{'reads':>7}{'reads/res':>10}{'writes':>8}"
          f" | {'unbatched s':>12}{'reads/res':>10}")
    for r in rows:
        print(f"{r.name:<18}{r.resources:>5}{r.apply_s:>9.2f}{1000 * r.apply_s / r.resources:>8.1f}"
              f"{r.apply_calls / r.resources:>10.2f}{r.apply_writes:>8}{r.noop_s:>9.2f}"
              f"{1000 * r.noop_s / r.resources:>8.1f}{r.noop_reads:>7}{r.noop_reads / r.resources:>10.2f}"
              f"{r.noop_writes:>8} | {r.unbatched_s:>12.2f}{r.unbatched_reads / r.resources:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--by-operation", action="store_true", help="also print the no-op's calls by operation")
    args = parser.parse_args()
    os.environ.update({"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "BENCH_SECRET": "bench-value", "T_REDIS_AUTH_TOKEN": "bench-value"})
    with MotoServer() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["AWS_ENDPOINT_URL"] = server.url
        counter = Counter()
        common.aws.clear_client_cache()
        account = common.aws.client("sts").get_caller_identity()["Account"]
        common.aws.add_event_hook("before-call", counter.record)
        variables = {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": account}

        def ctx() -> Context:
            return Context(stack="bench", region="us-east-1", account_id=account, client=common.aws.client)

        stacks: list[tuple[str, list[Path]]] = [("basic (tests)", [REPO / "tests/controller/stacks/basic"])]
        if any((REPO / "manifests").rglob("*.yaml")):
            stacks.append(("full stack", [REPO / "manifests", REPO / "ecs-specs"]))
        stacks += [(f"synthetic-{n}", [synthetic_stack(Path(tmp), int(n))]) for n in args.sizes.split(",")]
        rows = []
        for name, paths in stacks:
            server.reset()
            counter.take()
            try:
                loaded = load_with_placeholders([str(p) for p in paths if p.is_dir()], variables)
            except SpecError as exc:
                print(f"  skipped {name}: its specs do not load:\n    " + "\n    ".join(exc.problems), flush=True)
                continue
            for manifest in loaded.manifests:  # secrets are created from env vars: give them placeholders
                source = getattr(manifest.spec, "value_from", None)
                if manifest.kind == "Secret" and source is not None and source.env:
                    os.environ.setdefault(source.env, "bench-placeholder")
            rows.append(measure(name, loaded, ctx, counter, args.concurrency))
            print(f"  measured {name}", flush=True)
        print(f"\nconcurrency {args.concurrency} per tier, moto over HTTP on loopback\n")
        print_table(rows)
        if args.by_operation:
            for row in rows:
                ops = ", ".join(f"{op} {n}" for op, n in row.noop_operations.most_common())
                print(f"\n{row.name} no-op calls: {ops}")


if __name__ == "__main__":
    main()
