"""Declarative specs: YAML manifests with line-aware errors, variables, overlays and dependency order.

Public surface for the commands and the kinds: `load`, `LoadOptions`, `LoadedStack` and, for spec models,
`SpecModel`, `in_range`, `one_of`, `ref_name`. Everything else is private to this package.
"""

from controller.specs.fields import SpecModel, in_range, one_of, ref_name
from controller.specs.loader import ENVIRONMENTS, LoadedStack, LoadOptions, load

__all__ = ["ENVIRONMENTS", "LoadOptions", "LoadedStack", "SpecModel", "in_range", "load", "one_of", "ref_name"]
