"""The one place that makes boto3 clients, used by every program that talks to AWS.

It honours ``AWS_ENDPOINT_URL`` (moto, LocalStack) and the region variables, sets adaptive retries and explicit
connect/read timeouts, and caches one client per (service, region, endpoint): boto3 clients are thread-safe, and
creating one costs milliseconds we do not want on a Lambda's or a worker's hot path.

The region is never guessed against real AWS: it comes from ``AWS_REGION``/``AWS_DEFAULT_REGION`` or the AWS
config file's profile; only a loopback endpoint (moto, LocalStack on this machine) defaults to us-east-1.
Otherwise `current_region` raises `RegionNotConfigured` saying how to set one. boto3 is imported on first use,
so importing this module costs nothing (the CLI's ``--help`` stays fast).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

DEFAULT_REGION = "us-east-1"  # only for a loopback endpoint (moto, LocalStack): never for real AWS
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})


class RegionNotConfigured(RuntimeError):
    """No region is set and the endpoint is real AWS: the message says how to set one."""
# SQS long polling waits up to 20 s, so reads must be allowed to take longer than that.
READ_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 5
MAX_ATTEMPTS = 8

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None, float, int], Any] = {}
_session: boto3.session.Session | None = None


def client_config(read_timeout_s: float = READ_TIMEOUT_S, max_attempts: int = MAX_ATTEMPTS) -> Config:
    """Retry and timeout policy for every client: adaptive retries absorb AWS throttling."""
    from botocore.config import Config

    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        tcp_keepalive=True,
        max_pool_connections=50,
    )


def is_local_endpoint(url: str | None) -> bool:
    """True for an endpoint on this machine (moto, LocalStack on loopback)."""
    if not url:
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return host in _LOOPBACK or host.endswith(".localhost") or host.startswith("127.")


def current_region(*, required: bool = True) -> str:
    """``AWS_REGION``, ``AWS_DEFAULT_REGION``, the AWS profile's region, or us-east-1 for a loopback endpoint.

    Against real AWS with none of them set: `RegionNotConfigured` (``required``), else the placeholder
    us-east-1 (offline checks such as ``validate``, which never call AWS).
    """
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    if is_local_endpoint(current_endpoint()):
        return DEFAULT_REGION
    profile_region = _profile_region()
    if profile_region:
        return profile_region
    if not required:
        return DEFAULT_REGION
    raise RegionNotConfigured(
        "no AWS region is set and the endpoint is real AWS: set one with `export AWS_REGION=eu-west-1` (or "
        "--region, or `region =` in the AWS profile); for the local stack, `eval \"$(huntazectl env)\"` sets "
        "AWS_ENDPOINT_URL and the region"
    )


def _profile_region() -> str | None:
    if not (os.environ.get("AWS_PROFILE") or os.path.exists(os.path.expanduser("~/.aws/config"))
            or os.environ.get("AWS_CONFIG_FILE")):
        return None  # no profile anywhere: do not pay for a boto3 session
    import boto3

    region = boto3.session.Session().region_name
    return str(region) if region else None


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
            _session = _new_session()
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
            _session = _new_session()
        _session.events.register(event_name, handler)
        for cached in _clients.values():
            cached.meta.events.register(event_name, handler)


def _new_session() -> boto3.session.Session:
    import boto3

    return boto3.session.Session()


def clear_client_cache() -> None:
    """Forget cached clients and the session (tests, or after credentials change)."""
    global _session  # noqa: PLW0603
    with _lock:
        _clients.clear()
        _session = None
