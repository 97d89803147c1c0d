"""`huntazectl build gate [--out DIR] [--arch arm64|x86_64]`: build a deterministic Lambda zip and print it.

Prints the zip's path, size and CodeSha256 (what Lambda will report once the code is uploaded), so an operator
can check what `apply` would deploy. The build itself is `controller.packaging`, shared with the Function kind.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from controller.packaging import LambdaZip, gate_zip

TARGETS = {"gate": gate_zip}


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "build", help="build a Lambda zip deterministically and print its path, size and CodeSha256"
    )
    parser.add_argument("target", choices=sorted(TARGETS), help="what to build")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default .cache/lambda)")
    parser.add_argument("--arch", choices=["arm64", "x86_64"], default="arm64", help="Lambda architecture")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    built: LambdaZip = TARGETS[args.target](architecture=args.arch, out_dir=args.out)
    print(f"path: {built.path}")
    print(f"size: {built.size}")
    print(f"CodeSha256: {built.sha256_b64}")
    return 0
