"""`huntazectl send`, `results`, `env`, `down` and `common.producer` against a real moto server over HTTP.

The ingress queue and the results bucket are created with the names the manifests give them; jobs are read back
from SQS exactly as the gate would receive them. (The full `up --detach` → `down` cycle is a soak test in
test_stack_lifecycle.py.)
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.aws import client
from common.contract import ContractError, parse_job
from common.producer import Producer, enqueue
from controller.cli import main as huntazectl
from controller.commands.results import parse_since
from localplane.stack import RunState

INGRESS = "huntaze-rate-limiter-queue"
BUCKET = "huntaze-onlyfans-results-local-123456789012"


@pytest.fixture
def ingress(aws: str) -> str:
    return str(client("sqs").create_queue(QueueName=INGRESS)["QueueUrl"])


def drain(url: str) -> list[dict[str, Any]]:
    sqs, out = client("sqs"), []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages"):
        out += got
    return out


def valid(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"action": "get_messages", "creator_id": f"c{i % 3}", "user_id": "u1",
            "timestamp": datetime.now(UTC).isoformat(), **extra}


def test_enqueue_valid_jobs_arrive_once_each_with_a_correlation_id(ingress: str) -> None:
    ids = enqueue(*[valid(i) for i in range(23)])  # 3 batches: 10, 10, 3
    bodies = [parse_job(m["Body"]) for m in drain(ingress)]
    assert sorted(str(j.metadata.correlation_id) for j in bodies) == sorted(ids)
    assert len(set(ids)) == 23


def test_enqueue_one_invalid_job_sends_nothing_and_names_the_field(ingress: str) -> None:
    with pytest.raises(ContractError, match="message_content"):
        enqueue(valid(1), valid(2, action="send_message"))
    assert drain(ingress) == []


def test_producer_keeps_a_given_correlation_id_and_flushes_on_exit(ingress: str) -> None:
    with Producer() as producer:
        producer.enqueue(valid(0, metadata={"correlation_id": "mine-1"}))
        assert drain(ingress) == []  # buffered until 10 or exit
    assert [parse_job(m["Body"]).metadata.correlation_id for m in drain(ingress)] == ["mine-1"]
    assert set(producer.message_ids) == {"mine-1"}


def test_send_flags_count_sends_distinct_valid_jobs(ingress: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = huntazectl(["send", "--action", "send_message", "--creator", "creator_a", "--text", "hi",
                       "--count", "12", "-o", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    received = drain(ingress)
    jobs = [parse_job(m["Body"]) for m in received]
    assert out["sent"] == 12 == len(jobs) == len(set(out["message_ids"]))
    assert sorted(out["message_ids"]) == sorted(m["MessageId"] for m in received)
    assert {j.message_content for j in jobs} == {f"hi #{i}" for i in range(1, 13)}
    assert all(j.creator_id == "creator_a" for j in jobs)


def test_send_site_actions_default_to_the_standin_url(ingress: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUNTAZE_SITE_URL", "http://127.0.0.1:9")
    assert huntazectl(["send", "--action", "scrape_profile", "--creator", "c7"]) == 0
    [job] = [parse_job(m["Body"]) for m in drain(ingress)]
    assert str(job.profile_url) == "http://127.0.0.1:9/u/c7"


def test_send_from_file_with_a_bad_line_sends_nothing_and_names_file_and_line(
    ingress: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(valid(1)) + "\n\n" + json.dumps(valid(2, action="download_media")) + "\n")
    assert huntazectl(["send", "--from", str(jobs)]) == 2
    err = capsys.readouterr().err
    assert f"{jobs}:3: " in err and "media_urls is required" in err and "nothing sent" in err
    assert drain(ingress) == []


def test_send_from_file_with_invalid_json_names_the_line(ingress: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(valid(1)) + "\n{not json\n")
    assert huntazectl(["send", "--from", str(jobs)]) == 2
    assert f"{jobs}:2: not valid JSON" in capsys.readouterr().err


def test_send_from_file_sends_every_line(ingress: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(valid(i)) for i in range(4)) + "\n")
    assert huntazectl(["send", "--from", str(jobs), "--count", "2", "--rate", "100/s"]) == 0
    got = [parse_job(m["Body"]) for m in drain(ingress)]
    assert len(got) == 8 and len({j.metadata.correlation_id for j in got}) == 8


def test_send_bad_rate_is_a_usage_error(ingress: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        huntazectl(["send", "--action", "get_messages", "--creator", "c", "--rate", "fast"])
    assert "R/s" in capsys.readouterr().err


def put_result(creator: str, action: str, status: str, message_id: str) -> None:
    record = {"message_id": message_id, "creator_id": creator, "action": action, "status": status,
              "timestamp": datetime.now(UTC).isoformat(), "duration_ms": 5,
              "metrics": {"queue_wait_time_ms": 1, "scraping_time_ms": 4, "total_time_ms": 5}}
    client("s3").put_object(Bucket=BUCKET, Key=f"results/{creator}/{action}/2026/12/01/{message_id}.json",
                            Body=json.dumps(record).encode())


def test_results_filters_by_creator_action_status(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    client("s3").create_bucket(Bucket=BUCKET)
    put_result("c1", "send_message", "success", "m1")
    put_result("c1", "get_messages", "failure", "m2")
    put_result("c2", "send_message", "success", "m3")
    assert huntazectl(["results", "--creator", "c1", "-o", "json"]) == 0
    assert {r["message_id"] for r in json.loads(capsys.readouterr().out)} == {"m1", "m2"}
    assert huntazectl(["results", "--action", "send_message", "-o", "json"]) == 0
    assert {r["message_id"] for r in json.loads(capsys.readouterr().out)} == {"m1", "m3"}
    assert huntazectl(["results", "--id", "m3", "-o", "json"]) == 0
    assert [r["message_id"] for r in json.loads(capsys.readouterr().out)] == ["m3"]
    assert huntazectl(["results", "--status", "failure", "--since", "1h", "-o", "json"]) == 0
    assert [r["message_id"] for r in json.loads(capsys.readouterr().out)] == ["m2"]
    assert huntazectl(["results", "--since", "2999-01-01T00:00:00Z", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert huntazectl(["results"]) == 0
    assert "3 result(s)" in capsys.readouterr().out


def test_results_without_a_bucket_says_what_to_do(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert huntazectl(["results"]) == 2
    assert "is the stack applied" in capsys.readouterr().err


def test_parse_since_reads_durations_and_iso_times() -> None:
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("2026-12-01T07:00:00Z", now) == now - timedelta(hours=1)
    assert parse_since("2026-12-01T07:00:00", now).tzinfo is not None


def test_env_prints_export_lines_of_the_running_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    RunState(run_dir=str(tmp_path), pid=os.getpid(), phase="up",
             env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:2/0"}).save()
    assert huntazectl(["env", "--run-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:1\n" in out and "export REDIS_URL=redis://127.0.0.1:2/0" in out
    assert huntazectl(["env", "--run-dir", str(tmp_path), "--unset"]) == 0
    assert capsys.readouterr().out.split() == ["unset", "AWS_ENDPOINT_URL", "unset", "REDIS_URL"]


def test_env_and_down_with_no_stack_up_say_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert huntazectl(["env", "--run-dir", str(tmp_path)]) == 2
    assert "huntazectl up --detach" in capsys.readouterr().err
    assert huntazectl(["down", "--run-dir", str(tmp_path)]) == 0
    assert "nothing to stop" in capsys.readouterr().err


def test_down_after_up_died_kills_what_it_recorded_and_spares_a_reused_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    from localplane.stack import process_start_time

    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan = subprocess.Popen(["sleep", "120"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        RunState(run_dir=str(tmp_path), pid=gone.pid, phase="up", processes={
            str(orphan.pid): {"started": process_start_time(orphan.pid), "cmd": "sleep 120"},
            str(bystander.pid): {"started": -1, "cmd": "an older process that had this pid"},
        }).save()
        assert huntazectl(["down", "--run-dir", str(tmp_path)]) == 0
        assert orphan.wait(timeout=10) == -9
        assert bystander.poll() is None
        assert "nothing left running" in capsys.readouterr().err
    finally:
        for proc in (orphan, bystander):
            proc.kill()
            proc.wait()
