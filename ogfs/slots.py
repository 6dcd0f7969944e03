"""Disk-heartbeat slots on the cidev: the guard against a split-brain first mount.

A labctl extension, not OpenGFS: block 16 + CID of the cidev is that node's slot.  A mounted
daemon rewrites its slot every `interval` seconds with a growing counter.  A fresh memexpd
knows nothing of the nodes that used the previous one, so before a node mounts as the *first*
mounter (and replays everyone's journals) it looks at the other slots: a slot that says
"mounted" and whose counter still moves belongs to a node that is alive and writing, and the
mount is refused.  A slot that stops moving for 1.5 intervals belongs to a dead node.
ogfs.slotwatch watches the slots from boot, so that time has usually passed by the time it
matters (a failover): then the check costs nothing.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .cidev import BLOCK, SLOT_FIRST_BLOCK

MAGIC = b"OGFSSLOT"
UNMOUNTED, MOUNTING, MOUNTED = 0, 1, 2
STATE_NAMES = {UNMOUNTED: "unmounted", MOUNTING: "mounting", MOUNTED: "mounted"}
# magic, cid, state, incarnation, counter, time_ns, interval_ms, hostdata, mount_id
_S = struct.Struct(">8sIIQQQI64sQ")


@dataclass
class Slot:
    cid: int
    state: int = UNMOUNTED
    incarnation: int = 0
    counter: int = 0
    time_ns: int = 0
    interval_ms: int = 0
    hostdata: str = ""
    # Random, new for every mount: a fence record (ogfs/fence.py) names the mount it fences, so
    # the same node mounting again later is not fenced by an old record.
    mount_id: int = 0

    def pack(self) -> bytes:
        body = _S.pack(MAGIC, self.cid, self.state, self.incarnation, self.counter, self.time_ns,
                       self.interval_ms, self.hostdata.encode()[:64].ljust(64, b"\0"), self.mount_id)
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
    _m, c, state, inc, counter, t, interval, host, mount_id = _S.unpack(raw[:_S.size])
    return Slot(c, state, inc, counter, t, interval, host.rstrip(b"\0").decode(errors="replace"),
                mount_id)


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
                sleep: Callable[[float], None] = time.sleep,
                unchanged_since: Callable[[Slot], float | None] | None = None) -> list[Slot]:
    """Slots of other nodes that are still writing.  A "mounted" slot whose counter moves within
    1.5 of its intervals is alive; one that does not is dead.  `unchanged_since(slot)` may tell
    since when (CLOCK_MONOTONIC) the slot has looked exactly as it does now (ogfs.slotwatch): that
    time counts, so a slot the watcher has seen frozen for long enough is dead without waiting."""
    suspects = {}
    for cid in cids:
        if cid == my_cid:
            continue
        s = read_slot(cidev, cid)
        if s is not None and s.state in (MOUNTING, MOUNTED):
            suspects[cid] = s
    if not suspects or not wait:
        return list(suspects.values())
    now = time.monotonic()
    deadline = {}
    for cid, s in suspects.items():
        since = unchanged_since(s) if unchanged_since is not None else None
        deadline[cid] = min(now, since if since is not None else now) + 1.5 * s.interval_ms / 1000
    alive: list[Slot] = []
    while True:
        now = time.monotonic()
        for cid in [c for c in suspects if now >= deadline[c]]:
            del suspects[cid]  # frozen for 1.5 intervals: dead
        if not suspects:
            return alive
        sleep(min(0.1, max(0.0, min(deadline.values()) - now)))
        for cid, old in list(suspects.items()):
            s = read_slot(cidev, cid)
            if s is None or s.state == UNMOUNTED:
                del suspects[cid]  # it unmounted cleanly meanwhile
            elif s.counter != old.counter or s.incarnation != old.incarnation:
                alive.append(s)
                del suspects[cid]


def frozen_for(slot: Slot, unchanged_since: Callable[[Slot], float | None] | None) -> float | None:
    """Seconds the watcher has seen `slot` unchanged, for log lines; None if it has not."""
    since = unchanged_since(slot) if unchanged_since is not None else None
    return None if since is None else max(0.0, time.monotonic() - since)
