"""Publishes the AWS metrics the alarms and `huntazectl status` read, which moto never produces.

Started by `localplane.plane` (one `MetricsPublisher.publish()` per plane tick). What AWS would publish:

- ``AWS/SQS`` per queue: ApproximateNumberOfMessagesVisible, ...NotVisible, ...Delayed,
  ApproximateAgeOfOldestMessage (in production seconds: real age times the time scale), NumberOfMessagesSent,
  NumberOfMessagesDeleted. Moto keeps neither the age nor
  send/delete counts, so `patch_moto_sqs_counters` (applied in the emulator process) lets GetQueueAttributes
  answer them under the local-only names in `LOCAL_QUEUE_ATTRIBUTES`; the publisher turns the counters into
  per-tick deltas, as CloudWatch reports them.
- ``AWS/Lambda`` per function: Invocations, Errors, Throttles, Duration, from the `LambdaRecorder` the mapping
  runner reports each invocation to.
- ``AWS/ECS`` per service: CPUUtilization and MemoryUtilization, from the task processes `ServiceRunner` runs
  (the whole process tree of each task: its session, Chromium included), against the task definition's cpu and
  memory reservation, as ECS computes them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.aws import client

log = logging.getLogger(__name__)

# Local-only GetQueueAttributes names answered by the patched emulator (never sent to real AWS).
OLDEST_SENT_ATTR = "LocalOldestSentTimestamp"
SENT_COUNT_ATTR = "LocalNumberOfMessagesSent"
DELETED_COUNT_ATTR = "LocalNumberOfMessagesDeleted"
LOCAL_QUEUE_ATTRIBUTES = (OLDEST_SENT_ATTR, SENT_COUNT_ATTR, DELETED_COUNT_ATTR)
DEPTH_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}
_PUT_BATCH = 500  # PutMetricData accepts up to 1000 datums per call


def patch_moto_sqs_counters() -> None:
    """In the emulator process: count sends and deletes per queue, and answer the local attributes."""
    from moto.sqs import models

    original_add = models.Queue.add_message
    original_delete = models.Queue.delete_message
    original_attributes = models.SQSBackend.get_queue_attributes

    def add_message(self: Any, message: Any) -> None:
        before = len(self._messages)
        original_add(self, message)
        if len(self._messages) > before:  # a FIFO duplicate within 5 minutes is not added, nor counted
            self.local_sent = getattr(self, "local_sent", 0) + 1

    def delete_message(self: Any, receipt_handle: str) -> None:
        before = len(self._messages)
        original_delete(self, receipt_handle)
        self.local_deleted = getattr(self, "local_deleted", 0) + (before - len(self._messages))

    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        local = [n for n in attribute_names if n in LOCAL_QUEUE_ATTRIBUTES]
        rest = [n for n in attribute_names if n not in LOCAL_QUEUE_ATTRIBUTES]
        result = dict(original_attributes(self, queue_name, rest)) if rest else {}
        if local:
            queue = self.get_queue(queue_name)
            waiting = [m.sent_timestamp for m in list(queue._messages) if m.sent_timestamp and not m.delayed]
            values = {
                OLDEST_SENT_ATTR: min(waiting) if waiting else 0,
                SENT_COUNT_ATTR: getattr(queue, "local_sent", 0),
                DELETED_COUNT_ATTR: getattr(queue, "local_deleted", 0),
            }
            result.update({name: values[name] for name in local})
        return result

    models.Queue.add_message = add_message  # type: ignore[method-assign]
    models.Queue.delete_message = delete_message  # type: ignore[method-assign]
    models.SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]


@dataclass
class _FunctionWindow:
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    durations_ms: list[float] = field(default_factory=list)


class LambdaRecorder:
    """What the mapping runner reports per invocation; drained into AWS/Lambda datums each publish."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, _FunctionWindow] = {}

    def record(self, function_name: str, duration_ms: float, *, error: bool, throttled: bool = False) -> None:
        with self._lock:
            window = self._windows.setdefault(function_name, _FunctionWindow())
            if throttled:
                window.throttles += 1
                return
            window.invocations += 1
            window.errors += int(error)
            window.durations_ms.append(duration_ms)

    def drain(self) -> dict[str, _FunctionWindow]:
        with self._lock:
            drained, self._windows = self._windows, {}
        return drained


@dataclass(frozen=True)
class TaskProcess:
    """One running task as the service runner knows it: the session leader's pid and its reservation."""

    pid: int
    cpu_units: int
    memory_mib: int


