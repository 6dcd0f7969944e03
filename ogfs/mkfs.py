"""Lay out a new ogfs filesystem on a device (the work of mkfs.ogfs)."""

from __future__ import annotations

import os
import random
import stat
import time
import uuid as uuidlib
from dataclasses import dataclass

from . import journal
from .blockdev import Device
from .inode import Inode
from .layout import (
    BLOCK,
    DINODE,
    RG_MAX_BLOCKS,
    RINDEX_PER_BLOCK,
    SB_BLOCK,
    T_SB,
    CorruptBlock,
    Journal,
    RIndexEntry,
    Superblock,
    bitmap_set,
    check,
    pack_rgrp,
    pack_rindex,
)

LOCKPROTOS = ("memexp", "nolock")
MIN_JOURNAL_MB = 4


class MkfsError(Exception):
    pass


@dataclass
class Geometry:
    total: int
    journals: list[Journal]
    rindex: list[RIndexEntry]
    rindex_start: int
    rindex_blocks: int


def plan(total_blocks: int, njournals: int, journal_mb: int, rgrp_mb: int) -> Geometry:
    """Where everything goes.  Raises MkfsError if the device is too small."""
    if njournals < 1 or njournals > Superblock.MAX_JOURNALS:
        raise MkfsError(f"journals: {njournals} is not between 1 and {Superblock.MAX_JOURNALS}")
    if journal_mb < MIN_JOURNAL_MB:
        raise MkfsError(f"journal size: {journal_mb} MB is below the minimum of {MIN_JOURNAL_MB} MB")
    jblocks = journal_mb * 1024 * 1024 // BLOCK
    rg_data = max(64, min(RG_MAX_BLOCKS, rgrp_mb * 1024 * 1024 // BLOCK - 1))
    # The rindex size depends on the rgrp count, which depends on the space left: estimate high.
    est_rgrps = max(1, total_blocks // (rg_data + 1) + 1)
    ri_blocks = -(-est_rgrps // RINDEX_PER_BLOCK)
    rindex_start = SB_BLOCK + 1
    jstart = rindex_start + ri_blocks
    journals = [Journal(jstart + i * jblocks, jblocks) for i in range(njournals)]
    pos = jstart + njournals * jblocks
    min_total = pos + 1 + 64
    if total_blocks < min_total:
        need = -(-min_total * BLOCK // (1024 * 1024))
        raise MkfsError(f"device holds {total_blocks * BLOCK // (1024 * 1024)} MiB; {njournals} "
                        f"journal(s) of {journal_mb} MB need at least {need} MiB "
                        f"(use fewer or smaller journals: -j, -J)")
    rindex = []
    while total_blocks - pos >= 1 + 64:
        n = min(rg_data, total_blocks - pos - 1)
        rindex.append(RIndexEntry(pos, pos + 1, n))
        pos += 1 + n
    return Geometry(total_blocks, journals, rindex, rindex_start, ri_blocks)


def holds_ogfs(dev: Device) -> bool:
    try:
        check(dev.read(SB_BLOCK), T_SB)
        return True
    except (CorruptBlock, OSError):
        return False


def mkfs(path: str, lockproto: str = "memexp", locktable: str = "", journals: int = 2,
         journal_mb: int = 32, rgrp_mb: int = 64, force: bool = False) -> Superblock:
    if lockproto not in LOCKPROTOS:
        raise MkfsError(f"lock protocol {lockproto!r}: choose one of {', '.join(LOCKPROTOS)}")
    if len(locktable.encode()) > 63:
        raise MkfsError(f"lock table {locktable!r} is longer than 63 bytes (the superblock field)")
    if lockproto == "memexp" and not locktable.startswith("/"):
        raise MkfsError("lock table: memexp needs -t <cidev path>, e.g. -t /dev/sda1")
    try:
        dev = Device(path)
    except OSError as err:
        raise MkfsError(f"{path}: {err.strerror}") from None
    try:
        if holds_ogfs(dev) and not force:
            raise MkfsError(f"{path} already holds an ogfs filesystem; use -O to overwrite it")
        geo = plan(dev.blocks, journals, journal_mb, rgrp_mb)
        uid = uuidlib.uuid4().bytes
        root_addr = geo.rindex[0].data_start
        # Resource groups: everything free but the root dinode.
        for i, e in enumerate(geo.rindex):
            bm = bytearray((e.data_count + 3) // 4)
            free, dinodes = e.data_count, 0
            if i == 0:
                bitmap_set(bm, 0, DINODE)
                free, dinodes = free - 1, 1
            dev.write(e.header, pack_rgrp(free, dinodes, 0, bm, 1, 0))
        for k, blk in enumerate(pack_rindex(geo.rindex)):
            dev.write(geo.rindex_start + k, blk)
        # Journals: a clean head with a random starting sequence, and block 1 zeroed, so no
        # stale transaction of an earlier filesystem can ever match.
        for jid, j in enumerate(geo.journals):
            log = journal.Log(dev, j, jid, uid)
            log.write_head(random.getrandbits(48), journal.F_UNMOUNT)
            dev.write(j.start + 1, bytes(BLOCK))
        t = time.time_ns()
        root = Inode(root_addr, stat.S_IFDIR | 0o755, 0, 0, 2, 0, t, t, t, parent=root_addr)
        root.stuffed = None
        dev.write(root_addr, root.pack(0))
        sb = Superblock(geo.total, uid, lockproto, locktable, root_addr, geo.rindex_start,
                        geo.rindex_blocks, len(geo.rindex), geo.journals)
        dev.flush()
        dev.write(SB_BLOCK, sb.pack())  # last: until now the device holds no filesystem
        dev.flush()
        return sb
    finally:
        dev.close()


def is_block_or_file(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISBLK(st.st_mode) or stat.S_ISREG(st.st_mode)

