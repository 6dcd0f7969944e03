"""The shared block device, read and written in whole blocks.

Plain buffered pread/pwrite: in the lab every node opens the same loop device of one host
kernel, so all nodes share one buffer cache and see each other's writes at once, and a killed
daemon loses nothing it had already written (the kernel still holds it).  `flush()` is the
barrier (fdatasync) for the one thing a container lab does not simulate: the host losing power.

Crash points for tests: with `crash_after=N` the device lets N writes through and then calls
`on_crash` instead of the next one.  The daemon's on_crash is SIGKILL to itself (see
ogfs/daemon.py); in-process tests raise an exception and throw the whole Filesystem away.

Injected faults (ogfs/diskfault.py): before each I/O the device reads the clock, and looks at
the node's fault control file when POLL has passed; a fault may fail, slow or hang the I/O.

Withdraw.  THE INVARIANT: once a write or flush has failed (injected or real), this Device
writes nothing more to the disk, so the disk stays exactly as the failure left it: as after a
crash at that write, which the journal is built to survive (never half a transaction: the
commit block goes last).  The filesystem cannot undo what it had already changed in memory, so
going on writing could commit half an operation.  Afterwards every write and flush fails with
EIO (`withdrawn` says why); what the filesystem does about that is fs.py's (group commits with
no request waiting are dropped, a cluster mount stops rather than give up its locks).  Reads go
on: they change nothing, and the fault file says whether they fail too.

The guard.  A cluster mount gives the device its disk lease's guard (ogfs/lease.py), asked
before every write and flush: a mount whose journal another node took withdraws before it
writes, by the same rule.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable

from . import diskfault
from .layout import BLOCK

log = logging.getLogger("ogfs")


class Crashed(Exception):
    """Raised by the default crash hook: the device accepts no more writes."""


def _raise() -> None:
    raise Crashed()


class Device:
    def __init__(self, path: str, readonly: bool = False, crash_after: int | None = None,
                 on_crash: Callable[[], None] = _raise,
                 guard: Callable[[], str | None] | None = None) -> None:
        self.path = path
        self.readonly = readonly
        self.fd = os.open(path, os.O_RDONLY if readonly else os.O_RDWR)
        self.size = os.lseek(self.fd, 0, os.SEEK_END)
        self.blocks = self.size // BLOCK
        self.writes = 0
        self.crash_after = crash_after
        self.on_crash = on_crash
        self.faults = diskfault.Watch(path)
        self.withdrawn: str | None = None  # why this node stopped writing to the device
        self.guard = guard  # None to go ahead, else why nothing may be written (the module doc)

    def read(self, blk: int, count: int = 1) -> bytes:
        w = self.faults
        if w.fault is not None or time.monotonic() >= w.due:  # healthy: just the clock
            w.gate(diskfault.READ)
        data = os.pread(self.fd, BLOCK * count, blk * BLOCK)
        if len(data) != BLOCK * count:
            raise OSError(f"{self.path}: short read at block {blk}")
        return data

    def read_bytes(self, offset: int, length: int) -> bytes:
        w = self.faults
        if w.fault is not None or time.monotonic() >= w.due:
            w.gate(diskfault.READ)
        return os.pread(self.fd, length, offset)

    def write(self, blk: int, data: bytes | bytearray | memoryview) -> None:
        self.write_bytes(blk * BLOCK, data)

    def write_bytes(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        if self.readonly:
            raise OSError(f"{self.path}: opened read-only")
        if self.withdrawn is not None:
            return self._refuse(f"write at block {offset // BLOCK}")
        if self.guard is not None and (why := self.guard()) is not None:
            self.withdraw(why)
            return self._refuse(f"write at block {offset // BLOCK}")
        if self.crash_after is not None and self.writes >= self.crash_after:
            self.on_crash()
        self.writes += 1
        start = offset
        try:
            w = self.faults
            if w.fault is not None or time.monotonic() >= w.due:
                w.gate(diskfault.WRITE)
            view = memoryview(data)
            while view:
                n = os.pwrite(self.fd, view, offset)
                view, offset = view[n:], offset + n
        except OSError as e:
            self.withdraw(f"write at block {start // BLOCK} failed: {e}")
            return self._refuse(f"write at block {start // BLOCK}", e)

    def flush(self) -> None:
        if self.readonly:
            return
        if self.withdrawn is not None:
            return self._refuse("flush")
        if self.guard is not None and (why := self.guard()) is not None:
            self.withdraw(why)
            return self._refuse("flush")
        try:
            w = self.faults
            if w.fault is not None or time.monotonic() >= w.due:
                w.gate(diskfault.WRITE)
            os.fdatasync(self.fd)
        except OSError as e:
            self.withdraw(f"flush failed: {e}")
            return self._refuse("flush", e)

    def close(self) -> None:
        os.close(self.fd)

    # -- withdraw (see the module docstring) -----------------------------------------------

    def withdraw(self, why: str) -> None:
        if self.withdrawn is not None:
            return  # the first reason stays
        self.withdrawn = why
        log.error("withdrawn: %s: %s; this node writes nothing more to it: writes and fsync fail "
                  "with EIO until a remount", self.path, why)

    def _refuse(self, what: str, failed: OSError | None = None) -> None:
        """After the withdraw: the error itself if this I/O just failed, else EIO."""
        if failed is not None:
            raise failed
        raise OSError(errno.EIO, f"{os.strerror(errno.EIO)} ({self.path} withdrawn: {self.withdrawn}; "
                      f"{what} refused)")
