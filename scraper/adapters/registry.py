"""Chooses the site adapter named by ``HUNTAZE_ADAPTER``: a built-in or a ``huntaze.site_adapters`` entry point.

Called once by `scraper.worker`. Built-ins (``browser``, ``http``) resolve by name without entry points; any
other name is looked up in the entry-point group, whose object must be a factory
``(AdapterContext) -> SiteAdapter``. A third-party package registers one with, in its pyproject.toml::

    [project.entry-points."huntaze.site_adapters"]
    myplatform = "myplatform_adapter:create"
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import cast

from scraper.adapters.base import AdapterContext, AdapterFactory, SiteAdapter
from scraper.errors import ConfigError

ENTRY_POINT_GROUP = "huntaze.site_adapters"


BUILTINS = ("browser", "http")


def _builtin(name: str) -> AdapterFactory | None:
    """Built-ins are imported only when chosen: the http adapter never loads Playwright."""
    if name not in BUILTINS:
        return None
    module = import_module(f"scraper.adapters.{name}")
    return cast(AdapterFactory, module.create)


def resolve_factory(name: str) -> AdapterFactory:
    factory = _builtin(name)
    if factory is not None:
        return factory
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = sorted({"browser", "http", *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})
        raise ConfigError(f"HUNTAZE_ADAPTER={name!r} is unknown: use one of {', '.join(known)}")
    loaded = next(iter(found)).load()
    if not callable(loaded):
        raise ConfigError(f"entry point {name!r} in {ENTRY_POINT_GROUP} is not a factory callable")
    return cast(AdapterFactory, loaded)


def load_adapter(name: str, context: AdapterContext) -> SiteAdapter:
    return resolve_factory(name)(context)
