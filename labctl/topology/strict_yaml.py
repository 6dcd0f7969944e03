"""Read a topology file's text and parse it as YAML strictly: a duplicated key is an error.

PyYAML's SafeLoader silently keeps the last of two equal keys, so a second ``ip:`` would quietly win;
here it is refused with both line numbers. Tabs used as indentation are refused by PyYAML's scanner
itself (YAML forbids them); either way the message is ``<file>:<line>:<column>: invalid YAML: ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from labctl.errors import TopologyError


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key: SafeLoader reports it below
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first given on line {first})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, shown: str) -> Any:
    """The YAML document in ``text``; ``TopologyError`` naming ``shown``, line and column if it is not."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else shown
        what = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise TopologyError(f"{where}: invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{shown}: invalid YAML: {exc}") from None


def read_text(path: Path, shown: str) -> str:
    """The file's text as UTF-8; ``TopologyError`` naming ``shown`` if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise TopologyError(f"{shown}: not a file") from None
    except UnicodeDecodeError as exc:
        raise TopologyError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TopologyError(f"{shown}: cannot read: {exc.strerror}") from None
