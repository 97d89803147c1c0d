"""SQS FIFO receives for the local moto (`localplane.emulator`), with the per-group order AWS guarantees.

moto 5.2 decides which groups are blocked from a snapshot of its `pending_messages` set taken when a
ReceiveMessage starts, and clears a message from that set only when a receive walks over it after its visibility
timeout. So when two messages of a group were in flight and timed out, the walk reaches the first, finds the second
still "pending", skips the first, then clears and delivers the second: later-first redelivery. It also spins
without sleeping while a long poll waits behind a blocked group, and receives race each other (no lock).

Here a FIFO receive is one pass at a time over the queue's messages in send order, under the queue's own lock
(the one SendMessage already takes; deletes and visibility changes take it too and wake waiting polls), and:
- a group with a message in flight (received, visibility not yet over) delivers nothing, whoever received it;
  messages received by this same call do not block their own group (one receive may return several messages of
  a group, in order, as on AWS);
- within a group, a message is delivered only if every earlier message of the group still in the queue was
  delivered by this call: the first one skipped (in flight, delayed) stops the group for the rest of the pass,
  so a message back from a timeout or ChangeMessageVisibility 0 is the next one its group delivers;
- a message already received maxReceiveCount times goes to the dead-letter queue at its next receive, as in
  moto (and AWS), and its group goes on with its next message;
- a long poll sleeps until a send, delete or visibility change on the queue, or the next visibility timeout or
  delay ends, and then makes another pass: a group freed mid-poll is delivered at once, and never mid-pass.
"""

from __future__ import annotations

from copy import deepcopy

from moto.core.utils import unix_time, unix_time_millis
from moto.sqs.models import Message, Queue, SQSBackend, _filter_message_attributes

_MAX_IDLE_WAIT_S = 1.0  # re-check at least this often (a purge or an expiring retention period notifies no one)


def _in_flight(message: Message, now_ms: float) -> bool:
    return message.approximate_receive_count > 0 and now_ms <= message.visible_at


def _next_change_s(queue: Queue, now_ms: float) -> float:
    """Seconds until the next message of the queue stops being in flight or delayed."""
    upcoming = [m.visible_at for m in queue._messages if _in_flight(m, now_ms)]
    upcoming += [m.delayed_until for m in queue._messages if m.delayed_until > now_ms]
    if not upcoming:
        return _MAX_IDLE_WAIT_S
    return max(0.0, (min(upcoming) - now_ms) / 1000.0) + 0.002


def _one_pass(backend: SQSBackend, queue: Queue, queue_name: str, *, count: int, visibility_timeout: int,
              attribute_names: list[str]) -> tuple[list[Message], list[Message]]:
    """Under the queue's lock: the copies of the messages this pass receives, and those to dead-letter."""
    now_ms = unix_time_millis()
    blocked = {m.group_id for m in queue._messages if _in_flight(m, now_ms)}  # before this pass receives any
    received: list[Message] = []
    to_dlq: list[Message] = []
    policy = queue.redrive_policy if queue.dead_letter_queue is not None else None
    for message in list(queue._messages):
        group = message.group_id
        if group in blocked:
            continue
        if now_ms <= message.visible_at or now_ms < message.delayed_until:
            blocked.add(group)  # the group's later messages wait for this one
            continue
        queue.pending_messages.discard(message)  # back from a timeout, if it was in flight
        if policy and message.approximate_receive_count >= policy["maxReceiveCount"]:
            to_dlq.append(message)
            continue
        if not backend.is_message_valid_based_on_retention_period(queue_name, message):
            continue  # past the retention period: as good as gone
        queue.pending_messages.add(message)
        message.mark_received(visibility_timeout=visibility_timeout)
        copy = deepcopy(message)  # the answer's copy; attribute filtering must not touch the stored message
        _filter_message_attributes(copy, attribute_names)
        received.append(copy)
        if len(received) >= count:
            break
    for message in to_dlq:
        queue._messages.remove(message)
        queue.pending_messages.discard(message)
    return received, to_dlq


def receive_fifo(backend: SQSBackend, queue_name: str, *, count: int, wait_seconds_timeout: int,
                 visibility_timeout: int, message_attribute_names: list[str] | None = None) -> list[Message]:
    """`SQSBackend.receive_message` for a FIFO queue (same arguments and answer)."""
    queue = backend.get_queue(queue_name)
    attribute_names = message_attribute_names or []
    polling_end = unix_time() + wait_seconds_timeout
    while True:
        with queue._messages_lock:
            result, to_dlq = _one_pass(backend, queue, queue_name, count=count,
                                       visibility_timeout=visibility_timeout, attribute_names=attribute_names)
            remaining = polling_end - unix_time()
            if not result and not to_dlq and wait_seconds_timeout and remaining > 0:
                queue._messages_lock.wait(min(remaining, _next_change_s(queue, unix_time_millis()),
                                              _MAX_IDLE_WAIT_S))
        for message in to_dlq:  # outside this queue's lock: the dead-letter queue takes its own
            queue.dead_letter_queue.add_message(message)  # type: ignore[union-attr]
        if result or not wait_seconds_timeout or unix_time() >= polling_end:
            return result


def patch_fifo_receives() -> None:
    """Route FIFO receives through `receive_fifo`; deletes and visibility changes take the queue's lock and wake
    the polls waiting on it."""
    from moto.sqs import models

    original_receive = models.SQSBackend.receive_message
    original_delete = models.Queue.delete_message
    original_visibility = models.SQSBackend.change_message_visibility

    def receive_message(  # noqa: PLR0917 - moto's own signature, called positionally by its responses
            self: SQSBackend, queue_name: str, count: int, wait_seconds_timeout: int, visibility_timeout: int,
            message_attribute_names: list[str] | None = None) -> list[Message]:
        if self.get_queue(queue_name).fifo_queue:
            return receive_fifo(self, queue_name, count=count, wait_seconds_timeout=wait_seconds_timeout,
                                visibility_timeout=visibility_timeout, message_attribute_names=message_attribute_names)
        return original_receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                                message_attribute_names)

    def delete_message(self: Queue, receipt_handle: str) -> None:
        with self._messages_lock:
            original_delete(self, receipt_handle)
            self._messages_lock.notify_all()

    def change_message_visibility(self: SQSBackend, queue_name: str, receipt_handle: str,
                                  visibility_timeout: int) -> None:
        queue = self.get_queue(queue_name)
        with queue._messages_lock:
            original_visibility(self, queue_name, receipt_handle, visibility_timeout)
            queue._messages_lock.notify_all()

    models.SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    models.Queue.delete_message = delete_message  # type: ignore[method-assign]
    models.SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]
