"""Fixtures of the ogfs tests: a loop device, and an ogfs filesystem mounted on one (root, FUSE)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ogfsrun import LoopDevice, Mount, ogfs_cmd, tear_down_mounts_under


@pytest.fixture
def loopdev(tmp_path: Path) -> Iterator[LoopDevice]:
    dev = LoopDevice(tmp_path / "disk.img", 512 << 20)
    try:
        yield dev
    finally:
        tear_down_mounts_under(tmp_path)  # no daemon may outlive the device it writes to
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
        m.tear_down()
