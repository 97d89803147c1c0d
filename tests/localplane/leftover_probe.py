"""Not collected by default (no ``test_`` prefix): run by test_no_leftovers.py as a pytest subprocess that is
then interrupted. It starts the session's moto and Redis servers, writes their pids to $PROBE_PIDS, and waits
to be interrupted (bounded, so a broken harness cannot hang forever)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from localplane.services import MotoServer, RedisServer


def test_probe_servers_running_until_interrupted(moto_server: MotoServer, redis_server: RedisServer) -> None:
    assert moto_server.proc is not None and redis_server.proc is not None
    path = Path(os.environ["PROBE_PIDS"])
    path.with_suffix(".tmp").write_text(f"{moto_server.proc.pid} {redis_server.proc.pid}\n")
    path.with_suffix(".tmp").rename(path)
    threading.Event().wait(120)
