"""In-process units of the operator, with moto over HTTP and freezegun for time: the lease (expiry, takeover,
fencing, force-unlock), requeue backoff, the convergence guard, error classification, journal redaction and
rotation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from common.aws import client
from controller.calls import CallGate, is_read
from controller.diff import compute_delta
from controller.errors import ErrorClass, LeaseLost, LockHeld, PermanentError, TemporaryError, classify
from controller.journal import Journal, JournalRecord, JsonLinesFile, now, read_file_records, redact
from controller.kinds import registry
from controller.kinds.base import Context
from controller.lease import LEASE_TABLE, Lease
from controller.lock_table import create_from_spec
from controller.model import ResourceKey
from controller.operator.guard import Guard, GuardStore
from controller.operator.requeue import RequeueQueue
from controller.reconciler import Action, ApplyOptions, Reconciler
from controller.specs import LoadOptions, load

REPO = Path(__file__).resolve().parents[2]
KEY = ResourceKey(kind="Queue", name="q")


class AwsError(Exception):
    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


@pytest.fixture
def db(aws: str) -> Any:
    dynamodb = client("dynamodb")
    Lease(dynamodb, "s", "bootstrap").ensure_table()
    return dynamodb


def test_lease_held_until_ttl_then_taken_over_with_higher_fencing(db: Any) -> None:
    with freeze_time("2026-12-01 08:00:00") as clock:
        a, b = Lease(db, "s", "a", ttl_s=30), Lease(db, "s", "b", ttl_s=30)
        assert a.try_acquire() and a.held
        assert not b.try_acquire()
        with pytest.raises(LockHeld, match=r"locked by a \(since 2026-12-01 08:00:00 UTC, lock id \d+"):
            b.acquire(timeout_s=0)
        clock.tick(20)
        assert a.renew() and a.held  # renewed: valid for another ttl from now
        clock.tick(27)
        assert a.held and not b.try_acquire()
        clock.tick(2)  # past the renewed expiry minus the safety margin: a must not write any more...
        with pytest.raises(LeaseLost):
            a.check()
        assert not b.try_acquire()  # ...before b may take over (the margin covers clock skew)
        clock.tick(1.5)
        assert b.try_acquire() and b.fencing is not None
        assert not a.renew()


def test_lease_local_validity_ends_before_table_expiry_by_the_margin(db: Any) -> None:
    with freeze_time("2026-12-01 08:00:00") as clock:
        a = Lease(db, "s", "a", ttl_s=30)
        a.try_acquire()
        clock.tick(30 - a.margin_s + 0.01)
        assert not a.held  # stops writing before anyone else may take over


def test_lease_release_lets_the_next_holder_in_at_once_and_fencing_only_grows(db: Any) -> None:
    a, b = Lease(db, "s", "a"), Lease(db, "s", "b")
    assert a.try_acquire()
    first = a.fencing
    a.release()
    assert not a.held and b.try_acquire() and b.fencing == first + 1  # type: ignore[operator]
    db.delete_item(TableName=LEASE_TABLE, Key={"lockId": {"S": "s"}})  # as DynamoDB TTL would
    b.release()
    assert a.try_acquire() and a.fencing > first + 1  # type: ignore[operator]


def test_lease_force_unlock_only_breaks_the_named_lock(db: Any) -> None:
    a, b = Lease(db, "s", "a"), Lease(db, "s", "b")
    a.try_acquire()
    with pytest.raises(LockHeld, match="not the current lock"):
        b.force_unlock(a.fencing + 5)  # type: ignore[operator]
    assert b.force_unlock(a.fencing) is not None  # type: ignore[arg-type]
    assert b.try_acquire()
    assert not a.renew()


def test_requeue_backoff_doubles_per_failure_and_success_clears() -> None:
    with freeze_time("2026-12-01 08:00:00") as clock:
        queue = RequeueQueue(jitter=0.0)
        assert queue.schedule(KEY, 5.0) == 5.0
        clock.tick(4.9)
        assert queue.due() == set()
        clock.tick(0.2)
        assert queue.due() == {KEY}
        assert [queue.schedule(KEY, 5.0) for _ in range(3)] == [10.0, 20.0, 40.0]
        queue.succeeded(KEY)
        assert queue.schedule(KEY, 5.0) == 5.0
        for _ in range(10):
            last = queue.schedule(KEY, 5.0)
        assert last == queue.max_delay_s


def test_requeue_parked_resource_waits_for_a_spec_or_live_change() -> None:
    queue = RequeueQueue()
    queue.park(KEY, spec="s1", live="l1", reason="AccessDenied", error_class="terminal")
    assert not queue.unpark_if_changed(KEY, "s1", "l1") and KEY in queue.parked
    assert queue.unpark_if_changed(KEY, "s1", "l2") and KEY not in queue.parked


def test_guard_trips_after_n_flips_following_our_writes_and_spec_change_resets() -> None:
    guard = Guard(threshold=3)
    assert guard.observe(KEY, "spec1", {"visibilityTimeout": (60, 99)}, wrote=True) is None  # first correction
    assert guard.observe(KEY, "spec1", {"visibilityTimeout": (60, 98)}, wrote=True) is None  # flip 1
    assert guard.observe(KEY, "spec1", {}, wrote=False) is None
    assert guard.observe(KEY, "spec1", {"visibilityTimeout": (60, 97)}, wrote=True) is None  # flip 2
    mark = guard.observe(KEY, "spec1", {"visibilityTimeout": (60, 96)}, wrote=True)  # flip 3
    assert mark is not None
    assert (mark["field"], mark["desired"], mark["live"], mark["flips"]) == ("visibilityTimeout", 60, 96, 3)
    assert len(mark["flip_times"]) == 3
    assert guard.observe(KEY, "spec2", {"visibilityTimeout": (61, 96)}, wrote=True) is None  # new spec: over


def test_guard_store_marks_survive_in_the_lease_table_and_resume_clears(db: Any) -> None:
    store = GuardStore(db, "s")
    assert store.load() == {}
    store.save("Queue/q", {"field": "visibilityTimeout", "flips": 3})
    assert GuardStore(db, "s").load() == {"Queue/q": {"field": "visibilityTimeout", "flips": 3}}
    assert store.clear("Queue/q") and store.load() == {}
    assert not store.clear("Queue/q")


@pytest.mark.parametrize(
    ("error", "expected", "delay"),
    [
        (AwsError("ThrottlingException"), ErrorClass.TEMPORARY, 5.0),
        (AwsError("ResourceConflictException"), ErrorClass.TEMPORARY, 5.0),
        (AwsError("AWS.SimpleQueueService.QueueDeletedRecently"), ErrorClass.TEMPORARY, 61.0),
        (AwsError("AccessDenied", 403), ErrorClass.TERMINAL, 0.0),
        (AwsError("AccessDeniedException", 400), ErrorClass.TERMINAL, 0.0),
        (AwsError("ResourceNotFoundException", 404), ErrorClass.NOT_FOUND, 5.0),
        (AwsError("SomethingNew", 500), ErrorClass.TEMPORARY, 5.0),
        (AwsError("SomethingNew", 400), ErrorClass.TERMINAL, 0.0),
        (TemporaryError("Queue/q", "not yet", delay=2), ErrorClass.TEMPORARY, 2.0),
        (PermanentError("Queue/q", "bad"), ErrorClass.TERMINAL, 0.0),
        (LookupError("Queue/q has no 'arn' output yet"), ErrorClass.TEMPORARY, 5.0),
        (RuntimeError("bug"), ErrorClass.TERMINAL, 0.0),
    ],
)
def test_classify_each_failure_gets_one_decision(error: BaseException, expected: ErrorClass, delay: float) -> None:
    verdict = classify(error)
    assert (verdict.error_class, verdict.delay) == (expected, delay)


def test_classify_role_not_yet_assumable_is_temporary() -> None:
    exc = AwsError("InvalidParameterValueException")
    exc.args = ("The role defined for the function cannot be assumed by Lambda.",)
    assert classify(exc).temporary and not classify(AwsError("InvalidParameterValueException")).temporary


def test_journal_redacts_url_credentials_secret_fields_and_known_values(tmp_path: Path) -> None:
    journal = Journal(JsonLinesFile(tmp_path / "j.jsonl"), secrets=("hunter2-token",))
    record = JournalRecord(type="resource", cycle_id="c", time=now(), resource="Function/f",
                           error="failed with hunter2-token in it",
                           guard={"url": "redis://:s3cretpw@10.0.0.1:6379/0", "password": "pw-value"})
    assert redact({"REDIS_URL": "rediss://user:pw@host/0"}) == {"REDIS_URL": "rediss://***@host/0"}
    journal.write(record)
    text = (tmp_path / "j.jsonl").read_text()
    for secret in ("hunter2-token", "s3cretpw", "pw-value"):
        assert secret not in text
    assert json.loads(text)["resource"] == "Function/f"


def test_journal_rotates_by_size_and_reads_back_oldest_first(tmp_path: Path) -> None:
    file = JsonLinesFile(tmp_path / "j.jsonl", max_bytes=2000, backups=2)
    journal = Journal(file)
    for i in range(40):
        journal.write(JournalRecord(type="cycle", cycle_id=f"c{i:02d}", time=now()))
    assert len(file.files()) == 3 and all(p.stat().st_size <= 2000 for p in file.files())
    ids = [r.cycle_id for r in read_file_records(tmp_path / "j.jsonl", backups=2)]
    assert ids == sorted(ids) and ids[-1] == "c39" and len(ids) < 40  # the oldest rotated out


def test_lease_table_created_from_the_stacks_table_spec_has_no_drift_and_none_without_a_spec(aws: str) -> None:
    stack = load(LoadOptions([str(REPO / "manifests" / "controller-lease-table.yaml")], "local",
                             {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012"}))
    ctx = Context(stack="huntaze-local", region="us-east-1", account_id="123456789012", client=client)
    assert create_from_spec([], ctx) is None  # no spec: a minimal unowned table, so --prune never deletes it
    assert Lease(client("dynamodb"), "s", "a").ensure_table(create_from_spec(stack.manifests, ctx))
    assert not Lease(client("dynamodb"), "s", "b").ensure_table(create_from_spec(stack.manifests, ctx))
    (manifest,) = stack.manifests
    kind = registry.handler(manifest.kind)
    live = kind.read(manifest, ctx)
    assert live is not None and live.owned
    delta = compute_delta(manifest.key, kind.desired(manifest, ctx), live.fields, kind.field_rules(manifest))
    assert [f.path for f in delta.fields if f.is_drift] == []


def test_gate_counts_every_read_of_a_pass_including_the_batch_reads(aws: str) -> None:
    """A cycle's read calls (journal, benchmark) are all the reads the pass sent: the batch reads made before
    the resources (GetResources for the stack's tags...) included, counted here by botocore on the same clients."""
    stack = load(LoadOptions([str(REPO / "tests/operator/stacks/small")], "local",
                             {"ENV": "local", "AWS_REGION": "us-east-1", "AWS_ACCOUNT_ID": "123456789012"}))
    first = CallGate()
    Reconciler(Context(stack="huntaze-local", region="us-east-1", account_id="123456789012",
                       client=first.client), gate=first).apply(stack, ApplyOptions())
    sent: list[str] = []

    def record(model: Any, **_: Any) -> None:
        if is_read(model.name):
            sent.append(model.name)

    gate = CallGate()
    services = ("sqs", "logs", "resourcegroupstaggingapi")
    for service in services:
        gate.client(service).meta.events.register("before-call", record, unique_id="test-read-count")
    try:
        results = Reconciler(Context(stack="huntaze-local", region="us-east-1", account_id="123456789012",
                                     client=gate.client), gate=gate).apply(stack, ApplyOptions())
    finally:
        for service in services:
            gate.client(service).meta.events.unregister("before-call", unique_id="test-read-count")
    assert {r.action for r in results} == {Action.UNCHANGED}
    assert "GetResources" in sent  # the pass's batch read of the stack's tags
    assert gate.totals.reads == len(sent), sorted(sent)
    assert gate.totals.writes == 0
