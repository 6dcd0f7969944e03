"""Block allocation in resource groups (GFS's rgrps), 2 bits of state a block.

Each node starts looking in "its" part of the device (jid × rgrps / journals, as GFS spreads
nodes out) and goes round from there, next-fit inside a resource group.

Freed blocks are marked free in the bitmap at once (so the transaction that frees them says
so) but stay in `quarantine` until their freeing is committed and the journal checkpointed:
until then a crash could hand them back to their old owner, or replay an older logged image
onto them, so they must not receive new data.  See the invariant in journal.py.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .layout import DINODE, FREE, UNLINKED, RIndexEntry, bitmap_get, bitmap_set, pack_rgrp


class NoSpace(Exception):
    pass


@dataclass
class Rgrp:
    index: int
    entry: RIndexEntry
    generation: int
    free: int
    dinodes: int
    unlinked: int
    bitmap: bytearray
    hint: int = 0  # next-fit position, relative to data_start
    dirty: bool = field(default=False, repr=False)

    def pack(self, jid: int) -> bytearray:
        self.generation += 1
        return pack_rgrp(self.free, self.dinodes, self.unlinked, self.bitmap, self.generation, jid)


class Allocator:
    def __init__(self, rgrps: list[Rgrp], jid: int, njournals: int) -> None:
        self.rgrps = rgrps
        self._starts = [r.entry.data_start for r in rgrps]
        self.home = (jid * len(rgrps)) // max(njournals, 1) if rgrps else 0
        self.quarantine: set[int] = set()
        self.uncommitted_frees: set[int] = set()  # freed by transactions not yet committed
        self.allowed: set[int] | None = None  # rgrp indices we may allocate in (None: all)
        # Free blocks kept for the next dinodes, in the order they will be used: other
        # allocations pass over them, so a cluster mount can ask for the glocks of the next new
        # inodes ahead, and a create does not scan from its parent's block for a free one
        # (fuse_ops.py, Operations._reserve_ahead).  In memory only.
        self.reserved: dict[int, None] = {}
        self.allocated = 0  # counters for ogfs_tool
        self.freed = 0

    # -- lookups ----------------------------------------------------------------------------

    def rgrp_of(self, blk: int) -> Rgrp:
        i = bisect.bisect_right(self._starts, blk) - 1
        if i < 0 or blk >= self.rgrps[i].entry.data_start + self.rgrps[i].entry.data_count:
            raise ValueError(f"block {blk} is in no resource group")
        return self.rgrps[i]

    def state(self, blk: int) -> int:
        rg = self.rgrp_of(blk)
        return bitmap_get(rg.bitmap, blk - rg.entry.data_start)

    def set_state(self, blk: int, new: int) -> None:
        rg = self.rgrp_of(blk)
        i = blk - rg.entry.data_start
        old = bitmap_get(rg.bitmap, i)
        if old == new:
            return
        bitmap_set(rg.bitmap, i, new)
        rg.free += (new == FREE) - (old == FREE)
        rg.dinodes += (new == DINODE) - (old == DINODE)
        rg.unlinked += (new == UNLINKED) - (old == UNLINKED)
        rg.dirty = True

    @property
    def free_blocks(self) -> int:
        # Quarantined blocks count as free: an allocation that needs them forces a checkpoint.
        return sum(r.free for r in self.rgrps)

    @property
    def total_blocks(self) -> int:
        return sum(r.entry.data_count for r in self.rgrps)

    # -- allocation -------------------------------------------------------------------------

    def alloc(self, want: int, state: int, goal: int | None = None) -> tuple[int, int]:
        """Allocate a run of 1..want free blocks, contiguous; (start, count)."""
        if state == DINODE:
            blk = self._take_reserved()
            if blk is not None:
                self.set_state(blk, DINODE)
                self.allocated += 1
                return blk, 1
        try:
            return self._alloc_run(want, state, goal)
        except NoSpace:
            if not self.reserved:
                raise
        self.reserved.clear()  # the last free blocks: give the reservations up
        return self._alloc_run(want, state, goal)

    def _alloc_run(self, want: int, state: int, goal: int | None) -> tuple[int, int]:
        first, start = self.home, None
        if goal is not None:
            try:
                first = self.rgrp_of(goal).index
                start = goal - self.rgrps[first].entry.data_start
            except ValueError:
                pass  # the goal lies outside every resource group (past the last one): no goal
        order = list(range(first, len(self.rgrps))) + list(range(first))
        for i in order:
            rg = self.rgrps[i]
            if rg.free <= 0 or (self.allowed is not None and i not in self.allowed):
                continue
            run = self._find(rg, want, start if i == first else None)
            if run:
                blk, n = run
                for b in range(blk, blk + n):
                    self.set_state(b, state)
                self.allocated += n
                return blk, n
        raise NoSpace()

    def reserve(self, goal: int, n: int) -> list[int]:
        """Keep up to `n` more free blocks, the first from `goal` on in goal's resource group,
        for the next dinodes; returns them.  They stay free: only dinode allocations take them."""
        try:
            rg = self.rgrp_of(goal)
        except ValueError:
            return []
        if self.allowed is not None and rg.index not in self.allowed:
            return []
        hint = rg.hint  # a look ahead, not an allocation: next-fit goes on where it was
        new: list[int] = []
        start = goal - rg.entry.data_start
        while len(new) < n:
            run = self._find(rg, 1, start)  # passes over what is reserved already
            if run is None:
                break
            new.append(run[0])
            self.reserved[run[0]] = None
            start = run[0] + 1 - rg.entry.data_start
        rg.hint = hint
        return new

    def _take_reserved(self) -> int | None:
        """The first reserved block that is still ours to use: free, out of quarantine, in a
        resource group we may allocate in (its lock may have gone and come back meanwhile)."""
        while self.reserved:
            blk = next(iter(self.reserved))
            del self.reserved[blk]
            rg = self.rgrp_of(blk)
            if self.allowed is not None and rg.index not in self.allowed:
                continue
            if bitmap_get(rg.bitmap, blk - rg.entry.data_start) == FREE and blk not in self.quarantine:
                return blk
        return None

    def _find(self, rg: Rgrp, want: int, start: int | None) -> tuple[int, int] | None:
        count, base, bm, q = rg.entry.data_count, rg.entry.data_start, rg.bitmap, self.quarantine
        r = self.reserved  # passed over
        pos = rg.hint if start is None else start
        for lo, hi in ((pos, count), (0, pos)):
            i = lo
            while i < hi:
                if bitmap_get(bm, i) != FREE or base + i in q or base + i in r:
                    i += 1
                    # Skip whole bytes (4 blocks) that have no free block at all.
                    while i < hi and i & 3 == 0 and _full(bm[i >> 2]):
                        i += 4
                    continue
                j = i + 1
                while (j < hi and j - i < want and bitmap_get(bm, j) == FREE and base + j not in q
                       and base + j not in r):
                    j += 1
                rg.hint = j if j < count else 0
                return base + i, j - i
        return None

    def free(self, start: int, count: int) -> None:
        for b in range(start, start + count):
            self.set_state(b, FREE)
            self.quarantine.add(b)
            self.uncommitted_frees.add(b)
        self.freed += count

    def committed(self) -> None:
        self.uncommitted_frees.clear()

    def release_quarantine(self) -> None:
        """After a checkpoint: no logged image can land on these blocks any more.  Blocks whose
        freeing is not committed yet stay: a crash would give them back to their old owner."""
        self.quarantine &= self.uncommitted_frees

    def dirty_rgrps(self) -> list[Rgrp]:
        return [r for r in self.rgrps if r.dirty]


def _full(byte: int) -> bool:
    """True if none of the four 2-bit states in `byte` is FREE (00)."""
    return bool(byte & 0x03) and bool(byte & 0x0C) and bool(byte & 0x30) and bool(byte & 0xC0)
