"""The ogfs commands as an operator meets them: mkfs.ogfs, mount.ogfs, umount.fuse.ogfs,
fsck.ogfs and ogfs_tool, on loop devices, with their messages and exit codes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
from ogfsrun import ROOT, LoopDevice, Mount, ogfs_cmd

from ogfs import layout
from ogfs.blockdev import Device
from ogfs.inode import Inode

pytestmark = pytest.mark.slow

SEED_CF = ROOT / "tests" / "data" / "ogfscf.cf"


def mkfs(dev: object, *extra: str) -> None:
    ogfs_cmd("mkfs.ogfs", "-p", "nolock", "-j", "2", "-J", "8", "-O", "-q", *extra, dev, check=True)


# -- mkfs.ogfs ---------------------------------------------------------------------------------

def test_mkfs_refuses_an_existing_filesystem_unless_forced(loopdev: LoopDevice) -> None:
    mkfs(loopdev)
    res = ogfs_cmd("mkfs.ogfs", "-p", "nolock", loopdev)
    assert res.returncode == 1
    assert "already holds an ogfs filesystem; use -O" in res.stderr


def test_mkfs_refuses_a_small_device(tmp_path: Path) -> None:
    small = LoopDevice(tmp_path / "small.img", 40 << 20)
    try:
        res = ogfs_cmd("mkfs.ogfs", "-p", "nolock", "-j", "2", "-J", "32", small)
        assert res.returncode == 1
        assert "need at least" in res.stderr and "-j, -J" in res.stderr
    finally:
        small.detach()


def test_mkfs_prints_the_layout(loopdev: LoopDevice) -> None:
    res = ogfs_cmd("mkfs.ogfs", "-p", "memexp", "-t", "/dev/sda1", "-j", "3", "-J", "8", loopdev, check=True)
    assert "Locking Protocol:          memexp" in res.stdout
    assert "Lock Table:                /dev/sda1" in res.stdout
    sb = json.loads(ogfs_cmd("ogfs_tool", "getsb", loopdev, "--json", check=True).stdout)
    assert (sb["lockproto"], sb["locktable"], len(sb["journals"])) == ("memexp", "/dev/sda1", 3)


# -- mount.ogfs and umount.fuse.ogfs -----------------------------------------------------------

def test_mount_errors_and_exit_codes(loopdev: LoopDevice, tmp_path: Path) -> None:
    mnt = tmp_path / "m"
    mnt.mkdir()
    res = ogfs_cmd("mount.ogfs", loopdev, mnt, "-o", "lockproto=nolock")
    assert res.returncode == 32 and "no ogfs filesystem" in res.stderr  # not made yet
    mkfs(loopdev)
    res = ogfs_cmd("mount.ogfs", loopdev, mnt, "-o", "lockproto=nolock,bogus=1")
    assert res.returncode == 1 and "unknown option 'bogus=1'" in res.stderr
    res = ogfs_cmd("mount.ogfs", "/dev/nonexistent", mnt, "-o", "lockproto=nolock")
    assert res.returncode == 32 and "no such device" in res.stderr
    res = ogfs_cmd("mount.ogfs", loopdev, tmp_path / "nodir", "-o", "lockproto=nolock")
    assert res.returncode == 32 and "not a directory" in res.stderr
    res = ogfs_cmd("mount.ogfs", loopdev, mnt, "-o", "lockproto=nolock,jid=7")
    assert res.returncode == 32 and "no journal 7" in res.stderr
    m = Mount(loopdev.path, mnt)
    m.mount()
    try:
        res = ogfs_cmd("mount.ogfs", loopdev, mnt, "-o", "lockproto=nolock")
        assert res.returncode == 32 and "already mounted" in res.stderr
    finally:
        m.umount()


def test_hostdata_selects_the_nodes_journal(loopdev: LoopDevice, tmp_path: Path) -> None:
    cidev = LoopDevice(tmp_path / "cidev.img", 4 << 20)
    try:
        ogfs_cmd("ogfsconf", "-c", SEED_CF, "-d", cidev, check=True)
        mkfs(loopdev, "-t", cidev.path)
        mnt = tmp_path / "m"
        mnt.mkdir()
        m = Mount(loopdev.path, mnt, "lockproto=nolock,hostdata=192.168.1.2")
        m.mount()
        df = json.loads(ogfs_cmd("ogfs_tool", "df", mnt, "--json", check=True).stdout)
        assert df["mounted_host_data"] == "jid=1:hostdata=192.168.1.2"
        (mnt / "f").write_bytes(b"x")
        m.umount()
        res = ogfs_cmd("mount.ogfs", loopdev, mnt, "-o", "lockproto=nolock,hostdata=10.9.9.9")
        assert res.returncode == 32
        assert "hostdata=10.9.9.9 is not a node" in res.stderr and "192.168.1.1" in res.stderr
    finally:
        cidev.detach()


def test_umount_returns_with_the_journal_clean(mounted: Mount) -> None:
    for i in range(200):
        (mounted.path / f"f{i}").write_bytes(b"data" * 100)
    journals = json.loads(ogfs_cmd("ogfs_tool", "journals", mounted.device, "--json", check=True).stdout)
    assert journals[0]["state"] == "dirty"  # mounted: dirty until a clean unmount
    mounted.umount()
    assert not mounted.is_mounted()
    journals = json.loads(ogfs_cmd("ogfs_tool", "journals", mounted.device, "--json", check=True).stdout)
    assert [j["state"] for j in journals] == ["clean", "clean"]


def test_read_only_mount(mounted: Mount) -> None:
    (mounted.path / "f").write_bytes(b"keep")
    mounted.umount()
    mounted.options = "lockproto=nolock,ro"
    mounted.mount()
    assert (mounted.path / "f").read_bytes() == b"keep"
    with pytest.raises(OSError) as e:
        (mounted.path / "g").write_bytes(b"no")
    assert e.value.errno == errno.EROFS


def test_ogfs_tool_df_and_counters(mounted: Mount) -> None:
    (mounted.path / "f").write_bytes(b"z" * (1 << 20))
    df = ogfs_cmd("ogfs_tool", "df", mounted.path, check=True).stdout
    assert 'SB lock proto = "nolock"' in df and "Journals = 2" in df
    counters = json.loads(ogfs_cmd("ogfs_tool", "counters", mounted.path, "--json", check=True).stdout)
    assert counters["ops"] > 0 and counters["blocks_allocated"] >= 256
    res = ogfs_cmd("ogfs_tool", "counters", "/nonexistent")
    assert res.returncode == 1 and "no such device or mount point" in res.stderr


# -- fsck.ogfs ----------------------------------------------------------------------------------

def _populate(m: Mount) -> None:
    (m.path / "d").mkdir()
    for i in range(30):
        (m.path / "d" / f"f{i}").write_bytes(os.urandom(5000 * i))
    os.link(m.path / "d" / "f1", m.path / "hard")
    m.umount()


def _corrupt_bitmap(dev_path: str) -> None:
    """Mark one free block used, with a valid checksum: only a cross-check can see it."""
    dev = Device(dev_path)
    sb = layout.Superblock.unpack(dev.read(layout.SB_BLOCK))
    e = layout.unpack_rindex([dev.read(sb.rindex_start)], sb.rgrp_count)[-1]
    gen, free, dinodes, unlinked, bm = layout.unpack_rgrp(dev.read(e.header))
    layout.bitmap_set(bm, e.data_count - 1, layout.USED)
    dev.write(e.header, layout.pack_rgrp(free, dinodes, unlinked, bm[:(e.data_count + 3) // 4], gen + 1, 0))
    dev.close()


def _corrupt_nlink(dev_path: str, m: Mount) -> None:
    dev = Device(dev_path)
    sb = layout.Superblock.unpack(dev.read(layout.SB_BLOCK))
    root, _, _ = Inode.unpack(sb.root, dev.read(sb.root))
    root.nlink = 9
    dev.write(sb.root, root.pack(0))
    dev.close()


def test_fsck_finds_and_repairs_a_bitmap_error(mounted: Mount) -> None:
    _populate(mounted)
    assert ogfs_cmd("fsck.ogfs", "-n", mounted.device).returncode == 0
    _corrupt_bitmap(mounted.device)
    res = ogfs_cmd("fsck.ogfs", "-n", mounted.device)
    assert res.returncode == 4
    assert "bitmap says used, the tree says free" in res.stdout
    res = ogfs_cmd("fsck.ogfs", "-y", mounted.device)
    assert res.returncode == 1 and "fixed:" in res.stdout
    assert ogfs_cmd("fsck.ogfs", "-n", mounted.device).returncode == 0


def test_fsck_finds_and_repairs_a_link_count(mounted: Mount) -> None:
    _populate(mounted)
    _corrupt_nlink(mounted.device, mounted)
    res = ogfs_cmd("fsck.ogfs", "-n", mounted.device)
    assert res.returncode == 4 and "link count 9, should be 3" in res.stdout
    assert ogfs_cmd("fsck.ogfs", "-y", mounted.device).returncode == 1
    assert ogfs_cmd("fsck.ogfs", "-n", mounted.device).returncode == 0


def test_fsck_preen_is_read_only_and_safe_while_mounted(mounted: Mount) -> None:
    (mounted.path / "f").write_bytes(b"1" * 100000)
    with open(mounted.device, "rb") as f:
        before = hashlib.sha256(f.read(64 << 20)).hexdigest()
    res = ogfs_cmd("fsck.ogfs", "-p", mounted.device)
    assert res.returncode == 0, res.stdout
    with open(mounted.device, "rb") as f:
        assert hashlib.sha256(f.read(64 << 20)).hexdigest() == before


def test_fsck_preen_rejects_garbage(loopdev: LoopDevice) -> None:
    res = ogfs_cmd("fsck.ogfs", "-p", loopdev)
    assert res.returncode == 4 and "superblock" in res.stdout
    res = ogfs_cmd("fsck.ogfs", "-p", "/dev/nonexistent")
    assert res.returncode == 8
