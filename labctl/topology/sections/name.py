"""The ``name`` key: the lab name (Docker object names derive from it), by default the file's name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labctl.topology.model import lab_name_problem
from labctl.topology.problems import Checker, attempt


def read_lab_name(c: Checker, data: Mapping[str, Any], path: Path) -> str | None:
    """``data``'s ``name``, or else ``path``'s stem (``two-node.yaml`` -> ``two-node``)."""
    if data.get("name") is None:
        name = path.stem
        problem = lab_name_problem(name)
        if problem:
            c.error("name", f"{problem}; the file name does not make a lab name, so give a name: key", name)
            return None
        return name
    given = attempt(lambda: c.string("name", data["name"]))
    if given is not None and (problem := lab_name_problem(given)):
        c.error("name", problem, given)
        return None
    return given
