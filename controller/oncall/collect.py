"""Collects one `huntazectl status` snapshot: alarms, queues, gate, scraper, controller, DLQ sample.

Called by `controller.commands.status` once per refresh (and by bench/oncall). Reads are batched so a refresh on
the full stack stays under about 25 AWS calls: one ListQueues and one GetQueueAttributes per queue, one
DescribeAlarms, one GetMetricData for every rate and age, one ListServices/DescribeServices, two ListTasks and one
DescribeTasks, one GetFunctionConfiguration, and a peek of up to 10 messages per DLQ (given back at once). Redis
is read by `controller.oncall.gate_state` (0.5 s timeouts). The scraper's failure rate by error class comes from
its ``scraping_failure_count`` metric (one per class, in the same GetMetricData). Every section records its own
error instead of failing the screen.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common.aws import client
from controller.oncall.queues import QueueState, dead_letter_pairs, pipeline_queues

RUNBOOK_RE = re.compile(r"Runbook:\s*(\S+)")
RATE_WINDOW_S = 300  # rates and counts over the last 5 minutes
AGE_PERIOD_S = 30  # the age shown is the newest 30 s period's maximum, not the 5-minute one
DLQ_SAMPLE = 10
GATE_FUNCTION = "huntaze-rate-limiter"
SCRAPER_NAMESPACE = "Huntaze/OnlyFans"
# What scraper/metrics.py publishes per failed job (the controller does not import the scraper): the count under
# dimensions Environment + ErrorType, one per value of `common.contract.ErrorType` (spelled out here, as importing
# the contract's pydantic models costs a cold `status` about 0.1 s; a test keeps the two equal).
SCRAPER_FAILURES = "scraping_failure_count"
ERROR_TYPE_DIMENSION = "ErrorType"
ERROR_CLASSES = ("network", "auth", "rate_limit", "validation", "unknown")
JOURNAL_ENV = "HUNTAZE_JOURNAL"
JOURNAL_WINDOW_S = 900
STOPS_WINDOW_S = 900  # task stops older than this are not "recent" (where ECS reports stoppedAt; moto does not)


@dataclass
class Snapshot:
    at: str
    env: str
    alarms: dict[str, Any] = field(default_factory=dict)
    queues: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)
    scraper: dict[str, Any] = field(default_factory=dict)
    controller: dict[str, Any] = field(default_factory=dict)
    dead_letters: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def queue(self, role: str) -> dict[str, Any]:
        return next((q for q in self.queues if q["role"] == role), {})


def _role(q: QueueState, dlq_arns: set[str]) -> str:
    if q.arn in dlq_arns:
        return "workflows_dlq" if q.fifo else "ingress_dlq"
    return "workflows" if q.fifo else "ingress"


# --- alarms ------------------------------------------------------------------------------------------------------

def collect_alarms() -> dict[str, Any]:
    alarms = client("cloudwatch").describe_alarms(AlarmTypes=["MetricAlarm"]).get("MetricAlarms", [])
    firing = []
    for a in alarms:
        if a["StateValue"] != "ALARM" or a["AlarmName"].startswith("TargetTracking-"):
            continue
        try:
            data = json.loads(a.get("StateReasonData") or "{}")
        except ValueError:
            data = {}
        value = data.get("trippingValue")
        if value is None and data.get("recentDatapoints"):
            value = data["recentDatapoints"][-1]
        match = RUNBOOK_RE.search(a.get("AlarmDescription") or "")
        firing.append({
            "name": a["AlarmName"], "since": a["StateUpdatedTimestamp"].isoformat(timespec="seconds"),
            "value": value, "threshold": a.get("Threshold"), "comparison": a.get("ComparisonOperator"),
            "reason": a.get("StateReason", ""), "runbook": match.group(1) if match else None,
            "description": RUNBOOK_RE.split(a.get("AlarmDescription") or "")[0].strip(" .;"),
        })
    own = [a for a in alarms if not a["AlarmName"].startswith("TargetTracking-")]
    return {"total": len(own), "in_alarm": sorted(firing, key=lambda f: f["since"]),
            "insufficient_data": sum(1 for a in own if a["StateValue"] == "INSUFFICIENT_DATA")}


# --- metrics (one GetMetricData for every rate) --------------------------------------------------------------------

def _stat(qid: str, namespace: str, name: str, dims: dict[str, str], stat: str, *,
          period: int = RATE_WINDOW_S) -> dict[str, Any]:
    return {"Id": qid, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": name,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
        "Period": period, "Stat": stat}}


def collect_metrics(queues: list[QueueState], env: str) -> dict[str, float | None]:
    queries = []
    for i, q in enumerate(queues):
        dims = {"QueueName": q.name}
        age = _stat(f"q{i}_age", "AWS/SQS", "ApproximateAgeOfOldestMessage", dims, "Maximum", period=AGE_PERIOD_S)
        queries += [age,
                    _stat(f"q{i}_in", "AWS/SQS", "NumberOfMessagesSent", dims, "Sum"),
                    _stat(f"q{i}_out", "AWS/SQS", "NumberOfMessagesDeleted", dims, "Sum")]
    scraper = {"Environment": env}
    queries += [_stat("s_jobs", SCRAPER_NAMESPACE, "scraping_jobs_count", scraper, "Sum"),
                _stat("s_success", SCRAPER_NAMESPACE, "scraping_success_rate", scraper, "Average"),
                _stat("s_429", SCRAPER_NAMESPACE, "onlyfans_429_count", scraper, "Sum"),
                _stat("s_5xx", SCRAPER_NAMESPACE, "onlyfans_5xx_count", scraper, "Sum"),
                _stat("s_opens", SCRAPER_NAMESPACE, "circuit_breaker_open_count", scraper, "Sum")]
    queries += [_stat(f"s_fail_{kind}", SCRAPER_NAMESPACE, SCRAPER_FAILURES, scraper | {ERROR_TYPE_DIMENSION: kind},
                      "Sum") for kind in ERROR_CLASSES]
    fn = {"FunctionName": GATE_FUNCTION}
    queries += [_stat("l_inv", "AWS/Lambda", "Invocations", fn, "Sum"),
                _stat("l_err", "AWS/Lambda", "Errors", fn, "Sum"),
                _stat("l_thr", "AWS/Lambda", "Throttles", fn, "Sum")]
    end = datetime.now(UTC) + timedelta(seconds=1)
    response = client("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=end - timedelta(seconds=RATE_WINDOW_S), EndTime=end,
        ScanBy="TimestampDescending")
    out: dict[str, float | None] = {q["Id"]: None for q in queries}
    for result in response.get("MetricDataResults", []):
        values = result.get("Values", [])
        if values:
            stat = next(q["MetricStat"]["Stat"] for q in queries if q["Id"] == result["Id"])
            out[result["Id"]] = values[0] if stat == "Maximum" else (  # the newest period's gauge
                sum(values) / len(values) if stat == "Average" else sum(values))
    return out


def collect_queues(queues: list[QueueState], metrics: dict[str, float | None]) -> list[dict[str, Any]]:
    dlq_arns = {q.dlq_arn for q in queues if q.dlq_arn}
    rows = []
    per_min = 60 / RATE_WINDOW_S
    for i, q in enumerate(queues):
        age, rate_in, rate_out = metrics.get(f"q{i}_age"), metrics.get(f"q{i}_in"), metrics.get(f"q{i}_out")
        rows.append({
            "name": q.name, "role": _role(q, dlq_arns), "depth": q.visible, "in_flight": q.in_flight,
            "delayed": q.delayed, "oldest_age_s": age,
            "in_per_min": None if rate_in is None else round(rate_in * per_min, 1),
            "out_per_min": None if rate_out is None else round(rate_out * per_min, 1),
        })
    order = ["ingress", "workflows", "ingress_dlq", "workflows_dlq"]
    return sorted(rows, key=lambda r: order.index(r["role"]))


# --- dead letters (a peek, given back at once) ---------------------------------------------------------------------

def collect_dead_letters(queues: list[QueueState]) -> dict[str, Any]:
    from controller.oncall import dlq

    pairs = [p for p in dead_letter_pairs(queues) if p.dlq.visible > 0]
    sqs = client("sqs")
    letters: list[dlq.DeadLetter] = []
    for pair in pairs:
        got = sqs.receive_message(QueueUrl=pair.dlq.url, MaxNumberOfMessages=DLQ_SAMPLE, WaitTimeSeconds=0,
                                  VisibilityTimeout=5, AttributeNames=["All"],
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if got:
            sqs.change_message_visibility_batch(QueueUrl=pair.dlq.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(got)])
        letters += [dlq.DeadLetter.of(pair, m) for m in got]
    by_class = Counter(letter.error_type for letter in letters)
    problems: Counter[str] = Counter()
    for letter in letters:
        if letter.error_type == "validation":
            for part in letter.reason.split("; "):
                if part:
                    problems[part] += 1
    platform = Counter(letter.error_type for letter in letters if letter.error_type != "validation")
    return {
        "total": sum(p.dlq.visible for p in pairs), "sampled": len(letters), "by_class": dict(by_class),
        "top_validation_errors": [e for e, _ in problems.most_common(3)],
        "platform_classes": dict(platform.most_common()),
        "platform_examples": [letter.reason for letter in letters if letter.error_type != "validation"][:3],
    }


# --- gate (Redis): controller.oncall.gate_state -------------------------------------------------------------


def _mask(text: str) -> str:
    return re.sub(r"://[^@/\s]*@", "://***@", text)


# --- scraper (ECS) -------------------------------------------------------------------------------------------------

SCRAPER_SERVICE = os.environ.get("HUNTAZE_SCRAPER_SERVICE", "huntaze-onlyfans-scraper")


def collect_scraper(cluster: str, run_dir: Path | None = None) -> dict[str, Any]:
    from controller.oncall import deployments

    ecs = client("ecs")
    arns = ecs.list_services(cluster=cluster).get("serviceArns", [])
    if not arns:
        return {"service": None, "error": f"no ECS service in cluster {cluster}"}
    services = ecs.describe_services(cluster=cluster, services=arns[:10])["services"]
    # The cluster also runs the controller's own service: the scraper is the one named for it.
    svc = next((s for s in services if s["serviceName"] == SCRAPER_SERVICE), services[0])
    name = svc["serviceName"]
    running = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="RUNNING").get("taskArns", [])
    stopped = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="STOPPED").get("taskArns", [])
    tasks = ecs.describe_tasks(cluster=cluster, tasks=(running + stopped)[-100:])["tasks"] if running or stopped \
        else []
    mine = [t for t in tasks if t.get("group") in (f"service:{name}", None)]
    live = [t for t in mine if t.get("desiredStatus") == "RUNNING" and t.get("lastStatus") != "STOPPED"]
    recent = datetime.now(UTC) - timedelta(seconds=STOPS_WINDOW_S)
    stops = [{"task": t["taskArn"].rsplit("/", 1)[-1], "reason": t.get("stoppedReason", ""),
              "task_definition": t.get("taskDefinitionArn", "").rsplit("/", 1)[-1],
              "stopped_at": t["stoppedAt"].isoformat(timespec="seconds") if t.get("stoppedAt") else None}
             for t in mine
             if t.get("desiredStatus") == "STOPPED" and (not t.get("stoppedAt") or t["stoppedAt"] >= recent)]
    recent_deployments, source = deployments.recent(svc, cluster, run_dir)
    return {"service": name, "desired": int(svc.get("desiredCount", 0)), "running": len(live),
            "task_definition": svc.get("taskDefinition", "").rsplit("/", 1)[-1], "recent_stops": stops[-5:],
            "stops_total": len(stops), "deployments": recent_deployments, "deployments_source": source}


def scraper_rates(metrics: dict[str, float | None], dead: dict[str, Any]) -> dict[str, Any]:
    jobs, success = metrics.get("s_jobs"), metrics.get("s_success")
    failures = {kind: int(n) for kind in ERROR_CLASSES if (n := metrics.get(f"s_fail_{kind}"))}
    by_class = {kind: round(100 * n / jobs, 1) for kind, n in failures.items()} if jobs else {}
    return {
        "jobs_per_min": None if jobs is None else round(jobs * 60 / RATE_WINDOW_S, 1),
        "failure_rate_pct": None if success is None else round(100 - success, 1),
        "failures_by_class": dict(sorted(failures.items(), key=lambda kv: -kv[1])),
        "failure_rate_by_class_pct": dict(sorted(by_class.items(), key=lambda kv: -kv[1])),
        "dead_lettered_by_class": dead.get("by_class", {}),
        "count_429": metrics.get("s_429") or 0, "count_5xx": metrics.get("s_5xx") or 0,
        "breaker_opens": metrics.get("s_opens") or 0,
    }


# --- controller (the operator's journal) -----------------------------------------------------------------------------

def _journal_records(env: str, path: str | None) -> tuple[list[dict[str, Any]], str] | None:
    since = time.time() - JOURNAL_WINDOW_S
    path = path or os.environ.get(JOURNAL_ENV)
    if path:
        file = Path(path)
        if not file.exists():
            return None
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()[-2000:]
        source = str(file)
    else:
        logs = client("logs")
        group = f"/huntaze/{env}/controller-journal"
        try:
            events = logs.filter_log_events(logGroupName=group, startTime=int(since * 1000), limit=1000)["events"]
        except logs.exceptions.ResourceNotFoundException:
            return None
        lines = [e["message"] for e in events]
        source = group
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, source


def collect_controller(env: str, journal: str | None) -> dict[str, Any]:
    found = _journal_records(env, journal)
    if found is None:
        return {"present": False}
    records, source = found
    cycles = [r for r in records if r.get("type") == "cycle"]
    last = cycles[-1] if cycles else None
    last_cycle_id = last.get("cycle_id") if last else None
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("type") == "resource" and r.get("resource"):
            latest[r["resource"]] = r
    states: Counter[str] = Counter()
    drifted, failing, held = [], [], []
    for name, r in latest.items():
        verdicts = set(r.get("verdicts") or [])
        if "non-converging" in verdicts:
            states["non-converging"] += 1
        elif "held" in verdicts and not r.get("error"):  # rolled back by an engine or on-call: not drift
            states["held: rolled back"] += 1
            held.append({"resource": name, "message": r.get("message"), "at": r.get("time"),
                         "fields": [c.get("field") for c in r.get("changes") or []]})
        elif r.get("error"):
            states["failing"] += 1
            failing.append({"resource": name, "error": r.get("error")})
        elif "paused" in verdicts:
            states["paused"] += 1
        elif "drift" in verdicts:  # a corrected drift is in sync again: counted apart from a live one
            states["corrected" if "corrected" in verdicts else "drifted"] += 1
            drifted.append({"resource": name, "fields": [c.get("field") for c in r.get("changes") or []],
                            "corrected": "corrected" in verdicts, "at": r.get("time")})
    guards = [r for r in records if r.get("type") == "guard" and r.get("action") == "non-converging"]
    lease = next((r for r in reversed(records) if r.get("lease_holder")), None)
    return {
        "present": True, "source": source,
        "last_cycle": {"at": last.get("time"), "id": last_cycle_id, "duration_s": last.get("duration_s"),
                       "counts": last.get("counts", {})} if last else None,
        "resources_by_state": dict(states), "in_sync": (last or {}).get("counts", {}).get("resources"),
        "drifted": drifted[-5:], "failing": failing[-5:], "held": held[-5:],
        "non_converging": [r.get("guard") or {"resource": r.get("resource")} for r in guards][-5:],
        "lease_holder": lease.get("lease_holder") if lease else None,
    }


# --- one snapshot --------------------------------------------------------------------------------------------------

def _section(snapshot: Snapshot, name: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # one failing source never hides the others
        snapshot.errors[name] = f"{type(exc).__name__}: {_mask(str(exc))[:300]}"
        return None


def collect(env: str = "local", cluster: str = "huntaze", journal: str | None = None,
            run_dir: Path | None = None) -> Snapshot:
    """Independent sources are read in parallel (boto3 clients are thread-safe); each runs in a copy of the
    caller's context so `controller.oncall.calls.counting` sees its calls."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    snap = Snapshot(at=datetime.now(UTC).isoformat(timespec="seconds"), env=env)

    def function_env() -> dict[str, str]:
        conf = client("lambda").get_function_configuration(FunctionName=GATE_FUNCTION)
        return dict(conf.get("Environment", {}).get("Variables", {}))

    def queue_side() -> tuple[list[QueueState], dict[str, float | None], dict[str, Any]]:
        queues = _section(snap, "queues", pipeline_queues) or []
        metrics = _section(snap, "metrics", collect_metrics, queues, env) or {}
        dead = (_section(snap, "dead_letters", collect_dead_letters, queues) or {}) if queues else {}
        return queues, metrics, dead

    def gate_side() -> dict[str, Any]:
        from controller.oncall.gate_state import collect_gate

        return collect_gate(_section(snap, "gate_function", function_env) or {})

    with ThreadPoolExecutor(max_workers=5, thread_name_prefix="status") as pool:
        def submit(fn: Any, *args: Any) -> Any:
            return pool.submit(contextvars.copy_context().run, fn, *args)

        queue_f = submit(queue_side)
        alarms_f = submit(_section, snap, "alarms", collect_alarms)
        gate_f = submit(gate_side)
        scraper_f = submit(_section, snap, "scraper", collect_scraper, cluster, run_dir)
        controller_f = submit(_section, snap, "controller", collect_controller, env, journal)
        queues, metrics, snap.dead_letters = queue_f.result()
        snap.alarms = alarms_f.result() or {}
        snap.gate = gate_f.result()
        scraper = scraper_f.result() or {}
        snap.controller = controller_f.result() or {"present": False}
    snap.queues = collect_queues(queues, metrics)
    # Deferred jobs, seen from both sides: delayed in the ingress queue (SQS), and waiting in their creator's
    # order line (Redis; also jobs held in flight for an earlier job of their creator). One job is often in both.
    lines = snap.gate.get("order_lines") or {}
    snap.gate["deferred_waiting"] = snap.queue("ingress").get("delayed", 0)
    snap.gate["deferred_in_order_lines"] = lines.get("jobs_waiting", 0)
    snap.gate["lambda"] = {"invocations": metrics.get("l_inv"), "errors": metrics.get("l_err"),
                           "throttles": metrics.get("l_thr")}
    snap.scraper = scraper | scraper_rates(metrics, snap.dead_letters)
    return snap
