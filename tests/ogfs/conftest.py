"""Fixtures of the ogfs tests: a loop device, and an ogfs filesystem mounted on one (root, FUSE)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ogfsrun import LoopDevice, Mount, ogfs_cmd


@pytest.fixture
def loopdev(tmp_path: Path) -> Iterator[LoopDevice]:
    dev = LoopDevice(tmp_path / "disk.img", 512 << 20)
    try:
        yield dev
    finally:
        dev.detach()


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
