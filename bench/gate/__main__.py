"""Benchmark of the gate: ``.venv/bin/python -m bench.gate [--decisions N] [--invocations N] [--burst N]``.

Prints figures, asserts nothing. Everything runs on this machine: a private redis-server and a moto server on
loopback ports, started and stopped here.

1. Redis time per decision (``INFO commandstats``), single and batch, beside the plain sliding-log control of
   /work/shared/peers/limiters in the same run, at backlogs of 0, 1,000 and 10,000 (`bench.gate.cost`).
2. Limiter decisions per second and p50/p99 latency, single client, one limit of 100 per 1 s, beside the
   `limits` library (moving window) and `pyrate-limiter` (Redis sliding log) on the same Redis in the same run,
   as ratios. Most decisions are rejections once the window fills, for every library alike.
3. Handler latency (p50/p99) for a batch of 10 records: all admitted (forwarded), and all throttled (deferred).
4. SQS API calls per delivered job under a 500-job burst, time-scaled to 50 per 1 s: the gate's sends, and the
   ReceiveMessage/DeleteMessageBatch calls of the poller (Lambda's event source mapping, played here by a loop).
5. Drain of a 500-job burst at 10 per 2 s with two pollers that lag (`bench.gate.drain`): time against the ideal
   (N jobs / limit), receives per job, and the most forwards in any 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from pyrate_limiter import Duration, Rate, RedisBucket
from pyrate_limiter import Limiter as PyrateLimiter

from bench.gate.cost import bench_cost
from bench.gate.drain import bench_drain
from common import aws, redis_keys
from gate import handler as gate_handler
from gate.batch import SQS_MAX_ATTEMPTS, SQS_READ_TIMEOUT_S
from gate.limiter import Limiter, LimitRequest
from gate.settings import parse_limits
from localplane.services import MotoServer, RedisServer

LIMIT = 100


def gate_client() -> Any:
    """The gate's own SQS client (cached by `common.aws`; the one `Gate.from_settings` builds): its calls are
    the gate's, distinct from the bench's poller client."""
    return aws.client("sqs", read_timeout_s=SQS_READ_TIMEOUT_S, max_attempts=SQS_MAX_ATTEMPTS)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[int], object], n: int) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        latencies.append(time.perf_counter() - t)
    return time.perf_counter() - started, latencies


def report(name: str, n: int, total: float, lat: list[float], base: float | None = None) -> float:
    rate = n / total
    ratio = f"  x{rate / base:.2f} vs gate" if base else ""
    print(f"  {name:<34} {rate:>9.0f} decisions/s  p50 {percentile(lat, .5) * 1e3:6.3f} ms"
          f"  p99 {percentile(lat, .99) * 1e3:6.3f} ms{ratio}")
    return rate


def bench_limiters(url: str, n: int) -> None:
    print(f"\n2. limiter decisions, {n} per library, limit {LIMIT}/1s, one client, local redis")
    client = redis.Redis.from_url(url)

    def fresh() -> None:
        client.flushall()
        client.set(redis_keys.LIMITER_EPOCH, "0")  # a new Redis: windows known empty

    fresh()
    gate = Limiter(client, parse_limits(f"global={LIMIT}/1s"), horizon_s=2)
    total, lat = timed(lambda i: gate.decide(LimitRequest(f"b{i}", f"c{i}", "u1", "scrape_profile")), n)
    base = report("gate (window, one call)", n, total, lat)
    fresh()
    batch = 10
    total, lat = timed(lambda i: gate.decide_batch(
        [LimitRequest(f"x{i}-{k}", f"c{i}-{k}", "u1", "scrape_profile") for k in range(batch)]), n // batch)
    report("gate (window, batch of 10) /decision", n, total, [x / batch for x in lat], base)
    fresh()
    reserving = Limiter(client, parse_limits(f"global={LIMIT}/1s"), horizon_s=max(60, n // LIMIT + 5))
    total, lat = timed(lambda i: reserving.decide(LimitRequest(f"r{i}", f"c{i}", "u1", "scrape_profile")), n)
    report("gate (window, reserving slots)", n, total, lat, base)
    client.flushall()
    storage = RedisStorage(url)
    moving = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(LIMIT, 1)
    total, lat = timed(lambda i: moving.hit(item, "bench"), n)
    report("limits (moving window)", n, total, lat, base)
    client.flushall()
    bucket = RedisBucket.init([Rate(LIMIT, Duration.SECOND)], client, "pyrate-bench")
    pyrate = PyrateLimiter(bucket)
    total, lat = timed(lambda i: pyrate.try_acquire("bench", blocking=False), n)
    report("pyrate-limiter (redis sliding log)", n, total, lat, base)


def make_job(i: int) -> dict[str, Any]:
    return {"action": "scrape_profile", "creator_id": f"creator-{i % 25}", "user_id": "user-1",
            "timestamp": datetime.now(UTC).isoformat(), "profile_url": f"https://creators.example/{i}",
            "metadata": {"priority": "normal", "correlation_id": f"bench-{uuid.uuid4().hex}"}}


def record(message: dict[str, Any]) -> dict[str, Any]:
    attrs = {k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
             for k, v in (message.get("MessageAttributes") or {}).items()}
    return {"messageId": message["MessageId"], "receiptHandle": message.get("ReceiptHandle", ""),
            "body": message["Body"], "attributes": {"ApproximateReceiveCount": "1",
                                                    "SentTimestamp": str(int(time.time() * 1000))},
            "messageAttributes": attrs, "eventSource": "aws:sqs"}


def create_queues(sqs: Any, phase: str) -> dict[str, str]:
    """Fresh queues per phase (moto gets slow with thousands of delayed messages; PurgeQueue is once a minute)."""
    urls = {
        "ingress_dlq": sqs.create_queue(QueueName=f"bench-{phase}-ingress-dlq")["QueueUrl"],
        "workflows": sqs.create_queue(QueueName=f"bench-{phase}-workflows.fifo",
                                      Attributes={"FifoQueue": "true"})["QueueUrl"],
    }
    dlq_arn = sqs.get_queue_attributes(QueueUrl=urls["ingress_dlq"], AttributeNames=["QueueArn"])
    urls["ingress"] = sqs.create_queue(QueueName=f"bench-{phase}-ingress", Attributes={
        "VisibilityTimeout": "5", "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 3})})["QueueUrl"]
    os.environ["HUNTAZE_WORKFLOWS_QUEUE_URL"] = urls["workflows"]
    os.environ["HUNTAZE_INGRESS_QUEUE_URL"] = urls["ingress"]
    os.environ["HUNTAZE_INGRESS_DLQ_URL"] = urls["ingress_dlq"]
    return urls


def bench_handler(url: str, sqs: Any, invocations: int) -> None:
    print(f"\n3. handler latency, batch of 10, {invocations} invocations per case (moto + local redis)")
    client = redis.Redis.from_url(url)
    for name, limits in (("all admitted (forward)", "global=100000/1s"), ("all throttled (defer)", "global=1/600s")):
        client.flushall()
        client.set(redis_keys.LIMITER_EPOCH, "0")
        urls = create_queues(sqs, name.split()[1])
        os.environ["HUNTAZE_RATE_LIMITS"] = limits
        gate_handler.reset()
        gate_handler.handler({"Records": []}, None)  # cold start outside the figures
        events = [{"Records": [record({"MessageId": str(uuid.uuid4()), "Body": json.dumps(make_job(i * 10 + k))})
                               for k in range(10)]} for i in range(invocations)]
        failures = 0
        sqs_time: list[float] = []
        lat: list[float] = []
        timer = SqsTimer(gate_client())
        for event in events:
            timer.spent = 0.0
            started = time.perf_counter()
            failures += len(gate_handler.handler(event, None)["batchItemFailures"])
            lat.append(time.perf_counter() - started)
            sqs_time.append(timer.spent)
            drain(sqs, urls["workflows"])  # moto's FIFO send slows as its queue grows; keep it small
        timer.close()
        own = [a - b for a, b in zip(lat, sqs_time, strict=True)]
        print(f"  {name:<24} p50 {percentile(lat, .5) * 1e3:6.2f} ms  p99 {percentile(lat, .99) * 1e3:6.2f} ms"
              f"  ({failures} record failures; seed target < 500 ms p99; aim < 20 ms)")
        print(f"  {'  of which outside SQS':<24} p50 {percentile(own, .5) * 1e3:6.2f} ms"
              f"  p99 {percentile(own, .99) * 1e3:6.2f} ms  (Redis round trip, parsing, logging)")


class SqsTimer:
    """Time spent inside SQS API calls (moto's share of the handler's latency)."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.spent = 0.0
        self.paused = False
        self._started = 0.0
        sqs.meta.events.register("before-call.sqs", self.before)
        sqs.meta.events.register("after-call.sqs", self.after)

    def before(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def after(self, **_: Any) -> None:
        if not self.paused:
            self.spent += time.perf_counter() - self._started

    def close(self) -> None:
        self.sqs.meta.events.unregister("before-call.sqs", self.before)
        self.sqs.meta.events.unregister("after-call.sqs", self.after)


class CallCounter:
    def __init__(self, sqs: Any) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        sqs.meta.events.register("before-parameter-build.sqs", self.count)

    def count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls[(model.name, str(params.get("QueueUrl", "")).rsplit("/", 1)[-1])] += 1


def drain(sqs: Any, url: str) -> int:
    got = 0
    for _ in range(100):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return got
        got += len(msgs)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    return got


def pump_once(sqs: Any, urls: dict[str, str], receives: Counter[str]) -> int:
    msgs = sqs.receive_message(QueueUrl=urls["ingress"], MaxNumberOfMessages=10, WaitTimeSeconds=1,
                               MessageAttributeNames=["All"]).get("Messages", [])
    if not msgs:
        return 0
    for m in msgs:
        origin = (m.get("MessageAttributes") or {}).get("origin_message_id")
        receives[origin["StringValue"] if origin else m["MessageId"]] += 1
    result = gate_handler.handler({"Records": [record(m) for m in msgs]}, None)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    done = [m for m in msgs if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(QueueUrl=urls["ingress"], Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
    return len(msgs)


def bench_burst(url: str, sqs: Any, burst: int) -> None:
    print(f"\n4. burst of {burst} jobs, limit 50/1s (time-scaled), one poller")
    redis.Redis.from_url(url).flushall()
    redis.Redis.from_url(url).set(redis_keys.LIMITER_EPOCH, "0")
    urls = create_queues(sqs, "burst")
    os.environ["HUNTAZE_RATE_LIMITS"] = "global=50/1s"
    gate_handler.reset()
    for start in range(0, burst, 10):
        sqs.send_message_batch(QueueUrl=urls["ingress"], Entries=[
            {"Id": str(k), "MessageBody": json.dumps(make_job(start + k))} for k in range(min(10, burst - start))])
    counter = CallCounter(sqs)
    gate_counter = CallCounter(gate_client())
    receives: Counter[str] = Counter()
    delivered, started = 0, time.monotonic()
    deadline = started + 30 + burst / 50 * 3
    while delivered < burst and time.monotonic() < deadline:
        pump_once(sqs, urls, receives)
        sqs.meta.events.unregister("before-parameter-build.sqs", counter.count)
        delivered += drain(sqs, urls["workflows"])
        sqs.meta.events.register("before-parameter-build.sqs", counter.count)
    elapsed = time.monotonic() - started
    gate = sum(n for (op, _), n in gate_counter.calls.items() if op.startswith("SendMessage"))
    poller = sum(n for (op, q), n in counter.calls.items()
                 if q == "bench-burst-ingress" and op in ("ReceiveMessage", "DeleteMessageBatch"))
    dead = drain(sqs, urls["ingress_dlq"])
    print(f"  delivered {delivered}/{burst} in {elapsed:.1f}s, dead-lettered {dead}")
    print(f"  receives per job: {dict(sorted(Counter(receives.values()).items()))}")
    per = max(delivered, 1)
    print(f"  SQS API calls per delivered job: gate {gate / per:.2f} (SendMessageBatch), "
          f"poller {poller / per:.2f} (Receive + DeleteBatch), total {(gate + poller) / per:.2f}  (aim <= 3)")
    by_operation = sorted((counter.calls + gate_counter.calls).items())
    print(f"  calls by operation: { {f'{op} {q}': n for (op, q), n in by_operation} }")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gate")
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--invocations", type=int, default=200)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--cost-rounds", type=int, default=3)
    parser.add_argument("--only", choices=["cost", "drain"], default=None, help="run one section only")
    args = parser.parse_args()
    with RedisServer() as redis_server, MotoServer() as moto:
        os.environ.update({"REDIS_URL": redis_server.url, "AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "us-east-1",
                           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
        aws.clear_client_cache()
        if args.only in (None, "cost"):
            bench_cost(redis_server.url, rounds=args.cost_rounds)
        sqs = aws.client("sqs")
        # Quiet the per-decision log lines and EMF blobs during the timed runs (they still cost their formatting).
        os.environ["HUNTAZE_LOG_LEVEL"] = "WARNING"
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        if args.only is None:
            bench_limiters(redis_server.url, args.decisions)
            bench_handler(redis_server.url, sqs, args.invocations)
            bench_burst(redis_server.url, sqs, args.burst)
        if args.only in (None, "drain"):
            redis.Redis.from_url(redis_server.url).flushall()
            redis.Redis.from_url(redis_server.url).set(redis_keys.LIMITER_EPOCH, "0")
            bench_drain(sqs, burst=args.burst)


if __name__ == "__main__":
    main()
