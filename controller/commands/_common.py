"""Options and set-up shared by the stack commands (apply, diff, drift, get, describe, delete, validate).

Not a command itself (the leading underscore keeps `controller.cli` from registering it). Loading always
happens before any AWS call: specs are validated with a placeholder account id first, and only when that
succeeds, and a command that talks to AWS needs it, the real id comes from STS (then specs load again).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from common.aws import client, current_region
from controller.errors import HuntazeCtlError

if TYPE_CHECKING:  # the rest is imported where it is used: building the parser must stay cheap (--help)
    from rich.console import Console

    from controller.kinds.base import Context
    from controller.model import ResourceKey
    from controller.specs import LoadedStack

PLACEHOLDER_ACCOUNT = "000000000000"


def add_stack_arguments(parser: argparse.ArgumentParser, *, files_required: bool = True) -> None:
    parser.add_argument("-f", "--filename", dest="paths", action="append", required=files_required, default=[],
                        metavar="PATH", help="manifest file or directory (repeatable; directories are recursive)")
    add_identity_arguments(parser)
    parser.add_argument("--var", dest="variables", action="append", default=[], metavar="K=V",
                        help="set a ${K} variable (repeatable)")
    parser.add_argument("--overlay", dest="overlays", action="append", default=[], metavar="FILE",
                        help="extra overlay file, applied after overlays/<env>.yaml")


def add_identity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default=None,
                        help="environment overlay: local, staging or production (default: the context's, "
                             "else $HUNTAZE_ENV, else local)")
    parser.add_argument("--context", default=None,
                        help="named target from the huntazectl config (env, region, profile, vars; see "
                             "controller/targets.py); default $HUNTAZE_CONTEXT or the file's current")
    parser.add_argument("--stack", default=None, help="ownership tag value (default: huntaze-<env>)")
    parser.add_argument("--region", default=None,
                        help="AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION or the AWS profile's)")


def console() -> Console:
    from rich.console import Console

    width = None if sys.stdout.isatty() else 200  # pipes and CI logs: do not wrap tables at 80 columns
    return Console(file=sys.stdout, highlight=False, soft_wrap=True, width=width)


def parse_variables(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise HuntazeCtlError(f"--var {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def stack_name(args: argparse.Namespace) -> str:
    return str(args.stack or f"huntaze-{args.env}")


def _variables(args: argparse.Namespace, account_id: str, *, offline: bool = False) -> dict[str, str]:
    given = parse_variables(args.variables)
    region = current_region(required=not offline)  # offline checks never call AWS: a placeholder will do
    return {"ENV": args.env, "AWS_REGION": region, "AWS_ACCOUNT_ID": account_id, **given}


def _known_account(args: argparse.Namespace) -> str | None:
    return parse_variables(args.variables).get("AWS_ACCOUNT_ID") or os.environ.get("AWS_ACCOUNT_ID") or None


def account_id(args: argparse.Namespace) -> str:
    """From --var, else $AWS_ACCOUNT_ID, else STS GetCallerIdentity (only commands that talk to AWS)."""
    known = _known_account(args)
    if known:
        return known
    try:
        return str(client("sts").get_caller_identity()["Account"])
    except Exception as exc:
        raise HuntazeCtlError(
            f"cannot find the AWS account id ({type(exc).__name__}: {exc}); set AWS_ACCOUNT_ID or check the "
            "AWS credentials and AWS_ENDPOINT_URL"
        ) from None


def load_stack(args: argparse.Namespace, *, offline: bool = False) -> LoadedStack:
    """Validate every file offline; then (unless ``offline``) reload with the real account id."""
    from controller.specs import LoadOptions, load

    account = _known_account(args) or PLACEHOLDER_ACCOUNT
    options = LoadOptions(args.paths, args.env, _variables(args, account, offline=offline), args.overlays)
    stack = load(options)
    if offline or account != PLACEHOLDER_ACCOUNT:
        return stack
    real = account_id(args)
    return load(LoadOptions(args.paths, args.env, _variables(args, real), args.overlays))


def make_context(args: argparse.Namespace, *, dry_run: bool = False, stack: LoadedStack | None = None) -> Context:
    from controller.kinds.base import Context

    variables = stack.variables if stack is not None else {}
    account = variables.get("AWS_ACCOUNT_ID") or account_id(args)
    return Context(stack=stack_name(args), region=current_region(), account_id=account, client=client,
                   variables=variables, dry_run=dry_run)


def resolve_kind(text: str) -> str:
    """``queue``, ``Queue``, ``queues`` → ``Queue``; an unknown kind lists the known ones."""
    from controller.kinds import registry

    wanted = text.lower()
    for kind in registry.known_kinds():
        if wanted in (kind.lower(), f"{kind.lower()}s", f"{kind.lower()}es"):
            return kind
    raise HuntazeCtlError(f"unknown kind {text!r}; known kinds: {', '.join(registry.known_kinds())}")


def parse_key(text: str) -> ResourceKey:
    from controller.model import ResourceKey

    try:
        key = ResourceKey.parse(text)
    except ValueError as exc:
        raise HuntazeCtlError(f"{exc}: write it as KIND/NAME, e.g. Queue/huntaze-dlq") from None
    return ResourceKey(kind=resolve_kind(key.kind), name=key.name)


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
