"""Runs a stand-in instance with uvicorn on a loopback port, in a background thread.

Used by the test fixtures (`tests/standin/conftest.py`), by `python -m standin` (the demo's
`huntazectl up` and benchmarks start it as a process) and by anything else that needs the target site
in-process. `StandinServer` owns the socket, the thread and the instance state; it stops cleanly (hanging
pages are released first, so shutdown is prompt) and leaves no thread behind.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import httpx
import uvicorn

from standin.app import build_app
from standin.config import StandinConfig
from standin.faults import Faults
from standin.instance import Instance
from standin.store import Store

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 2


class StandinError(RuntimeError):
    """The stand-in server could not start or stop; the message says what to check."""


class _Uvicorn(uvicorn.Server):
    """uvicorn.Server that reports readiness and releases hanging pages before it waits for connections."""

    def __init__(self, config: uvicorn.Config, instance: Instance) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._instance = instance

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._instance.hangs.release_all()
        await super().shutdown(sockets=sockets)


class StandinServer:
    """A running stand-in platform: `with StandinServer() as site: httpx.get(site.url + "/login")`."""

    def __init__(self, config: StandinConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._instance = Instance.create(config)
        self._host = host
        self._port = port
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. "http://127.0.0.1:43121"."""
        if self._url is None:
            raise StandinError("StandinServer is not running: call start() or use it as a context manager")
        return self._url

    @property
    def config(self) -> StandinConfig:
        return self._instance.config

    @property
    def state(self) -> Store:
        """The in-memory state: sessions, the message record, traffic counters."""
        return self._instance.store

    @property
    def faults(self) -> Faults:
        return self._instance.faults.faults

    @property
    def active_hangs(self) -> int:
        """Hanging page responses still open (a `hang_creators` page whose client has not gone away)."""
        return self._instance.hangs.active

    def set_faults(self, faults: Faults) -> None:
        """Replace the active faults; counters, window and RNG restart."""
        self._instance.faults.set(faults)

    def reset(self) -> None:
        """Back to the start state: no sessions, messages or counters; the config's faults; hangs released."""
        self._instance.reset()

    def start(self) -> StandinServer:
        if self._thread is not None:
            raise StandinError("StandinServer already started")
        # uvicorn binds the socket itself: a pre-bound socket handed to it loses TCP_NODELAY on accepted
        # connections, and every small keep-alive response then waits ~40 ms for a delayed ACK.
        config = uvicorn.Config(
            build_app(self._instance),
            host=self._host,
            port=self._port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        server = _Uvicorn(config, self._instance)
        thread = threading.Thread(target=server.run, name="standin", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        if not server.ready.wait(STARTUP_TIMEOUT_S) or not server.started:
            self.stop()
            raise StandinError(
                f"stand-in server did not start on {self._host}:{self._port} within {STARTUP_TIMEOUT_S}s"
                " (port in use? see the uvicorn error above)"
            )
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        self._url = f"http://{host}:{port}"
        self._check_answers()
        return self

    def _check_answers(self) -> None:
        try:
            httpx.get(f"{self.url}/__admin/health", timeout=STARTUP_TIMEOUT_S).raise_for_status()
        except httpx.HTTPError as exc:
            self.stop()
            raise StandinError(f"stand-in server started but does not answer: {exc}") from exc

    def stop(self) -> None:
        """Stop serving and join the server thread; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._instance.hangs.release_all()
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT_S)
        self._server, self._thread, self._url = None, None, None
        if thread.is_alive():
            raise StandinError("stand-in server thread did not stop; a request handler is stuck")

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
