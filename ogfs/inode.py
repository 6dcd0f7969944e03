"""In-memory inodes and directories, and how they go to and from their blocks.

An inode lives in one dinode block (its address is its inode number).  Its bytes are either
"stuffed" into that block (small files, symlink targets) or described by extents: inline in
the dinode up to 214 of them, else in extent blocks that the dinode lists ("indirect").
A directory is a list of directory blocks (its extents), each holding packed entries; in
memory we keep the entries per block plus a name index.
"""

from __future__ import annotations

import bisect
import stat
import struct
from dataclasses import dataclass, field

from .layout import (
    BLOCK,
    DI_FIXED,
    DIR_SPACE,
    EXTENTS_INLINE,
    EXTENTS_PER_BLOCK,
    HDR_SIZE,
    INDIRECT_INLINE,
    P_EXTENTS,
    P_INDIRECT,
    P_STUFFED,
    PAYLOAD_OFF,
    PAYLOAD_SIZE,
    T_DINODE,
    XATTR_OFF,
    XATTR_SIZE,
    Extent,
    check,
    dirent_size,
    pack_dir_block,
    pack_ext_block,
    pack_extents,
    pack_xattrs,
    seal,
    unpack_extents,
    unpack_xattrs,
)


def ext_blocks_needed(n_extents: int) -> int:
    """How many extent blocks a list of n extents needs (0: it fits in the dinode)."""
    if n_extents <= EXTENTS_INLINE:
        return 0
    return -(-n_extents // EXTENTS_PER_BLOCK)


MAX_EXTENTS = INDIRECT_INLINE * EXTENTS_PER_BLOCK


@dataclass(eq=False)
class Inode:
    addr: int
    mode: int
    uid: int = 0
    gid: int = 0
    nlink: int = 1
    size: int = 0
    atime: int = 0
    mtime: int = 0
    ctime: int = 0
    rdev: int = 0
    flags: int = 0
    parent: int = 0
    generation: int = 0
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    stuffed: bytes | None = b""  # None once the file uses extents
    extents: list[Extent] = field(default_factory=list)
    ext_blocks: list[int] = field(default_factory=list)
    ext_gens: list[int] = field(default_factory=list)
    dir: Dir | None = None

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def blocks(self) -> int:
        """Blocks this inode owns besides its dinode: data, directory and extent blocks."""
        return sum(n for _, _, n in self.extents) + len(self.ext_blocks)

    # -- extent map -------------------------------------------------------------------------

    def map(self, lblk: int) -> tuple[int | None, int]:
        """(physical block or None for a hole, how many blocks the answer holds for)."""
        i = bisect.bisect_right(self.extents, (lblk, 1 << 64, 0)) - 1
        if i >= 0:
            start, p, n = self.extents[i]
            if lblk < start + n:
                return p + (lblk - start), start + n - lblk
        nxt = self.extents[i + 1][0] if i + 1 < len(self.extents) else 1 << 40
        return None, nxt - lblk

    def add_extent(self, lblk: int, pblk: int, n: int) -> None:
        """Map a hole [lblk, lblk+n) to [pblk, pblk+n), merging with neighbours."""
        ex = self.extents
        i = bisect.bisect_right(ex, (lblk, 1 << 64, 0))
        if i > 0:
            start, p, m = ex[i - 1]
            if start + m == lblk and p + m == pblk:
                lblk, pblk, n = start, p, m + n
                i -= 1
                del ex[i]
        if i < len(ex):
            start, p, m = ex[i]
            if lblk + n == start and pblk + n == p:
                n += m
                del ex[i]
        ex.insert(i, (lblk, pblk, n))

    def cut_extents(self, from_lblk: int) -> list[tuple[int, int]]:
        """Unmap every block at or past `from_lblk`; return the freed physical runs."""
        freed, keep = [], []
        for start, p, n in self.extents:
            if start + n <= from_lblk:
                keep.append((start, p, n))
            elif start >= from_lblk:
                freed.append((p, n))
            else:
                k = from_lblk - start
                keep.append((start, p, k))
                freed.append((p + k, n - k))
        self.extents = keep
        return freed

    # -- to and from the dinode block ----------------------------------------------------

    def pack(self, jid: int) -> bytearray:
        """The dinode block image (extent blocks are packed by pack_ext_blocks)."""
        buf = bytearray(BLOCK)
        xraw = pack_xattrs(self.xattrs)
        if self.stuffed is not None:
            kind, count, payload = P_STUFFED, len(self.stuffed), self.stuffed
        elif not self.ext_blocks:
            kind, count, payload = P_EXTENTS, len(self.extents), pack_extents(self.extents)
        else:
            kind, count = P_INDIRECT, len(self.extents)
            payload = struct.pack(f">{len(self.ext_blocks)}Q", *self.ext_blocks)
        DI_FIXED.pack_into(buf, HDR_SIZE, self.addr, self.mode, self.uid, self.gid, self.nlink,
                           self.size, self.blocks, self.atime, self.mtime, self.ctime, self.rdev,
                           self.flags, kind, len(xraw), count, self.parent, 0)
        buf[XATTR_OFF:XATTR_OFF + len(xraw)] = xraw
        buf[PAYLOAD_OFF:PAYLOAD_OFF + len(payload)] = payload
        self.generation += 1
        return seal(buf, T_DINODE, self.generation, jid)

    def pack_ext_blocks(self, jid: int) -> list[tuple[int, bytearray]]:
        out = []
        for k, addr in enumerate(self.ext_blocks):
            chunk = self.extents[k * EXTENTS_PER_BLOCK:(k + 1) * EXTENTS_PER_BLOCK]
            self.ext_gens[k] += 1
            out.append((addr, pack_ext_block(chunk, self.ext_gens[k], jid)))
        return out

    @classmethod
    def unpack(cls, addr: int, buf: bytes | bytearray) -> tuple[Inode, int, list[int]]:
        """(inode, payload kind, extent block addresses still to read if indirect)."""
        gen = check(buf, T_DINODE)
        (a, mode, uid, gid, nlink, size, _blocks, atime, mtime, ctime, rdev, flags, kind, xlen,
         count, parent, _formal) = DI_FIXED.unpack_from(buf, HDR_SIZE)
        if a != addr:
            raise ValueError(f"dinode at {addr} says it is {a}")
        if xlen > XATTR_SIZE:
            raise ValueError(f"dinode {addr}: xattr length {xlen}")
        ino = cls(addr, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, flags, parent, gen,
                  unpack_xattrs(bytes(buf[XATTR_OFF:XATTR_OFF + xlen])))
        payload = bytes(buf[PAYLOAD_OFF:])
        indirect: list[int] = []
        if kind == P_STUFFED:
            if count > PAYLOAD_SIZE:
                raise ValueError(f"dinode {addr}: stuffed length {count}")
            ino.stuffed = payload[:count]
        elif kind == P_EXTENTS:
            if count > EXTENTS_INLINE:
                raise ValueError(f"dinode {addr}: {count} inline extents")
            ino.stuffed = None
            ino.extents = unpack_extents(payload, count)
        elif kind == P_INDIRECT:
            ino.stuffed = None
            nblk = ext_blocks_needed(count)
            if nblk > INDIRECT_INLINE:
                raise ValueError(f"dinode {addr}: {count} extents")
            indirect = list(struct.unpack_from(f">{nblk}Q", payload))
        else:
            raise ValueError(f"dinode {addr}: payload kind {kind}")
        return ino, kind, indirect


class Dir:
    """A directory's entries, block by block, with an index by name."""

    def __init__(self) -> None:
        self.blocks: list[int] = []  # physical addresses, in logical order
        self.gens: list[int] = []
        self.ents: list[dict[bytes, tuple[int, int]]] = []
        self.used: list[int] = []
        self.where: dict[bytes, int] = {}
        self._room_hint = 0

    def add_block(self, addr: int, gen: int, ents: dict[bytes, tuple[int, int]]) -> None:
        k = len(self.blocks)
        self.blocks.append(addr)
        self.gens.append(gen)
        self.ents.append(ents)
        self.used.append(sum(dirent_size(n) for n in ents))
        for name in ents:
            self.where[name] = k

    def get(self, name: bytes) -> tuple[int, int] | None:
        k = self.where.get(name)
        return None if k is None else self.ents[k][name]

    def find_room(self, name: bytes) -> int | None:
        need = dirent_size(name)
        n = len(self.blocks)
        for k in (*range(self._room_hint, n), *range(0, min(self._room_hint, n))):
            if self.used[k] + need <= DIR_SPACE:
                self._room_hint = k
                return k
        return None

    def put(self, k: int, name: bytes, ino: int, dtype: int) -> None:
        self.ents[k][name] = (ino, dtype)
        self.used[k] += dirent_size(name)
        self.where[name] = k

    def remove(self, name: bytes) -> int:
        k = self.where.pop(name)
        del self.ents[k][name]
        self.used[k] -= dirent_size(name)
        if k < self._room_hint:
            self._room_hint = k
        return k

    def pack(self, k: int, jid: int) -> bytearray:
        self.gens[k] += 1
        return pack_dir_block(self.ents[k], self.gens[k], jid)

    def __len__(self) -> int:
        return len(self.where)
