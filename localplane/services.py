"""Real local servers on free loopback ports: `redis-server` and a moto server, as child processes.

Called by `huntazectl up` and by the test fixtures (tests/conftest.py). Each server is a process we own: it
starts on a free 127.0.0.1 port, is ready when it answers, and is stopped (then killed if it lingers) on exit.
If the process that started it dies without stopping it (SIGKILL, a crash), the kernel kills it too
(`die_with_parent`): nothing outlives an interrupted test run.
`RedisServer.kill()` and `.start()` again on the same port let fault tests restart Redis mid-run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1
_LIBC: ctypes.CDLL | None = None
with contextlib.suppress(OSError):  # loaded here, in the parent: dlopen after fork in a threaded process can hang
    _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


class ServiceError(RuntimeError):
    """A local server could not start. The message says what to install or check."""


def die_with_parent() -> None:
    """In the child (``preexec_fn``): get SIGKILL when the process that started us dies, so no server outlives a
    killed or interrupted test run or ``huntazectl up``.

    (Linux prctl PR_SET_PDEATHSIG; it follows the starting *thread*, so servers are started from long-lived threads.)
    """
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        raise ServiceError(
            f"{name} is not installed: run `apt-get install -y {package}` (or `bash scripts/setup.sh`)"
        )
    return path


def _wait_until(check: object, timeout_s: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited early with code {proc.returncode}")
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise ServiceError(f"{what} did not become ready within {timeout_s:.0f}s")


class _Process:
    name = "service"

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        log = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call, libc loaded before the fork
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        self.start()  # type: ignore[attr-defined]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()  # type: ignore[attr-defined]


class RedisServer(_Process):
    """A real `redis-server` on a loopback port, persistence off, data in a private temp dir."""

    name = "redis-server"

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        super().__init__()
        self.binary = require_binary("redis-server", "redis-server")
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="huntaze-redis-"))

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> None:
        if self.running:
            return
        argv = [
            self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--dir", str(self.workdir),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
        ]
        self._spawn(argv, self.workdir / "redis.log")
        assert self.proc is not None
        _wait_until(self.ping, timeout_s, f"redis-server on port {self.port}", self.proc)

    def ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class MotoServer(_Process):
    """A moto server (the AWS API emulator, see `localplane.emulator`) as a child process, reached over HTTP."""

    name = "moto_server"

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        super().__init__()
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="huntaze-moto-"))

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        if self.running:
            return
        argv = [sys.executable, "-m", "localplane.emulator", "-H", LOOPBACK, "-p", str(self.port)]
        # Where the emulator leaves each Lambda version's zip for GetFunction's Code.Location (see emulator.py).
        from localplane.emulator import CODE_DIR_VARIABLE

        env = {**os.environ, CODE_DIR_VARIABLE: str(self.workdir / "lambda-zips")}
        self._spawn(argv, self.workdir / "moto.log", env)
        assert self.proc is not None
        _wait_until(self._answers, timeout_s, f"moto server on port {self.port}", self.proc)
        self._push_images()

    def _push_images(self) -> None:
        """The registry's content: the images the local specs name (`localplane.local_images`)."""
        import boto3

        from localplane import local_images
        from localplane.stack import LOCAL_REGION

        ecr = boto3.client("ecr", endpoint_url=self.url, region_name=LOCAL_REGION, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        local_images.push_all(ecr)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def reset(self) -> None:
        """Forget every resource (between tests)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass
        self._push_images()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.workdir)
