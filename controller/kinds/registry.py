"""Kind name -> handler. Kind modules register themselves with `@register`; `load_all()` imports them all.

Called by the spec loader (to validate ``spec`` with the kind's model), by the reconciler, by the CLI (help
texts, ``get all``) and by tests (which enumerate kinds from here, never from a hand-written list). Everything
about a kind is read from its module: its name, its model, the kinds it references (`delete_order`) and the value
others may take from it (`value_sources`), so a new kind is one new module plus its tests.
"""

from __future__ import annotations

import functools
import graphlib
import importlib
import pkgutil
from collections.abc import Iterable
from typing import TypeVar

from controller.kinds.base import KindHandler
from controller.model import Manifest

H = TypeVar("H", bound=type[KindHandler])

_HANDLERS: dict[str, KindHandler] = {}
# Modules of the package that are not kinds: the contract, this registry, the shared batch reads.
_NOT_KIND_MODULES = {"base", "registry", "prefetch"}


def register(cls: H) -> H:
    if cls.kind in _HANDLERS:
        raise RuntimeError(f"kind {cls.kind} registered twice")
    _HANDLERS[cls.kind] = cls()
    return cls


def _kind_modules() -> list[str]:
    import controller.kinds as package

    return [
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if info.name not in _NOT_KIND_MODULES and not info.name.startswith("_")
    ]


@functools.cache
def load_all() -> None:
    """Import every kind module, once per process: `handler` is called per resource per cycle, and listing the
    package directory each time was most of an idle controller's CPU after the Lambda zip."""
    for name in _kind_modules():
        importlib.import_module(f"controller.kinds.{name}")


def kind_names() -> list[str]:
    """The kinds, from the module file names alone (``log_group.py`` → ``LogGroup``), importing nothing: for
    help texts that must stay fast. A test checks they equal `known_kinds()`."""
    return sorted("".join(part.capitalize() for part in name.split("_")) for name in _kind_modules())


def handler(kind: str) -> KindHandler:
    load_all()
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}; known kinds: {', '.join(sorted(_HANDLERS))}") from None


def known_kinds() -> list[str]:
    load_all()
    return sorted(_HANDLERS)


def check_stack(manifests: Iterable[Manifest]) -> list[str]:
    """Every kind's offline AWS rules (`KindHandler.check`) over a loaded stack, as ``file:line: path: message``
    problems. Called by the spec loader after each document validated against its kind's model."""
    by_key = {m.key: m for m in manifests}
    problems = []
    for manifest in by_key.values():
        for path, message in handler(manifest.kind).check(manifest, by_key):
            problems.append(f"{manifest.where(path)}: {path}: {message}")
    return problems


def value_sources() -> dict[str, str]:
    """Kind → the output a ``valueFrom: {<kindCamel>Ref: NAME}`` takes from it by default, for every kind that
    declares one (`KindHandler.value_output`): what `controller.specs.fields.ValueRef` accepts."""
    load_all()
    return {kind: h.value_output for kind, h in sorted(_HANDLERS.items()) if h.value_output is not None}


def referenced_kinds(kind: str) -> set[str]:
    """The kinds a resource of ``kind`` can reference, from the `RefTo` marks in its spec model; a `ValueRef`
    in it references every kind in `value_sources`."""
    from controller.specs.fields import ANY_VALUE_SOURCE, ref_kinds

    found = ref_kinds(handler(kind).spec_model)
    if ANY_VALUE_SOURCE in found:
        found = (found - {ANY_VALUE_SOURCE}) | set(value_sources())
    return found - {kind}


def delete_order(kinds: Iterable[str] | None = None) -> list[str]:
    """``kinds`` (default: all), each before every kind it references: the order to delete or prune in.

    Derived from the spec models' references, so a new kind is ranked by what it references, never by a list
    someone must remember to edit. Ties are broken by name, so the order is stable.
    """
    wanted = set(kinds if kinds is not None else known_kinds())
    # graphlib orders predecessors first: make each kind a predecessor of what it references.
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for kind in sorted(wanted):
        sorter.add(kind)
        for target in sorted(referenced_kinds(kind) & wanted):
            sorter.add(target, kind)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order
