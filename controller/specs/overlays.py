"""Environment overlays: partial documents matched by kind and name, deep-merged over the base documents.

Called by `controller.specs.loader`. An overlay file (``overlays/<env>.yaml`` next to the manifests, or any file
passed with ``--overlay``) holds documents with ``kind``, ``metadata.name`` and the fields to change. Mappings
merge key by key; lists and scalars replace. Merged values keep the overlay's ``file:line`` for errors. An
overlay that matches no base document is a problem (a typo would otherwise be silently ignored).
"""

from __future__ import annotations

from typing import Any

from controller.specs.yamlsource import Path_, RawDocument, dotted


def document_identity(doc: RawDocument) -> tuple[str, str] | None:
    data = doc.data
    if not isinstance(data, dict):
        return None
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind = data.get("kind")
    if isinstance(kind, str) and isinstance(name, str):
        return kind, name
    return None


def apply_overlays(base: list[RawDocument], overlays: list[RawDocument], problems: list[str]) -> None:
    """Merge every overlay document into the base document with the same kind and name, in place."""
    index = {ident: doc for doc in base if (ident := document_identity(doc)) is not None}
    for overlay in overlays:
        ident = document_identity(overlay)
        if ident is None:
            problems.append(f"{overlay.source}: <document>: an overlay needs kind and metadata.name")
            continue
        target = index.get(ident)
        if target is None:
            problems.append(
                f"{overlay.source}: metadata.name: overlay for {ident[0]}/{ident[1]} matches no manifest"
            )
            continue
        target.data = _merge(target.data, overlay.data, (), target, overlay)


def _merge(base: Any, patch: Any, path: Path_, target: RawDocument, overlay: RawDocument) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base.get(key), value, (*path, key), target, overlay)
        return merged
    _take_lines(path, target, overlay)
    return patch


def _take_lines(path: Path_, target: RawDocument, overlay: RawDocument) -> None:
    """Lines under ``path`` now come from the overlay."""
    size = len(path)
    for old in [p for p in target.lines if p[:size] == path]:
        del target.lines[old]
    for new, source in overlay.lines.items():
        if new[:size] == path:
            target.lines[new] = source


__all__ = ["apply_overlays", "document_identity", "dotted"]
