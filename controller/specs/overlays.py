"""Environment overlays: partial documents matched by kind and name, deep-merged over the base documents.

Called by `controller.specs.loader`. An overlay file (``overlays/<env>.yaml`` next to the manifests, or any file
passed with ``--overlay``) holds documents with ``kind``, ``metadata.name`` and the fields to change. An overlay
that matches no base document is a problem (a typo would otherwise be silently ignored). Merge rules:

    base                         overlay                        result
    mapping                      mapping                        merged key by key (recursively)
    list of mappings keyed by    list of mappings keyed by      merged element by element: an overlay element
      ``name`` (or, when not       the same key                   deep-merges into the base element with the same
      every element has a                                         key (its position kept), a new key is appended,
      name, ``containerPort``)                                    ``$patch: delete`` removes the base element;
                                                                  elements the overlay does not name are kept
    any other list               list                           replaced wholesale (subnets, strategies...)
    anything                     scalar, null or other type     replaced

So an overlay pins one container's image without restating the others, or changes one environment variable
(``containerDefinitions``, ``environment``, ``secrets`` by ``name``; ``portMappings`` by ``containerPort``).
A keyed list with a key written twice (in the base or the overlay) cannot be merged and is a problem. Merged
values keep the overlay's ``file:line`` for errors (and for relative paths inside them, see `Source`).
"""

from __future__ import annotations

from dataclasses import dataclass
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
        target.data = _Merge(target, overlay, problems).value(target.data, overlay.data, (), ())


_LIST_KEYS = ("name", "containerPort")
_PATCH = "$patch"


@dataclass(frozen=True)
class _Merge:
    """One overlay document being merged into one base document (and where problems go)."""

    target: RawDocument
    overlay: RawDocument
    problems: list[str]

    def value(self, base: Any, patch: Any, path: Path_, at: Path_) -> Any:
        """Merge ``patch`` (at overlay path ``at``) over ``base`` (at target path ``path``)."""
        if isinstance(base, dict) and isinstance(patch, dict):
            merged = dict(base)
            for key, value in patch.items():
                merged[key] = self.value(base.get(key), value, (*path, key), (*at, key))
            return merged
        if isinstance(base, list) and isinstance(patch, list):
            key = self._list_key(base, patch, at)
            if key is not None:
                return self._keyed(base, patch, key, path, at)
        _take_lines(path, at, self.target, self.overlay)
        return patch

    def _list_key(self, base: list[Any], patch: list[Any], at: Path_) -> str | None:
        items = [*base, *patch]
        if not base or not patch or not all(isinstance(i, dict) for i in items):
            return None
        key = next((k for k in _LIST_KEYS if all(isinstance(i.get(k), str | int) for i in items)), None)
        for side, where in ((base, self.target), (patch, self.overlay)):
            seen = [i[key] for i in side] if key else []
            twice = sorted({str(v) for v in seen if seen.count(v) > 1})
            if twice:
                self.problems.append(f"{self.overlay.where(at)}: {dotted(at)}: cannot merge a list by {key}: "
                                     f"{', '.join(twice)} appears twice in {where.source.file}")
                return None
        return key

    def _keyed(self, base: list[Any], patch: list[Any], key: str, path: Path_, at: Path_) -> list[Any]:
        position = {item[key]: i for i, item in enumerate(base)}
        items: list[Any] = list(base)
        deleted: set[int] = set()
        merges: list[tuple[int, int]] = []  # (position in items, index in patch)
        for j, item in enumerate(patch):
            found = position.get(item[key])
            if item.get(_PATCH) == "delete":
                if found is not None:
                    deleted.add(found)
                continue
            if found is None:
                items.append(None)  # a new element: the overlay's, with its lines
                found = len(items) - 1
            merges.append((found, j))
        kept = [i for i in range(len(items)) if i not in deleted]
        renumbered = {old: new for new, old in enumerate(kept)}
        _renumber(path, renumbered, self.target)
        out = [items[i] for i in kept]
        for i, j in merges:
            new = renumbered[i]
            out[new] = self.value(out[new], patch[j], (*path, new), (*at, j))
        return out


def _renumber(path: Path_, moves: dict[int, int], target: RawDocument) -> None:
    """Lines of the elements of the list at ``path`` follow them to their new index (deleted ones go)."""
    size = len(path)
    below = {p: s for p, s in target.lines.items() if p[:size] == path and len(p) > size}
    for old in below:
        del target.lines[old]
    for old, source in below.items():
        index = old[size]
        if isinstance(index, int) and index in moves:
            target.lines[(*path, moves[index], *old[size + 1 :])] = source


def _take_lines(path: Path_, at: Path_, target: RawDocument, overlay: RawDocument) -> None:
    """Lines under target ``path`` now come from the overlay's lines under ``at``."""
    size, from_size = len(path), len(at)
    for old in [p for p in target.lines if p[:size] == path]:
        del target.lines[old]
    for new, source in overlay.lines.items():
        if new[:from_size] == at:
            target.lines[(*path, *new[from_size:])] = source


__all__ = ["apply_overlays", "document_identity", "dotted"]
