"""Injected disk faults: the lab's stand-in for device-mapper's error and delay targets.

The kernel of the lab has no device-mapper, so a node's view of the shared disk is made to fail
in ogfs's own block layer (ogfs/blockdev.py, `Device`).  One control file per node, default
/run/ogfs/diskfault.json (the environment variable OGFS_DISKFAULT names another, for tests):

    {"device": "/dev/sda3",    the device it applies to (as opened, symlinks resolved), or "*"
     "errors": "write",        "read" | "write" (writes and flushes) | "all" | null
     "after": 0,               let this many more I/Os of that kind through first, then fail
     "slow_ms": 0,             sleep this long before every I/O
     "hang": false}            block every I/O until the file no longer says so

No file means a healthy disk.  `ogfs_tool diskfault set|clear|show` writes, removes and prints
it; the file is always replaced whole (write + rename), so a reader never sees half of one.

THE INVARIANT: a Device that finds no control file behaves exactly as before this module and
pays one clock read per I/O for that; a Device that finds one applies it to every I/O from at
most POLL seconds after the file changed.  A changed file is a new fault: `after` counts from
the first I/O that sees it, per Device.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("ogfs")

DEFAULT_PATH = "/run/ogfs/diskfault.json"  # /run: per node, and gone at the next boot
POLL = 0.1        # seconds between two looks at the control file (a stat, when nothing changed)
HANG_POLL = 0.05  # seconds between two looks while an I/O hangs: clearing it frees it in time
READ, WRITE = "read", "write"
ERRORS = ("read", "write", "all")


class FaultError(ValueError):
    """A control file (or a `set`) that does not say a fault ogfs understands."""


class InjectedError(OSError):
    """EIO raised on purpose: the control file says this I/O fails."""


@dataclass(frozen=True)
class Fault:
    device: str = "*"
    errors: str | None = None
    after: int = 0
    slow_ms: int = 0
    hang: bool = False

    @classmethod
    def parse(cls, obj: Any) -> Fault:
        if not isinstance(obj, dict):
            raise FaultError("the control file must hold a JSON object")
        unknown = set(obj) - {"device", "errors", "after", "slow_ms", "hang"}
        if unknown:
            raise FaultError(f"unknown key(s) {', '.join(sorted(unknown))}")
        f = cls(**obj)
        if not isinstance(f.device, str) or not (f.device == "*" or f.device.startswith("/")):
            raise FaultError(f"device {f.device!r}: an absolute device path or \"*\"")
        if f.errors is not None and f.errors not in ERRORS:
            raise FaultError(f"errors {f.errors!r}: one of {', '.join(ERRORS)} or null")
        for key in ("after", "slow_ms"):
            v = getattr(f, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise FaultError(f"{key} {v!r}: a whole number >= 0")
        if not isinstance(f.hang, bool):
            raise FaultError(f"hang {f.hang!r}: true or false")
        return f

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def active(self) -> bool:
        return self.errors is not None or self.slow_ms > 0 or self.hang

    def applies_to(self, realdev: str) -> bool:
        return self.device == "*" or os.path.realpath(self.device) == realdev

    def fails(self, kind: str) -> bool:
        return self.errors == "all" or self.errors == kind


def control_path() -> str:
    return os.environ.get("OGFS_DISKFAULT") or DEFAULT_PATH


def load(path: str | None = None) -> Fault | None:
    """The fault the control file says, None without one; FaultError if it is malformed."""
    path = path or control_path()
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        return Fault.parse(json.loads(text))
    except (json.JSONDecodeError, TypeError) as e:
        raise FaultError(str(e)) from None


def save(fault: Fault, path: str | None = None) -> str:
    """Replace the control file atomically (temporary file + rename); returns its path."""
    path = path or control_path()
    Fault.parse(asdict(fault))  # never write what a Device would refuse to read
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(fault.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def clear(path: str | None = None) -> bool:
    """Remove the control file: the disk is healthy again.  False if there was none."""
    try:
        os.unlink(path or control_path())
        return True
    except FileNotFoundError:
        return False


class Watch:
    """One Device's view of the control file.  The Device calls `gate` before an I/O when
    `fault` is set or the clock has passed `due`; otherwise it does not call in at all."""

    def __init__(self, device_path: str) -> None:
        self.device = device_path
        self.realdev = os.path.realpath(device_path)
        self.path = control_path()
        self.due = 0.0                   # monotonic time of the next look at the control file
        self.fault: Fault | None = None  # the fault now applying to this device
        self.passed = 0                  # I/Os let through under `after` since this fault came
        self.injected = 0                # I/Os failed on purpose (for tests and the log)
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime, size) of the file read

    def gate(self, kind: str) -> None:
        """Apply the fault to one I/O of `kind` (READ or WRITE): hang, sleep, or raise EIO."""
        now = time.monotonic()
        if now >= self.due:
            self.refresh(now)
        if self.fault is not None and self.fault.hang:
            self._hang()
        f = self.fault
        if f is None:
            return
        if f.slow_ms:
            time.sleep(f.slow_ms / 1000)
        if f.fails(kind):
            if self.passed < f.after:
                self.passed += 1
                return
            self.injected += 1
            raise InjectedError(errno.EIO, f"{os.strerror(errno.EIO)} (injected by {self.path})")

    def refresh(self, now: float) -> None:
        """Look at the control file: one stat, and a read only when it changed."""
        self.due = now + POLL
        try:
            st = os.stat(self.path)
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            seen = None
        if seen == self._seen:
            return
        self._seen, old, self.passed = seen, self.fault, 0
        try:
            fault = load(self.path) if seen else None
        except (FaultError, OSError) as e:
            log.error("disk fault control file %s ignored: %s", self.path, e)
            fault = None
        self.fault = fault if fault is not None and fault.active and fault.applies_to(self.realdev) \
            else None
        if self.fault is not None:
            log.warning("disk fault injected on %s: %s", self.device, self.fault.to_json())
        elif old is not None:
            log.warning("disk fault on %s cleared: the disk is healthy again", self.device)

    def _hang(self) -> None:
        """Block the caller, as a hung disk does, until the control file stops saying hang."""
        log.warning("%s: I/O hangs (injected) until %s changes", self.device, self.path)
        started = time.monotonic()
        while self.fault is not None and self.fault.hang:
            time.sleep(HANG_POLL)
            self.refresh(time.monotonic())
        log.warning("%s: I/O resumes after hanging %.1f s", self.device, time.monotonic() - started)
