"""ogfs on-disk structures, the journal and the filesystem core, on a plain image file.

No FUSE and no root here: the core takes any file as its device.  tests/ogfs/ mounts the same
code for real on loop devices.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ogfs import journal, layout
from ogfs.blockdev import Device
from ogfs.fs import Filesystem, FsError, MountError, Options
from ogfs.inode import Dir, Inode
from ogfs.mkfs import MkfsError, mkfs, plan


def make(image: Path, journals: int = 2, journal_mb: int = 4) -> Path:
    mkfs(str(image), "nolock", "", journals, journal_mb, 64, force=True)
    return image


def fresh(image: Path, **kw: object) -> Filesystem:
    return Filesystem(str(image), Options(**kw))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Structures round-trip
# ---------------------------------------------------------------------------------------------

def test_superblock_round_trip() -> None:
    sb = layout.Superblock(12345, os.urandom(16), "memexp", "/dev/sda1", 4242, 17, 1, 3,
                           [layout.Journal(18, 1024), layout.Journal(1042, 1024)])
    assert layout.Superblock.unpack(sb.pack()) == sb


def test_corrupt_block_is_detected() -> None:
    buf = layout.Superblock(1, bytes(16), "nolock", "", 1, 1, 1, 1, []).pack()
    buf[100] ^= 1
    with pytest.raises(layout.CorruptBlock, match="checksum"):
        layout.Superblock.unpack(buf)


def test_rindex_round_trip_across_blocks() -> None:
    entries = [layout.RIndexEntry(100 + i * 10, 101 + i * 10, 9) for i in range(layout.RINDEX_PER_BLOCK + 5)]
    assert layout.unpack_rindex(layout.pack_rindex(entries), len(entries)) == entries


def test_rgrp_round_trip() -> None:
    bm = bytearray(os.urandom(100))
    gen, free, dinodes, unlinked, out = layout.unpack_rgrp(layout.pack_rgrp(5, 6, 7, bm, 9, 1))
    assert (gen, free, dinodes, unlinked) == (9, 5, 6, 7)
    assert out[:100] == bm


@given(st.lists(st.tuples(st.integers(0, 2**20), st.integers(1, 2**40), st.integers(1, 1000)),
                max_size=900))
@settings(max_examples=40, deadline=None)
def test_dinode_round_trip(extents: list[tuple[int, int, int]]) -> None:
    ino = Inode(5000, stat.S_IFREG | 0o640, 1, 2, 3, 77, 1, 2, 3, 0, 0, 17,
                xattrs={b"user.DOSATTRIB": b"0x20"})
    ino.stuffed = None
    ino.extents = sorted(extents)
    from ogfs.inode import ext_blocks_needed
    ino.ext_blocks = list(range(9000, 9000 + ext_blocks_needed(len(extents))))
    ino.ext_gens = [0] * len(ino.ext_blocks)
    img = ino.pack(0)
    back, _kind, indirect = Inode.unpack(5000, img)
    assert indirect == ino.ext_blocks
    for addr, blk in ino.pack_ext_blocks(0):
        back.extents += layout.unpack_ext_block(blk)[1]
        assert addr in ino.ext_blocks
    assert back.extents == ino.extents
    assert (back.mode, back.uid, back.gid, back.nlink, back.size, back.parent, back.xattrs) == \
        (ino.mode, 1, 2, 3, 77, 17, ino.xattrs)


def test_stuffed_dinode_round_trip() -> None:
    ino = Inode(77, stat.S_IFREG | 0o600, size=11)
    ino.stuffed = b"hello world"
    back, kind, _ = Inode.unpack(77, ino.pack(0))
    assert kind == layout.P_STUFFED and back.stuffed == b"hello world"


@given(st.dictionaries(st.binary(min_size=1, max_size=60).filter(lambda b: b"/" not in b),
                       st.tuples(st.integers(1, 2**63), st.integers(0, 15)), max_size=50))
def test_dir_block_round_trip(ents: dict[bytes, tuple[int, int]]) -> None:
    _gen, back = layout.unpack_dir_block(layout.pack_dir_block(ents, 3, 0))
    assert back == ents


def test_extent_map_merges_and_cuts() -> None:
    ino = Inode(1, stat.S_IFREG)
    ino.stuffed = None
    ino.add_extent(0, 100, 4)
    ino.add_extent(4, 104, 4)  # contiguous: merged
    ino.add_extent(10, 300, 2)
    assert ino.extents == [(0, 100, 8), (10, 300, 2)]
    assert ino.map(5) == (105, 3)
    assert ino.map(8) == (None, 2)
    assert ino.cut_extents(6) == [(106, 2), (300, 2)]
    assert ino.extents == [(0, 100, 6)]


def test_dir_finds_room_and_removes() -> None:
    d = Dir()
    d.add_block(50, 0, {})
    d.put(0, b"a", 7, 8)
    assert d.get(b"a") == (7, 8)
    assert d.remove(b"a") == 0 and d.get(b"a") is None and len(d) == 0


# ---------------------------------------------------------------------------------------------
# mkfs
# ---------------------------------------------------------------------------------------------

def test_plan_refuses_small_device() -> None:
    with pytest.raises(MkfsError, match="need at least"):
        plan(1000, 2, 32, 64)


def test_mkfs_refuses_existing_filesystem(image: Path) -> None:
    make(image)
    with pytest.raises(MkfsError, match="already holds an ogfs"):
        mkfs(str(image), "nolock", "", 1, 4, 64)
    mkfs(str(image), "nolock", "", 1, 4, 64, force=True)


def test_mkfs_memexp_needs_lock_table(image: Path) -> None:
    with pytest.raises(MkfsError, match="-t <cidev path>"):
        mkfs(str(image), "memexp", "", 2, 4, 64)


# ---------------------------------------------------------------------------------------------
# The journal
# ---------------------------------------------------------------------------------------------

def test_journal_commit_and_replay(image: Path) -> None:
    make(image)
    dev = Device(str(image))
    sb = layout.Superblock.unpack(dev.read(layout.SB_BLOCK))
    region = sb.journals[1]
    log = journal.Log(dev, region, 1, sb.uuid)
    seq, _ = log.read_head()
    log.write_head(seq, 0)
    target = sb.journals[1].start + region.length + 500  # some block in the data area
    images = [(target + i, bytes([(i + 1) % 256]) * layout.BLOCK) for i in range(journal.DESC_PER_BLOCK + 3)]
    log.commit(images[:3])
    log.commit(images[3:])  # needs two descriptor blocks
    assert journal.journal_state(dev, region, 1, sb.uuid) == ("dirty", 2)
    assert journal.replay(dev, region, 1, sb.uuid) == 2
    for blk, img in images:
        assert dev.read(blk) == img
    assert journal.journal_state(dev, region, 1, sb.uuid) == ("clean", 0)
    assert journal.replay(dev, region, 1, sb.uuid) == 0  # replay leaves it empty
    dev.close()


def test_torn_transaction_is_ignored(image: Path) -> None:
    make(image)
    dev = Device(str(image))
    sb = layout.Superblock.unpack(dev.read(layout.SB_BLOCK))
    region = sb.journals[0]
    log = journal.Log(dev, region, 0, sb.uuid)
    log.write_head(log.read_head()[0], 0)
    target = region.start + region.length * 3
    before = dev.read(target)
    log.commit([(target, b"\x01" * layout.BLOCK)])
    # Damage the image inside the committed transaction: the CRC no longer matches.
    dev.write(region.start + 2, b"\x02" * layout.BLOCK)
    assert journal.replay(dev, region, 0, sb.uuid) == 0
    assert dev.read(target) == before
    dev.close()


# ---------------------------------------------------------------------------------------------
# The filesystem core
# ---------------------------------------------------------------------------------------------

def test_files_survive_unmount_and_crash(image: Path) -> None:
    fs = fresh(make(image))
    r = fs.root
    a = fs.create(r, b"a", 0o644)
    fs.write(a.addr, 0, b"x" * 10000)
    d = fs.mkdir(r, b"d", 0o755)
    fs.symlink(d.addr, b"l", b"../a")
    fs.unmount()
    fs = fresh(image)
    assert fs.read(fs.lookup(r, b"a").addr, 0, 20000) == b"x" * 10000
    assert fs.readlink(fs.lookup(d.addr, b"l").addr) == b"../a"
    b = fs.create(r, b"b", 0o644)
    fs.write(b.addr, 0, b"fsynced")
    fs.fsync()
    fs.create(r, b"not-committed", 0o644)
    fs.dev.close()  # a crash: no unmount
    fs = fresh(image)
    assert fs.replayed == {0: 1}
    assert fs.read(fs.lookup(r, b"b").addr, 0, 100) == b"fsynced"
    with pytest.raises(FsError) as e:
        fs.lookup(r, b"not-committed")
    assert e.value.errno == errno.ENOENT
    fs.unmount()


def test_errnos(image: Path) -> None:
    fs = fresh(make(image))
    r = fs.root
    d = fs.mkdir(r, b"d", 0o755)
    f = fs.create(d.addr, b"f", 0o644)

    def err(fn, *args) -> int:  # type: ignore[no-untyped-def]
        with pytest.raises(FsError) as e:
            fn(*args)
        return e.value.errno

    assert err(fs.create, r, b"d", 0o644) == errno.EEXIST
    assert err(fs.rmdir, r, b"d") == errno.ENOTEMPTY
    assert err(fs.unlink, r, b"d") == errno.EISDIR
    assert err(fs.rmdir, d.addr, b"f") == errno.ENOTDIR
    assert err(fs.lookup, r, b"nope") == errno.ENOENT
    assert err(fs.create, r, b"x" * 256, 0o644) == errno.ENAMETOOLONG
    assert err(fs.rename, r, b"d", d.addr, b"inside") == errno.EINVAL
    assert err(fs.link, d.addr, r, b"dirlink") == errno.EPERM
    assert err(fs.getxattr, f.addr, b"user.none") == errno.ENODATA
    assert err(fs.setxattr, f.addr, b"trusted.x", b"1") == errno.EOPNOTSUPP
    assert err(fs.setxattr, f.addr, b"user.big", b"v" * 600) == errno.ENOSPC
    fs.unmount()


def test_enospc_then_space_comes_back(image: Path) -> None:
    fs = fresh(make(image, journals=1))
    f = fs.create(fs.root, b"fill", 0o644)
    chunk = b"z" * (1 << 20)
    off = 0
    with pytest.raises(FsError) as e:
        while True:
            n = fs.write(f.addr, off, chunk)
            off += n
    assert e.value.errno == errno.ENOSPC
    assert fs.inode(f.addr).size == off  # the last write was short, and the size says so
    fs.unlink(fs.root, b"fill")
    fs.after_op()  # as the daemon does after each request: sees the space waiting for a commit
    g = fs.create(fs.root, b"again", 0o644)
    fs.write(g.addr, 0, chunk * 8)  # freed blocks come back (after a checkpoint)
    fs.unmount()


def test_unlinked_open_inode_is_reclaimed_at_next_mount(image: Path) -> None:
    fs = fresh(make(image))
    f = fs.create(fs.root, b"tmp", 0o644)
    fs.write(f.addr, 0, b"q" * 100000)
    fs.ref(f.addr)  # held open by the kernel
    free_before = fs.statfs()["bfree"]
    fs.unlink(fs.root, b"tmp")
    assert fs.read(f.addr, 0, 5) == b"qqqqq"  # still readable while open
    fs.fsync()
    fs.dev.close()  # crash while it is open
    fs = fresh(image)
    assert fs.statfs()["bfree"] > free_before  # its blocks came back
    fs.unmount()


def test_readonly_mount_refuses_dirty_journal(image: Path) -> None:
    fs = fresh(make(image))
    fs.create(fs.root, b"a", 0o644)
    fs.fsync()
    fs.dev.close()
    with pytest.raises(MountError, match="mount read-write once"):
        fresh(image, readonly=True)


def test_missing_journal_is_a_mount_error(image: Path) -> None:
    make(image, journals=1)
    with pytest.raises(MountError, match="no journal 3"):
        fresh(image, jid=3)


def test_large_sparse_and_fragmented_files(image: Path) -> None:
    fs = fresh(make(image))
    f = fs.create(fs.root, b"sparse", 0o644)
    fs.write(f.addr, 5 << 30, b"end")
    assert fs.inode(f.addr).size == (5 << 30) + 3
    assert fs.read(f.addr, (5 << 30) - 2, 10) == b"\0\0end"
    g = fs.create(fs.root, b"frag", 0o644)
    for k in range(600):  # every other block: 600 extents, more than fit in the dinode
        fs.write(g.addr, 2 * k * layout.BLOCK, bytes([k % 251]) * 10)
    assert len(fs.inode(g.addr).ext_blocks) == 3
    fs.unmount()
    fs = fresh(image)
    g2 = fs.lookup(fs.root, b"frag")
    assert len(g2.extents) == 600
    assert fs.read(g2.addr, 2 * 599 * layout.BLOCK, 10) == bytes([599 % 251]) * 10
    fs.truncate(g2.addr, 10)
    assert fs.inode(g2.addr).ext_blocks == []
    fs.unmount()


def test_allocation_goal_past_the_last_resource_group(image: Path) -> None:
    """A file whose last block ends a resource group asks for a goal outside every group."""
    fs = fresh(make(image, journals=1))
    last = fs.alloc.rgrps[-1].entry
    goal = last.data_start + last.data_count  # one past the end
    start, n = fs.alloc.alloc(8, layout.USED, goal)
    assert n >= 1 and fs.alloc.rgrp_of(start)
    fs.unmount()


def test_mkfs_refuses_a_lock_table_too_long_for_the_superblock(image: Path) -> None:
    with pytest.raises(MkfsError, match="longer than 63 bytes"):
        mkfs(str(image), "memexp", "/dev/" + "x" * 70, 2, 4, 64)


def test_reserved_blocks_go_to_the_next_dinodes_and_nothing_else(image: Path) -> None:
    fs = fresh(make(image, journals=1))
    a = fs.alloc
    f = fs.create(fs.root, b"f", 0o644)
    kept = a.reserve(f.addr + 1, 3)
    assert kept == sorted(kept) and len(kept) == 3 and kept[0] > f.addr
    fs.write(f.addr, 0, b"d" * (4 * layout.BLOCK))  # data passes over the reserved blocks
    assert not {p + k for _, p, n in fs.inode(f.addr).extents for k in range(n)} & set(kept)
    assert [fs.create(fs.root, b"g%d" % i, 0o644).addr for i in range(3)] == kept  # in order
    assert not a.reserved
    fs.unmount()


def test_a_reserved_block_no_longer_ours_is_passed_over(image: Path) -> None:
    fs = fresh(make(image, journals=1))
    a = fs.alloc
    first, second = a.reserve(fs.root + 1, 2)
    a.set_state(first, layout.USED)  # e.g. another node allocated it while we did not hold its group
    assert fs.create(fs.root, b"f", 0o644).addr == second
    [kept] = a.reserve(fs.root + 1, 1)
    group = a.rgrp_of(kept).index
    a.allowed = set(range(len(a.rgrps))) - {group}  # its resource group's lock went away
    blk, _ = a.alloc(1, layout.DINODE)
    assert a.rgrp_of(blk).index != group and not a.reserved
    fs.dev.close()


def test_reservations_are_given_up_for_the_last_free_blocks(image: Path) -> None:
    fs = fresh(make(image, journals=1))
    a = fs.alloc
    for rg in a.rgrps:  # every block in use but four, all reserved
        for i in range(rg.entry.data_count):
            a.set_state(rg.entry.data_start + i, layout.USED)
    last = a.rgrps[-1].entry
    for b in range(last.data_start, last.data_start + 4):
        a.set_state(b, layout.FREE)
    assert a.reserve(last.data_start, 8) == list(range(last.data_start, last.data_start + 4))
    assert a.alloc(4, layout.USED) == (last.data_start, 4)
    assert not a.reserved
    fs.dev.close()
