"""A small, deterministic YAML writer with comments and anchors, for files people read (compose files).

PyYAML writes no comments and quotes multi-line strings, so a compose file made with it explains
nothing and shows scripts as one escaped line. This writer emits block mappings and lists, plain
scalars where PyYAML reads them back unchanged (else JSON double quotes, which YAML reads), literal
blocks (``|``) for multi-line text, ``# comments`` before a key (``Note``), and anchors and aliases
(``Anchor``, ``Alias``). ``dump`` checks its own output: it parses back to the same data, or it
raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

INDENT = 2
FLOW_WIDTH = 100  # a list of short scalars fits on one line up to this width: [NET_ADMIN, NET_RAW]


@dataclass(frozen=True)
class Note:
    """``value`` with comment lines written above its key."""

    value: Any
    comment: str


@dataclass(frozen=True)
class Anchor:
    """``value`` anchored as ``&name`` (reused elsewhere with ``Alias(name)``)."""

    name: str
    value: Any


@dataclass(frozen=True)
class Alias:
    name: str


def plain(value: Any) -> Any:
    """The data without notes and anchors, aliases resolved: what a YAML parser reads back."""
    anchors: dict[str, Any] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, Note):
            return walk(v.value)
        if isinstance(v, Anchor):
            anchors[v.name] = walk(v.value)
            return anchors[v.name]
        if isinstance(v, Alias):
            return anchors[v.name]
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value)


def _reads_back(text: str, value: Any) -> bool:
    try:
        return bool(yaml.safe_load(text) == value)
    except yaml.YAMLError:
        return False


def scalar(value: Any, flow: bool = False) -> str:
    """One line: plain when that reads back as the same value, else JSON's double quotes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"cannot write {type(value).__name__} {value!r}")
    if value and "\n" not in value and value.strip() == value and not value.startswith(("*", "&", "!", "%")):
        probe = f"[{value}]" if flow else f"k: {value}"
        wanted = [value] if flow else {"k": value}
        if _reads_back(probe, wanted):
            return value
    return json.dumps(value)


def _block(value: str, indent: int) -> list[str] | None:
    """A literal block (``|``, ``|-``) for multi-line text, or None when one would not read back."""
    if "\n" not in value.rstrip("\n") or value.startswith((" ", "\n")):
        return None
    body = value[:-1] if value.endswith("\n") else value
    if body.endswith("\n") or any(line != line.rstrip() for line in body.split("\n")):
        return None
    head = "|" if value.endswith("\n") else "|-"
    pad = " " * indent
    lines = [head] + [pad + line if line else "" for line in body.split("\n")]
    return lines if _reads_back("k: " + "\n".join(lines) + "\n", {"k": value}) else None


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (str, int, bool)) and not (isinstance(v, str) and "\n" in v)


def _mapping(m: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for key, value in m.items():
        if isinstance(value, Note):
            out += [f"{pad}# {line}".rstrip() for line in value.comment.splitlines()]
            value = value.value
        anchor = ""
        if isinstance(value, Anchor):
            anchor = f" &{value.name}"
            value = value.value
        k = scalar(key)
        out += _entry(f"{pad}{k}:{anchor}", value, indent)
    return out


def _entry(head: str, value: Any, indent: int) -> list[str]:
    """``head`` (``key:`` or ``-``) followed by ``value``, nested at ``indent + INDENT``."""
    inner = indent + INDENT
    if isinstance(value, Alias):
        return [f"{head} *{value.name}"]
    if isinstance(value, Mapping):
        if not value:
            return [f"{head} {{}}"]
        return [head, *_mapping(value, inner)]
    if isinstance(value, (list, tuple)):
        if not value:
            return [f"{head} []"]
        if all(_is_scalar(v) for v in value):
            flow = "[" + ", ".join(scalar(v, flow=True) for v in value) + "]"
            if len(head) + 1 + len(flow) <= FLOW_WIDTH:
                return [f"{head} {flow}"]
        return [head, *_sequence(value, inner)]
    if isinstance(value, str) and "\n" in value:
        block = _block(value, inner)
        if block is not None:
            return [f"{head} {block[0]}", *block[1:]]
    return [f"{head} {scalar(value)}"]


def _sequence(items: Sequence[Any], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for item in items:
        if isinstance(item, Mapping) and item:
            lines = _mapping(item, indent + INDENT)
            out.append(f"{pad}- {lines[0].lstrip()}")
            out += lines[1:]
        else:
            out += _entry(f"{pad}-", item, indent)
    return out


def dump(data: Mapping[str, Any], header: str = "", gap: bool = True) -> str:
    """The document: ``header`` as comment lines, then ``data``; top-level keys apart by a blank line."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for key, value in data.items():
        if lines and gap:
            lines.append("")
        lines += _mapping({key: value}, 0)
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != plain(data):
        raise ValueError("the YAML written does not read back as the data (a bug in labctl/export/yamltext)")
    return text
