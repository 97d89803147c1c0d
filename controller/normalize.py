"""Normalizers: turn what AWS returns and what a spec says into one comparable shape.

Called by the kind modules in `controller.kinds` (both in `desired()` and in `read()`) so that
`controller.diff` compares like with like. Without this, SQS's ``"300"`` differs from ``300``, a RedrivePolicy
JSON string differs from the same dict, and an IAM policy whose single statement is a dict differs from the
same statement in a list: every reconcile would write, forever (the lesson of Terraform's attrmap and ACK).

Every normalizer is pure, total on its documented input and table-tested in tests/controller/test_normalize.py.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

IAM_POLICY_VERSION = "2012-10-17"
# IAM keys whose value may be a string or a list of strings, with the same meaning either way.
_IAM_LIST_KEYS = ("Action", "NotAction", "Resource", "NotResource")


def json_text(value: Any) -> Any:
    """JSON inside a string (RedrivePolicy, dashboard bodies) → the Python value; dicts then compare by content.

    ``None`` and ``""`` mean "nothing" and give ``None``; a value that is already parsed is returned canonical.
    Raises ValueError naming the problem if the text is not JSON.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at char {exc.pos}") from None
    return canonical(value)


def canonical(value: Any) -> Any:
    """A deep copy with tuples turned into lists and dict keys as strings: a stable, comparable value."""
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def sort_key(value: Any) -> str:
    """A total order for any JSON value (for sorting lists whose order AWS does not keep)."""
    return json.dumps(value, sort_keys=True, default=str)


def unordered(items: Iterable[Any]) -> list[Any]:
    """A list whose order does not matter, sorted canonically."""
    return sorted((canonical(i) for i in items), key=sort_key)


