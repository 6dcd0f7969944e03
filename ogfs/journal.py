"""The per-node journal: a physical redo log of whole metadata blocks.

Read this file in one sitting; it is modelled on xv6's log.c.

Layout of one journal region (blocks relative to its start):

    0        log head: the sequence number the next transaction must carry, and flags
    1 ...    transactions, back to back:  descriptor(s) | block images | commit

A descriptor lists the home addresses of the images that follow it (506 a block; a big
transaction has several descriptors).  The commit block carries the same sequence number and
a CRC32 over the descriptors and images.  A transaction counts only if its commit block is
there and its CRC matches.

THE INVARIANT: every metadata block on the device, in place, is either
  (a) exactly what the last *checkpointed* state says, or
  (b) covered by a committed transaction in this journal whose image is newer.
So replaying the committed transactions in order, from block 1 while their sequence numbers
follow the head's, always yields the state of the last commit.

How the code keeps it:
  * metadata is never written in place except by `checkpoint`, and only images that are
    already committed (the filesystem commits everything dirty first, between operations, so
    the cache and the committed state are the same thing at that moment);
  * `checkpoint` writes every committed image home, then a new head whose sequence number is
    the next one: the old transactions stop matching and the log is empty again.  A crash in
    the middle leaves the old head, so replay writes the same images again (idempotent);
  * data blocks are not logged (ordered mode): the filesystem writes new data in place before
    the commit that makes it reachable, and never reuses a freed block before a checkpoint, so
    replaying an old image can never land on a block that now holds someone's data.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

from .blockdev import Device
from .layout import (
    BLOCK,
    HDR_SIZE,
    T_LOGCOMMIT,
    T_LOGDESC,
    T_LOGHEAD,
    CorruptBlock,
    Journal,
    check,
    seal,
)

F_UNMOUNT = 1  # the owner unmounted cleanly: the log is empty

_HEAD = struct.Struct(">QI16s")  # next sequence, flags, filesystem uuid
_DESC = struct.Struct(">QII")    # sequence, total images, images listed in this block
_COMMIT = struct.Struct(">QII")  # sequence, total images, crc over descriptors + images
DESC_PER_BLOCK = (BLOCK - HDR_SIZE - _DESC.size) // 8


class JournalError(Exception):
    pass


class Log:
    def __init__(self, dev: Device, region: Journal, jid: int, uuid: bytes) -> None:
        self.dev, self.region, self.jid, self.uuid = dev, region, jid, uuid
        self.seq = 0      # sequence number of the next transaction
        self.pos = 1      # where it goes, relative to the region
        self.flags = 0
        self.commits = 0  # counters for ogfs_tool
        self.checkpoints = 0

    # -- the head --------------------------------------------------------------------------

    def read_head(self) -> tuple[int, int]:
        buf = self.dev.read(self.region.start)
        check(buf, T_LOGHEAD)
        seq, flags, uuid = _HEAD.unpack_from(buf, HDR_SIZE)
        if uuid != self.uuid:
            raise JournalError(f"journal {self.jid} belongs to another filesystem")
        return seq, flags

    def write_head(self, seq: int, flags: int) -> None:
        buf = bytearray(BLOCK)
        _HEAD.pack_into(buf, HDR_SIZE, seq, flags, self.uuid)
        self.dev.write(self.region.start, seal(buf, T_LOGHEAD, seq, self.jid))
        self.seq, self.pos, self.flags = seq, 1, flags

    # -- reading transactions (replay, fsck, ogfs_tool) ------------------------------------

    def transactions(self, seq: int) -> Iterator[list[tuple[int, bytes]]]:
        """Yield the committed transactions that follow a head of sequence `seq`."""
        pos, start, end = 1, self.region.start, self.region.length
        while pos < end:
            try:
                first = self.dev.read(start + pos)
                check(first, T_LOGDESC)
            except CorruptBlock:
                return
            s, total, _ = _DESC.unpack_from(first, HDR_SIZE)
            ndesc = -(-total // DESC_PER_BLOCK) if total else 1
            if s != seq or pos + ndesc + total + 1 > end:
                return
            raw = self.dev.read(start + pos, ndesc + total + 1)
            body, commit = raw[:-BLOCK], raw[-BLOCK:]
            try:
                check(commit, T_LOGCOMMIT)
            except CorruptBlock:
                return
            cs, ctotal, crc = _COMMIT.unpack_from(commit, HDR_SIZE)
            if cs != seq or ctotal != total or zlib.crc32(body) != crc:
                return
            targets: list[int] = []
            for d in range(ndesc):
                off = d * BLOCK + HDR_SIZE
                _, _, n = _DESC.unpack_from(body, off)
                targets += struct.unpack_from(f">{n}Q", body, off + _DESC.size)
            images = [body[(ndesc + i) * BLOCK:(ndesc + i + 1) * BLOCK] for i in range(total)]
            yield list(zip(targets, images, strict=True))
            pos += ndesc + total + 1
            seq += 1

    # -- writing ----------------------------------------------------------------------------

    def space_for(self, nblocks: int) -> bool:
        ndesc = -(-nblocks // DESC_PER_BLOCK) or 1
        return self.pos + ndesc + nblocks + 1 <= self.region.length

    @property
    def used(self) -> int:
        return self.pos - 1

    def commit(self, blocks: Iterable[tuple[int, bytes | bytearray]]) -> None:
        """Append one transaction.  The caller checkpoints first if there is no room."""
        items = list(blocks)
        if not self.space_for(len(items)):
            raise JournalError("transaction does not fit in the journal")
        descs = []
        for i in range(0, max(len(items), 1), DESC_PER_BLOCK):
            chunk = items[i:i + DESC_PER_BLOCK]
            buf = bytearray(BLOCK)
            _DESC.pack_into(buf, HDR_SIZE, self.seq, len(items), len(chunk))
            struct.pack_into(f">{len(chunk)}Q", buf, HDR_SIZE + _DESC.size, *(b for b, _ in chunk))
            descs.append(seal(buf, T_LOGDESC, self.seq, self.jid))
        body = b"".join(descs) + b"".join(img for _, img in items)
        commit = bytearray(BLOCK)
        _COMMIT.pack_into(commit, HDR_SIZE, self.seq, len(items), zlib.crc32(body))
        seal(commit, T_LOGCOMMIT, self.seq, self.jid)
        # Body first, commit block last: the commit block is the commit point.
        self.dev.write(self.region.start + self.pos, body)
        self.dev.write(self.region.start + self.pos + len(body) // BLOCK, commit)
        self.pos += len(body) // BLOCK + 1
        self.seq += 1
        self.commits += 1

    def checkpoint(self, installed: Iterable[tuple[int, bytes | bytearray]], flags: int = 0) -> None:
        """Write committed images home, then empty the log with a new head."""
        for blk, img in installed:
            self.dev.write(blk, img)
        self.write_head(self.seq, flags)
        self.checkpoints += 1


def replay(dev: Device, region: Journal, jid: int, uuid: bytes) -> int:
    """Redo every committed transaction of a journal; leave it empty.  Returns how many."""
    log = Log(dev, region, jid, uuid)
    seq, _flags = log.read_head()
    n = 0
    for txn in log.transactions(seq):
        for blk, img in txn:
            dev.write(blk, img)
        n += 1
    dev.flush()
    log.write_head(seq + n, F_UNMOUNT)  # empty and closed: the owner mounts it afresh
    dev.flush()
    return n


def journal_state(dev: Device, region: Journal, jid: int, uuid: bytes) -> tuple[str, int]:
    """('clean' | 'dirty', transactions waiting) for fsck and ogfs_tool.

    As in GFS, a journal is dirty until its owner unmounts cleanly: a mounted node's journal
    is dirty too, which is exactly what recovery after its death must assume."""
    log = Log(dev, region, jid, uuid)
    seq, flags = log.read_head()
    n = sum(1 for _ in log.transactions(seq))
    return ("clean" if flags & F_UNMOUNT and not n else "dirty"), n
