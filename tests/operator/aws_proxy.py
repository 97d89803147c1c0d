"""A recording, fault-injecting HTTP proxy in front of the moto server (AWS's side of the wire, not the controller).

Each controller process under test gets its own proxy as ``AWS_ENDPOINT_URL``: the proxy forwards every request to
moto unchanged and records (service, operation, body) so a test counts what *that process* sent. A `Fault` rule
answers matching requests with an AWS error in the service's own protocol (JSON ``__type``, query XML, REST-JSON
``x-amzn-ErrorType``), as AWS would for throttling or a denied permission on one resource.
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

READS = ("Describe", "Get", "List", "Head", "Query", "Scan", "BatchGet", "Filter", "Lookup", "Search")
_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
# Services whose writes are the controller's bookkeeping (lease, journal, metrics), not the stack's resources.
BOOKKEEPING = frozenset({"dynamodb", "logs", "monitoring"})


@dataclass
class Request:
    service: str
    operation: str
    body: str

    @property
    def write(self) -> bool:
        return not self.operation.startswith(READS)


@dataclass
class Fault:
    """Answer requests of ``service`` whose operation is in ``operations`` (all if empty) and whose body
    contains ``needle`` with ``code``, ``times`` times (None: always)."""

    service: str
    code: str
    needle: str
    status: int = 400
    operations: tuple[str, ...] = ()
    times: int | None = None
    hits: int = 0
    # With a ``hold`` event and no ``code``: the request is held until the event is set, then forwarded.
    hold: threading.Event | None = None
    # With ``rewrite`` and no ``code``: forwarded, and ``old`` is replaced by ``new`` in the response body.
    rewrite: tuple[bytes, bytes] | None = None

    def matches(self, req: Request) -> bool:
        if req.service != self.service or self.needle not in req.body:
            return False
        if self.operations and req.operation not in self.operations:
            return False
        return self.times is None or self.hits < self.times


@dataclass
class AwsProxy:
    upstream: str  # http://127.0.0.1:PORT
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> AwsProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(_service(self.headers), _operation(self.command, self.path, self.headers, body),
                              body.decode("utf-8", "replace") + " " + urllib.parse.unquote(self.path))
                with proxy.lock:
                    proxy.requests.append(req)
                    fault = next((f for f in proxy.faults if f.matches(req)), None)
                    if fault is not None:
                        fault.hits += 1
                if fault is not None and fault.hold is not None:
                    fault.hold.wait(120)
                elif fault is not None and fault.code:
                    self._error(fault, self.headers)
                    return
                target = urllib.parse.urlsplit(proxy.upstream)
                conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = f"{target.hostname}:{target.port}"
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if fault is not None and fault.rewrite is not None:
                    data = data.replace(*fault.rewrite)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            def _error(self, fault: Fault, headers: object) -> None:
                target = self.headers.get("X-Amz-Target")
                if target or fault.service == "lambda":
                    data = f'{{"__type": "{fault.code}", "message": "injected by the test proxy"}}'.encode()
                    ctype = "application/x-amz-json-1.0"
                else:
                    data = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code>"
                            "<Message>injected by the test proxy</Message></Error>"
                            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>").encode()
                    ctype = "text/xml"
                self.send_response(fault.status)
                self.send_header("Content-Type", ctype)
                self.send_header("x-amzn-ErrorType", fault.code)
                self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="aws-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def resource_writes(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.write and r.service not in BOOKKEEPING and r.service != "sts"]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        return None  # a client killed mid-request (the tests kill processes) is not the proxy's error


def _service(headers: object) -> str:
    found = _SERVICE.search(str(getattr(headers, "get", lambda *_: "")("Authorization") or ""))
    return found.group(1) if found else "?"


def _operation(method: str, path: str, headers: object, body: bytes) -> str:
    get = getattr(headers, "get", lambda *_: None)
    target = get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    if body.startswith(b"Action=") or b"&Action=" in body:
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        return params.get("Action", ["?"])[0]
    smithy = re.search(r"/operation/([A-Za-z]+)", path)
    if smithy:
        return smithy.group(1)
    # REST APIs (Lambda, S3): the method says read or write well enough for counting.
    return {"GET": "Get", "HEAD": "Head"}.get(method, f"{method.title()}Rest")
