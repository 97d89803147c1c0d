"""Per-kind "change it behind the controller's back" functions for the drift tests, one module per kind.

The module is named after the kind in snake case (``log_group.py`` for LogGroup) and defines
``mutate(manifest, live) -> str``: it changes one field of the live resource directly with boto3 (via
`common.aws.client`, not through the controller) and returns the diff path that must then show as drift.
`mutations()` finds the module of every registered kind, so a new kind adds its own file here and edits no list;
test_full_stack.py fails, naming the file to add, for a kind of the full stack without one.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from controller.kinds import registry
from controller.kinds.base import LiveResource
from controller.model import Manifest

Mutation = Callable[[Manifest, LiveResource], str]


def module_name(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()


def mutations() -> dict[str, Mutation]:
    """Kind -> its mutation, for every registered kind that has a module here."""
    found: dict[str, Mutation] = {}
    for kind in registry.known_kinds():
        name = f"{__name__}.{module_name(kind)}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        found[kind] = module.mutate
    return found
