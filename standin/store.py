"""In-memory state of one stand-in instance: sessions, the message record and traffic counters.

`standin.web`, `standin.api` and `standin.admin` write to it while serving; tests read it directly through
`StandinServer.state` (or over HTTP through `/__admin/messages` and `/__admin/stats`) to count what a worker
really did, e.g. that a message was sent exactly once. Every method is thread-safe: the server runs in its own
thread and tests read from theirs.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from standin.content import ThreadMessage, iso

Channel = Literal["web", "api"]


@dataclass(frozen=True)
class MessageRecord:
    """One message received from a worker, in global arrival order (`seq` starts at 1)."""

    seq: int
    id: str
    creator_id: str
    user_id: str
    text: str
    client_ref: str | None
    channel: Channel
    received_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "id": self.id,
            "creator_id": self.creator_id,
            "user_id": self.user_id,
            "text": self.text,
            "client_ref": self.client_ref,
            "channel": self.channel,
            "received_at": iso(self.received_at),
        }

    def as_thread_message(self) -> ThreadMessage:
        return ThreadMessage(id=self.id, sender="creator", text=self.text, sent_at=self.received_at,
                             client_ref=self.client_ref)


class Store:
    """Sessions, sent messages and request counters of one instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, str] = {}
        self._messages: list[MessageRecord] = []
        self._by_route: defaultdict[str, Counter[int]] = defaultdict(Counter)

    def reset(self) -> None:
        """Forget sessions, messages and counters (the start state)."""
        with self._lock:
            self._sessions.clear()
            self._messages.clear()
            self._by_route.clear()

    def create_session(self, creator_id: str) -> str:
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[sid] = creator_id
        return sid

    def session_creator(self, sid: str | None) -> str | None:
        if not sid:
            return None
        with self._lock:
            return self._sessions.get(sid)

    def record_message(
        self, creator_id: str, user_id: str, text: str, client_ref: str | None, channel: Channel
    ) -> MessageRecord:
        with self._lock:
            seq = len(self._messages) + 1
            record = MessageRecord(
                seq=seq,
                id=f"msg-{seq}",
                creator_id=creator_id,
                user_id=user_id,
                text=text,
                client_ref=client_ref,
                channel=channel,
                received_at=datetime.now(UTC),
            )
            self._messages.append(record)
        return record

    def messages(self) -> list[MessageRecord]:
        """Every message received, in arrival order."""
        with self._lock:
            return list(self._messages)

    def thread(self, creator_id: str, user_id: str) -> list[MessageRecord]:
        return [m for m in self.messages() if m.creator_id == creator_id and m.user_id == user_id]

    def correspondents(self, creator_id: str) -> list[str]:
        """Fans `creator_id` has sent to, in order of first send."""
        seen: dict[str, None] = {}
        for message in self.messages():
            if message.creator_id == creator_id:
                seen.setdefault(message.user_id, None)
        return list(seen)

    def count_request(self, route: str, status: int) -> None:
        with self._lock:
            self._by_route[route][status] += 1

    def stats(self) -> dict[str, object]:
        """Operation counts: total, per status code and per route (route -> status -> count)."""
        with self._lock:
            by_route = {route: dict(counts) for route, counts in self._by_route.items()}
        by_status: Counter[int] = Counter()
        for counts in by_route.values():
            by_status.update(counts)
        return {
            "total": sum(by_status.values()),
            "by_status": {str(status): n for status, n in sorted(by_status.items())},
            "by_route": {
                route: {str(status): n for status, n in sorted(counts.items())}
                for route, counts in sorted(by_route.items())
            },
        }
