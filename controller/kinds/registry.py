"""Kind name -> handler. Kind modules register themselves with `@register`; `load_all()` imports them all.

Called by the spec loader (to validate ``spec`` with the kind's model) and by the reconciler.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from controller.kinds.base import KindHandler

H = TypeVar("H", bound=type[KindHandler])

_HANDLERS: dict[str, KindHandler] = {}
_NOT_KIND_MODULES = {"base", "registry"}


def register(cls: H) -> H:
    if cls.kind in _HANDLERS:
        raise RuntimeError(f"kind {cls.kind} registered twice")
    _HANDLERS[cls.kind] = cls()
    return cls


def load_all() -> None:
    import controller.kinds as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_KIND_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def handler(kind: str) -> KindHandler:
    load_all()
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}; known kinds: {', '.join(sorted(_HANDLERS))}") from None


def known_kinds() -> list[str]:
    load_all()
    return sorted(_HANDLERS)
