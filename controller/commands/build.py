"""`huntazectl build gate|FUNCTION [-f PATH ...] [--env E] [--out DIR] [--arch A]`: build a Function's zip.

Reads the Function spec from the manifests (default: the repo's `manifests/` and `ecs-specs/`, with the
environment's overlay) exactly as `apply` does, and builds its ``code`` for its ``architecture`` and ``runtime`` through
`controller.packaging.function_zip`, the build the Function kind uploads: the printed CodeSha256 is what Lambda
reports after `apply`, and the file is byte for byte what `apply` sends. ``gate`` names the Function labelled
``app.kubernetes.io/name: gate``; any other target is a Function's name. Prints the zip's path, size and
CodeSha256. Offline: no AWS call.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.commands._common import add_stack_arguments
from controller.errors import HuntazeCtlError

if TYPE_CHECKING:
    from controller.model import Manifest

APP_LABEL = "app.kubernetes.io/name"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "build", help="build a Function's Lambda zip from its spec, as apply does, and print its path, size and "
                      "CodeSha256"
    )
    parser.add_argument("target", help="'gate' (the Function labelled app.kubernetes.io/name: gate) or a Function's "
                                       "name")
    add_stack_arguments(parser, files_required=False)
    parser.add_argument("--out", type=Path, default=None, help="output directory (default .cache/lambda)")
    parser.add_argument("--arch", choices=["arm64", "x86_64"], default=None,
                        help="Lambda architecture (default: the spec's; another one is not what apply deploys)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from controller import packaging
    from controller.commands._common import load_stack
    from controller.kinds.base import spec_of
    from controller.kinds.function import FunctionSpec

    if not args.paths:
        args.paths = [str(packaging.REPO_ROOT / "manifests"), str(packaging.REPO_ROOT / "ecs-specs")]
    stack = load_stack(args, offline=True)
    manifest = _function(stack.manifests, args.target)
    spec = spec_of(manifest, FunctionSpec)
    built = packaging.function_zip(packages=spec.code.packages, requirements=spec.code.requirements,
                                   architecture=args.arch or spec.architecture, runtime=spec.runtime,
                                   out_dir=args.out)
    print(f"function: {manifest.key} ({manifest.source.file}:{manifest.source.line})")
    print(f"path: {built.path}")
    print(f"size: {built.size}")
    print(f"CodeSha256: {built.sha256_b64}")
    return 0


def _function(manifests: list[Manifest], target: str) -> Manifest:
    functions = [m for m in manifests if m.kind == "Function"]
    found = [m for m in functions if m.metadata.name == target or m.metadata.labels.get(APP_LABEL) == target]
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted(m.metadata.name for m in functions)) or "none"
    why = "several Functions match" if found else "no Function matches"
    raise HuntazeCtlError(f"build {target}: {why} (by name or label {APP_LABEL}); Functions in the manifests: "
                          f"{known}; pass -f with the manifests that hold it")
