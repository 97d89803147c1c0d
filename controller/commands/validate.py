"""`huntazectl validate -f PATH`: check manifests offline (YAML, kinds, fields, references, cycles).

Makes no AWS call: ``${AWS_ACCOUNT_ID}`` is a placeholder unless given with --var or $AWS_ACCOUNT_ID.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from controller.commands._common import add_stack_arguments, console, load_stack


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("validate", help="validate manifests offline (no AWS call)")
    add_stack_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.text import Text

    stack = load_stack(args, offline=True)
    kinds = Counter(m.kind for m in stack.manifests)
    listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    console().print(Text(f"{len(stack.manifests)} resources valid ({listed}); {len(stack.tiers)} dependency tiers"))
    return 0
