"""Drain of a burst through the real gate handler with lagging pollers (called by `bench.gate`).

A burst of jobs lands on an ingress queue with the manifest's settings (visibility 180 s, maxReceiveCount 5).
Two pollers (the mapping's maximumConcurrency) each receive a batch of up to 10, call the handler in-process and
delete what it settled, then lag a random 0 to `lag_s` seconds before their next receive, as a busy event source
does. Prints the drain time (first send to last forward) against the ideal (the burst / the limit, minus the
first window that goes at once), receives per job, and the most forwards in any window by the gate's own
admission timestamps.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from gate import handler as gate_handler


def _queues(sqs: Any) -> dict[str, str]:
    tag = uuid.uuid4().hex[:6]
    dlq = sqs.create_queue(QueueName=f"drain-{tag}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ingress = sqs.create_queue(QueueName=f"drain-{tag}-ingress", Attributes={
        "VisibilityTimeout": "180", "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})})
    fifo = sqs.create_queue(QueueName=f"drain-{tag}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return {"ingress": ingress["QueueUrl"], "dlq": dlq, "workflows": fifo}


def _record(message: dict[str, Any]) -> dict[str, Any]:
    attrs = {k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
             for k, v in (message.get("MessageAttributes") or {}).items()}
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": message.get("Attributes", {}), "messageAttributes": attrs, "eventSource": "aws:sqs"}


class Poller(threading.Thread):
    def __init__(self, sqs: Any, url: str, receives: Counter[str], lock: threading.Lock, lag_s: float,
                 stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True)
        self.sqs, self.url, self.receives, self.lock, self.lag_s, self.stop = sqs, url, receives, lock, lag_s, stop
        self.rng = random.Random(seed)

    def run(self) -> None:
        while not self.stop.is_set():
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           MessageAttributeNames=["All"], AttributeNames=["All"])
            messages = got.get("Messages", [])
            if messages:
                with self.lock:
                    for m in messages:
                        origin = (m.get("MessageAttributes") or {}).get("origin_message_id")
                        self.receives[origin["StringValue"] if origin else m["MessageId"]] += 1
                result = gate_handler.handler({"Records": [_record(m) for m in messages]}, None)
                failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
                done = [m for m in messages if m["MessageId"] not in failed]
                if done:
                    self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
            self.stop.wait(self.rng.uniform(0, self.lag_s))


def _collect(sqs: Any, url: str, seen: dict[str, float]) -> None:
    for _ in range(50):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", [])
        if not msgs:
            return
        for m in msgs:
            attrs = m["MessageAttributes"]
            stamp = datetime.fromisoformat(attrs["rate_limit_timestamp"]["StringValue"]).timestamp()
            seen.setdefault(attrs["origin_message_id"]["StringValue"], stamp)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])


def max_in_window(times: list[float], window: float) -> int:
    ordered, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def bench_drain(sqs: Any, burst: int = 500, limit: int = 10, window_s: float = 2.0, lag_s: float = 4.0,
                pollers: int = 2) -> None:
    print(f"\n5. drain of a {burst}-job burst at {limit} per {window_s:g} s, {pollers} pollers lagging 0-{lag_s:g} s "
          "between receives (real handler, moto queues with the manifest's settings)")
    urls = _queues(sqs)
    os.environ.update({"HUNTAZE_WORKFLOWS_QUEUE_URL": urls["workflows"], "HUNTAZE_INGRESS_QUEUE_URL": urls["ingress"],
                       "HUNTAZE_INGRESS_DLQ_URL": urls["dlq"], "HUNTAZE_RATE_LIMITS": f"global={limit}/{window_s}s"})
    gate_handler.reset()
    started = time.time()
    for start in range(0, burst, 10):
        sqs.send_message_batch(QueueUrl=urls["ingress"], Entries=[
            {"Id": str(k), "MessageBody": json.dumps(_job())} for k in range(min(10, burst - start))])
    receives: Counter[str] = Counter()
    lock, stop = threading.Lock(), threading.Event()
    threads = [Poller(sqs, urls["ingress"], receives, lock, lag_s, stop, seed) for seed in range(pollers)]
    for thread in threads:
        thread.start()
    seen: dict[str, float] = {}
    ideal = (burst / limit - 1) * window_s
    deadline = time.monotonic() + ideal * 3 + 60
    while len(seen) < burst and time.monotonic() < deadline:
        _collect(sqs, urls["workflows"], seen)
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    drained = max(seen.values()) - started if seen else float("nan")
    per_job = list(receives.values())
    print(f"  forwarded {len(seen)}/{burst}; drain {drained:.1f} s vs ideal {ideal:.1f} s = {drained / ideal:.2f}x "
          "(bar 1.2x)")
    print(f"  gate receives per job: max {max(per_job)}, mean {sum(per_job) / len(per_job):.2f}, "
          f"distribution {dict(sorted(Counter(per_job).items()))} (bar: max 3)")
    busiest = max_in_window(list(seen.values()), window_s)
    print(f"  most forwards in any {window_s:g} s (gate admission times): {busiest} (limit {limit})")


def _job() -> dict[str, Any]:
    creator = random.randrange(25)
    return {"action": "scrape_profile", "creator_id": f"creator-{creator}", "user_id": "user-1",
            "timestamp": datetime.now().astimezone().isoformat(), "profile_url": f"https://creators.example/{creator}",
            "metadata": {"priority": "normal", "correlation_id": f"drain-{uuid.uuid4().hex}"}}
