"""``${NAME}`` substitution in every string of a document (plain YAML variables, no templating language).

Called by `controller.specs.loader` after parsing and before validation. ``$${X}`` is a literal ``${X}``.
An unknown variable is a problem naming the file, line and field, never an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from controller.specs.yamlsource import Path_, RawDocument, dotted

_VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(document: RawDocument, variables: Mapping[str, str], problems: list[str]) -> None:
    """Replace variables in place in ``document.data``; unknown names are appended to ``problems``."""
    document.data = _walk(document.data, (), document, variables, problems)


def substitute_identity(document: RawDocument, variables: Mapping[str, str]) -> None:
    """Expand only ``kind`` and ``metadata.name`` (so overlays can match names like ``/huntaze/${ENV}/x``);
    problems are left for the full pass after the overlays, which may replace a value holding a variable."""
    data = document.data
    if not isinstance(data, dict):
        return
    ignored: list[str] = []
    if isinstance(data.get("kind"), str):
        data["kind"] = _expand(data["kind"], ("kind",), document, variables, ignored)
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        metadata["name"] = _expand(metadata["name"], ("metadata", "name"), document, variables, ignored)


def _walk(value: Any, path: Path_, doc: RawDocument, variables: Mapping[str, str], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, (*path, k), doc, variables, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, (*path, i), doc, variables, problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        return _expand(value, path, doc, variables, problems)
    return value


def _expand(text: str, path: Path_, doc: RawDocument, variables: Mapping[str, str], problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            problems.append(
                f"{doc.where(path)}: {dotted(path)}: unknown variable ${{{name}}} "
                f"(known: {known}; pass --var {name}=VALUE)"
            )
            return match.group(0)
        return variables[name]

    return _VARIABLE.sub(replace, text)


VARIABLES_KIND = "Variables"


def is_variables_document(document: RawDocument) -> bool:
    """An overlay's ``kind: Variables`` document: defaults for ``${NAME}`` in that environment, not a resource."""
    return isinstance(document.data, dict) and document.data.get("kind") == VARIABLES_KIND


def overlay_defaults(
    documents: list[RawDocument], environ: Mapping[str, str], problems: list[str]
) -> dict[str, str]:
    """Variable defaults from overlays' ``kind: Variables`` documents, each value resolved now.

    ``spec`` maps a variable to a string, or to ``{fromEnv: NAME, default: VALUE}``: the environment variable
    when it is set (``huntazectl up`` prints the export lines), else the default. ``--var`` overrides both.
    So the local overlay works against a running ``up`` without any ``--var``, while staging and production,
    whose overlays declare no defaults, still require every variable explicitly.
    """
    found: dict[str, str] = {}
    for doc in documents:
        spec = doc.data.get("spec")
        if not isinstance(spec, dict):
            problems.append(f"{doc.where(('spec',))}: spec: a Variables document maps NAME to a value or to "
                            "{fromEnv: NAME, default: VALUE}")
            continue
        for name, value in spec.items():
            where = doc.where(("spec", name))
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                found[name] = str(value)
            elif isinstance(value, dict) and set(value) <= {"fromEnv", "default"} and value:
                from_env = value.get("fromEnv")
                if from_env is not None and str(from_env) in environ:
                    found[name] = environ[str(from_env)]
                elif "default" in value:
                    found[name] = str(value["default"])
                else:
                    problems.append(f"{where}: spec.{name}: ${from_env} is not set and there is no default; "
                                    f"export {from_env} or pass --var {name}=VALUE")
            else:
                problems.append(f"{where}: spec.{name}: expected a string or {{fromEnv: NAME, default: VALUE}} "
                                f"(got {value!r})")
    return found
