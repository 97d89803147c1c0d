"""A one-service stack (Cluster, TaskDefinition, Service with the circuit breaker and rollback on) whose task is a
tiny real process, and the local plane's service loop driven from a test: for release tests that go through the
controller (`huntazectl apply`, `controller run`) and the local plane's real rolling deployment.

The task answers the scraper's own health check (``python -m scraper.healthcheck`` on HUNTAZE_HEALTH_PORT,
production timings divided by SCALE); a release whose RELEASE is ``bad`` exits at once, a failed start, so the
breaker (3 in a row) trips within a few runner passes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.aws import client
from localplane.service_runner import LOCAL_COMMAND_LABEL, ServiceRunner

SCALE = 60.0  # health check interval 30 s -> 0.5 s
TASK_SCRIPT = (
    "import http.server, os, sys\n"
    "if os.environ['RELEASE'] == 'bad':\n"
    "    sys.exit(3)\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers()\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['HUNTAZE_HEALTH_PORT'])), H).serve_forever()\n"
)
STACK = """\
apiVersion: huntaze.io/v1
kind: Cluster
metadata: {{name: hold}}
spec:
  defaultCapacityProviderStrategy: [{{capacityProvider: FARGATE, weight: 1}}]
---
apiVersion: huntaze.io/v1
kind: TaskDefinition
metadata: {{name: hold-task}}
spec:
  family: hold-task
  cpu: 256
  memory: 512
  containerDefinitions:
    - name: app
      image: scraper:1
      memory: 512
      stopTimeout: 5
      healthCheck:
        command: [CMD, python, -m, scraper.healthcheck]
        interval: 30
        startPeriod: 60
      environment:
        - {{name: RELEASE, value: {release}}}
      dockerLabels:
        {label}: {command}
---
apiVersion: huntaze.io/v1
kind: Service
metadata: {{name: hold-svc}}
spec:
  clusterRef: hold
  taskDefinitionRef: hold-task
  desiredCount: 1
  capacityProviderStrategy: [{{capacityProvider: FARGATE, weight: 1}}]
  networkConfiguration: {{awsvpcConfiguration: {{subnetsFrom: default-vpc}}}}
  deploymentConfiguration:
    deploymentCircuitBreaker: {{enable: true, rollback: true}}
---
apiVersion: huntaze.io/v1
kind: LogGroup
metadata: {{name: controller-journal}}
spec:
  logGroupName: /huntaze/${{ENV}}/controller-journal
  retentionInDays: 1
"""


def write_stack(specs: Path, script: Path, release: str) -> None:
    text = STACK.format(release=release, label=LOCAL_COMMAND_LABEL, command=f"'{sys.executable} {script}'")
    scratch = specs / "stack.yaml.tmp"
    scratch.write_text(text)
    scratch.replace(specs / "stack.yaml")  # whole, so the controller's watcher never reads half a file


def service() -> dict[str, Any]:
    found: dict[str, Any] = client("ecs").describe_services(cluster="hold", services=["hold-svc"],
                                                            include=["TAGS"])["services"][0]
    return found


def drive(runner: ServiceRunner, until: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """The local plane's service loop (one pass every 0.2 s) until ``until()`` is true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runner.sync()
        value = until()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}; deployments: {runner.history}")




def release_stack(tmp_path: Path, release: str) -> tuple[Path, Path]:
    """(specs dir, task script) with the stack at ``release`` written."""
    specs, script = tmp_path / "specs", tmp_path / "task.py"
    specs.mkdir(exist_ok=True)
    script.write_text(TASK_SCRIPT)
    write_stack(specs, script, release)
    return specs, script


def runner(tmp_path: Path) -> ServiceRunner:
    (tmp_path / "run").mkdir(exist_ok=True)
    return ServiceRunner("hold", "hold-svc", {}, tmp_path / "run", scale=lambda: SCALE)