def _session_usage() -> dict[int, tuple[float, int]]:
    """Per session id: (CPU seconds used, resident bytes) summed over every process of the session."""
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    usage: dict[int, tuple[float, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                raw = handle.read().decode(errors="replace")
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()  # after "pid (comm) "; fields[0] is the state (field 3)
        session = int(fields[3])
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        rss = int(fields[21]) * page
        old_cpu, old_rss = usage.get(session, (0.0, 0))
        usage[session] = (old_cpu + cpu, old_rss + rss)
    return usage


@dataclass
class EcsSampler:
    """CPU and memory utilization of a service's tasks since the previous sample."""

    last: dict[int, tuple[float, float]] = field(default_factory=dict)  # pid -> (cpu seconds, wall time)

    def sample(self, tasks: Iterable[TaskProcess], now: float) -> tuple[float, float] | None:
        tasks = list(tasks)
        if not tasks:
            return None
        usage = _session_usage()
        used_cpu = reserved_cpu = used_mem = reserved_mem = 0.0
        for task in tasks:
            cpu_s, rss = usage.get(task.pid, (0.0, 0))
            previous = self.last.get(task.pid)
            self.last[task.pid] = (cpu_s, now)
            reserved_mem += task.memory_mib
            used_mem += rss / 2**20
            if previous is None or now <= previous[1]:
                continue
            used_cpu += (cpu_s - previous[0]) / (now - previous[1])
            reserved_cpu += task.cpu_units / 1024
        live = {t.pid for t in tasks}
        self.last = {pid: v for pid, v in self.last.items() if pid in live}
        cpu_pct = 100.0 * used_cpu / reserved_cpu if reserved_cpu else 0.0
        mem_pct = 100.0 * used_mem / reserved_mem if reserved_mem else 0.0
        return cpu_pct, mem_pct


def _datum(namespace: str, name: str, dims: dict[str, str], value: float, unit: str, *,
           at: datetime) -> tuple[str, dict[str, Any]]:
    return namespace, {
        "MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
        "Value": float(value), "Unit": unit, "Timestamp": at,
    }


@dataclass
class MetricsPublisher:
    """One `publish()` per plane tick: queue gauges and deltas, Lambda invocations, ECS utilization."""

    # Local time runs `scale` times faster than production's (see localplane.alarms.time_scale): a message 10 s
    # old at scale 6 is published as 60 s old, so age thresholds mean what they mean in production.
    scale: Callable[[], float] = lambda: 1.0
    lambdas: LambdaRecorder = field(default_factory=LambdaRecorder)
    ecs: dict[tuple[str, str], EcsSampler] = field(default_factory=dict)
    _counters: dict[str, tuple[int, int]] = field(default_factory=dict)

    def publish(self, services: dict[tuple[str, str], list[TaskProcess]] | None = None) -> int:
        """Returns how many datums were published."""
        at = datetime.now(UTC)
        datums = [*self._queue_datums(at), *self._lambda_datums(at)]
        for (cluster, service), tasks in (services or {}).items():
            sampled = self.ecs.setdefault((cluster, service), EcsSampler()).sample(tasks, time.time())
            if sampled is None:
                continue
            dims = {"ClusterName": cluster.rsplit("/", 1)[-1], "ServiceName": service}
            datums.append(_datum("AWS/ECS", "CPUUtilization", dims, sampled[0], "Percent", at=at))
            datums.append(_datum("AWS/ECS", "MemoryUtilization", dims, sampled[1], "Percent", at=at))
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for namespace, datum in datums:
            by_namespace.setdefault(namespace, []).append(datum)
        cloudwatch = client("cloudwatch")
        for namespace, items in by_namespace.items():
            for start in range(0, len(items), _PUT_BATCH):
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[start:start + _PUT_BATCH])
        return len(datums)

    def _queue_datums(self, at: datetime) -> list[tuple[str, dict[str, Any]]]:
        sqs = client("sqs")
        out = []
        names = [*DEPTH_ATTRIBUTES.values(), *LOCAL_QUEUE_ATTRIBUTES]
        for url in sqs.list_queues().get("QueueUrls", []):
            queue = url.rsplit("/", 1)[-1]
            try:
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            except sqs.exceptions.QueueDoesNotExist:
                continue
            dims = {"QueueName": queue}
            for metric, attribute in DEPTH_ATTRIBUTES.items():
                out.append(_datum("AWS/SQS", metric, dims, float(attrs.get(attribute, 0)), "Count", at=at))
            oldest_ms = int(attrs.get(OLDEST_SENT_ATTR, 0))
            age = max(0.0, at.timestamp() - oldest_ms / 1000) * self.scale() if oldest_ms else 0.0
            out.append(_datum("AWS/SQS", "ApproximateAgeOfOldestMessage", dims, round(age), "Seconds", at=at))
            sent, deleted = int(attrs.get(SENT_COUNT_ATTR, 0)), int(attrs.get(DELETED_COUNT_ATTR, 0))
            last_sent, last_deleted = self._counters.get(url, (sent, deleted))
            self._counters[url] = (sent, deleted)
            out.append(_datum("AWS/SQS", "NumberOfMessagesSent", dims, max(0, sent - last_sent), "Count", at=at))
            out.append(_datum("AWS/SQS", "NumberOfMessagesDeleted", dims, max(0, deleted - last_deleted),
                              "Count", at=at))
        return out

    def _lambda_datums(self, at: datetime) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for function, window in self.lambdas.drain().items():
            dims = {"FunctionName": function}
            out.append(_datum("AWS/Lambda", "Invocations", dims, window.invocations, "Count", at=at))
            out.append(_datum("AWS/Lambda", "Errors", dims, window.errors, "Count", at=at))
            out.append(_datum("AWS/Lambda", "Throttles", dims, window.throttles, "Count", at=at))
            for duration in window.durations_ms:
                out.append(_datum("AWS/Lambda", "Duration", dims, duration, "Milliseconds", at=at))
        return out
