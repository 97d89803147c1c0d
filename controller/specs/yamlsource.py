"""Read YAML (or JSON) files into plain documents that remember the line of every key.

Called by `controller.specs.loader`. PyYAML's composer gives each node its start mark; we build the Python
value ourselves from the node tree so that every path (``("spec", "visibilityTimeout")``) maps to the
``file:line`` of its key. Errors (bad YAML, duplicate keys) are collected as ``file:line: message`` strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.model import Source

Path_ = tuple[str | int, ...]


@dataclass
class RawDocument:
    """One YAML document before validation, with a line for each path inside it."""

    data: Any
    source: Source
    lines: dict[Path_, Source] = field(default_factory=dict)

    def where(self, path: Path_) -> Source:
        """The most specific known location of ``path`` (the key itself, else its nearest parent)."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.source


class _Builder:
    def __init__(self, file: str, problems: list[str], directory: str = "") -> None:
        self.file = file
        self.directory = directory
        self.problems = problems
        self.lines: dict[Path_, Source] = {}
        self._scalars = yaml.SafeLoader("")

    def at(self, node: yaml.Node) -> Source:
        return Source(file=self.file, line=node.start_mark.line + 1, directory=self.directory)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            out = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = self.at(item)
                out.append(self.build(item, (*path, index)))
            return out
        return self._scalars.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._scalars.construct_object(key_node, deep=True)
            where = self.at(key_node)
            if key == "<<" or not isinstance(key, str | int | float | bool):
                self.problems.append(f"{where}: {_dotted(path) or '<document>'}: unsupported key {key!r}")
                continue
            name = str(key)
            if name in out:
                first = self.lines[(*path, name)]
                self.problems.append(
                    f"{where}: {_dotted((*path, name))}: duplicate key (first at line {first.line})"
                )
                continue
            self.lines[(*path, name)] = where
            out[name] = self.build(value_node, (*path, name))
        return out


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


dotted = _dotted


def read_documents(path: Path, display: str, problems: list[str]) -> list[RawDocument]:
    """Every non-empty document in one file. YAML errors are appended to ``problems`` as file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{display}:1: cannot read file: {exc}")
        return []
    documents: list[RawDocument] = []
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if node is None:
                continue
            builder = _Builder(display, problems, str(path.resolve().parent))
            data = builder.build(node, ())
            documents.append(RawDocument(data, builder.at(node), builder.lines))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.append(f"{display}:{line}: invalid YAML: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        problems.append(f"{display}:1: invalid YAML: {exc}")
    return documents
