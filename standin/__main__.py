"""`python -m standin`: run the stand-in platform as a process until SIGTERM or SIGINT.

Started by the demo (`huntazectl up`), benchmarks and tests of workers in other processes. Prints one JSON
line `{"url": "http://127.0.0.1:PORT"}` to stdout once the server answers, then serves; exits 0 on
SIGTERM/SIGINT after a clean stop.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from standin.config import DEFAULT_API_KEY, DEFAULT_PASSWORD, StandinConfig
from standin.faults import Faults
from standin.server import StandinServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m standin", description="Run the stand-in platform.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="password of every creator account")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="value expected in X-API-Key")
    parser.add_argument("--media-per-creator", type=int, default=3)
    parser.add_argument("--media-size-bytes", type=int, default=64 * 1024)
    parser.add_argument("--faults", default="{}", help="initial faults as JSON, e.g. '{\"latency_ms\": 50}'")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = StandinConfig(
        password=args.password,
        api_key=args.api_key,
        media_per_creator=args.media_per_creator,
        media_size_bytes=args.media_size_bytes,
        faults=Faults.model_validate_json(args.faults),
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with StandinServer(config, host=args.host, port=args.port) as server:
        print(json.dumps({"url": server.url}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
