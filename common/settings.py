"""Settings base shared by the controller, the gate and the scraper.

Each program subclasses `HuntazeSettings` with its own fields and loads it through `load_settings`, which turns
pydantic's validation errors into one `SettingsError` naming the environment variable to fix. Values of secret
fields (the Redis URL may carry a password) are never echoed back.

The settings of a program are also a published contract: `settings_schema` turns a settings class into JSON
(each variable's names, type, default, bounds, secret or not, description), committed beside the program as
``settings.schema.json`` (kept current by a test). The controller checks a Function's or a TaskDefinition's
environment against that file offline (`check_environment`), and ``python -m gate --help`` /
``python -m scraper --help`` print it (`settings_table`). Nothing here imports boto3 or the controller.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "HUNTAZE_"


class SettingsError(Exception):
    """A required setting is missing or malformed. The message names each variable and what to set."""


class HuntazeSettings(BaseSettings):
    """Settings every program needs. Environment variables: ``HUNTAZE_<FIELD>`` unless an alias says otherwise."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    env: str = Field("local", description="Deployment environment: local, staging or production.")
    aws_endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("AWS_ENDPOINT_URL", "HUNTAZE_AWS_ENDPOINT_URL"),
        description="Endpoint for every AWS API (moto, LocalStack). Unset means real AWS.",
    )
    aws_region: str = Field(
        "us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "HUNTAZE_AWS_REGION"),
        pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
        description="AWS region of every API call (set by Lambda and ECS themselves).",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias=AliasChoices("REDIS_URL", "HUNTAZE_REDIS_URL"),
        description="Redis URL, may hold a password: never logged.",
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
                           description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")

    @field_validator("redis_url")
    @classmethod
    def _redis_url_parses(cls, value: SecretStr) -> SecretStr:
        problem = redis_url_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value


REDIS_SCHEMES = ("redis", "rediss", "unix")


def redis_url_problem(url: str) -> str | None:
    """Why ``url`` is not a Redis URL redis-py can open, or None. Never quotes the URL (it may hold a password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "must be a URL such as redis://HOST:6379/0 (the port or address does not parse)"
    if parts.scheme not in REDIS_SCHEMES:
        return "must be a redis://, rediss:// or unix:// URL, e.g. redis://HOST:6379/0"
    if parts.scheme != "unix" and not parts.hostname:
        return "has no host: write it as redis://HOST:6379/0"
    if port == 0:
        return "has port 0"
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        return f"database must be a number (redis://HOST:6379/0), got path /{database}"
    return None


S = TypeVar("S", bound=HuntazeSettings)


def _env_names(cls: type[HuntazeSettings], field: str) -> list[str]:
    info = cls.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        return [str(choice) for choice in info.validation_alias.choices]
    prefix = cls.model_config.get("env_prefix", ENV_PREFIX)
    return [f"{prefix}{field}".upper()]


def _field_of(cls: type[HuntazeSettings], loc: str) -> str:
    """The field an error location names: the field itself, or one of its environment aliases."""
    if loc in cls.model_fields:
        return loc
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and loc.upper() in (str(c).upper() for c in alias.choices):
            return name
    return loc


def _is_secret(cls: type[HuntazeSettings], field: str) -> bool:
    info = cls.model_fields.get(field)
    return info is not None and info.annotation in (SecretStr, SecretStr | None)


def describe_errors(cls: type[HuntazeSettings], exc: ValidationError) -> str:
    """One line per bad setting: the variable(s), the problem and, unless secret, the value seen."""
    lines = []
    for error in exc.errors():
        field = _field_of(cls, str(error["loc"][0])) if error["loc"] else "?"
        names = " or ".join(_env_names(cls, field))
        problem = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            lines.append(f"{names}: required setting is not set; export it and retry")
            continue
        shown = "" if _is_secret(cls, field) else f" (got {error.get('input')!r})"
        lines.append(f"{names}: {problem}{shown}; fix the variable and retry")
    return "\n".join(lines)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment (plus explicit overrides), or raise `SettingsError`."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_errors(cls, exc)) from None


# --- the published contract ------------------------------------------------------------------------------

SCHEMA_FILE = "settings.schema.json"
SCHEMA_VERSION = 1
_BULLET = re.compile(r"^- (.*)$")


def settings_schema(cls: type[HuntazeSettings], program: str) -> dict[str, Any]:
    """The JSON contract of ``cls``: one entry per setting, in declaration order.

    Each entry: ``env`` (the accepted variable names, first preferred), ``type`` (string, integer, number,
    boolean), optional ``enum``, ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``,
    ``minLength``/``maxLength``/``pattern``, ``required``, ``default`` (absent when required), ``nullable``,
    ``secret`` and ``description``.
    """
    json_schema = cls.model_json_schema(by_alias=False)
    props = json_schema.get("properties", {})
    defs = json_schema.get("$defs", {})
    docs = _doc_bullets(cls)
    settings = []
    for name, info in cls.model_fields.items():
        prop = dict(props.get(name, {}))
        entry: dict[str, Any] = {"name": name, "env": _env_names(cls, name)}
        entry.update(_flatten(prop, defs))
        entry["required"] = info.is_required()
        if not info.is_required():
            default = info.get_default(call_default_factory=True)
            entry["default"] = _plain(default)
        entry["secret"] = _is_secret(cls, name)
        description = info.description or next((docs[e] for e in entry["env"] if e in docs), "")
        entry["description"] = description
        settings.append(entry)
    return {"schemaVersion": SCHEMA_VERSION, "program": program, "settings": settings}


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):
        return value.value  # an enum member
    return value


def _flatten(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One JSON-schema property as {type, enum, bounds...}: refs resolved, ``X | None`` as nullable."""
    out: dict[str, Any] = {}
    if "$ref" in prop:
        prop = {**defs[prop["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in prop.items() if k != "$ref"}}
    if "anyOf" in prop:
        options = [_flatten(p, defs) for p in prop["anyOf"]]
        concrete = [o for o in options if o.get("type") != "null"]
        if len(concrete) < len(options):
            out["nullable"] = True
        if concrete:
            out.update(concrete[0])
        return out
    kind = prop.get("type", "string")
    if prop.get("format") == "password":
        kind = "string"
    out["type"] = kind
    for key in ("enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
                "pattern"):
        if key in prop:
            out[key] = prop[key]
    return out


def _doc_bullets(cls: type[HuntazeSettings]) -> dict[str, str]:
    """Variable -> the module docstring's bullet that names it (``- ``HUNTAZE_X`` (3): what it does``)."""
    module = sys.modules.get(cls.__module__)
    text = (module.__doc__ or "") if module else ""
    found: dict[str, str] = {}
    bullets: list[str] = []
    for line in text.splitlines():
        match = _BULLET.match(line.strip())
        if match:
            bullets.append(match.group(1))
        elif bullets and line.startswith("  ") and line.strip():
            bullets[-1] += " " + line.strip()
        elif not line.strip() and bullets:
            bullets.append("")
    for bullet in filter(None, bullets):
        clean = " ".join(bullet.split())
        for name in re.findall(r"``([A-Z][A-Z0-9_]+)``", clean):
            found.setdefault(name, clean.replace("``", ""))
    return found


def schema_json(cls: type[HuntazeSettings], program: str) -> str:
    """The committed text of ``<program>/settings.schema.json`` (stable: a test compares it byte for byte)."""
    return json.dumps(settings_schema(cls, program), indent=2, sort_keys=False, default=str) + "\n"


def read_schema(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def check_environment(schema: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Problems of an environment against a published schema, offline: ``{VARIABLE: "must be an integer (got
    'many')"}``. Checks type, enum and bounds of each given variable, that no unknown ``HUNTAZE_*`` variable is
    set (a typo would be silently ignored by the program), and that a secret setting given in plain text holds
    no credentials. Required settings are not checked here: the controller may inject them from references.
    """
    by_env: dict[str, dict[str, Any]] = {}
    for entry in schema.get("settings", []):
        for name in entry["env"]:
            by_env[name.upper()] = entry
    problems: dict[str, str] = {}
    for variable, value in env.items():
        entry = by_env.get(variable.upper())
        if entry is None:
            if variable.upper().startswith(ENV_PREFIX):
                close = difflib.get_close_matches(variable.upper(), list(by_env), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                problems[variable] = f"unknown setting of {schema.get('program', 'this program')}{hint}"
            continue
        problem = _value_problem(entry, value)
        if problem:
            problems[variable] = problem
    return problems


def _value_problem(entry: Mapping[str, Any], value: str) -> str | None:
    secret = bool(entry.get("secret"))
    shown = "" if secret else f" (got {value!r})"
    if entry.get("nullable") and value == "":
        return None
    kind = entry.get("type", "string")
    number: float | None = None
    if kind == "integer":
        try:
            number = int(value.strip())
        except ValueError:
            return f"must be an integer{shown}"
    elif kind == "number":
        try:
            number = float(value.strip())
        except ValueError:
            return f"must be a number{shown}"
    elif kind == "boolean" and value.strip().lower() not in _TRUE | _FALSE:
        return f"must be true or false{shown}"
    if "enum" in entry and value not in entry["enum"]:
        return f"must be one of {', '.join(map(str, entry['enum']))}{shown}"
    if number is not None:
        for key, text in _BOUNDS:
            if key in entry and not _within(number, text, float(entry[key])):
                return f"must be {text} {entry[key]}{shown}"
    if kind == "string":
        if "minLength" in entry and len(value) < entry["minLength"]:
            return f"must be at least {entry['minLength']} characters{shown}"
        if "maxLength" in entry and len(value) > entry["maxLength"]:
            return f"must be at most {entry['maxLength']} characters"
        if "pattern" in entry and not re.search(entry["pattern"], value):
            return f"must match {entry['pattern']}{shown}"
    if secret and re.search(r"://[^/\s@]*:[^/\s@]+@", value):
        return "holds a password in plain text: pass it as a secret (ECS secrets, or a Secrets Manager id)"
    if secret and entry["name"] == "redis_url":
        return redis_url_problem(value)
    return None


_BOUNDS = (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"), ("exclusiveMaximum", "<"))


def _within(number: float, op: str, bound: float) -> bool:
    return {">=": number >= bound, "<=": number <= bound, ">": number > bound, "<": number < bound}[op]


def program_main(cls: type[HuntazeSettings], program: str, argv: list[str], usage: str) -> int | None:
    """The ``--help`` / ``--schema`` / ``--check`` options of ``python -m <program>``; None: run the program.

    ``--help`` prints ``usage`` and the settings table; ``--schema`` prints the JSON contract (redirect it to
    ``<program>/settings.schema.json`` after changing a setting); ``--check`` loads the settings from the
    environment and prints one line per problem (exit 2) or ``settings ok``.
    """
    if not argv:
        return None
    option = argv[0]
    if option in ("-h", "--help"):
        print(usage.rstrip() + "\n\n" + settings_table(settings_schema(cls, program)))
        return 0
    if option == "--schema":
        print(schema_json(cls, program), end="")
        return 0
    if option == "--check":
        try:
            load_settings(cls)
        except SettingsError as exc:
            print(f"{program}: invalid settings: {exc}", file=sys.stderr)
            return 2
        print(f"{program}: settings ok")
        return 0
    print(f"{program}: unknown option {option!r}; use --help, --check or --schema", file=sys.stderr)
    return 2


def settings_table(schema: Mapping[str, Any]) -> str:
    """The settings of a program as plain text for ``--help``: variable, type, default, and what it does."""
    lines = [f"Settings of {schema.get('program')} (environment variables):", ""]
    for entry in schema.get("settings", []):
        names = " or ".join(entry["env"])
        kind = entry.get("type", "string")
        if "enum" in entry:
            kind = "|".join(map(str, entry["enum"]))
        flags = ["required"] if entry.get("required") else [f"default {json.dumps(entry.get('default'))}"]
        if entry.get("secret"):
            flags.append("secret")
        lines.append(f"  {names}  <{kind}>  ({', '.join(flags)})")
        if entry.get("description"):
            lines.append(f"      {entry['description']}")
    return "\n".join(lines)
