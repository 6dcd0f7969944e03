"""Where topologies live: the directories searched for a topology name, and a name or path -> its file."""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

from labctl.errors import TopologyError


def topology_dirs() -> list[Path]:
    """Directories searched for topology names, first match wins.

    ``$LABCTL_TOPOLOGIES`` (a path list) first; then ``<package>/../topologies`` (a source checkout or an
    editable install); then ``<package>/data/topologies`` (package data, if a release ships them inside
    the package); then ``<prefix>/share/labctl/topologies`` (data files of an installed wheel), and the
    same directory wherever the installer put the wheel's data files (``pip install --user``: found
    through the distribution's file list, ``installed_data_dir``).
    """
    dirs: list[Path] = []
    env = os.environ.get("LABCTL_TOPOLOGIES", "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    package = Path(__file__).resolve().parent.parent
    dirs.append(package.parent / "topologies")
    dirs.append(package / "data" / "topologies")
    dirs.append(Path(sys.prefix) / "share" / "labctl" / "topologies")
    data = installed_data_dir()
    if data is not None and data / "topologies" not in dirs:
        dirs.append(data / "topologies")
    return dirs


def installed_data_dir() -> Path | None:
    """``<data>/share/labctl`` of an installed (non-editable) labctl: where pyproject's data-files
    (``images/``, ``topologies/``) went, read from the distribution's file list. None otherwise."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("labctl")
    except PackageNotFoundError:
        return None
    for entry in dist.files or ():
        parts = entry.parts
        for i in range(len(parts) - 1):
            if parts[i] == "share" and parts[i + 1] == "labctl":
                located = Path(str(dist.locate_file(entry))).resolve()
                depth = len(parts) - (i + 2)
                return located.parents[depth - 1] if depth > 0 else located
    return None


def topologies_dir() -> Path:
    """The first existing directory of ``topology_dirs()`` (the source checkout's if none exists)."""
    dirs = topology_dirs()
    checkout = Path(__file__).resolve().parent.parent.parent / "topologies"
    return next((d for d in dirs if d.is_dir()), checkout)


def available_topologies() -> dict[str, Path]:
    """Topology names that ``load_topology`` accepts, with their files, sorted by name."""
    found: dict[str, Path] = {}
    for directory in topology_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def looks_like_path(ref: str) -> bool:
    """Whether ``ref`` names a file rather than a packaged topology (``labctl up ./lab.yaml``)."""
    return "/" in ref or os.sep in ref or ref.endswith((".yaml", ".yml")) or ref.startswith(".")


def resolve_topology(ref: str) -> Path:
    """The file for ``ref``: a path to a file, or the name of a packaged topology."""
    if not ref:
        raise TopologyError("topology: no topology given (a name such as 'two-node' or a path to a file)")
    if looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.exists():
            raise TopologyError(f"{ref}: no such file")
        if not path.is_file():
            raise TopologyError(f"{ref}: not a file")
        return path
    names = available_topologies()
    if ref in names:
        return names[ref]
    if Path(ref).is_file():
        return Path(ref)
    known = ", ".join(names) or "none found"
    close = difflib.get_close_matches(ref, list(names), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    searched = ", ".join(str(d) for d in topology_dirs())
    raise TopologyError(
        f"{ref}: no topology of that name{hint} (known: {known}; searched {searched}; "
        "a path to a .yaml file also works)"
    )
