"""`huntazectl`: the command-line entry point (console script in pyproject.toml).

Each subcommand is one module in `controller.commands` exposing ``register(subparsers)``; this module finds them
all, so adding a command never edits this file. Finding them is cheap: each module's source is read (not
imported) for the names and help texts its ``register`` gives to ``sub.add_parser``, and only the module of the
command being run is imported. So ``huntazectl --help`` and a usage error answer without loading boto3,
pydantic or rich (see ``bench/cli/startup.py``). A command's handler returns the process exit code. Errors that
a person can fix (`HuntazeCtlError`, a missing region) print one clear message and exit 2; nothing prints a
traceback unless ``HUNTAZE_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

COMMANDS_PACKAGE = "controller.commands"
COMMANDS_DIR = Path(__file__).resolve().parent / "commands"
EXIT_ERROR = 2


@dataclass(frozen=True)
class CommandInfo:
    name: str
    module: str
    help: str


@cache
def discover() -> dict[str, CommandInfo]:
    """Command name -> the module that registers it and its help text, read from the source without importing."""
    found: dict[str, CommandInfo] = {}
    for path in sorted(COMMANDS_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = f"{COMMANDS_PACKAGE}.{path.stem}"
        for name, text in _registered(path.read_text(encoding="utf-8")):
            found[name] = CommandInfo(name, module, text)
    return found


def _registered(source: str) -> list[tuple[str, str]]:
    """The ``(name, help)`` of every ``<param>.add_parser("name", help=...)`` inside ``def register(<param>)``."""
    tree = ast.parse(source)
    out: list[tuple[str, str]] = []
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == "register" and node.args.args):
            continue
        param = node.args.args[0].arg
        for call in ast.walk(node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "add_parser" and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == param and call.args and isinstance(call.args[0], ast.Constant)):
                continue
            text = ""
            for keyword in call.keywords:
                if keyword.arg == "help":
                    try:
                        text = str(ast.literal_eval(keyword.value))
                    except ValueError:
                        text = ""
            out.append((str(call.args[0].value), text))
    return out


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the full options of the command named in ``argv`` and a summary line for the others."""
    parser = argparse.ArgumentParser(
        prog="huntazectl",
        description="Reconcile the Huntaze stack (manifests/, ecs-specs/) against AWS, and run it locally.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands = discover()
    chosen = commands.get(_command_in(argv) or "")
    registered: set[str] = set()
    if chosen is not None:
        module = importlib.import_module(chosen.module)
        before = set(sub.choices)
        module.register(sub)
        registered = set(sub.choices) - before
    for info in sorted(commands.values(), key=lambda c: c.name):
        if info.name not in registered:
            sub.add_parser(info.name, help=info.help, add_help=False)
    sub._choices_actions.sort(key=lambda action: action.dest)  # one alphabetical list in --help
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    from common.aws import RegionNotConfigured
    from controller.errors import HuntazeCtlError
    from controller.targets import TargetError, apply_context

    try:
        apply_context(args)
        if getattr(args, "region", None):
            os.environ["AWS_REGION"] = args.region
        code: int = args.handler(args)
    except (HuntazeCtlError, RegionNotConfigured, TargetError) as exc:
        if os.environ.get("HUNTAZE_DEBUG") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
