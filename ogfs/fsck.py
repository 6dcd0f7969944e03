"""Check (and repair) an ogfs filesystem: the work of fsck.ogfs.

Two depths:
  * `preen` (fsck -p): superblock, resource index, resource group headers, journal heads and,
    for memexp filesystems, the cidev header.  Reads a few dozen blocks, writes nothing, so it is
    safe while other nodes have the device mounted (heartbeat's Filesystem agent runs it on
    every takeover).
  * `full` (fsck -n / -y): walks the tree from the root and checks every structure against
    every other: bitmaps against reachable blocks, resource group counts against bitmaps, link
    counts against directory entries, entry types against inodes, blocks claimed twice,
    directories reached twice, parent pointers, journal state.  With repair=True it replays dirty
    journals first and then rewrites what is wrong; run it only when no node mounts the device.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

from . import journal
from .blockdev import Device
from .inode import Inode, ext_blocks_needed
from .layout import (
    BLOCK,
    DINODE,
    FREE,
    SB_BLOCK,
    STATE_NAMES,
    UNLINKED,
    USED,
    CorruptBlock,
    RIndexEntry,
    Superblock,
    bitmap_get,
    bitmap_set,
    pack_rgrp,
    unpack_dir_block,
    unpack_ext_block,
    unpack_rgrp,
    unpack_rindex,
)

# fsck(8) exit codes
OK, CORRECTED, UNCORRECTED, OPERATIONAL = 0, 1, 4, 8

# A resource group as read: (entry, generation, free, dinodes, unlinked, bitmap)
RgrpRead = tuple[RIndexEntry, int, int, int, int, bytearray]


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    info: dict[str, int] = field(default_factory=dict)

    def error(self, msg: str) -> None:
        self.errors.append(msg)

    @property
    def exit_code(self) -> int:
        if self.errors and not self.fixed:
            return UNCORRECTED
        if self.errors and self.fixed:
            return CORRECTED if len(self.fixed) >= len(self.errors) else UNCORRECTED
        return OK


def preen(path: str) -> Report:
    """The quick read-only sanity check (fsck -p)."""
    rep = Report()
    dev = Device(path, readonly=True)
    try:
        sb = _superblock(dev, rep)
        if sb is None:
            return rep
        _check_meta(dev, sb, rep)
        if sb.lockproto == "memexp":
            _check_cidev(sb.locktable, rep)
    finally:
        dev.close()
    return rep


def _superblock(dev: Device, rep: Report) -> Superblock | None:
    try:
        return Superblock.unpack(dev.read(SB_BLOCK))
    except (CorruptBlock, OSError, ValueError) as e:
        rep.error(f"superblock: {e}")
        return None


def _check_meta(dev: Device, sb: Superblock, rep: Report) -> list[RgrpRead]:
    """Resource index, resource group headers and journal heads; returns the rgrps read."""
    rgrps: list[RgrpRead] = []
    try:
        ri = unpack_rindex([dev.read(sb.rindex_start + i) for i in range(sb.rindex_blocks)],
                           sb.rgrp_count)
    except (CorruptBlock, OSError) as err:
        rep.error(f"resource index: {err}")
        return rgrps
    for i, e in enumerate(ri):
        try:
            rgrps.append((e, *unpack_rgrp(dev.read(e.header))))
        except (CorruptBlock, OSError) as err:
            rep.error(f"resource group {i} (block {e.header}): {err}")
    for jid, region in enumerate(sb.journals):
        try:
            state, n = journal.journal_state(dev, region, jid, sb.uuid)
        except (CorruptBlock, journal.JournalError) as err:
            rep.error(f"journal {jid}: {err}")
            continue
        rep.info[f"journal{jid}_pending"] = n
        if n:
            rep.warnings.append(f"journal {jid}: {state}, {n} transaction(s) to replay")
    return rgrps


def _check_cidev(path: str, rep: Report) -> None:
    try:
        from .cidev import read_config  # the cidev module is optional for nolock filesystems
        read_config(path)
    except ImportError:
        return
    except Exception as e:  # noqa: BLE001 - any failure here is a finding, not a crash
        rep.error(f"cluster information device {path}: {e}")


def full(path: str, repair: bool = False) -> Report:
    rep = Report()
    if repair:
        _replay_all(path, rep)
    dev = Device(path, readonly=not repair)
    try:
        sb = _superblock(dev, rep)
        if sb is None:
            return rep
        rgrps = _check_meta(dev, sb, rep)
        if len(rgrps) != sb.rgrp_count:
            return rep  # cannot judge bitmaps against a missing resource group
        Walker(dev, sb, rgrps, rep, repair).run()
    finally:
        dev.close()
    return rep


def _replay_all(path: str, rep: Report) -> None:
    dev = Device(path)
    try:
        sb = Superblock.unpack(dev.read(SB_BLOCK))
        for jid, region in enumerate(sb.journals):
            state, n = journal.journal_state(dev, region, jid, sb.uuid)
            if n:
                journal.replay(dev, region, jid, sb.uuid)
                rep.fixed.append(f"journal {jid}: replayed {n} transaction(s)")
                rep.errors.append(f"journal {jid}: {n} transaction(s) were not replayed")
    except (CorruptBlock, OSError, journal.JournalError) as e:
        rep.error(f"journal replay: {e}")
    finally:
        dev.close()


class Walker:
    """One pass over the tree, then a comparison of what was found with what the bitmaps say."""

    def __init__(self, dev: Device, sb: Superblock, rgrps: list[RgrpRead], rep: Report,
                 repair: bool) -> None:
        self.dev, self.sb, self.rep, self.repair = dev, sb, rep, repair
        self.rgrps = rgrps  # (entry, gen, free, dinodes, unlinked, bitmap)
        self.expect: dict[int, int] = {}   # block -> state the walk says it must have
        self.owner: dict[int, int] = {}    # block -> inode that claims it
        self.links: dict[int, int] = {}    # inode -> directory entries naming it
        self.subdirs: dict[int, int] = {}  # directory -> subdirectories
        self.inodes: dict[int, Inode] = {}
        self.bad_inodes: set[int] = set()

    def state_of(self, blk: int) -> int | None:
        for e, _gen, _f, _d, _u, bm in self.rgrps:
            if e.data_start <= blk < e.data_start + e.data_count:
                return bitmap_get(bm, blk - e.data_start)
        return None

    def claim(self, blk: int, count: int, ino: int, state: int, what: str) -> bool:
        ok = True
        for b in range(blk, blk + count):
            if self.state_of(b) is None:
                self.rep.error(f"inode {ino}: {what} block {b} is outside every resource group")
                return False
            prev = self.owner.get(b)
            if prev is not None:
                self.rep.error(f"block {b} claimed twice: by inode {prev} and by inode {ino} ({what})")
                ok = False
                continue
            self.owner[b] = ino
            self.expect[b] = state
        return ok

    def load(self, addr: int) -> Inode | None:
        if addr in self.inodes:
            return self.inodes[addr]
        if addr in self.bad_inodes:
            return None
        if self.state_of(addr) is None:
            self.rep.error(f"inode {addr}: not inside any resource group")
            self.bad_inodes.add(addr)
            return None
        try:
            ino, _kind, indirect = Inode.unpack(addr, self.dev.read(addr))
            for b in indirect:
                gen, exts = unpack_ext_block(self.dev.read(b))
                ino.ext_blocks.append(b)
                ino.ext_gens.append(gen)
                ino.extents += exts
        except (CorruptBlock, ValueError) as e:
            self.rep.error(f"inode {addr}: {e}")
            self.bad_inodes.add(addr)
            return None
        self.inodes[addr] = ino
        if not self.claim(addr, 1, addr, DINODE if ino.nlink else UNLINKED, "dinode"):
            return ino
        for b in ino.ext_blocks:
            self.claim(b, 1, addr, USED, "extent")
        if ext_blocks_needed(len(ino.extents)) != len(ino.ext_blocks):
            self.rep.error(f"inode {addr}: {len(ino.extents)} extents in {len(ino.ext_blocks)} blocks")
        prev_end = 0
        for lblk, p, n in ino.extents:
            if lblk < prev_end or n <= 0:
                self.rep.error(f"inode {addr}: extents overlap or are empty at logical block {lblk}")
            prev_end = lblk + n
            self.claim(p, n, addr, USED, "data")
        if ino.stuffed is None and not ino.is_dir and ino.extents:
            last_l, _, last_n = ino.extents[-1]
            if (last_l + last_n - 1) * BLOCK >= max(ino.size, 1) + BLOCK - 1:
                self.rep.error(f"inode {addr}: blocks mapped beyond its size {ino.size}")
        if ino.stuffed is not None and len(ino.stuffed) != ino.size:
            self.rep.error(f"inode {addr}: stuffed length {len(ino.stuffed)} != size {ino.size}")
        return ino

    def run(self) -> None:
        root = self.load(self.sb.root)
        if root is None or not root.is_dir:
            self.rep.error("root directory is unreadable")
            return
        self.links[root.addr] = 1
        seen_dirs = {root.addr}
        stack = [root]
        while stack:
            d = stack.pop()
            self.subdirs[d.addr] = 0
            bad_names: list[tuple[int, bytes]] = []
            for k, (lblk, p, n) in enumerate(_expand(d.extents)):
                del k, lblk, n
                try:
                    _gen, ents = unpack_dir_block(self.dev.read(p))
                except CorruptBlock as e:
                    self.rep.error(f"directory {d.addr}: block {p}: {e}")
                    continue
                for name, (child_addr, dtype) in ents.items():
                    child = self.load(child_addr)
                    if child is None:
                        self.rep.error(f"directory {d.addr}: entry {name!r} points to a bad inode "
                                       f"{child_addr}")
                        bad_names.append((p, name))
                        continue
                    if stat.S_IFMT(child.mode) >> 12 != dtype:
                        self.rep.error(f"directory {d.addr}: entry {name!r} has type {dtype}, "
                                       f"its inode is {stat.S_IFMT(child.mode) >> 12}")
                    self.links[child_addr] = self.links.get(child_addr, 0) + 1
                    if child.is_dir:
                        self.subdirs[d.addr] += 1
                        if child_addr in seen_dirs:
                            self.rep.error(f"directory {child_addr} is reached twice")
                            continue
                        seen_dirs.add(child_addr)
                        if child.parent != d.addr:
                            self.rep.error(f"directory {child_addr}: parent is {child.parent}, "
                                           f"found in {d.addr}")
                        stack.append(child)
            if bad_names and self.repair:
                self._drop_entries(d, bad_names)
        self._check_links()
        self._check_bitmaps()

    def _drop_entries(self, d: Inode, bad: list[tuple[int, bytes]]) -> None:
        from .layout import pack_dir_block
        for p in {p for p, _ in bad}:
            gen, ents = unpack_dir_block(self.dev.read(p))
            for bp, name in bad:
                if bp == p:
                    ents.pop(name, None)
            self.dev.write(p, pack_dir_block(ents, gen + 1, 0))
        self.rep.fixed.append(f"directory {d.addr}: removed {len(bad)} bad entr(ies)")

    def _check_links(self) -> None:
        for addr, ino in self.inodes.items():
            want = 2 + self.subdirs.get(addr, 0) if ino.is_dir else self.links.get(addr, 0)
            if ino.nlink != want and not (ino.nlink == 0 and addr not in self.links):
                self.rep.error(f"inode {addr}: link count {ino.nlink}, should be {want}")
                if self.repair:
                    ino.nlink = want
                    ino.generation += 0
                    self.dev.write(addr, ino.pack(0))
                    self.rep.fixed.append(f"inode {addr}: link count set to {want}")

    def _check_bitmaps(self) -> None:
        self.rep.info["inodes"] = len(self.inodes)
        self.rep.info["blocks_used"] = len(self.expect)
        for e, gen, free, dinodes, unlinked, bm in self.rgrps:
            changed = False
            counts = {FREE: 0, USED: 0, UNLINKED: 0, DINODE: 0}
            for i in range(e.data_count):
                b = e.data_start + i
                have = bitmap_get(bm, i)
                want = self.expect.get(b, FREE)
                if have == UNLINKED and want == FREE:
                    # An inode unlinked while open: the next mount reclaims it.  Not an error.
                    self.rep.warnings.append(f"block {b}: unlinked inode awaiting reclaim")
                    want = UNLINKED
                if have != want:
                    self.rep.error(f"block {b}: bitmap says {STATE_NAMES[have]}, "
                                   f"the tree says {STATE_NAMES[want]}")
                    if self.repair:
                        bitmap_set(bm, i, want)
                        changed = True
                counts[bitmap_get(bm, i)] += 1
            if (free, dinodes, unlinked) != (counts[FREE], counts[DINODE], counts[UNLINKED]):
                self.rep.error(f"resource group at {e.header}: counts free={free} dinodes={dinodes} "
                               f"unlinked={unlinked}, bitmap says free={counts[FREE]} "
                               f"dinodes={counts[DINODE]} unlinked={counts[UNLINKED]}")
                changed = changed or self.repair
            if changed and self.repair:
                self.dev.write(e.header, pack_rgrp(counts[FREE], counts[DINODE], counts[UNLINKED],
                                                   bytes(bm[:(e.data_count + 3) // 4]), gen + 1, 0))
                self.rep.fixed.append(f"resource group at {e.header}: bitmap and counts rewritten")


def _expand(extents: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """One (logical, physical, 1) per block, for walking directory blocks in order."""
    return [(lblk + k, p + k, 1) for lblk, p, n in extents for k in range(n)]
