"""The shared block device, read and written in whole blocks.

Plain buffered pread/pwrite: in the lab every node opens the same loop device of one host
kernel, so all nodes share one buffer cache and see each other's writes at once, and a killed
daemon loses nothing it had already written (the kernel still holds it).  `flush()` is the
barrier (fdatasync) for the one thing a container lab does not simulate: the host losing power.

Crash points for tests: with `crash_after=N` the device lets N writes through and then calls
`on_crash` instead of the next one.  The daemon's on_crash is SIGKILL to itself (see
ogfs/daemon.py); in-process tests raise an exception and throw the whole Filesystem away.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .layout import BLOCK


class Crashed(Exception):
    """Raised by the default crash hook: the device accepts no more writes."""


def _raise() -> None:
    raise Crashed()


class Device:
    def __init__(self, path: str, readonly: bool = False, crash_after: int | None = None,
                 on_crash: Callable[[], None] = _raise) -> None:
        self.path = path
        self.readonly = readonly
        self.fd = os.open(path, os.O_RDONLY if readonly else os.O_RDWR)
        self.size = os.lseek(self.fd, 0, os.SEEK_END)
        self.blocks = self.size // BLOCK
        self.writes = 0
        self.crash_after = crash_after
        self.on_crash = on_crash

    def read(self, blk: int, count: int = 1) -> bytes:
        data = os.pread(self.fd, BLOCK * count, blk * BLOCK)
        if len(data) != BLOCK * count:
            raise OSError(f"{self.path}: short read at block {blk}")
        return data

    def read_bytes(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def write(self, blk: int, data: bytes | bytearray | memoryview) -> None:
        self.write_bytes(blk * BLOCK, data)

    def write_bytes(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        if self.readonly:
            raise OSError(f"{self.path}: opened read-only")
        if self.crash_after is not None and self.writes >= self.crash_after:
            self.on_crash()
        self.writes += 1
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, offset)
            view, offset = view[n:], offset + n

    def flush(self) -> None:
        if not self.readonly:
            os.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)
