"""Fence records: "your journal was taken", written on the cidev for the node that must stop.

A labctl extension, not OpenGFS (docs/ogfs.md, "Fencing").  Block 272 + CID of the cidev is the
fence record of that CID.  A node that is about to replay another node's journal (a first
mounter replaying a node it judged dead by its disk heartbeat, or a survivor asked to RECOVER by
memexpd) first calls `take()`:

  1. read the victim's slot: nothing to fence if it says unmounted;
  2. write the fence record naming the victim's mount (its slot's mount_id), who took it, when
     and how the victim was fenced (powered off by the switch, STOMITH acknowledged, or not at
     all: "unfenced");
  3. read the slot again and wait until the victim's disk lease (ogfs/lease.py) has certainly
     run out: one lease length after the newest renewal the slot can show.  Not when the power
     switch confirmed the victim off (`off`): a dead node renews nothing, and waiting would only
     lengthen the outage (docs/fencing.md, "What the switch costs").

THE INVARIANT, with ogfs/lease.py: after take() returns, the victim's mount writes nothing more
to the filesystem.  The victim renews its lease by writing its slot and then reading its fence
record; the taker writes the fence and then reads the slot (the two orders of Dekker's
algorithm): either the victim's renewal reads the fence and withdraws, or the taker sees the
slot move and waits out the lease that renewal began.  A lease lasts one slot interval from the
moment its renewal started, so it has run out one lease length after the taker saw the slot as
it is (the renewal wrote the slot before the taker read it).

The window that remains: a victim frozen after it checked its lease and before its write
reached the device writes once when it thaws, however late.  Only a power switch closes it: with
STOMITH `labctl` the victim is off before take() is called, and the record says so.

Runs on the nodes: standard library only.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from . import slots
from .cidev import BLOCK, FENCE_FIRST_BLOCK

MAGIC = b"OGFSFENC"
# magic, victim cid, victim mount_id, taker cid, time_ns, taker host (64), how (96)
_R = struct.Struct(">8sIQIQ64s96s")

# How the victim was fenced before its journal was taken.
POWERED_OFF = "powered off by the lab's power switch"
STOMITH_DONE = "after memexpd's STOMITH step"
UNFENCED = "UNFENCED: judged dead by its disk heartbeat alone, nobody powered it off"


@dataclass
class Record:
    cid: int          # the node whose journal was taken
    mount_id: int     # ... by this mount of it (its slot's mount_id)
    by_cid: int
    by_host: str
    time_ns: int
    how: str

    def pack(self) -> bytes:
        body = _R.pack(MAGIC, self.cid, self.mount_id, self.by_cid, self.time_ns,
                       self.by_host.encode()[:64].ljust(64, b"\0"), self.how.encode()[:96].ljust(96, b"\0"))
        return (body + struct.pack(">I", zlib.crc32(body))).ljust(BLOCK, b"\0")

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.time_ns / 1e9))
        return f"journal {self.cid} taken by {self.by_host} (cid {self.by_cid}) at {when}, {self.how}"

    @property
    def unfenced(self) -> bool:
        return self.how == UNFENCED


def read_fence(cidev: str, cid: int) -> Record | None:
    """The fence record of `cid`, or None if there is none (or it is damaged)."""
    fd = os.open(cidev, os.O_RDONLY)
    try:
        raw = os.pread(fd, _R.size + 4, (FENCE_FIRST_BLOCK + cid) * BLOCK)
    finally:
        os.close(fd)
    if len(raw) < _R.size + 4 or raw[:8] != MAGIC:
        return None
    if struct.unpack(">I", raw[_R.size:])[0] != zlib.crc32(raw[:_R.size]):
        return None
    _m, c, mount_id, by, t, host, how = _R.unpack(raw[:_R.size])
    return Record(c, mount_id, by, host.rstrip(b"\0").decode(errors="replace"), t,
                  how.rstrip(b"\0").decode(errors="replace"))


def write_fence(cidev: str, rec: Record) -> None:
    fd = os.open(cidev, os.O_WRONLY)
    try:
        os.pwrite(fd, rec.pack(), (FENCE_FIRST_BLOCK + rec.cid) * BLOCK)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def lease_seconds(slot: slots.Slot) -> float:
    """How long a renewal of `slot`'s lease lasts (ogfs/lease.py): one slot interval."""
    return slot.interval_ms / 1000


def fenced_already(cidev: str, victim: int) -> Record | None:
    """The record that fenced the mount `victim`'s slot still shows, if one did: its journal was
    taken before (and its lease waited out), so it needs neither a power-off nor a wait again.
    A node that went down fenced leaves its slot saying "mounted" until it mounts again."""
    s = slots.read_slot(cidev, victim)
    rec = read_fence(cidev, victim)
    if s is None or s.state == slots.UNMOUNTED or rec is None or rec.mount_id != s.mount_id:
        return None
    return rec


def take(cidev: str, victim: int, by_cid: int, by_host: str, how: str, log: logging.Logger,
         unchanged_since: Callable[[slots.Slot], float | None] | None = None,
         sleep: Callable[[float], None] = time.sleep, off: bool = False) -> Record | None:
    """Fence `victim`'s mount before its journal is replayed (steps in the module docstring).
    `unchanged_since` (ogfs.slotwatch) may say since when the slot has looked as it does: then
    the wait is usually over already.  `off`: the power switch confirmed the victim off, so there
    is no lease to wait out.  Returns the record written, None if nothing was mounted."""
    seen_at = time.monotonic()
    s0 = slots.read_slot(cidev, victim)
    if s0 is None or s0.state == slots.UNMOUNTED:
        return None
    old = fenced_already(cidev, victim)
    if old is not None:
        log.info("fence: %s's mount %016x was fenced already: %s", s0.hostdata, s0.mount_id, old.describe())
        return old
    since = unchanged_since(s0) if unchanged_since is not None else None
    seen = min(seen_at, since) if since is not None else seen_at
    rec = Record(victim, s0.mount_id, by_cid, by_host, time.time_ns(), how)
    write_fence(cidev, rec)
    again_at = time.monotonic()
    s1 = slots.read_slot(cidev, victim)
    if s1 is not None and s1 != s0:
        seen = again_at  # it renewed meanwhile: that renewal may still hold
    # Powered off: a renewal seen here came from the thaw that `docker kill` of a frozen
    # container allows, before the kill; the victim is gone now, and nobody wrote in between.
    wait = 0.0 if off else seen + lease_seconds(s0) - time.monotonic()
    level = logging.WARNING if rec.unfenced else logging.INFO
    log.log(level, "fence: %s (%s's mount %016x)%s", rec.describe(), s0.hostdata, s0.mount_id,
            f"; waiting {wait:.1f} s for its disk lease to run out" if wait > 0 else "")
    if wait > 0:
        sleep(wait)
    return rec
