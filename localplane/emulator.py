"""The moto server as the local plane runs it: `python -m localplane.emulator -H 127.0.0.1 -p PORT`.

Started by `localplane.services.MotoServer` (for `huntazectl up` and every test). It is moto's own server with
two changes, for moto gaps we hit. First: when a queue has an event source mapping, moto's SendMessage itself
receives up to BatchSize visible messages and tries to invoke the function in Docker. Here that fails, so every
send burns a receive on other messages, and after maxReceiveCount moto moves perfectly valid jobs to the DLQ. On
AWS, only Lambda's pollers receive from a mapped queue; locally that poller is `localplane.mapping_runner`. So
queues here never run mappings inline. Mappings are still stored and listed exactly as before.

Second, FIFO receives: moto 5.2 decides which message groups are blocked from a snapshot taken when a
ReceiveMessage starts, so a long poll missed a group freed mid-poll (up to 20 s late), and a group whose messages
timed out together was redelivered later-first (AWS never breaks a group's order). `localplane.sqs_fifo` receives
from FIFO queues with AWS's per-group semantics instead; standard queues are moto's own.

Third, a mapping made on an alias (``function:NAME:live``): moto resolves the alias at CreateEventSourceMapping
and keeps the version it pointed at then (``FunctionArn`` ``function:NAME:1``) for ever, so the mapping would
never follow a release. AWS keeps the alias ARN and invokes whatever the alias points at when it polls; here
the mapping keeps the alias ARN too, and the local plane resolves the alias at each invocation.

Fourth, GetFunction's ``Code.Location``: moto answers an S3 URL that leads nowhere, so the code of a version could
not be downloaded. Here, when ``HUNTAZE_LAMBDA_CODE_DIR`` is set (`localplane.services.MotoServer` sets it to its
work dir), the zip of the function or version asked for is written there once per CodeSha256 and Location is
its ``file://`` URL: the local plane downloads a version's code as it would follow AWS's presigned URL.

Fifth, CodeDeploy (`localplane.codedeploy_api`): the Update/Delete calls of applications and deployment groups,
StopDeployment and the deployment group's ``alarmConfiguration`` moto lacks, and one local-only action through
which the local plane, acting as CodeDeploy's engine, moves a deployment's status (moto leaves it ``Created``).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

# The patches below were written against moto 5.2's SQS model (Queue._messages and its lock, Message fields,
# SQSBackend.receive_message, lambda_event_source_mappings). pyproject.toml pins the same range; another version
# fails at start, clearly.
SUPPORTED_MOTO = ((5, 2), (5, 3))  # >= 5.2, < 5.3
CODE_DIR_VARIABLE = "HUNTAZE_LAMBDA_CODE_DIR"  # where GetFunction's Code.Location points (see the docstring)


def check_moto_version(version: str) -> str | None:
    """Why this moto cannot run the emulator, or None."""
    low, high = SUPPORTED_MOTO
    wanted = f"moto[server]>={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    fix = (f"the local emulator's patches were written for moto {low[0]}.{low[1]}.x: run "
           f"`.venv/bin/pip install '{wanted}'` (or `bash scripts/setup.sh`)")
    try:
        major_minor = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return f"cannot read the moto version {version!r}; {fix}"
    if low <= major_minor < high:
        return None
    return f"moto {version} is installed, but {fix}"


class _MappingsRunByTheLocalPlane(dict[str, Any]):
    """A queue's mapping table that stays empty: moto then never receives on a mapped queue's behalf."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


def patch_moto() -> None:
    from moto.sqs import models

    from localplane.codedeploy_api import patch_codedeploy
    from localplane.sqs_fifo import patch_fifo_receives

    original_init = models.Queue.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.lambda_event_source_mappings = _MappingsRunByTheLocalPlane()

    models.Queue.__init__ = init  # type: ignore[method-assign]
    patch_fifo_receives()
    _patch_mappings_on_aliases()
    _patch_code_locations()
    patch_codedeploy()


def _patch_code_locations() -> None:
    import hashlib
    from pathlib import Path

    from moto.awslambda.models import LambdaFunction

    where = os.environ.get(CODE_DIR_VARIABLE)
    if not where:
        return
    code_dir = Path(where)
    original = LambdaFunction.get_code

    def get_code(self: Any) -> dict[str, Any]:
        answer: dict[str, Any] = original(self)
        code = getattr(self, "code_bytes", b"")
        if code and "Location" in answer.get("Code", {}):
            digest = hashlib.sha256(code).hexdigest()
            path = code_dir / f"{digest}.zip"
            if not path.exists():
                code_dir.mkdir(parents=True, exist_ok=True)
                scratch = path.with_suffix(f".tmp{os.getpid()}")
                scratch.write_bytes(code)
                scratch.replace(path)
            answer["Code"]["Location"] = path.as_uri()
        return answer

    LambdaFunction.get_code = get_code  # type: ignore[method-assign]


def _alias_qualifier(function_name: str) -> str | None:
    """The alias a FunctionName (name, ``name:qualifier``, ARN or qualified ARN) names, or None."""
    parts = function_name.split(":")
    qualifier = parts[7] if parts[0] == "arn" and len(parts) > 7 else (parts[1] if len(parts) == 2 else None)
    if qualifier is None or qualifier == "$LATEST" or qualifier.isdigit():
        return None
    return qualifier


def _patch_mappings_on_aliases() -> None:
    from moto.awslambda.models import LambdaBackend

    original = LambdaBackend.create_event_source_mapping

    def create(self: Any, spec: dict[str, Any]) -> Any:
        alias = _alias_qualifier(str(spec.get("FunctionName", "")))
        esm = original(self, spec)
        if alias is not None:
            esm.function_arn = f"{esm.function_arn.rsplit(':', 1)[0]}:{alias}"
        return esm

    LambdaBackend.create_event_source_mapping = create  # type: ignore[method-assign]


def _exit_now(signum: int, frame: Any) -> None:
    """SIGTERM/SIGINT: leave at once. moto's own handler raises SystemExit, and then the interpreter waits for
    every request thread, including SQS long polls of up to 20 s (it looked like SIGTERM was ignored). The
    emulator holds nothing worth flushing: its state lives in memory only."""
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    import moto
    import moto.server

    problem = check_moto_version(moto.__version__)
    if problem:
        print(f"localplane.emulator: {problem}", file=sys.stderr)
        sys.exit(2)
    patch_moto()
    from localplane.metrics import patch_moto_sqs_counters

    patch_moto_sqs_counters()  # the queue age and send/delete counts CloudWatch has and moto lacks
    moto.server.signal_handler = _exit_now  # moto's main() installs this for SIGINT and SIGTERM
    signal.signal(signal.SIGTERM, _exit_now)
    signal.signal(signal.SIGINT, _exit_now)
    moto.server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
