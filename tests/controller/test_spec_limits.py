"""Spec loading limits and the loader's own checks: bounded YAML (alias bomb, depth, size), empty input, the
real line of an encoding error, a reference to a resource of another kind, and no ``:0:`` line numbers.
Each case runs `huntazectl validate` and `apply` offline: exit 2, the message, and zero AWS calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.specs.yamlsource import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from tests.controller.test_specs import HEADER, queue

Ctl = Callable[..., tuple[int, str, str]]

ALIAS_BOMB = "\n".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)),
]) + "\n"
DEEP = "a: " + "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10) + "\n"

CASES: list[tuple[str, dict[str, bytes], str]] = [
    ("alias-bomb", {"a.yaml": (HEADER + "kind: Queue\nmetadata: {name: x}\nspec:\n  " +
                               ALIAS_BOMB.replace("\n", "\n  ")).encode()},
     "alias uses in one document (an alias bomb?)"),
    ("too-many-values", {"a.yaml": ("a: [" + "1," * (MAX_NODES + 1) + "]\n").encode()},
     f"a.yaml:1: the document expands to more than {MAX_NODES} values"),
    ("too-deep", {"a.yaml": DEEP.encode()}, f"nested deeper than {MAX_DEPTH} levels"),
    ("too-large", {"a.yaml": queue("x").encode() + b"#" * (MAX_FILE_BYTES + 1)},
     f"a.yaml:1: file is {len(queue('x')) + MAX_FILE_BYTES + 1} bytes, over the"),
    ("empty-file", {"a.yaml": b""}, "a.yaml:1: the file holds no document"),
    ("comments-only", {"a.yaml": b"# nothing here\n---\n"}, "a.yaml:1: the file holds no document"),
    ("empty-next-to-valid", {"a.yaml": queue("x").encode(), "b.yaml": b"\n"}, "b.yaml:1: the file holds no"),
    ("not-utf8-line-6", {"a.yaml": queue("x", "\n  delaySeconds: 1\n  # caf\xe9\n").encode("latin-1")},
     "a.yaml:7: not UTF-8: byte 0xe9 at column 8"),
    ("wrong-kind-reference", {"a.yaml": (f"{HEADER}kind: Topic\nmetadata:\n  name: d\nspec: {{}}\n---\n" +
                                         queue("x", "\n  deadLetter:\n    queueRef: d")).encode()},
     "a.yaml:13: spec.deadLetter.queueRef: expects a Queue, but 'd' is defined as Topic/d (at "),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "apply"])
def test_spec_limits_bad_input_fails_fast_offline_with_file_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline_calls: object, ctl: Ctl,
    files: dict[str, bytes], expected: str, command: str,
) -> None:
    root = tmp_path / "m"
    root.mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    code, out, err = ctl(command, "-f", "m")
    assert code == 2, out + err
    assert expected in err.replace("m/", ""), err
    assert ":0:" not in err
    assert offline_calls.calls == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("argv", "expected"), [
    (["-f", "missing-dir"], "error: -f missing-dir: no such file or directory"),
    (["-f", "m", "--env", "prod"], "error: --env: must be one of local, staging, production (got 'prod')"),
    (["-f", "m"], "error: -f m: no manifest files found (*.yaml, *.yml)"),
])
def test_spec_errors_without_a_line_have_no_zero_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline_calls: object, ctl: Ctl, argv: list[str], expected: str
) -> None:
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, err = ctl("validate", *argv)
    assert code == 2 and expected in err and ":0:" not in err, err
