"""On-disk structures of the ogfs data device, packed and unpacked.

Everything is big-endian (the GFS tradition) in 4096-byte blocks.  docs/ondisk.md draws the
picture; in short:

    block 0..15       unused (64 KiB, as GFS leaves it for partition tables and boot blocks)
    block 16          superblock: geometry, lock protocol and table, the journal index
    rindex blocks     one entry per resource group
    journals          one contiguous region per node (jid = the node's CID)
    resource groups   a header block (counts + 2-bit bitmap) followed by its data blocks

Every metadata block starts with the same 24-byte header: magic, block type, format, a
generation that grows each time the block is logged, the jid of the last node that logged it,
and a CRC32 of the whole block (computed with the CRC field zeroed).  Data blocks carry nothing.
"""

from __future__ import annotations

import struct
import uuid as uuidlib
import zlib
from dataclasses import dataclass, field

BLOCK = 4096
SB_BLOCK = 16  # 64 KiB in, as GFS
MAGIC = 0x0F65F503  # distinct from GFS's 0x01161970 so blkid never mistakes us for GFS
FORMAT = 1

# Block types (the header's `type` field).
T_SB, T_RINDEX, T_RGRP, T_DINODE, T_DIR, T_EXT, T_LOGHEAD, T_LOGDESC, T_LOGCOMMIT = range(1, 10)
TYPE_NAMES = {T_SB: "superblock", T_RINDEX: "rindex", T_RGRP: "rgrp", T_DINODE: "dinode",
              T_DIR: "dirblock", T_EXT: "extents", T_LOGHEAD: "loghead", T_LOGDESC: "logdesc",
              T_LOGCOMMIT: "logcommit"}

_HDR = struct.Struct(">IHHQII")  # magic, type, format, generation, jid, crc
HDR_SIZE = _HDR.size  # 24
_CRC_OFF = 20


class CorruptBlock(Exception):
    """A metadata block whose header or checksum is wrong."""


def seal(buf: bytearray, btype: int, generation: int, jid: int = 0) -> bytearray:
    """Write the header into `buf` (a whole block) and checksum it."""
    _HDR.pack_into(buf, 0, MAGIC, btype, FORMAT, generation, jid, 0)
    struct.pack_into(">I", buf, _CRC_OFF, zlib.crc32(buf))
    return buf


def header(buf: bytes | bytearray) -> tuple[int, int, int]:
    """(type, generation, jid) of a metadata block, or raise CorruptBlock."""
    magic, btype, fmt, gen, jid, crc = _HDR.unpack_from(buf, 0)
    if magic != MAGIC:
        raise CorruptBlock("bad magic")
    if fmt != FORMAT:
        raise CorruptBlock(f"unknown format {fmt}")
    tmp = bytearray(buf)
    struct.pack_into(">I", tmp, _CRC_OFF, 0)
    if zlib.crc32(tmp) != crc:
        raise CorruptBlock("checksum mismatch")
    return btype, gen, jid


def check(buf: bytes | bytearray, want: int) -> int:
    """Verify a block is a valid `want` block; return its generation."""
    btype, gen, _ = header(buf)
    if btype != want:
        raise CorruptBlock(f"expected {TYPE_NAMES[want]}, found {TYPE_NAMES.get(btype, btype)}")
    return gen


def _str64(s: str) -> bytes:
    b = s.encode()
    if len(b) > 63:
        raise ValueError(f"{s!r} longer than 63 bytes")
    return b.ljust(64, b"\0")


def _unstr(b: bytes) -> str:
    return b.rstrip(b"\0").decode()


# ---------------------------------------------------------------------------------------------
# Superblock
# ---------------------------------------------------------------------------------------------

@dataclass
class Journal:
    start: int   # first block of the region; its block 0 is the log head
    length: int  # blocks


