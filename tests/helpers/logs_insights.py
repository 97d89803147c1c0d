"""A small evaluator of CloudWatch Logs Insights queries over JSON log lines, for tests of the log shape.

It understands what the seed's queries use: ``fields a, b.c`` (dotted names read nested JSON, as Logs Insights
flattens it), ``filter name = "value"`` / ``filter name like /regex/`` (``@message`` is the raw line), and
``stats count() [, avg(f), max(f)] by field``. Anything else is an error, so a query the evaluator cannot
read never passes silently. Used by tests/scraper to run the seed's queries on a real worker's log lines.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any


def field_value(line: dict[str, Any], name: str) -> Any:
    if name == "@message":
        return json.dumps(line)
    if name == "@timestamp":
        return line.get("timestamp")
    value: Any = line
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _filter(line: dict[str, Any], clause: str) -> bool:
    equal = re.fullmatch(r'(\S+)\s*=\s*"([^"]*)"', clause)
    if equal:
        return field_value(line, equal.group(1)) == equal.group(2)
    like = re.fullmatch(r"(\S+)\s+like\s+/(.*)/", clause)
    if like:
        return re.search(like.group(2), str(field_value(line, like.group(1)) or "")) is not None
    raise ValueError(f"unsupported filter: {clause}")


def _stats(rows: list[dict[str, Any]], clause: str) -> list[dict[str, Any]]:
    match = re.fullmatch(r"(.+?)\s+by\s+(\S+)", clause)
    if not match:
        raise ValueError(f"unsupported stats: {clause}")
    aggregates, key = [a.strip() for a in match.group(1).split(",")], match.group(2)
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[field_value(row, key)].append(row)
    out = []
    for value, members in groups.items():
        result: dict[str, Any] = {key: value}
        for aggregate in aggregates:
            found = re.fullmatch(r"(count|avg|max)\((\S*)\)(?:\s+as\s+(\S+))?", aggregate)
            if not found:
                raise ValueError(f"unsupported aggregate: {aggregate}")
            fn, arg, alias = found.groups()
            numbers = [float(field_value(m, arg)) for m in members if arg and field_value(m, arg) is not None]
            result[alias or f"{fn}({arg})"] = (len(members) if fn == "count" else
                                               (sum(numbers) / len(numbers) if fn == "avg" else max(numbers))
                                               if numbers else None)
        out.append(result)
    return out


def run_query(query: str, lines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows after fields+filter, stats rows or []) for `query` over `lines`."""
    rows = list(lines)
    stats: list[dict[str, Any]] = []
    fields: list[str] = []
    for command in (part.strip() for part in query.strip().split("|")):
        verb, _, rest = command.partition(" ")
        if verb == "fields":
            fields = [f.strip() for f in rest.split(",")]
        elif verb == "filter":
            rows = [r for r in rows if _filter(r, rest.strip())]
        elif verb == "stats":
            stats = _stats(rows, rest.strip())
        elif verb in ("sort", "parse"):
            continue
        else:
            raise ValueError(f"unsupported command: {command}")
    projected = [{f: field_value(r, f) for f in fields} for r in rows]
    return projected, stats
