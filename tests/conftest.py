"""Fixtures for every test directory.  Plain helpers live in modules, not here: tests/support.py
(wait_for, free_port), tests/ogfs/ogfsrun.py (the ogfs commands as a node runs them),
tests/lab/labrunner.py (labctl as a user runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Re-exported for anything still written `from conftest import wait_for`; import it from support.
from support import wait_for  # noqa: F401


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A regular file to hold a filesystem: enough for code that only needs a device to read."""
    p = tmp_path / "ogfs.img"
    with open(p, "wb") as f:
        f.truncate(128 << 20)
    return p
