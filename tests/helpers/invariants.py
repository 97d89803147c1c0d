"""The pipeline's invariants, checked after every load or chaos scenario (any engineer's test may reuse them).

After a scenario has drained:
1. every job ends in exactly one of: a result record in S3, or a DLQ with a reason (an ``error`` attribute);
   no result or dead letter belongs to a job nobody sent;
2. no send_message reaches the platform twice (counted at the stand-in, where it matters), and a job whose
   result says success reached it once;
3. per creator, send_messages reach the platform in the order the producer sent them;
4. no process the scenario started is left running (`leftover_processes`).

`SentJob` is what a producer knows about a job it sent; `Outcomes.read()` collects what the pipeline did, from
S3 and both DLQs (it receives the dead letters, so call it once, at the end). `check()` returns a list of
problems, each naming the job, so an assertion message says what went wrong and for whom.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.aws import client

DLQ_NAMES = ("huntaze-rate-limiter-dlq", "huntaze-hybrid-workflows-dlq.fifo")
RESULTS_BUCKET_PREFIX = "huntaze-onlyfans-results-"


@dataclass(frozen=True)
class SentJob:
    """One job as its producer sent it; ``seq`` is the producer's order (per creator order is checked on it)."""

    seq: int
    correlation_id: str | None
    message_id: str  # the first ingress SQS MessageId: the scraper's result key uses it
    body: str
    creator_id: str
    action: str
    text: str | None = None  # message_content of a send_message (unique per job in every scenario)


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    body: str
    error: str | None

    def correlation_id(self) -> str | None:
        try:
            doc = json.loads(self.body)
            return str(doc["metadata"]["correlation_id"]) if isinstance(doc, dict) else None
        except (ValueError, KeyError, TypeError):
            return None


@dataclass
class Outcomes:
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # message id -> records
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @classmethod
    def read(cls) -> Outcomes:
        out = cls()
        out._read_results()
        for name in DLQ_NAMES:
            out.dead_letters += drain(name)
        return out

    def _read_results(self) -> None:
        s3 = client("s3")
        names = [str(b["Name"]) for b in s3.list_buckets().get("Buckets", [])]
        for bucket in [n for n in names if n.startswith(RESULTS_BUCKET_PREFIX)]:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="results/"):
                for obj in page.get("Contents", []):
                    record = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                    self.results.setdefault(str(record["message_id"]), []).append(record | {"_key": obj["Key"]})


def drain(queue_name: str) -> list[DeadLetter]:
    """Every message of a DLQ, with its ``error`` attribute (received with a long visibility, so each once)."""
    sqs = client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return []
    letters: list[DeadLetter] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                  MessageAttributeNames=["All"], WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return letters
        for message in got:
            error = message.get("MessageAttributes", {}).get("error", {}).get("StringValue")
            letters.append(DeadLetter(queue_name, message["Body"], error))


def check(sent: Sequence[SentJob], outcomes: Outcomes, platform_messages: Iterable[Any]) -> list[str]:
    """Every invariant but the process one; returns the problems found (empty: all hold)."""
    platform = list(platform_messages)
    return (_exactly_one_outcome(sent, outcomes) + _sent_at_most_once(sent, outcomes, platform)
            + _order_per_creator(sent, platform))


def _dead_letters_of(job: SentJob, outcomes: Outcomes) -> list[DeadLetter]:
    return [d for d in outcomes.dead_letters
            if (job.correlation_id and d.correlation_id() == job.correlation_id) or d.body == job.body]


def _exactly_one_outcome(sent: Sequence[SentJob], outcomes: Outcomes) -> list[str]:
    problems = []
    claimed_letters: set[int] = set()
    for job in sent:
        results = outcomes.results.get(job.message_id, [])
        letters = _dead_letters_of(job, outcomes)
        claimed_letters |= {id(d) for d in letters}
        name = f"job {job.seq} ({job.action} for {job.creator_id}, {job.correlation_id or job.message_id})"
        if len(results) + len(letters) != 1:
            problems.append(f"{name}: {len(results)} result(s) and {len(letters)} dead letter(s), expected exactly one")
        problems += [f"{name}: dead-lettered in {d.queue} without a reason" for d in letters if not d.error]
        if len({r["_key"] for r in results}) > 1:
            problems.append(f"{name}: results under several keys {[r['_key'] for r in results]}")
    known = {job.message_id for job in sent}
    problems += [f"a result for a job nobody sent: {mid}" for mid in outcomes.results if mid not in known]
    problems += [f"a dead letter in {d.queue} for a job nobody sent: {d.body[:120]!r}"
                 for d in outcomes.dead_letters if id(d) not in claimed_letters]
    return problems


def _sent_at_most_once(sent: Sequence[SentJob], outcomes: Outcomes, platform: list[Any]) -> list[str]:
    arrived = Counter(str(m.text) for m in platform)
    problems = []
    for job in sent:
        if job.action != "send_message" or job.text is None:
            continue
        times = arrived[job.text]
        if times > 1:
            problems.append(f"job {job.seq} ({job.creator_id}): send_message reached the platform {times} times")
        succeeded = any(r.get("status") == "success" for r in outcomes.results.get(job.message_id, []))
        if succeeded and times == 0:
            problems.append(f"job {job.seq} ({job.creator_id}): result says success but the platform never got it")
    return problems


def _order_per_creator(sent: Sequence[SentJob], platform: list[Any]) -> list[str]:
    seq_of = {job.text: job.seq for job in sent if job.action == "send_message" and job.text is not None}
    by_creator: dict[str, list[int]] = defaultdict(list)
    for message in platform:  # the platform's arrival order
        if message.text in seq_of:
            by_creator[str(message.creator_id)].append(seq_of[message.text])
    return [f"{creator}: send_messages reached the platform out of order: {seqs}"
            for creator, seqs in sorted(by_creator.items()) if seqs != sorted(seqs)]


def max_in_any_window(times_s: Sequence[float], window_s: float) -> int:
    """The most events in any window of ``window_s`` seconds (a sliding window over sorted times)."""
    ordered = sorted(times_s)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def leftover_processes(before: set[int], after: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Processes below this one that were not there before the scenario (pid -> command)."""
    return {pid: str(info["cmd"]) for pid, info in after.items() if pid not in before}
