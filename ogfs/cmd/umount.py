"""umount.fuse.ogfs: the helper umount(8) runs for an ogfs mount (type fuse.ogfs).

    umount.fuse.ogfs {directory|device} [-flnrv] [-N namespace] [-t type]

A plain FUSE unmount returns before the daemon has written its last commit; heartbeat would
then stop memexpd while the daemon still needs it.  So: detach with `umount -i` (the kernel
stops sending requests, the daemon's loop ends), then wait until the daemon has committed,
checkpointed, marked its journal clean and exited.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time

from .. import mountopts

WAIT = 120  # seconds for the daemon's final commit


def find_mount(target: str) -> tuple[str, str] | None:
    """(device, mount point) of the ogfs mount named by a directory or a device."""
    real = os.path.realpath(target)
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if fstype == "fuse.ogfs" and real in (mnt, os.path.realpath(dev)):
                return dev, mnt
    return None


def daemon_pid(mountpoint: str) -> int | None:
    try:
        with open(mountopts.run_paths(mountpoint).pid) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has finished its work
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait for a process that is not our child: a pidfd becomes readable when it exits."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        deadline = time.monotonic() + timeout
        while alive(pid):  # a zombie (no reaper yet) has done its work too
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([fd], [], [], min(left, 0.5))
        return True
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="umount.fuse.ogfs",
                                 description="Unmount an ogfs filesystem cleanly (called by umount).")
    ap.add_argument("target", help="mount point or device")
    ap.add_argument("-f", action="store_true", help="force")
    ap.add_argument("-l", action="store_true", help="lazy: detach now, the daemon finishes later")
    ap.add_argument("-n", action="store_true", help="no mtab (accepted)")
    ap.add_argument("-r", action="store_true", help="remount read-only on failure (accepted)")
    ap.add_argument("-v", action="store_true", help="verbose")
    ap.add_argument("-N", dest="namespace")
    ap.add_argument("-t", dest="type")
    a = ap.parse_args(argv)
    found = find_mount(a.target)
    if found is None:
        print(f"umount.fuse.ogfs: {a.target}: not an ogfs mount", file=sys.stderr)
        return 32
    _dev, mnt = found
    pid = daemon_pid(mnt)
    cmd = ["umount", "-i"] + (["-f"] if a.f else []) + (["-l"] if a.l else []) + [mnt]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"umount.fuse.ogfs: {mnt}: {res.stderr.strip() or 'umount failed'}", file=sys.stderr)
        return res.returncode
    if pid is None or a.l:
        return 0
    if not wait_exit(pid, WAIT):
        print(f"umount.fuse.ogfs: {mnt}: daemon {pid} still busy after {WAIT} s", file=sys.stderr)
        return 32
    if a.v:
        print(f"umount.fuse.ogfs: {mnt} unmounted, journal clean")
    return 0
