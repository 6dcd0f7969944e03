"""The programs labctl copies into hosts (``labctl/runtime/assets/``), read as package data.

They are files a host gets like any rendered one, so render/ hands them out; nothing here talks to
Docker.
"""

from __future__ import annotations

from importlib import resources

from labctl.render.files import RenderedFile


def asset_bytes(name: str) -> bytes:
    return resources.files("labctl").joinpath("runtime", "assets", name).read_bytes()


def program(name: str, path: str) -> RenderedFile:
    """The asset ``name`` as an executable file at ``path`` in a host."""
    return RenderedFile(path, asset_bytes(name).decode("utf-8"), 0o755)
