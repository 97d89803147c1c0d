"""Load a stack: files → documents → variables → overlays → validated manifests → dependency tiers.

Called by every `huntazectl` command that takes ``-f``. Nothing here talks to AWS: every problem in every
file is collected and raised together as one `SpecError` (``file:line: field: message`` per line), so a bad
manifest never causes a single API call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import SpecError
from controller.kinds import registry
from controller.model import Manifest, ResourceKey
from controller.specs import graph, program_settings
from controller.specs.overlays import apply_overlays
from controller.specs.validation import to_manifest
from controller.specs.variables import is_variables_document, overlay_defaults, substitute, substitute_identity
from controller.specs.yamlsource import RawDocument, read_documents

MANIFEST_SUFFIXES = (".yaml", ".yml")
OVERLAY_DIR = "overlays"
ENVIRONMENTS = ("local", "staging", "production")


@dataclass(frozen=True)
class LoadOptions:
    paths: Sequence[str]
    env: str = "local"
    variables: Mapping[str, str] = field(default_factory=dict)  # ENV, AWS_REGION, AWS_ACCOUNT_ID, --var
    overlays: Sequence[str] = ()  # explicit --overlay files, applied after the directories' own


@dataclass(frozen=True)
class LoadedStack:
    """Validated manifests in dependency order; ``tiers`` group those that may be applied concurrently."""

    manifests: list[Manifest]
    tiers: list[list[Manifest]]
    dependencies: dict[ResourceKey, list[ResourceKey]]
    documents: dict[ResourceKey, RawDocument]
    env: str
    variables: Mapping[str, str]

    @property
    def keys(self) -> set[ResourceKey]:
        return {m.key for m in self.manifests}

    def get(self, key: ResourceKey) -> Manifest | None:
        return next((m for m in self.manifests if m.key == key), None)


def display_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def discover(paths: Sequence[str], env: str, problems: list[str]) -> tuple[list[Path], list[Path]]:
    """Manifest files (recursive *.yaml/*.yml under directories, any file given by name) and overlay files."""
    files: list[Path] = []
    overlays: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for found in sorted(path.rglob("*")):
                relative = found.relative_to(path).parts
                if found.is_file() and found.suffix in MANIFEST_SUFFIXES and OVERLAY_DIR not in relative:
                    files.append(found)
            overlays.extend(p for s in MANIFEST_SUFFIXES if (p := path / OVERLAY_DIR / f"{env}{s}").is_file())
        else:
            problems.append(f"-f {given}: no such file or directory")
    return list(dict.fromkeys(files)), overlays


def load(options: LoadOptions) -> LoadedStack:
    """Load and validate; raise `SpecError` listing every problem found."""
    problems: list[str] = []
    if options.env not in ENVIRONMENTS:
        problems.append(f"--env: must be one of {', '.join(ENVIRONMENTS)} (got {options.env!r})")
    files, overlay_files = discover(options.paths, options.env, problems)
    overlay_files.extend(Path(p) for p in options.overlays)
    if not files and not problems:
        problems.append(f"-f {', '.join(options.paths) or '(none)'}: no manifest files found (*.yaml, *.yml)")
    documents: list[RawDocument] = []
    for file in files:
        found = read_documents(file, display_path(file), problems)
        if not found and not any(p.startswith(f"{display_path(file)}:") for p in problems):
            problems.append(f"{display_path(file)}:1: the file holds no document: add resources or leave it out "
                            "of -f")
        documents.extend(found)
    if files and not documents and not problems:
        problems.append(f"-f {', '.join(options.paths)}: no resources found")
    overlay_docs = [d for f in overlay_files for d in read_documents(f, display_path(f), problems)]
    defaults = overlay_defaults([d for d in overlay_docs if is_variables_document(d)], os.environ, problems)
    overlay_docs = [d for d in overlay_docs if not is_variables_document(d)]
    variables = {**defaults, **options.variables}
    for doc in [*documents, *overlay_docs]:
        substitute_identity(doc, variables)
    apply_overlays(documents, overlay_docs, problems)
    for doc in documents:  # after the overlays: an overlay may replace a value that holds a variable
        substitute(doc, variables, problems)
    pairs = [(m, d) for d in documents if (m := to_manifest(d, problems)) is not None]
    program_settings.check(pairs, problems)
    by_key = graph.check_duplicates(pairs, problems)
    problems.extend(registry.check_stack(m for m, _ in by_key.values()))  # AWS rules across fields/resources
    deps = graph.dependencies(by_key, problems)
    layers = graph.tiers(deps, {k: m.source for k, (m, _) in by_key.items()}, problems)
    if problems:
        raise SpecError(problems)
    tiers = [[by_key[k][0] for k in layer] for layer in layers]
    return LoadedStack(
        manifests=[m for layer in tiers for m in layer],
        tiers=tiers,
        dependencies=deps,
        documents={k: d for k, (_, d) in by_key.items()},
        env=options.env,
        variables=variables,
    )
