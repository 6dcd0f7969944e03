"""A mount's disk lease: no write reaches the filesystem unless this mount was not fenced a
moment ago.

The mount's disk-heartbeat slot (ogfs/slots.py) doubles as its lease.  A renewal reads the
mount's fence record (ogfs/fence.py), writes the slot with a higher counter and reads the fence
record again; it holds for one slot interval from the moment it started, by CLOCK_MONOTONIC.
The device asks `guard()` before every write and flush (ogfs/blockdev.py): inside the lease
that costs one clock read; outside it the write waits for a renewal first.  A renewal that finds
a fence record naming this mount fences it for good: the device withdraws, saying who took the
journal and when, and nothing more is written, not even the slot.

Why a frozen node cannot write with a stale view: a node frozen for longer than a slot interval
(cgroup freezer, a stopped VM, a long GC pause) wakes up with its lease run out, because the
monotonic clock kept counting while it slept.  Its first write waits for a renewal; the renewal
reads the fence the survivor wrote before it replayed the journal.  Others judge a slot dead only
after 1.5 intervals unchanged (ogfs/slots.py), so a renewed lease runs out half an interval
before anyone may take the journal.  The window that remains (frozen between the check and the
write) is fence.py's to describe.

slot_writer (ogfs/cluster.py) renews every half interval, so writes almost never wait.
`on_fenced` is called once, with the record, when a renewal first finds the fence (the daemon
runs the node's fenced hook then, docs/fencing.md).
Runs on the nodes: standard library only.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from . import fence, slots


class Lease:
    def __init__(self, cidev: str, slot: slots.Slot) -> None:
        self.cidev = cidev
        self.slot = slot
        if not slot.mount_id:
            slot.mount_id = int.from_bytes(os.urandom(8), "big") or 1
        self.length = fence.lease_seconds(slot)
        self.expires = 0.0  # CLOCK_MONOTONIC: never renewed yet
        self.fenced: fence.Record | None = None
        self.renewals = 0
        self.on_fenced: Callable[[fence.Record], None] | None = None
        self._lock = threading.Lock()  # the slot writer's thread and the filesystem's both renew

    def _fence_for_me(self) -> fence.Record | None:
        rec = fence.read_fence(self.cidev, self.slot.cid)
        return rec if rec is not None and rec.mount_id == self.slot.mount_id else None

    def renew(self) -> fence.Record | None:
        """Renew, unless this mount is fenced: then the record that fenced it (and no slot write)."""
        with self._lock:
            if self.fenced is not None:
                return self.fenced
            rec = self._fence_for_me()
            if rec is None:
                start = time.monotonic()
                self.slot.counter += 1
                self.slot.time_ns = time.time_ns()
                slots.write_slot(self.cidev, self.slot)
                rec = self._fence_for_me()
                if rec is None:
                    self.expires = start + self.length
                    self.renewals += 1
                    return None
            self.fenced = rec
        if self.on_fenced is not None:
            self.on_fenced(rec)
        return rec

    def guard(self) -> str | None:
        """For the device, before each write or flush: None to go ahead, else why it must not."""
        if self.fenced is None and time.monotonic() < self.expires:
            return None
        try:
            rec = self.renew()
        except OSError as e:
            return f"cannot renew the disk lease on {self.cidev}: {e}"
        return None if rec is None else f"fenced: {rec.describe()}"

    def release(self) -> None:
        """At a clean unmount: the slot says unmounted (unless fenced: the record stays the last
        word on this mount)."""
        with self._lock:
            if self.fenced is None:
                self.slot.state = slots.UNMOUNTED
                self.slot.time_ns = time.time_ns()
                slots.write_slot(self.cidev, self.slot)
