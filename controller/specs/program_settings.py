"""Check the environment a stack gives each program against that program's published settings contract.

Called by `controller.specs.loader` (so by ``validate``, ``diff`` and ``apply``) after every manifest is valid,
before any AWS call. The gate and the scraper each commit ``<package>/settings.schema.json`` (generated from
their pydantic-settings models, see `common.settings.settings_schema`); a Function's ``environment`` and each
container's ``environment`` in a TaskDefinition are checked against it, so ``HUNTAZE_CONCURRENCY: "many"``
is ``file:line: HUNTAZE_CONCURRENCY: must be an integer (got 'many')`` instead of a crash-looping deploy.

Which program a workload runs:
- Function: the package of its ``handler`` (``gate.handler.handler`` -> ``gate``);
- TaskDefinition container: the Docker label ``huntaze.io/settings-schema`` (a path from the repo root), else
  the module of ``huntaze.io/local-command`` (``python -m scraper`` -> ``scraper``).
A workload whose program publishes no schema is not checked. Values taken from references (``valueFrom``) are
resolved only at apply and are not checked here.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from common.settings import SCHEMA_FILE, check_environment, read_schema
from controller.model import Manifest
from controller.specs.yamlsource import Path_, RawDocument

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_LABEL = "huntaze.io/settings-schema"
COMMAND_LABEL = "huntaze.io/local-command"
_MODULE = re.compile(r"-m\s+([A-Za-z_][A-Za-z0-9_]*)")


@cache
def _schema(path: Path) -> dict[str, Any] | None:
    return read_schema(path) if path.is_file() else None


def _program_schema(package: str) -> dict[str, Any] | None:
    return _schema(REPO_ROOT / package / SCHEMA_FILE)


def check(pairs: list[tuple[Manifest, RawDocument]], problems: list[str]) -> None:
    """Append ``file:line: VARIABLE: problem`` for every environment value its program would refuse."""
    for manifest, doc in pairs:
        if manifest.kind == "Function":
            _check_function(manifest, doc, problems)
        elif manifest.kind == "TaskDefinition":
            _check_task_definition(manifest, doc, problems)


def _check_function(manifest: Manifest, doc: RawDocument, problems: list[str]) -> None:
    handler = str(getattr(manifest.spec, "handler", "") or "")
    schema = _program_schema(handler.split(".", 1)[0]) if handler else None
    if schema is None:
        return
    environment = getattr(manifest.spec, "environment", {}) or {}
    plain = {name: value for name, value in environment.items() if isinstance(value, str)}
    for name, problem in check_environment(schema, plain).items():
        problems.append(f"{doc.where(('spec', 'environment', name))}: {name}: {problem}")


def _container_schema(container: Any) -> dict[str, Any] | None:
    labels = getattr(container, "docker_labels", {}) or {}
    if SCHEMA_LABEL in labels:
        return _schema(REPO_ROOT / labels[SCHEMA_LABEL])
    match = _MODULE.search(labels.get(COMMAND_LABEL, ""))
    return _program_schema(match.group(1)) if match else None


def _check_task_definition(manifest: Manifest, doc: RawDocument, problems: list[str]) -> None:
    for index, container in enumerate(getattr(manifest.spec, "container_definitions", []) or []):
        schema = _container_schema(container)
        if schema is None:
            continue
        entries = getattr(container, "environment", []) or []
        plain = {e.name: e.value for e in entries if getattr(e, "value", None) is not None}
        found = check_environment(schema, plain)
        for position, entry in enumerate(entries):
            if entry.name in found:
                path: Path_ = ("spec", "containerDefinitions", index, "environment", position, "value")
                problems.append(f"{doc.where(path)}: {entry.name}: {found[entry.name]}")