@dataclass
class Superblock:
    total_blocks: int
    uuid: bytes
    lockproto: str
    locktable: str
    root: int
    rindex_start: int
    rindex_blocks: int
    rgrp_count: int
    journals: list[Journal] = field(default_factory=list)
    block_size: int = BLOCK

    _FIXED = struct.Struct(">IQ16s64s64sQQIII")
    MAX_JOURNALS = 128

    def pack(self) -> bytearray:
        buf = bytearray(BLOCK)
        self._FIXED.pack_into(buf, HDR_SIZE, self.block_size, self.total_blocks, self.uuid,
                              _str64(self.lockproto), _str64(self.locktable), self.root,
                              self.rindex_start, self.rindex_blocks, self.rgrp_count,
                              len(self.journals))
        off = HDR_SIZE + self._FIXED.size
        for j in self.journals:
            struct.pack_into(">QQ", buf, off, j.start, j.length)
            off += 16
        return seal(buf, T_SB, 1)

    @classmethod
    def unpack(cls, buf: bytes) -> Superblock:
        check(buf, T_SB)
        (bsize, total, uid, proto, table, root, ri_start, ri_blocks, nrg,
         nj) = cls._FIXED.unpack_from(buf, HDR_SIZE)
        off = HDR_SIZE + cls._FIXED.size
        journals = [Journal(*struct.unpack_from(">QQ", buf, off + 16 * i)) for i in range(nj)]
        return cls(total, uid, _unstr(proto), _unstr(table), root, ri_start, ri_blocks, nrg,
                   journals, bsize)

    @property
    def uuid_str(self) -> str:
        return str(uuidlib.UUID(bytes=self.uuid))


# ---------------------------------------------------------------------------------------------
# Resource index and resource groups
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RIndexEntry:
    header: int      # the rgrp header block (counts + bitmap)
    data_start: int  # first block the bitmap describes
    data_count: int  # how many blocks it describes

    _S = struct.Struct(">QQI")


RINDEX_PER_BLOCK = (BLOCK - HDR_SIZE) // RIndexEntry._S.size


def pack_rindex(entries: list[RIndexEntry]) -> list[bytearray]:
    blocks = []
    for i in range(0, max(len(entries), 1), RINDEX_PER_BLOCK):
        buf = bytearray(BLOCK)
        for k, e in enumerate(entries[i:i + RINDEX_PER_BLOCK]):
            RIndexEntry._S.pack_into(buf, HDR_SIZE + k * RIndexEntry._S.size,
                                     e.header, e.data_start, e.data_count)
        blocks.append(seal(buf, T_RINDEX, 1))
    return blocks


