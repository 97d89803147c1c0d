"""Benchmark of on-call: one `huntazectl status` refresh on the full stack, and the alarm evaluator's lag.

Run: ``.venv/bin/python bench/oncall/bench_status.py [--rounds 10] [--lag-rounds 5] [--tick 2]``

Starts the full local stack as `huntazectl up` does (moto, Redis, the stand-in, the controller's apply of
manifests/ + ecs-specs/, the local plane running the gate and a scraper task), puts a little work in flight
(poison jobs in the DLQ, valid jobs behind the limit), then prints:

- cold status: ``huntazectl status -o json`` in a fresh Python process per round (``--cold-rounds``), as on-call
  runs it: the whole process's wall time (interpreter start and imports included), the refresh's own time and
  API calls as it reports them, and the import time of the status path (``python -X importtime``, top modules);
- status refresh: wall time and AWS API calls per refresh (median, p90, max), interleaved with a naive peer
  that reads the same facts one call per fact (GetQueueUrl + GetQueueAttributes per queue, GetMetricStatistics
  per metric, as the console or the CLI would), in the same run on the same stack;
- alarm evaluator: cost of one evaluation of all alarms (ms, API calls), and the lag from a metric crossing
  (PutMetricData of a Lambda Errors datum above lambda_errors_critical's threshold) to the alarm's ALARM state
  in DescribeAlarms, with the plane ticking every ``--tick`` seconds (the plane's default is 2).

Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from common.aws import client  # noqa: E402
from controller.cli import main as huntazectl  # noqa: E402
from controller.commands.status import refresh  # noqa: E402
from controller.oncall.calls import counting  # noqa: E402
from localplane.alarms import AlarmEvaluator  # noqa: E402
from localplane.plane import LocalPlane  # noqa: E402
from localplane.stack import LocalStack  # noqa: E402


def naive_peer(env: str) -> None:
    """The same facts, one call per fact (what the console/CLI does): queues, alarms, metrics, ECS, function."""
    sqs, cw, ecs = client("sqs"), client("cloudwatch"), client("ecs")
    names = ["huntaze-rate-limiter-queue", "huntaze-hybrid-workflows.fifo", "huntaze-rate-limiter-dlq",
             "huntaze-hybrid-workflows-dlq.fifo"]
    end = datetime.now(UTC)
    for name in names:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        for metric, stat in (("ApproximateAgeOfOldestMessage", "Maximum"), ("NumberOfMessagesSent", "Sum"),
                             ("NumberOfMessagesDeleted", "Sum")):
            cw.get_metric_statistics(Namespace="AWS/SQS", MetricName=metric, Statistics=[stat], Period=300,
                                     Dimensions=[{"Name": "QueueName", "Value": name}],
                                     StartTime=end - timedelta(minutes=5), EndTime=end)
    cw.describe_alarms(StateValue="ALARM")
    for metric in ("scraping_jobs_count", "scraping_success_rate", "onlyfans_429_count", "onlyfans_5xx_count",
                   "circuit_breaker_open_count"):
        cw.get_metric_statistics(Namespace="Huntaze/OnlyFans", MetricName=metric, Statistics=["Sum", "Average"],
                                 Period=300, Dimensions=[{"Name": "Environment", "Value": env}],
                                 StartTime=end - timedelta(minutes=5), EndTime=end)
    for metric in ("Invocations", "Errors", "Throttles"):
        cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName=metric, Statistics=["Sum"], Period=300,
                                 Dimensions=[{"Name": "FunctionName", "Value": "huntaze-rate-limiter"}],
                                 StartTime=end - timedelta(minutes=5), EndTime=end)
    services = ecs.list_services(cluster="huntaze")["serviceArns"]
    ecs.describe_services(cluster="huntaze", services=services)
    tasks = ecs.list_tasks(cluster="huntaze")["taskArns"]
    if tasks:
        ecs.describe_tasks(cluster="huntaze", tasks=tasks[:100])
    client("lambda").get_function_configuration(FunctionName="huntaze-rate-limiter")


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(ordered):7.1f}  p90 {p90:7.1f}  max {ordered[-1]:7.1f}"


def stage_work(stack: LocalStack) -> None:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName="huntaze-rate-limiter-queue")["QueueUrl"]
    for i in range(10):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"action": "get_messages", "creator_id": f"bad {i}"}))
    for i in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({
            "action": "scrape_profile", "creator_id": f"creator_{i % 3}", "user_id": "fan",
            "profile_url": f"{stack.site.url}/u/creator_{i % 3}", "timestamp": datetime.now(UTC).isoformat()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--lag-rounds", type=int, default=5)
    parser.add_argument("--tick", type=float, default=2.0)
    parser.add_argument("--cold-rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ["HUNTAZE_TIME_SCALE"] = "60"
    with tempfile.TemporaryDirectory(prefix="bench-oncall-") as tmp, LocalStack(Path(tmp) / "run") as stack:
        with open(os.devnull, "w") as quiet:
            saved, sys.stdout = sys.stdout, quiet
            try:
                code = huntazectl(["apply", "-f", str(REPO / "manifests"), "-f", str(REPO / "ecs-specs"), "--env",
                                   "local", "--var", f"REDIS_URL={stack.redis.url}", "--var",
                                   f"SITE_URL={stack.site.url}"])
            finally:
                sys.stdout = saved
        assert code == 0, "apply failed"
        plane = LocalPlane(extra_env=stack.aws_env() | {"REDIS_URL": stack.redis.url}, log_dir=Path(tmp),
                           tick_s=args.tick)
        plane.start()
        try:
            stage_work(stack)
            time.sleep(6)  # let the gate dead-letter and defer, and the plane publish a few ticks
            cold(args.cold_rounds, Path(tmp))
            ns = argparse.Namespace(env="local", cluster="huntaze", journal=None, run_dir=Path(tmp))
            ours_ms, ours_calls, peer_ms, peer_calls = [], [], [], []
            for _ in range(args.rounds):  # interleaved rounds: same stack, same moment
                data = refresh(ns)
                ours_ms.append(data["refresh_ms"])
                ours_calls.append(data["api_calls"])
                started = time.perf_counter()
                with counting() as calls:
                    naive_peer("local")
                peer_ms.append((time.perf_counter() - started) * 1000)
                peer_calls.append(calls.total)
            print(f"status refresh on the full stack ({args.rounds} rounds, load {os.getloadavg()[0]:.1f}):")
            print(f"  huntazectl status   ms: {summary(ours_ms)}   API calls: {summary(ours_calls)}   "
                  f"(first, cold clients: {ours_ms[0]:.0f} ms)")
            print(f"  naive peer (facts)  ms: {summary(peer_ms)}   API calls: {summary(peer_calls)}")
            print(f"  (status also reads Redis and peeks DLQs; the peer does neither) diagnosis: "
                  f"{data['diagnosis'][0]['rule']}; calls {data['api_calls_by_operation']}")

            evaluator = AlarmEvaluator(scale=60)
            tick_ms, tick_calls = [], []
            for _ in range(5):
                started = time.perf_counter()
                with counting() as calls:
                    evaluator.tick()
                tick_ms.append((time.perf_counter() - started) * 1000)
                tick_calls.append(calls.total)
            print(f"alarm evaluation of all alarms: ms {summary(tick_ms)}   API calls {summary(tick_calls)}")

            lags = measure_lag(args.lag_rounds)
            print(f"evaluator lag, metric crossing -> ALARM (plane tick {args.tick:g}s, {len(lags)} rounds): "
                  f"s {summary(lags)}")
        finally:
            plane.stop()


def cold(rounds: int, run_dir: Path) -> None:
    """Fresh processes, as on-call types the command: nothing imported, no client cached. ``--run-dir`` names the
    bench stack's run dir (as `.huntaze/current` does for `huntazectl up`), so the deployments are read too."""
    import subprocess

    argv = [sys.executable, "-m", "controller", "status", "-o", "json", "--run-dir", str(run_dir)]
    wall, refresh_ms, calls = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
        wall.append((time.perf_counter() - started) * 1000)
        data = json.loads(done.stdout)
        assert data["scraper"].get("deployments"), "the cold status did not read the deployment record"
        refresh_ms.append(float(data["refresh_ms"]))
        calls.append(float(data["api_calls"]))
    print(f"cold status, fresh process each ({rounds} rounds, load {os.getloadavg()[0]:.1f}):")
    print(f"  process wall ms: {summary(wall)}")
    print(f"  refresh ms:      {summary(refresh_ms)}   (collect + diagnose, as reported; the rest is start-up)")
    print(f"  API calls:       {summary(calls)}")
    probe = subprocess.run([sys.executable, "-X", "importtime", "-c",
                            "import controller.cli, controller.commands.status, controller.oncall.collect, "
                            "controller.oncall.diagnosis, controller.oncall.gate_state, common.aws, boto3"],
                           cwd=REPO, capture_output=True, text=True, check=False)
    rows = []
    for line in probe.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    top = [(us, name) for us, name in rows if not name.startswith("  ")]
    print(f"  imports of the status path: {sum(us for us, _ in top) / 1000:.0f} ms; top-level: " + ", ".join(
        f"{name.strip()} {us / 1000:.0f}" for us, name in sorted(top, reverse=True)[:6]))


def state(name: str) -> str:
    return str(client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])


def measure_lag(rounds: int) -> list[float]:
    cw = client("cloudwatch")
    lags: list[float] = []
    for _ in range(rounds):
        deadline = time.monotonic() + 60
        while state("lambda_errors_critical") != "OK" and time.monotonic() < deadline:
            time.sleep(0.2)
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=[{
            "MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": "huntaze-rate-limiter"}],
            "Value": 60.0, "Timestamp": datetime.now(UTC)}])
        crossed = time.monotonic()
        while state("lambda_errors_critical") != "ALARM":
            if time.monotonic() - crossed > 60:
                break
            time.sleep(0.05)
        else:
            lags.append(time.monotonic() - crossed)
    return lags


if __name__ == "__main__":
    main()
