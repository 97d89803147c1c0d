"""The one place that makes boto3 clients, used by every program that talks to AWS.

It honours ``AWS_ENDPOINT_URL`` (moto, LocalStack) and the region variables, sets adaptive retries and explicit
connect/read timeouts, and caches one client per (service, region, endpoint): boto3 clients are thread-safe, and
creating one costs milliseconds we do not want on a Lambda's or a worker's hot path.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"
# SQS long polling waits up to 20 s, so reads must be allowed to take longer than that.
READ_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 5
MAX_ATTEMPTS = 8

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None, float, int], Any] = {}
_session: boto3.session.Session | None = None


def client_config(read_timeout_s: float = READ_TIMEOUT_S, max_attempts: int = MAX_ATTEMPTS) -> Config:
    """Retry and timeout policy for every client: adaptive retries absorb AWS throttling."""
    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        tcp_keepalive=True,
        max_pool_connections=50,
    )


def current_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def current_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or None


def client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    read_timeout_s: float = READ_TIMEOUT_S,
    max_attempts: int = MAX_ATTEMPTS,
) -> Any:
    """A cached boto3 client for `service`. Region and endpoint default to the standard environment.

    Callers with a tight deadline (the gate runs inside a Lambda timeout) pass a shorter read timeout and fewer
    attempts, so a failing AWS call is reported in time instead of outliving the invocation.
    """
    global _session  # noqa: PLW0603 - one session per process, created lazily
    resolved_region = region or current_region()
    resolved_endpoint = endpoint_url or current_endpoint()
    key = (service, resolved_region, resolved_endpoint, read_timeout_s, max_attempts)
    with _lock:
        cached = _clients.get(key)
        if cached is not None:
            return cached
        if _session is None:
            _session = boto3.session.Session()
        made = _session.client(  # type: ignore[call-overload]
            service,
            region_name=resolved_region,
            endpoint_url=resolved_endpoint,
            config=client_config(read_timeout_s, max_attempts),
        )
        _clients[key] = made
        return made


def add_event_hook(event_name: str, handler: Any) -> None:
    """Register a botocore event handler (e.g. ``before-call``) on every client, cached or made later.

    Used to count API calls (the controller's zero-writes check) and by tests; handlers must be thread-safe.
    """
    global _session  # noqa: PLW0603
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        _session.events.register(event_name, handler)
        for cached in _clients.values():
            cached.meta.events.register(event_name, handler)


def clear_client_cache() -> None:
    """Forget cached clients and the session (tests, or after credentials change)."""
    global _session  # noqa: PLW0603
    with _lock:
        _clients.clear()
        _session = None
