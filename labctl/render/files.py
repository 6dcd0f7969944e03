"""Rendered files and where they go: a directory tree (``labctl render --out``) or a tar stream."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class RenderedFile:
    """One file for a container: absolute ``path`` inside it, text ``content``, permission ``mode``."""

    path: str
    content: str
    mode: int = 0o644

    def __post_init__(self) -> None:
        pure = PurePosixPath(self.path)
        if not pure.is_absolute() or ".." in pure.parts:
            raise ValueError(f"rendered file path must be absolute, without '..': {self.path!r}")

    @property
    def data(self) -> bytes:
        return self.content.encode("utf-8")


Files = Mapping[str, RenderedFile]


def write_tree(files: Files, out_dir: str | Path) -> list[Path]:
    """Write ``files`` under ``out_dir`` (``/etc/hosts`` -> ``out_dir/etc/hosts``), with their modes."""
    root = Path(out_dir)
    written: list[Path] = []
    for file in files.values():
        dest = root.joinpath(*PurePosixPath(file.path).parts[1:])
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            dest.chmod(0o600)  # so a previous read-only render does not stop the rewrite
        dest.write_text(file.content, encoding="utf-8")
        dest.chmod(file.mode)
        written.append(dest)
    return written


def write_lab(rendered: Mapping[str, Files], out_dir: str | Path) -> list[Path]:
    """Write a whole lab: one subdirectory per host (``out_dir/<host>/etc/...``)."""
    written: list[Path] = []
    for host, files in rendered.items():
        written += write_tree(files, Path(out_dir) / host)
    return written


def tar_bytes(files: Files, mtime: float | None = None) -> bytes:
    """A tar stream of ``files`` (owner root, their modes), for Docker's put_archive at path ``/``.

    Keeps authkeys at 0600 inside the container (heartbeat refuses a readable one), which a bind
    mount of a host file might not.
    """
    buffer = io.BytesIO()
    stamp = time.time() if mtime is None else mtime
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in files.values():
            info = tarfile.TarInfo(file.path.lstrip("/"))
            data = file.data
            info.size = len(data)
            info.mode = file.mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = int(stamp)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
