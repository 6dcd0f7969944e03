"""Disk-heartbeat slots on the cidev: the guard against a split-brain first mount.

A labctl extension, not OpenGFS: block 16 + CID of the cidev is that node's slot.  A mounted
daemon rewrites its slot every `interval` seconds with a growing counter.  A fresh memexpd
knows nothing of the nodes that used the previous one, so before a node mounts as the *first*
mounter (and replays everyone's journals) it looks at the other slots: a slot that says
"mounted" and whose counter still moves belongs to a node that is alive and writing, and the
mount is refused.  A slot that stops moving for 1.5 intervals belongs to a dead node.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from dataclasses import dataclass

from .cidev import BLOCK, SLOT_FIRST_BLOCK

MAGIC = b"OGFSSLOT"
UNMOUNTED, MOUNTING, MOUNTED = 0, 1, 2
STATE_NAMES = {UNMOUNTED: "unmounted", MOUNTING: "mounting", MOUNTED: "mounted"}
_S = struct.Struct(">8sIIQQQI64s")


@dataclass
class Slot:
    cid: int
    state: int = UNMOUNTED
    incarnation: int = 0
    counter: int = 0
    time_ns: int = 0
    interval_ms: int = 0
    hostdata: str = ""

    def pack(self) -> bytes:
        body = _S.pack(MAGIC, self.cid, self.state, self.incarnation, self.counter, self.time_ns,
                       self.interval_ms, self.hostdata.encode()[:64].ljust(64, b"\0"))
        return (body + struct.pack(">I", zlib.crc32(body))).ljust(BLOCK, b"\0")


def read_slot(cidev: str, cid: int) -> Slot | None:
    """The slot of `cid`, or None if it was never written (or is damaged)."""
    fd = os.open(cidev, os.O_RDONLY)
    try:
        raw = os.pread(fd, _S.size + 4, (SLOT_FIRST_BLOCK + cid) * BLOCK)
    finally:
        os.close(fd)
    if len(raw) < _S.size + 4 or raw[:8] != MAGIC:
        return None
    if struct.unpack(">I", raw[_S.size:])[0] != zlib.crc32(raw[:_S.size]):
        return None
    _m, c, state, inc, counter, t, interval, host = _S.unpack(raw[:_S.size])
    return Slot(c, state, inc, counter, t, interval, host.rstrip(b"\0").decode(errors="replace"))


def write_slot(cidev: str, slot: Slot) -> None:
    fd = os.open(cidev, os.O_WRONLY)
    try:
        os.pwrite(fd, slot.pack(), (SLOT_FIRST_BLOCK + slot.cid) * BLOCK)
        os.fdatasync(fd)
    finally:
        os.close(fd)


class SplitBrain(Exception):
    pass


def live_others(cidev: str, my_cid: int, cids: list[int], wait: bool = True,
                sleep=time.sleep) -> list[Slot]:
    """Slots of other nodes that are still writing.  Observes each "mounted" slot for up to 1.5
    of its intervals: one whose counter moves is alive; one that does not is dead."""
    suspects = {}
    for cid in cids:
        if cid == my_cid:
            continue
        s = read_slot(cidev, cid)
        if s is not None and s.state in (MOUNTING, MOUNTED):
            suspects[cid] = s
    if not suspects or not wait:
        return list(suspects.values())
    deadline = time.monotonic() + 1.5 * max(s.interval_ms for s in suspects.values()) / 1000
    alive: list[Slot] = []
    while suspects and time.monotonic() < deadline:
        sleep(0.1)
        for cid, old in list(suspects.items()):
            now = read_slot(cidev, cid)
            if now is None or now.state == UNMOUNTED:
                del suspects[cid]  # it unmounted cleanly meanwhile
            elif now.counter != old.counter or now.incarnation != old.incarnation:
                alive.append(now)
                del suspects[cid]
    return alive
