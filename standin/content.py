"""Deterministic content of the stand-in platform, derived from ids alone.

Every creator id matching `CREATOR_ID_RE` exists implicitly. `standin.web` and `standin.api` call these
functions so that a profile, a seed thread or a media file looks the same on every run and through both the
HTML site and the JSON API; tests compute the expected values with the same functions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

CREATOR_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
USER_ID_RE = CREATOR_ID_RE
MEDIA_ID_RE = re.compile(r"^(?P<creator>[A-Za-z0-9_\-]{1,64})-m(?P<n>[0-9]{1,6})$")
SEED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
SEED_MESSAGES_PER_THREAD = 2
FANS_PER_CREATOR = 3

_FIRST_NAMES = ("Ava", "Mia", "Leo", "Zoe", "Kai", "Ivy", "Max", "Nia", "Eli", "Ada", "Rio", "Sky")
_BIO_LINES = (
    "Daily behind-the-scenes and long-form posts.",
    "Fitness, food and the occasional cat picture.",
    "Photographer. New sets every Friday.",
    "Music, streams and answering every message.",
    "Travel diaries from wherever the week ends.",
    "Cosplay builds, start to finish.",
)
_FAN_LINES = (
    "Hey! Loved your last post.",
    "When is the next set coming out?",
    "Thanks for the reply yesterday :)",
    "Could you do a Q&A this week?",
    "Big fan, been following for a year.",
    "Is the bundle still available?",
)


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def _number(*parts: str) -> int:
    return int.from_bytes(_digest(*parts)[:8], "big")


def is_creator_id(value: str) -> bool:
    return CREATOR_ID_RE.fullmatch(value) is not None


def is_user_id(value: str) -> bool:
    return USER_ID_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class Profile:
    creator_id: str
    name: str
    bio: str
    posts: int
    followers: int
    likes: int

    def to_json(self) -> dict[str, object]:
        return {
            "creator_id": self.creator_id,
            "name": self.name,
            "bio": self.bio,
            "posts": self.posts,
            "followers": self.followers,
            "likes": self.likes,
        }


def profile(creator_id: str) -> Profile:
    """The public profile of `creator_id` (same on every run)."""
    seed = _number("profile", creator_id)
    followers = seed % 250_000
    return Profile(
        creator_id=creator_id,
        name=f"{_FIRST_NAMES[seed % len(_FIRST_NAMES)]} {creator_id}",
        bio=_BIO_LINES[(seed // 7) % len(_BIO_LINES)],
        posts=(seed // 11) % 2_000,
        followers=followers,
        likes=followers * 3 + (seed // 13) % 10_000,
    )


@dataclass(frozen=True)
class ThreadMessage:
    """One message as a thread shows it (seed message or recorded send)."""

    id: str
    sender: str
    text: str
    sent_at: datetime
    client_ref: str | None = None  # what the sender passed with a recorded send; None for seed messages

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "sender": self.sender, "text": self.text, "sent_at": iso(self.sent_at),
                "client_ref": self.client_ref}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def seed_messages(creator_id: str, user_id: str) -> list[ThreadMessage]:
    """The two fan messages every (creator, fan) thread starts with."""
    seed = _number("thread", creator_id, user_id)
    start = SEED_EPOCH + timedelta(minutes=seed % 500_000)
    token = _digest("thread-id", creator_id, user_id).hex()[:12]
    return [
        ThreadMessage(
            id=f"seed-{token}-{n}",
            sender="fan",
            text=_FAN_LINES[(seed // (n + 3)) % len(_FAN_LINES)],
            sent_at=start + timedelta(minutes=7 * n),
        )
        for n in range(1, SEED_MESSAGES_PER_THREAD + 1)
    ]


def seed_fans(creator_id: str) -> list[str]:
    """Fans who already wrote to `creator_id` (the inbox shows them even before any send)."""
    return [f"fan-{_digest('fan', creator_id, str(n)).hex()[:8]}" for n in range(1, FANS_PER_CREATOR + 1)]


def media_ids(creator_id: str, count: int) -> list[str]:
    return [f"{creator_id}-m{n}" for n in range(1, count + 1)]


def media_owner(media_id: str, count: int) -> str | None:
    """The creator owning `media_id`, or None when no such media exists."""
    match = MEDIA_ID_RE.fullmatch(media_id)
    if match is None or not 1 <= int(match["n"]) <= count:
        return None
    return match["creator"]


def media_bytes(media_id: str, size: int) -> bytes:
    """Deterministic content of a media file: a SHA-256 stream keyed by the media id."""
    blocks = bytearray()
    counter = 0
    while len(blocks) < size:
        blocks += _digest("media", media_id, str(counter))
        counter += 1
    return bytes(blocks[:size])
