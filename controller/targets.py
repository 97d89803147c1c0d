"""Named targets, as kubectl's contexts: ``--context staging`` instead of retyping env, region, profile and vars.

Called by `controller.cli` after parsing, before any command runs. The file is ``$HUNTAZE_CONFIG``, else
``~/.config/huntaze/config.yaml``; without it nothing changes. Format::

    current: local                  # used when neither --context nor $HUNTAZE_CONTEXT is given
    contexts:
      local: {env: local}
      staging:
        env: staging
        region: eu-west-1
        profile: huntaze-staging    # AWS_PROFILE
        vars: {SCRAPER_IMAGE_TAG: "1.4.2", PRIVATE_SUBNET_A: subnet-0abc}
      production: {env: production, region: eu-west-1, profile: huntaze-prod, stack: huntaze-production}

Anything given on the command line wins over the context (``--env``, ``--region``, ``--stack``, each ``--var``);
a context's ``endpoint`` sets ``AWS_ENDPOINT_URL`` (LocalStack), its ``profile`` sets ``AWS_PROFILE``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

CONFIG_ENV = "HUNTAZE_CONFIG"
CONTEXT_ENV = "HUNTAZE_CONTEXT"
DEFAULT_CONFIG = Path("~/.config/huntaze/config.yaml")
_KEYS = {"env", "region", "profile", "endpoint", "stack", "vars"}


class TargetError(Exception):
    """The config file or the context named is wrong; the message names the file, the key and the fix."""


def config_path(environ: MutableMapping[str, str]) -> Path:
    return Path(environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()


def read_config(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TargetError(f"{path}: cannot read the huntazectl config: {exc}") from None
    contexts = data.get("contexts") if isinstance(data, dict) else None
    if not isinstance(contexts, dict):
        raise TargetError(f"{path}: expected a mapping with `contexts: {{NAME: {{env: ..., region: ...}}}}`")
    for name, target in contexts.items():
        if not isinstance(target, dict):
            raise TargetError(f"{path}: contexts.{name}: expected a mapping of {', '.join(sorted(_KEYS))}")
        unknown = set(target) - _KEYS
        if unknown:
            raise TargetError(f"{path}: contexts.{name}: unknown key {sorted(unknown)[0]!r} (allowed: "
                              f"{', '.join(sorted(_KEYS))})")
        if not isinstance(target.get("vars", {}), dict):
            raise TargetError(f"{path}: contexts.{name}.vars: expected a mapping NAME: VALUE")
    return data


def apply_context(args: argparse.Namespace, environ: MutableMapping[str, str] | None = None) -> str | None:
    """Fill what the command line left unset from the chosen context; return its name (None: no context)."""
    environ = os.environ if environ is None else environ
    given = getattr(args, "context", None) or environ.get(CONTEXT_ENV)
    path = config_path(environ)
    target: dict[str, Any] = {}
    name: str | None = None
    if given or path.is_file():
        if not path.is_file():
            raise TargetError(f"--context {given}: no config file at {path} (set ${CONFIG_ENV} or create it: "
                              "see `controller/targets.py` for the format)")
        data = read_config(path)
        name = given or data.get("current")
        if name is not None:
            if name not in data["contexts"]:
                known = ", ".join(sorted(data["contexts"])) or "none"
                raise TargetError(f"{path}: no context {name!r} (known: {known})")
            target = data["contexts"][name]
    if hasattr(args, "env") and args.env is None:
        args.env = target.get("env") or environ.get("HUNTAZE_ENV") or "local"
    if hasattr(args, "region") and not args.region and target.get("region"):
        args.region = str(target["region"])
    if hasattr(args, "stack") and args.stack is None and target.get("stack"):
        args.stack = str(target["stack"])
    if hasattr(args, "variables") and target.get("vars"):
        args.variables = [f"{k}={v}" for k, v in target["vars"].items()] + list(args.variables)
    if target.get("profile"):
        environ["AWS_PROFILE"] = str(target["profile"])
    if target.get("endpoint"):
        environ["AWS_ENDPOINT_URL"] = str(target["endpoint"])
    return name
