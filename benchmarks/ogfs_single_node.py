#!/usr/bin/env python3
"""ogfs on one node (lock_nolock): throughput and small-file rate, as ratios measured in one run.

    sudo python3 benchmarks/ogfs_single_node.py [--size-mb 256] [--files 3000] [--runs 3]

Sequential: 256 MiB written in 1 MiB writes then fsync, and read back, through the mount and on
the raw loop device (the same device, before mkfs).  Targets (issue 2): ogfs >= 30 % of raw.
Small files: create + 4 KiB write + close, per second, through the mount and in a local directory
on the host's filesystem.  Target: >= 1,000 creates/s on a 2-core machine.
Needs root (loop device, FUSE), Debian's python3-pyfuse3; prints medians of --runs runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SBIN = ROOT / "ogfs" / "sbin"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT)}
MiB = 1 << 20


def cmd(name: str, *args: object) -> None:
    subprocess.run(["/usr/bin/python3", str(SBIN / name), *map(str, args)], env=ENV, check=True,
                   capture_output=True)


def seq_write(path: str, size: int, flags: int = 0) -> float:
    buf = os.urandom(MiB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    t = time.perf_counter()
    for i in range(size // MiB):
        os.pwrite(fd, buf, i * MiB)
    os.fsync(fd)
    dt = time.perf_counter() - t
    os.close(fd)
    return size / dt / MiB


def seq_read(path: str, size: int) -> float:
    fd = os.open(path, os.O_RDONLY)
    t = time.perf_counter()
    for i in range(size // MiB):
        os.pread(fd, MiB, i * MiB)
    dt = time.perf_counter() - t
    os.close(fd)
    return size / dt / MiB


def creates(directory: Path, n: int) -> float:
    data = os.urandom(4096)
    t = time.perf_counter()
    for i in range(n):
        fd = os.open(directory / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
    return n / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (loop devices, FUSE)", file=sys.stderr)
        return 2
    size = a.size_mb * MiB
    work = Path(tempfile.mkdtemp(prefix="ogfs-bench-"))
    img = work / "disk.img"
    with open(img, "wb") as f:
        f.truncate(size * 2 + 256 * MiB)
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], check=True, capture_output=True,
                          text=True).stdout.strip()
    mnt = work / "mnt"
    mnt.mkdir()
    res: dict[str, list[float]] = {k: [] for k in ("raw_w", "raw_r", "ogfs_w", "ogfs_r", "ogfs_c", "local_c")}
    try:
        for _ in range(a.runs):
            res["raw_w"].append(seq_write(loop, size))
            res["raw_r"].append(seq_read(loop, size))
            cmd("mkfs.ogfs", "-p", "nolock", "-j", "2", "-O", "-q", loop)
            cmd("mount.ogfs", loop, mnt, "-o", "lockproto=nolock")
            try:
                res["ogfs_w"].append(seq_write(str(mnt / "big"), size))
                res["ogfs_r"].append(seq_read(str(mnt / "big"), size))
                (mnt / "small").mkdir()
                res["ogfs_c"].append(creates(mnt / "small", a.files))
            finally:
                cmd("umount.fuse.ogfs", mnt)
            local = work / "local"
            local.mkdir()
            res["local_c"].append(creates(local, a.files))
            shutil.rmtree(local)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
        shutil.rmtree(work, ignore_errors=True)
    m = {k: statistics.median(v) for k, v in res.items()}
    print(f"ogfs single node, median of {a.runs} runs, {a.size_mb} MiB sequential, {a.files} small files")
    print(f"  sequential write   raw {m['raw_w']:8.0f} MiB/s   ogfs {m['ogfs_w']:8.0f} MiB/s   "
          f"ratio {m['ogfs_w'] / m['raw_w']:.0%}   (target >= 30%)")
    print(f"  sequential read    raw {m['raw_r']:8.0f} MiB/s   ogfs {m['ogfs_r']:8.0f} MiB/s   "
          f"ratio {m['ogfs_r'] / m['raw_r']:.0%}   (target >= 30%)")
    print(f"  create+4KiB+close  local {m['local_c']:6.0f} /s    ogfs {m['ogfs_c']:8.0f} /s     "
          f"ratio {m['ogfs_c'] / m['local_c']:.1%}   (target >= 1000/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
