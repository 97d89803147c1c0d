"""The dependency graph of a stack: duplicates, dangling references, cycles, and the order to apply in.

Called by `controller.specs.loader` once every document is a `Manifest`. References come from each kind's
`KindHandler.references`. The order is a list of tiers (Kahn's algorithm): everything in one tier depends only
on earlier tiers, so the reconciler may apply a tier's resources concurrently.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.kinds import registry
from controller.model import Manifest, ResourceKey, Source
from controller.specs.yamlsource import Path_, RawDocument, dotted


def check_duplicates(
    items: Iterable[tuple[Manifest, RawDocument]], problems: list[str]
) -> dict[ResourceKey, tuple[Manifest, RawDocument]]:
    seen: dict[ResourceKey, tuple[Manifest, RawDocument]] = {}
    for manifest, doc in items:
        first = seen.get(manifest.key)
        if first is not None:
            where = doc.where(("metadata", "name"))
            problems.append(
                f"{where}: metadata.name: duplicate {manifest.key} (first defined at {first[0].source})"
            )
            continue
        seen[manifest.key] = (manifest, doc)
    return seen


def dependencies(
    by_key: dict[ResourceKey, tuple[Manifest, RawDocument]], problems: list[str]
) -> dict[ResourceKey, list[ResourceKey]]:
    """Each resource's references; a reference to nothing defined is a problem at the referencing line."""
    deps: dict[ResourceKey, list[ResourceKey]] = {}
    for key, (manifest, doc) in by_key.items():
        refs = registry.handler(manifest.kind).references(manifest)
        deps[key] = []
        for ref in dict.fromkeys(refs):
            if ref in by_key:
                deps[key].append(ref)
                continue
            path = _reference_path(doc, ref.name)
            others = [k for k in by_key if k.name == ref.name and k.kind != ref.kind]
            if others:
                found = ", ".join(f"{k} (at {by_key[k][0].source})" for k in others)
                problems.append(
                    f"{doc.where(path)}: {dotted(path)}: expects a {ref.kind}, but {ref.name!r} is defined as "
                    f"{found}: reference a {ref.kind}, or fix the kind"
                )
                continue
            problems.append(
                f"{doc.where(path)}: {dotted(path)}: {ref} is not defined in any manifest "
                "(add it, or fix the reference)"
            )
    return deps


def _reference_path(doc: RawDocument, name: str) -> Path_:
    """Where a reference to ``name`` is written: a ``...Ref`` key holding it, else ``spec``."""
    fallback: Path_ = ("spec",)
    for path in doc.lines:
        value = _value_at(doc.data, path)
        if value == name and any(isinstance(p, str) and "ref" in p.lower() for p in path):
            return path
        if value == name and path[:1] == ("spec",):
            fallback = path
    return fallback


def _value_at(data: object, path: Path_) -> object:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def tiers(
    deps: dict[ResourceKey, list[ResourceKey]], sources: dict[ResourceKey, Source], problems: list[str]
) -> list[list[ResourceKey]]:
    """Kahn layering in source order; what remains is in a cycle, reported with its path."""
    remaining = {key: set(refs) for key, refs in deps.items()}
    layers: list[list[ResourceKey]] = []
    done: set[ResourceKey] = set()
    while remaining:
        ready = [k for k, refs in remaining.items() if refs <= done]
        if not ready:
            for cycle in _cycles(remaining):
                path = " -> ".join(str(k) for k in [*cycle, cycle[0]])
                problems.append(f"{sources[cycle[0]]}: spec: dependency cycle {path}")
            break
        layers.append(ready)
        done.update(ready)
        for key in ready:
            del remaining[key]
    return layers


def _cycles(graph: dict[ResourceKey, set[ResourceKey]]) -> list[list[ResourceKey]]:
    """One representative cycle per strongly connected group (enough for an error message)."""
    found: list[list[ResourceKey]] = []
    covered: set[ResourceKey] = set()
    for start in graph:
        if start in covered:
            continue
        path: list[ResourceKey] = []
        node: ResourceKey | None = start
        while node is not None and node not in path:
            path.append(node)
            node = next((n for n in sorted(graph.get(node, ()), key=str) if n in graph), None)
        if node is None:
            continue
        cycle = path[path.index(node):]
        if not covered.intersection(cycle):
            found.append(cycle)
        covered.update(cycle)
    return found
