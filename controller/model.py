"""The parsed manifest: what the spec loader produces and what the reconciler and the kinds consume.

`controller.specs` builds `Manifest` values from YAML (validating ``spec`` with the kind's own model from the
registry); `controller.reconciler` and the per-kind modules in `controller.kinds` read them. Frozen, so a
manifest can be shared across the threads that reconcile independent resources.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

API_VERSION = "huntaze.io/v1"

# Tags written on every resource the controller creates; only resources carrying the stack tag are pruned.
TAG_MANAGED_BY = "huntaze.io/managed-by"
TAG_STACK = "huntaze.io/stack"
TAG_RESOURCE = "huntaze.io/resource"
MANAGED_BY = "huntazectl"

# Annotations a manifest may carry.
ANNOTATION_DELETION_POLICY = "huntaze.io/deletion-policy"  # "retain" keeps the live resource on delete/prune
ANNOTATION_ADOPT = "huntaze.io/adopt"  # "true": take over an existing unowned resource with the same name


class ResourceKey(BaseModel):
    """``Kind/name``: how resources are named in specs, references, the CLI and reports."""

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> ResourceKey:
        kind, sep, name = text.partition("/")
        if not sep or not kind or not name:
            raise ValueError(f"expected KIND/NAME, got {text!r}")
        return cls(kind=kind, name=name)


class Source(BaseModel):
    """Where a document came from, for errors: ``file:line``."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    # Absolute directory of ``file``: relative paths written in the file resolve against it (not the cwd).
    directory: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Metadata(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


_LAST_STEP = re.compile(r"(\.[^.\[]+|\[\d+\])$")


class Manifest(BaseModel):
    """One validated document. ``spec`` is an instance of the kind's ``spec_model``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    api_version: str = API_VERSION
    kind: str
    metadata: Metadata
    spec: Any
    source: Source
    # Dotted path ("spec.valueFrom.file", "spec.containerDefinitions[0].image") -> where its key was written.
    # A value an overlay set points into the overlay file, so paths inside it resolve against that file.
    locations: dict[str, Source] = Field(default_factory=dict)

    def where(self, path: str) -> Source:
        """Where ``path`` (or its nearest written parent) comes from; the document's start if unknown."""
        while path:
            found = self.locations.get(path)
            if found is not None:
                return found
            trimmed = _LAST_STEP.sub("", path)
            path = "" if trimmed == path else trimmed
        return self.source

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(kind=self.kind, name=self.metadata.name)

    @property
    def retained(self) -> bool:
        return self.metadata.annotations.get(ANNOTATION_DELETION_POLICY, "").lower() == "retain"

    @property
    def adopt(self) -> bool:
        return self.metadata.annotations.get(ANNOTATION_ADOPT, "").lower() == "true"