def sort_by(items: Iterable[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """Dicts sorted by one key (ECS environment by ``name``, tags by ``Key``...)."""
    return sorted((dict(canonical(i)) for i in items), key=lambda item: sort_key(item.get(key)))


def drop_none(value: Any) -> Any:
    """Recursively remove dict entries whose value is None (unset optional fields)."""
    if isinstance(value, Mapping):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def tags_from_list(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """``[{Key, Value}]`` (IAM, SNS, S3) or ``[{key, value}]`` (ECS) → ``{key: value}``."""
    tags: dict[str, str] = {}
    for item in items or []:
        key = item.get("Key", item.get("key"))
        if key is None:
            raise ValueError(f"tag without a Key: {item!r}")
        tags[str(key)] = str(item.get("Value", item.get("value", "")))
    return tags


def tags_to_list(tags: Mapping[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """The reverse of `tags_from_list`, sorted by key (for create/tag calls)."""
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Drop tags AWS itself writes (``aws:*``): they are never ours to manage."""
    return {k: v for k, v in tags.items() if not k.startswith("aws:")}


# --- IAM policy documents ---------------------------------------------------------------------------------


def policy_document(doc: Any) -> dict[str, Any] | None:
    """An IAM policy (dict, JSON text, or URL-encoded JSON as IAM returns it) in canonical form.

    ``Statement`` becomes a list; Action/NotAction/Resource/NotResource become sorted lists; Principal and
    Condition values become sorted lists; an absent ``Version`` is the current one; empty Sids are dropped and
    statements are sorted, so two documents that grant the same thing compare equal.
    """
    if doc is None or doc == "":
        return None
    if isinstance(doc, str):
        text = doc if doc.lstrip().startswith("{") else urllib.parse.unquote(doc)
        doc = json_text(text)
    if not isinstance(doc, Mapping):
        raise ValueError(f"an IAM policy must be a JSON object, got {type(doc).__name__}")
    out: dict[str, Any] = {k: canonical(v) for k, v in doc.items() if k not in ("Statement", "Version")}
    out["Version"] = doc.get("Version") or IAM_POLICY_VERSION
    statements = doc.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    out["Statement"] = unordered(_statement(s) for s in statements)
    return out


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return sorted(str(v) for v in value)


def _statement(statement: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key == "Sid" and not value:
            continue
        if key in _IAM_LIST_KEYS:
            out[key] = _string_list(value)
        elif key in ("Principal", "NotPrincipal") and isinstance(value, Mapping):
            out[key] = {k: _string_list(v) for k, v in value.items()}
        elif key == "Condition" and isinstance(value, Mapping):
            out[key] = {
                op: {k: _string_list(v) if isinstance(v, str | list) else v for k, v in body.items()}
                for op, body in value.items()
            }
        else:
            out[key] = canonical(value)
    return out


# --- string-typed attribute maps (SQS, SNS) ---------------------------------------------------------------


def to_int(text: Any) -> int:
    return int(str(text).strip())


def to_bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return lowered == "true"


def to_str(text: Any) -> str:
    return str(text)


def _bool_text(value: Any) -> str:
    return "true" if value else "false"


def _json_out(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Attr:
    """One field ↔ one string attribute: how to parse the API's text, how to write it back, the server default."""

    api_name: str
    parse: Callable[[Any], Any] = to_str
    render: Callable[[Any], str] = to_str
    default: Any = None


def int_attr(api_name: str, default: int | None = None) -> Attr:
    return Attr(api_name, to_int, str, default)


def bool_attr(api_name: str, default: bool | None = None) -> Attr:
    return Attr(api_name, to_bool, _bool_text, default)


def json_attr(api_name: str, default: Any = None) -> Attr:
    return Attr(api_name, json_text, _json_out, default)


def str_attr(api_name: str, default: str | None = None) -> Attr:
    return Attr(api_name, to_str, to_str, default)


@dataclass(frozen=True)
class AttributeMap:
    """A declarative field map (Terraform's attrmap): field name → `Attr`."""

    fields: Mapping[str, Attr]

    def from_api(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """API attributes (strings) → typed fields; absent attributes take the server default."""
        out: dict[str, Any] = {}
        for name, attr in self.fields.items():
            raw = attributes.get(attr.api_name)
            out[name] = attr.default if raw is None or raw == "" else attr.parse(raw)
        return out

    def to_api(self, fields: Mapping[str, Any], only: Iterable[str] | None = None) -> dict[str, str]:
        """Typed fields → API attributes (strings); None values are left out (``""`` clears on update)."""
        names = list(only) if only is not None else list(self.fields)
        out: dict[str, str] = {}
        for name in names:
            attr = self.fields.get(name)
            if attr is None or name not in fields:
                continue
            value = fields[name]
            out[attr.api_name] = "" if value is None else attr.render(value)
        return out

    def with_defaults(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Desired fields with every unset one set to the server default (so defaults are never drift)."""
        return {name: fields.get(name, attr.default) for name, attr in self.fields.items()}


def redrive_policy(value: Any) -> dict[str, Any] | None:
    """RedrivePolicy JSON → ``{deadLetterTargetArn, maxReceiveCount:int}`` (SQS returns the count as a string
    or an int depending on who wrote it)."""
    parsed = json_text(value)
    if parsed is None:
        return None
    return {
        "deadLetterTargetArn": str(parsed["deadLetterTargetArn"]),
        "maxReceiveCount": to_int(parsed["maxReceiveCount"]),
    }


SQS_QUEUE_ATTRIBUTES = AttributeMap(
    {
        "fifoQueue": bool_attr("FifoQueue", False),
        "visibilityTimeout": int_attr("VisibilityTimeout", 30),
        "messageRetentionPeriod": int_attr("MessageRetentionPeriod", 345600),
        "receiveWaitTimeSeconds": int_attr("ReceiveMessageWaitTimeSeconds", 0),
        "delaySeconds": int_attr("DelaySeconds", 0),
        "maximumMessageSize": int_attr("MaximumMessageSize", 1048576),
        "contentBasedDeduplication": bool_attr("ContentBasedDeduplication", False),
        "redrivePolicy": Attr("RedrivePolicy", redrive_policy, _json_out, None),
        "kmsMasterKeyId": str_attr("KmsMasterKeyId", None),
        "kmsDataKeyReusePeriodSeconds": int_attr("KmsDataKeyReusePeriodSeconds", 300),
        "sqsManagedSseEnabled": bool_attr("SqsManagedSseEnabled", True),
    }
)
# Attributes that exist only on FIFO queues: on a standard queue they are neither read nor written.
SQS_FIFO_ONLY = ("contentBasedDeduplication",)


def sqs_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """GetQueueAttributes(All) → normalized queue fields (ints, bools, parsed RedrivePolicy, defaults filled).

    SSE-SQS and SSE-KMS are exclusive: with a KMS key set, ``sqsManagedSseEnabled`` is False whatever the
    emulator says, and the data-key period only means something when a KMS key is set.
    """
    fields = SQS_QUEUE_ATTRIBUTES.from_api(attributes)
    return sqs_fields(fields)


def sqs_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Apply SQS's own rules to typed fields (used on both the desired and the live side)."""
    out = SQS_QUEUE_ATTRIBUTES.with_defaults(fields)
    if out.get("kmsMasterKeyId"):
        out["sqsManagedSseEnabled"] = False
    else:
        out["kmsMasterKeyId"] = None
        out["kmsDataKeyReusePeriodSeconds"] = None
    if not out.get("fifoQueue"):
        for name in SQS_FIFO_ONLY:
            out.pop(name, None)
    return out
