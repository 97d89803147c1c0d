"""`huntazectl`: the command-line entry point (console script in pyproject.toml).

Each subcommand is one module in `controller.commands` exposing ``register(subparsers)``; this module finds them
all, so adding a command never edits this file. A command's handler returns the process exit code. Errors that
a person can fix (`HuntazeCtlError`) print one clear message and exit 2; nothing prints a traceback unless
``HUNTAZE_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from controller import commands
from controller.errors import HuntazeCtlError

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="huntazectl",
        description="Reconcile the Huntaze stack (manifests/, ecs-specs/) against AWS, and run it locally.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except HuntazeCtlError as exc:
        if os.environ.get("HUNTAZE_DEBUG") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
