"""The local plane's moto keeps SQS FIFO per-group order through redelivery, as AWS does.

A message group with a message in flight delivers nothing else; a message that becomes visible again (visibility
timeout, ChangeMessageVisibility 0) is the next one its group delivers, before the group's later messages; a
delete frees the group. Plain moto 5.2 redelivered a group's later messages first.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from common.aws import client

from .conftest import make_queue

_queue_names = itertools.count()


def fifo_queue(prefix: str, **attrs: str) -> str:
    url, _ = make_queue(f"{prefix}-{next(_queue_names)}.fifo", FifoQueue="true", ContentBasedDeduplication="true",
                        **attrs)
    return url


def bodies(got: dict[str, object]) -> list[str]:
    return [m["Body"] for m in got.get("Messages", [])]  # type: ignore[attr-defined]


def test_fifo_message_back_from_visibility_timeout_is_redelivered_before_its_later_siblings(aws: str) -> None:
    sqs = client("sqs")
    url = fifo_queue("timeout")
    for body in ("m1", "m2", "m3"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=1)
    assert bodies(first) == ["m1"]
    # While m1 is in flight its group delivers nothing; the long poll returns once m1's timeout ends, with m1.
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=10, VisibilityTimeout=30)
    assert bodies(again) == ["m1"]


def test_fifo_group_received_together_and_timed_out_is_redelivered_in_send_order(aws: str) -> None:
    sqs = client("sqs")
    url = fifo_queue("together")
    for body in ("m1", "m2", "m3"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=1)
    assert bodies(first) == ["m1", "m2"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=10, VisibilityTimeout=30)
    assert bodies(again) == ["m1", "m2", "m3"]


def test_fifo_group_stays_blocked_while_a_later_message_is_in_flight(aws: str) -> None:
    sqs = client("sqs")
    url = fifo_queue("blocked")
    for body in ("m1", "m2"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    m1, m2 = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30)["Messages"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m1["ReceiptHandle"], VisibilityTimeout=0)
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == []  # m2 still holds the group
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])
    assert bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)) == ["m1"]


def test_fifo_concurrent_consumers_get_each_group_one_message_at_a_time_in_order(aws: str) -> None:
    sqs = client("sqs")
    url = fifo_queue("concurrent", VisibilityTimeout="60")
    sent = {group: [f"{group}-{i}" for i in range(8)] for group in ("g0", "g1")}
    for i in range(8):
        for group, group_bodies in sent.items():
            sqs.send_message(QueueUrl=url, MessageBody=group_bodies[i], MessageGroupId=group)
    # A consumer notes a message before deleting it, and its group's next message can only be delivered after that
    # delete: so each group's notes are exactly its messages in send order, whatever the threads' interleaving.
    noted: dict[str, list[str]] = {group: [] for group in sent}
    lock = threading.Lock()
    deadline = time.monotonic() + 60

    def consume() -> None:
        while time.monotonic() < deadline:
            with lock:
                if sum(map(len, noted.values())) >= 16:
                    return
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get(
                    "Messages", []):
                with lock:
                    noted[message["Body"].split("-", maxsplit=1)[0]].append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    consumers = [threading.Thread(target=consume) for _ in range(4)]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join()
    assert noted == sent


@dataclass
class _Model:
    """SQS FIFO as documented: per group, its undeleted messages in send order; which of them are in flight."""

    pending: dict[str, list[str]] = field(default_factory=dict)  # group -> undeleted bodies, send order
    in_flight: dict[str, str] = field(default_factory=dict)  # body -> receipt handle

    def free_groups(self) -> set[str]:
        return {g for g, msgs in self.pending.items() if msgs and not any(m in self.in_flight for m in msgs)}

    def group_of(self, body: str) -> str:
        return body.split("-", maxsplit=1)[0]


# An operation: ("receive", max messages) | ("delete", pick) | ("release", pick) | ("expire", 0), where pick
# chooses one of the messages in flight (modulo their number), "release" is ChangeMessageVisibility 0 and
# "expire" lets every message in flight reach its visibility timeout (1 s; only the first expire of an example
# runs, to bound the test's time).
_operation = st.one_of(
    st.tuples(st.just("receive"), st.integers(1, 4)),
    st.tuples(st.sampled_from(["delete", "release"]), st.integers(0, 50)),
    st.tuples(st.just("expire"), st.just(0)),
)


def _expire_all_in_flight(url: str, handles: list[str]) -> None:
    """Give every message in flight a 1 s visibility timeout, and wait (bounded) until none is in flight."""
    sqs = client("sqs")
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=1)
    deadline = time.monotonic() + 15
    while True:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        if attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0":
            return
        assert time.monotonic() < deadline, "messages still in flight 15 s after a 1 s visibility timeout"
        time.sleep(0.1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@example(sizes=[3, 1], operations=[("receive", 2), ("expire", 0), ("receive", 4)])  # later-first in plain moto
@given(sizes=st.lists(st.integers(1, 4), min_size=2, max_size=3),
       operations=st.lists(_operation, min_size=4, max_size=24))
def test_fifo_receives_keep_per_group_order_through_any_receive_delete_release_interleaving(
        aws: str, sizes: list[int], operations: list[tuple[str, int]]) -> None:
    sqs = client("sqs")
    url = fifo_queue("prop", VisibilityTimeout="120")
    model = _Model()
    for number, size in enumerate(sizes):
        group = f"g{number}"
        model.pending[group] = [f"{group}-{i}" for i in range(size)]
        for body in model.pending[group]:
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
    expired = False
    for kind, arg in operations:
        if kind == "expire":
            if not expired:
                expired = True
                _expire_all_in_flight(url, list(model.in_flight.values()))
                model.in_flight.clear()
        elif kind == "receive":
            free = model.free_groups()
            # When a group is free, wait a little for it (never needed on a correct emulator); else do not wait.
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=arg, WaitTimeSeconds=1 if free else 0)
            messages = got.get("Messages", [])
            assert len(messages) <= arg
            if free:
                assert messages, f"groups {sorted(free)} are free, yet nothing was delivered"
            per_group: dict[str, list[str]] = {}
            for message in messages:
                per_group.setdefault(model.group_of(message["Body"]), []).append(message["Body"])
            for group, delivered in per_group.items():
                assert group in free, f"{delivered} delivered while group {group} has a message in flight"
                assert delivered == model.pending[group][:len(delivered)], (
                    f"group {group} delivered {delivered}; its undeleted messages in order: {model.pending[group]}")
            for message in messages:
                model.in_flight[message["Body"]] = message["ReceiptHandle"]
        elif model.in_flight:
            body = sorted(model.in_flight)[arg % len(model.in_flight)]
            handle = model.in_flight.pop(body)
            if kind == "delete":
                sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
                model.pending[model.group_of(body)].remove(body)
            else:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    sqs.delete_queue(QueueUrl=url)
