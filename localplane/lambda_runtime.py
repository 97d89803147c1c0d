"""A local Lambda runtime: one child process per function, like a warm Lambda execution environment.

Started by `localplane.mapping_runner` with the environment variables of the version it runs and, on PYTHONPATH,
that version's code unpacked from its zip (for a mapping on an alias; `localplane.lambda_versions`: when the zip
is built for another architecture, only its own packages, the dependencies then come from this environment)
ahead of the repository (a mapping on ``$LATEST`` runs the checkout). It reads one JSON event per stdin line,
calls the handler, and writes one JSON line ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": ...}`` to
stdout. Handler logs go to stderr, as CloudWatch Logs would collect them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _load(handler_path: str) -> Any:
    module_name, _, attr = handler_path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _reply_channel() -> Any:
    """Keep the real stdout for replies; everything the handler prints (logs, EMF) goes to stderr."""
    sys.stdout.flush()
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return replies


def serve(handler_path: str, function_name: str, function_arn: str, memory: int, timeout_s: int, *,
          function_version: str = "$LATEST") -> int:
    real_stdout = _reply_channel()
    handler = _load(handler_path)
    for line in sys.stdin:
        if not line.strip():
            continue
        event = json.loads(line)
        context = LambdaContext(
            function_name=function_name, memory_limit_in_mb=memory, timeout_s=timeout_s,
            aws_request_id=str(uuid.uuid4()), invoked_function_arn=function_arn, function_version=function_version,
            log_group_name=f"/aws/lambda/{function_name}", _deadline=time.monotonic() + timeout_s,
        )
        try:
            result = handler(event, context)
            reply = {"ok": True, "result": result}
        except Exception as exc:  # a handler that raises fails the whole batch, as in Lambda
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        real_stdout.write(json.dumps(reply, default=str) + "\n")
        real_stdout.flush()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--function-arn", default="")
    parser.add_argument("--memory", type=int, default=256)
    parser.add_argument("--timeout", type=int, default=30)
    parser.add_argument("--function-version", default="$LATEST")
    args = parser.parse_args()
    return serve(args.handler, args.function_name, args.function_arn, args.memory, args.timeout,
                 function_version=args.function_version)


if __name__ == "__main__":
    sys.exit(main())
