"""Shared fixtures.

The ogfs commands are run as they run on a node: Debian's /usr/bin/python3 (which has
python3-pyfuse3), with only this repository's `ogfs` package importable.  Loop devices and FUSE
mounts need root; tests that use them carry the `slow` marker.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_for  # noqa: F401  (re-exported until every test imports support)

ROOT = Path(__file__).resolve().parents[1]
SBIN = ROOT / "ogfs" / "sbin"
NODE_PYTHON = "/usr/bin/python3"
NODE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"}


def ogfs_cmd(name: str, *args: object, check: bool = False, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one of the ogfs commands (mkfs.ogfs, mount.ogfs, ...) the way a node runs it."""
    res = subprocess.run([NODE_PYTHON, str(SBIN / name), *map(str, args)], env={**NODE_ENV, **(env or {})},
                         capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in res.stderr, res.stderr
    if check and res.returncode != 0:
        raise AssertionError(f"{name} {args} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


class LoopDevice:
    """A sparse file attached to a loop device; detached at teardown."""

    def __init__(self, backing: Path, size: int) -> None:
        with open(backing, "wb") as f:
            f.truncate(size)
        self.backing = backing
        self.path = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True,
                                   capture_output=True, text=True).stdout.strip()

    def detach(self) -> None:
        subprocess.run(["losetup", "-d", self.path], check=False)

    def __str__(self) -> str:
        return self.path


@pytest.fixture
def loopdev(tmp_path: Path) -> Iterator[LoopDevice]:
    dev = LoopDevice(tmp_path / "disk.img", 512 << 20)
    try:
        yield dev
    finally:
        dev.detach()


class Mount:
    """An ogfs filesystem mounted with the real mount.ogfs, unmounted with umount.fuse.ogfs."""

    def __init__(self, device: str, path: Path, options: str = "lockproto=nolock") -> None:
        self.device, self.path, self.options = device, path, options

    def mount(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return ogfs_cmd("mount.ogfs", self.device, self.path, "-o", self.options, check=True, env=env)

    def umount(self) -> subprocess.CompletedProcess[str]:
        return ogfs_cmd("umount.fuse.ogfs", self.path, check=True)

    def is_mounted(self) -> bool:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == str(self.path) for line in f)

    def force_detach(self) -> None:
        """After the daemon died: drop the dead FUSE connection."""
        if self.is_mounted():
            subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def mounted(loopdev: LoopDevice, tmp_path: Path) -> Iterator[Mount]:
    ogfs_cmd("mkfs.ogfs", "-p", "nolock", "-j", "2", "-J", "8", "-q", loopdev, check=True)
    mnt = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    m = Mount(loopdev.path, mnt)
    m.mount()
    try:
        yield m
    finally:
        if m.is_mounted():
            res = ogfs_cmd("umount.fuse.ogfs", mnt)
            if res.returncode != 0:
                m.force_detach()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A regular file to hold a filesystem: enough for code that only needs a device to read."""
    p = tmp_path / "ogfs.img"
    with open(p, "wb") as f:
        f.truncate(128 << 20)
    return p


def require_root() -> None:
    assert os.geteuid() == 0, "these tests need root (loop devices, FUSE mounts)"
