"""Read YAML (or JSON) files into plain documents that remember the line of every key.

Called by `controller.specs.loader`. PyYAML's composer gives each node its start mark; we build the Python
value ourselves from the node tree so that every path (``("spec", "visibilityTimeout")``) maps to the
``file:line`` of its key. Errors (bad YAML, duplicate keys) are collected as ``file:line: message`` strings.

Reading is bounded, so one hostile or mistaken file cannot exhaust memory: a file larger than `MAX_FILE_BYTES`
is refused before it is read; a document that expands (through aliases) to more than `MAX_NODES` values, nests
deeper than `MAX_DEPTH` or uses more than `MAX_ALIASES` aliases stops at once with the line where the limit
was reached (the "billion laughs" alias bomb fails in milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.model import Source

Path_ = tuple[str | int, ...]
# libyaml when PyYAML was built with it (about 10x faster, same marks and errors); the pure-Python one otherwise.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_FILE_BYTES = 2 * 1024 * 1024  # the whole stack's manifests are ~50 KB; AWS's largest document is 1 MB
MAX_NODES = 20_000  # values in one document after alias expansion (the whole stack has about 2,000)
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_ALIASES = 100  # alias uses (*name) in one document


class LimitExceeded(Exception):
    """A document is over one of the loader's limits; the message names the limit and the line."""


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
        self._nodes = 0
        self._aliases = 0
        self._seen: set[int] = set()

    def _count(self, node: yaml.Node, path: Path_) -> None:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise LimitExceeded(f"{self.at(node)}: the document expands to more than {MAX_NODES} values "
                                "(an alias bomb?): write the values out, without aliases")
        if len(path) > MAX_DEPTH:
            raise LimitExceeded(f"{self.at(node)}: {_dotted(path)}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self._seen:
                self._aliases += 1
                if self._aliases > MAX_ALIASES:
                    raise LimitExceeded(f"{self.at(node)}: more than {MAX_ALIASES} alias uses in one document (an "
                                        "alias bomb?): write the values out")
            self._seen.add(id(node))

    def at(self, node: yaml.Node) -> Source:
        return Source(file=self.file, line=node.start_mark.line + 1, directory=self.directory)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self._count(node, path)
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
    text = _read_text(path, display, problems)
    if text is None:
        return []
    documents: list[RawDocument] = []
    try:
        _check_events(text, display)
        for node in yaml.compose_all(text, Loader=_LOADER):
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")
                                and node.value in ("", "~", "null")):
                continue  # an empty document ("---" with nothing after it)
            builder = _Builder(display, problems, str(path.resolve().parent))
            data = builder.build(node, ())
            documents.append(RawDocument(data, builder.at(node), builder.lines))
    except LimitExceeded as exc:
        problems.append(str(exc))
    except RecursionError:
        problems.append(f"{display}:1: invalid YAML: nested too deeply to read (more than {MAX_DEPTH} levels)")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.append(f"{display}:{line}: invalid YAML: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        problems.append(f"{display}:1: invalid YAML: {exc}")
    return documents


def _read_text(path: Path, display: str, problems: list[str]) -> str | None:
    """The file as UTF-8 text, or None with a problem: too large, unreadable, or not UTF-8 (at its real line)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.append(f"{display}:1: file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit of a manifest "
                            "file: split it")
            return None
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(f"{display}:1: cannot read file: {exc.strerror or exc}")
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        problems.append(f"{display}:{line}: not UTF-8: byte 0x{raw[exc.start]:02x} at column {column}; save the "
                        "file as UTF-8")
        return None


def _check_events(text: str, display: str) -> None:
    """Stream the parser's events (nothing is built) and stop at the first document over a limit."""
    nodes = depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.DocumentStartEvent):
            nodes = depth = 0
        elif isinstance(event, yaml.NodeEvent):
            nodes += 1
            line = event.start_mark.line + 1 if event.start_mark is not None else 1
            if nodes > MAX_NODES:
                raise LimitExceeded(f"{display}:{line}: the document expands to more than "
                                    f"{MAX_NODES} values: split it")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise LimitExceeded(f"{display}:{line}: nested deeper than {MAX_DEPTH} "
                                        "levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
