"""Nothing left running: the moto and Redis servers a test run starts are gone after the run is interrupted
(SIGINT, as Ctrl-C) or killed (SIGKILL), and the moto emulator leaves at once on SIGTERM and refuses a moto
version its patches were not written for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from localplane.emulator import check_moto_version
from localplane.services import MotoServer

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("leftover_probe.py")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _connections_to(port: int) -> int:
    """Established TCP connections whose remote end is 127.0.0.1:port (clients of the server)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and fields[2] == f"0100007F:{port:04X}":
            count += 1
    return count


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_test_run_leaves_no_server_running(tmp_path: Path, sig: signal.Signals) -> None:
    pids_file = tmp_path / "pids"
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PROBE)],
        cwd=REPO, env={**os.environ, "PROBE_PIDS": str(pids_file)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(pids_file.exists, 120), "the probe run never started its servers"
        pids = [int(p) for p in pids_file.read_text().split()]
        assert all(_alive(p) for p in pids)
        run.send_signal(sig)
        run.wait(timeout=60)
        assert _wait_for(lambda: not any(_alive(p) for p in pids), 30), [p for p in pids if _alive(p)]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)


def test_emulator_exits_at_once_on_sigterm_during_a_long_poll(tmp_path: Path) -> None:
    import boto3

    server = MotoServer(workdir=tmp_path)
    server.start()
    try:
        sqs = boto3.client("sqs", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x")
        url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
        sqs.close()  # only the poller's connection may remain
        code = (f"import boto3; boto3.client('sqs', endpoint_url={server.url!r}, region_name='us-east-1', "
                f"aws_access_key_id='x', aws_secret_access_key='x').receive_message(QueueUrl={url!r}, "
                "WaitTimeSeconds=20)")
        poller = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert server.proc is not None
        assert _wait_for(lambda: _connections_to(server.port) > 0, 30), "the long poll never reached the server"
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=10)  # moto's own handler waited for the 20 s poll
        print(f"emulator exit after SIGTERM: {time.monotonic() - started:.2f} s")
        poller.kill()
        poller.wait(timeout=10)
    finally:
        server.close()


@pytest.mark.parametrize(("version", "ok"), [("5.2.0", True), ("5.2.5", True), ("5.1.9", False),
                                             ("5.3.0", False), ("6.0.0", False), ("dev", False)])
def test_emulator_moto_version_outside_patched_range_is_refused_clearly(version: str, ok: bool) -> None:
    problem = check_moto_version(version)
    assert (problem is None) is ok
    if not ok:
        assert "pip install 'moto[server]>=5.2,<5.3'" in problem  # type: ignore[operator]


SLEEPER = """
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
def stop(signum, frame):
    out.with_suffix('.term').write_text('terminated')
    sys.exit(7)
signal.signal(signal.SIGTERM, stop)
out.with_suffix('.tmp').write_text(str(os.getpid()))
out.with_suffix('.tmp').rename(out)  # whole: the test reads it as soon as it exists
time.sleep(120)
"""


def _guarded(marker: Path) -> list[str]:
    return [sys.executable, "-m", "localplane.orphan_guard", "--", sys.executable, "-c", SLEEPER, str(marker)]


def test_orphan_guard_parent_killed_task_gets_sigterm_and_nothing_remains(tmp_path: Path) -> None:
    marker = tmp_path / "task"
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
         "print(p.pid, flush=True); p.wait()", *_guarded(marker)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert parent.stdout is not None
        guard = int(parent.stdout.readline())
        assert _wait_for(marker.exists, 60), "the guarded task never started"
        task = int(marker.read_text())
        parent.kill()  # as `huntazectl up` killed with SIGKILL: nobody stops the task
        parent.wait(timeout=10)
        assert _wait_for(lambda: not _alive(task) and not _alive(guard), 30), (_alive(task), _alive(guard))
        assert marker.with_suffix(".term").read_text() == "terminated"  # stopped the ECS way, not killed
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)


def test_orphan_guard_passes_sigterm_on_and_returns_the_task_exit_code(tmp_path: Path) -> None:
    marker = tmp_path / "task"
    guard = subprocess.Popen(_guarded(marker), cwd=REPO)
    try:
        assert _wait_for(marker.exists, 60), "the guarded task never started"
        guard.send_signal(signal.SIGTERM)
        assert guard.wait(timeout=30) == 7
        assert not _alive(int(marker.read_text()))
    finally:
        if guard.poll() is None:
            guard.kill()
            guard.wait(timeout=10)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc), for a check that a killed tree leaves nothing behind."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.mark.soak
def test_up_killed_leaves_no_process_behind(tmp_path: Path) -> None:
    """`huntazectl up --keep` (moto, redis, the gate runtime, scraper tasks with Chromium), then SIGKILL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "REDIS_URL", "HUNTAZE_"))}
    up = subprocess.Popen([sys.executable, "-m", "controller.cli", "up", "--keep", "--run-dir", str(tmp_path)],
                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert up.stdout is not None
        deadline = time.monotonic() + 600
        seen = []
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            seen.append(line)
            if not line or "local stack is up" in line:
                break
        assert "local stack is up" in "".join(seen), "".join(seen[-40:])
        # Every kind of process up starts is running: servers, the gate runtime, a scraper task with Chromium.
        # (The gate's runtime starts on the first batch for the version its alias serves: no job is sent here.)
        wanted = (b"localplane.emulator", b"redis-server", b"-m\x00scraper", b"chromium")
        assert _wait_for(lambda: all(any(w in _cmdline(p) for p in _descendants(up.pid)) for w in wanted), 180), [
            _cmdline(p)[:80] for p in _descendants(up.pid)]
        tree = _descendants(up.pid)
        up.kill()
        up.wait(timeout=30)
        # The scraper task is stopped the ECS way (SIGTERM, its 25 s shutdown budget), everything else at once.
        assert _wait_for(lambda: not any(_alive(p) for p in tree), 45), [
            Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in tree if _alive(p)]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=30)
