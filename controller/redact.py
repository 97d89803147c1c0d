"""Mask secrets inside values before anything prints or journals them.

Called by `controller.report` (diff, drift, apply and dry-run output), the `get` and `describe` commands, and
the journal: every value the controller shows a person or writes down goes through `redact` first. It never
talks to AWS and imports nothing from the controller, so any module (and the operator's journal) can use it.

What is masked:
- the password (and a lone user token) of any URL inside a string: ``redis://:pw@host`` becomes
  ``redis://:***@host``, ``rediss://user:pw@host`` becomes ``rediss://user:***@host`` (with
  ``keep_user=False``, as the journal writes it, the whole userinfo: ``rediss://***@host``);
- the whole value of a mapping entry whose key names a secret (``password``, ``token``, ``apiKey``,
  ``AWS_SECRET_ACCESS_KEY``, ``*_PASSWORD``...); keys that only *refer* to a secret (``*_SECRET_ID``, ``*Arn``,
  ``valueFrom``) are kept, since they hold a name, not the secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# scheme://userinfo@  -- userinfo is "user:password" or a lone token ("redis://token@host" is a password too).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/@\"'<>]+)@")

_SECRET_KEY = re.compile(
    r"(?:^|[_\-.])(?:password|passwd|pwd|token|secret|api[_\-]?key|access[_\-]?key|auth|credentials?|private[_\-]?key"
    r"|secret[_\-]?string|secret[_\-]?binary)$"
    r"|(?:password|passwd|secret|token|apikey)$",
    re.IGNORECASE,
)
# Keys that hold the *name* or location of a secret, never its value.
_REFERENCE_KEY = re.compile(r"(?:_id|id|arn|_arn|name|valuefrom|_file|file|path|_s)$", re.IGNORECASE)


def _mask_all_userinfo(match: re.Match[str]) -> str:
    return f"{match.group('scheme')}{MASK}@"


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    user, sep, password = userinfo.partition(":")
    if sep:
        return f"{match.group('scheme')}{user}:{MASK if password else ''}@"
    return f"{match.group('scheme')}{MASK}@"


def mask_text(text: str, *, keep_user: bool = True) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***`` (the rest kept, to stay readable;
    ``keep_user=False`` masks the user name too)."""
    if "@" not in text:
        return text
    return _URL_CREDENTIALS.sub(_mask_userinfo if keep_user else _mask_all_userinfo, text)


def is_secret_key(key: str) -> bool:
    """True for a key whose value is a secret itself (``password``, ``REDIS_AUTH_TOKEN``, ``apiKey``)."""
    camel = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)
    return bool(_SECRET_KEY.search(camel)) and not _REFERENCE_KEY.search(camel)


def redact(value: Any, *, keep_user: bool = True) -> Any:
    """A copy of ``value`` (any JSON-like tree) safe to print: URL credentials and secret-named entries masked.

    ``{"name": "REDIS_AUTH_TOKEN", "value": "x"}`` (the shape of a Lambda or ECS environment list) masks the
    ``value`` too, since the pair names a secret.
    """
    if isinstance(value, str):
        return mask_text(value, keep_user=keep_user)
    if isinstance(value, Mapping):
        pair_is_secret = isinstance(value.get("name"), str) and is_secret_key(str(value["name"]))
        out: dict[Any, Any] = {}
        for key, item in value.items():
            secret = isinstance(key, str) and is_secret_key(key)
            if pair_is_secret and key == "value":
                secret = True
            masked = secret and isinstance(item, str | int | float) and item != ""
            out[key] = MASK if masked else redact(item, keep_user=keep_user)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, keep_user=keep_user) for v in value]
    return value
