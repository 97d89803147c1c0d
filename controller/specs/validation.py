"""Turn one raw document into a `Manifest`, or into ``file:line: field: message`` problems.

Called by `controller.specs.loader` for every document. The envelope (apiVersion, kind, metadata) is checked
here; ``spec`` is validated by the kind's own ``spec_model`` from the registry, and pydantic's errors are mapped
back to the line of the offending key through the document's line map.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from controller.kinds import registry
from controller.model import API_VERSION, Manifest, Metadata
from controller.specs.yamlsource import Path_, RawDocument, dotted

_ENVELOPE_KEYS = {"apiVersion", "kind", "metadata", "spec"}
_MAX_SHOWN = 60


def to_manifest(doc: RawDocument, problems: list[str]) -> Manifest | None:
    data = doc.data
    if not isinstance(data, dict):
        problems.append(f"{doc.source}: <document>: expected a mapping with apiVersion, kind, metadata, spec")
        return None
    before = len(problems)
    _check_envelope(doc, data, problems)
    kind = data.get("kind")
    spec_model = _spec_model(doc, kind, problems)
    metadata = _validate(doc, Metadata, data.get("metadata"), ("metadata",), problems)
    spec = None
    if spec_model is not None:
        spec = _validate(doc, spec_model, data.get("spec"), ("spec",), problems)
    if len(problems) > before or metadata is None or spec is None:
        return None
    locations = {dotted(path): source for path, source in doc.lines.items()}
    return Manifest(kind=str(kind), metadata=metadata, spec=spec, source=doc.source, locations=locations)


def _check_envelope(doc: RawDocument, data: dict[str, Any], problems: list[str]) -> None:
    if "apiVersion" not in data and "kind" not in data:
        problems.append(
            f"{doc.source}: <document>: not a huntaze document (no apiVersion/kind); native ECS specs are "
            "referenced from a TaskDefinition or Service manifest, not passed with -f"
        )
        return
    version = data.get("apiVersion")
    if version != API_VERSION:
        problems.append(f"{doc.where(('apiVersion',))}: apiVersion: must be {API_VERSION} (got {version!r})")
    for key in data:
        if key not in _ENVELOPE_KEYS:
            problems.append(f"{doc.where((key,))}: {key}: unknown top-level field (allowed: "
                            "apiVersion, kind, metadata, spec)")


def _spec_model(doc: RawDocument, kind: Any, problems: list[str]) -> type[BaseModel] | None:
    if kind is None:
        if "apiVersion" in doc.data:
            problems.append(f"{doc.source}: kind: required field is missing")
        return None
    try:
        return registry.handler(str(kind)).spec_model
    except KeyError:
        known = ", ".join(registry.known_kinds())
        problems.append(f"{doc.where(('kind',))}: kind: unknown kind {kind!r} (known: {known})")
        return None


def _validate(
    doc: RawDocument, model: type[BaseModel], value: Any, prefix: Path_, problems: list[str]
) -> Any:
    if value is None:
        problems.append(f"{doc.where(prefix)}: {dotted(prefix)}: required field is missing")
        return None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append(_describe(doc, prefix, error))
        return None


def _describe(doc: RawDocument, prefix: Path_, error: Any) -> str:
    loc = tuple(p for p in error["loc"] if isinstance(p, int) or not any(c in p for c in "[(-,"))
    path = (*prefix, *loc)
    kind = error["type"]
    if kind == "missing":
        return f"{doc.where(path)}: {dotted(path)}: required field is missing"
    if kind == "extra_forbidden":
        return f"{doc.where(path)}: {dotted(path)}: unknown field (check the spelling)"
    message = str(error["msg"]).removeprefix("Value error, ")
    shown = repr(error.get("input"))
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return f"{doc.where(path)}: {dotted(path)}: {message} (got {shown})"