def unpack_rindex(blocks: list[bytes], count: int) -> list[RIndexEntry]:
    out = []
    for i in range(count):
        buf = blocks[i // RINDEX_PER_BLOCK]
        if i % RINDEX_PER_BLOCK == 0:
            check(buf, T_RINDEX)
        out.append(RIndexEntry(*RIndexEntry._S.unpack_from(
            buf, HDR_SIZE + (i % RINDEX_PER_BLOCK) * RIndexEntry._S.size)))
    return out


# Bitmap states, 2 bits a block (GFS2's meaning).
FREE, USED, UNLINKED, DINODE = 0, 1, 2, 3
STATE_NAMES = {FREE: "free", USED: "used", UNLINKED: "unlinked", DINODE: "dinode"}

RG_FIXED = struct.Struct(">IIII")  # free, dinodes, unlinked, reserved
RG_BITMAP_OFF = 64
RG_MAX_BLOCKS = (BLOCK - RG_BITMAP_OFF) * 4  # 16128 blocks (63 MiB) per resource group


def pack_rgrp(free: int, dinodes: int, unlinked: int, bitmap: bytes | bytearray, generation: int,
              jid: int) -> bytearray:
    buf = bytearray(BLOCK)
    RG_FIXED.pack_into(buf, HDR_SIZE, free, dinodes, unlinked, 0)
    buf[RG_BITMAP_OFF:RG_BITMAP_OFF + len(bitmap)] = bitmap
    return seal(buf, T_RGRP, generation, jid)


def unpack_rgrp(buf: bytes | bytearray) -> tuple[int, int, int, int, bytearray]:
    """(generation, free, dinodes, unlinked, bitmap)"""
    gen = check(buf, T_RGRP)
    free, dinodes, unlinked, _ = RG_FIXED.unpack_from(buf, HDR_SIZE)
    return gen, free, dinodes, unlinked, bytearray(buf[RG_BITMAP_OFF:])


def bitmap_get(bm: bytes | bytearray, i: int) -> int:
    return (bm[i >> 2] >> ((i & 3) * 2)) & 3


def bitmap_set(bm: bytearray, i: int, state: int) -> None:
    shift = (i & 3) * 2
    bm[i >> 2] = (bm[i >> 2] & ~(3 << shift)) | (state << shift)


# ---------------------------------------------------------------------------------------------
# Dinodes
# ---------------------------------------------------------------------------------------------

# Payload kinds: where a dinode's bytes live.
P_STUFFED = 0   # file data (or symlink target) inside the dinode block itself
P_EXTENTS = 1   # a list of extents inside the dinode block
P_INDIRECT = 2  # a list of extent-block addresses inside the dinode block

DI_FIXED = struct.Struct(">QIIIIQQqqqIIBxHIQQ")
# addr, mode, uid, gid, nlink, size, blocks, atime, mtime, ctime (ns), rdev, flags,
# payload kind, xattr bytes, payload count, parent, formal inode number
XATTR_OFF = 160
XATTR_SIZE = 512
PAYLOAD_OFF = XATTR_OFF + XATTR_SIZE  # 672
PAYLOAD_SIZE = BLOCK - PAYLOAD_OFF    # 3424
STUFF_MAX = PAYLOAD_SIZE

EXTENT = struct.Struct(">IQI")  # logical block, physical block, length
EXTENTS_INLINE = PAYLOAD_SIZE // EXTENT.size  # 214
EXT_BLOCK_OFF = HDR_SIZE + 8                  # extent blocks: header, count, extents
EXTENTS_PER_BLOCK = (BLOCK - EXT_BLOCK_OFF) // EXTENT.size  # 254
INDIRECT_INLINE = PAYLOAD_SIZE // 8           # 428 extent blocks, ~108k extents a file

Extent = tuple[int, int, int]  # (logical, physical, length)


def pack_xattrs(xattrs: dict[bytes, bytes]) -> bytes:
    out = bytearray()
    for k, v in xattrs.items():
        out += struct.pack(">BH", len(k), len(v)) + k + v
    return bytes(out)


def unpack_xattrs(raw: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    off = 0
    while off < len(raw):
        kl, vl = struct.unpack_from(">BH", raw, off)
        off += 3
        out[raw[off:off + kl]] = raw[off + kl:off + kl + vl]
        off += kl + vl
    return out


def pack_extents(extents: list[Extent]) -> bytes:
    return b"".join(EXTENT.pack(*e) for e in extents)


def unpack_extents(raw: bytes | bytearray, count: int) -> list[Extent]:
    return [EXTENT.unpack_from(raw, i * EXTENT.size) for i in range(count)]


def pack_ext_block(extents: list[Extent], generation: int, jid: int) -> bytearray:
    buf = bytearray(BLOCK)
    struct.pack_into(">I", buf, HDR_SIZE, len(extents))
    raw = pack_extents(extents)
    buf[EXT_BLOCK_OFF:EXT_BLOCK_OFF + len(raw)] = raw
    return seal(buf, T_EXT, generation, jid)


def unpack_ext_block(buf: bytes | bytearray) -> tuple[int, list[Extent]]:
    gen = check(buf, T_EXT)
    (n,) = struct.unpack_from(">I", buf, HDR_SIZE)
    return gen, unpack_extents(buf[EXT_BLOCK_OFF:], n)


# ---------------------------------------------------------------------------------------------
# Directory blocks: a count, then entries (inode u64, type u8, name length u8, name)
# ---------------------------------------------------------------------------------------------

DIR_OFF = HDR_SIZE + 4
DIR_ENTRY_FIXED = 10
DIR_SPACE = BLOCK - DIR_OFF


def dirent_size(name: bytes) -> int:
    return DIR_ENTRY_FIXED + len(name)


def pack_dir_block(entries: dict[bytes, tuple[int, int]], generation: int, jid: int) -> bytearray:
    buf = bytearray(BLOCK)
    struct.pack_into(">I", buf, HDR_SIZE, len(entries))
    off = DIR_OFF
    for name, (ino, dtype) in entries.items():
        struct.pack_into(">QBB", buf, off, ino, dtype, len(name))
        buf[off + DIR_ENTRY_FIXED:off + DIR_ENTRY_FIXED + len(name)] = name
        off += DIR_ENTRY_FIXED + len(name)
    return seal(buf, T_DIR, generation, jid)


def unpack_dir_block(buf: bytes | bytearray) -> tuple[int, dict[bytes, tuple[int, int]]]:
    gen = check(buf, T_DIR)
    (n,) = struct.unpack_from(">I", buf, HDR_SIZE)
    out = {}
    off = DIR_OFF
    for _ in range(n):
        ino, dtype, nl = struct.unpack_from(">QBB", buf, off)
        out[bytes(buf[off + DIR_ENTRY_FIXED:off + DIR_ENTRY_FIXED + nl])] = (ino, dtype)
        off += DIR_ENTRY_FIXED + nl
    return gen, out
