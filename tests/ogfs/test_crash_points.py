"""Crash at hundreds of device writes; replay; the tree must be a whole-operation state.

In-process: the filesystem core runs the workload on an image file and its device refuses the
Nth write (the same thing SIGKILL does to the daemon: every write before it happened, none after).
After remounting (journal replay) the tree's shape (names, types, sizes, links, xattrs) must equal
the model's after some operation at or after the last fsync, every fsync'd file must be there
byte for byte, and `fsck.ogfs -n` must find nothing.  (Why contents are not compared for the
other files: workload.shape.)
test_daemon_crash.py does the same with a real daemon, a real mount and a real SIGKILL.
"""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

import pytest
from workload import Tree, Workload, matching_snapshot

from ogfs import fsck
from ogfs.blockdev import Crashed
from ogfs.fs import Filesystem, Options
from ogfs.mkfs import mkfs

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("OGFS_TEST_SEED", random.randrange(1 << 30)))
CRASH_POINTS = int(os.environ.get("OGFS_CRASH_POINTS", "300"))


class CoreTarget:
    """The workload's operations on ogfs.fs.Filesystem, by path."""

    def __init__(self, fs: Filesystem) -> None:
        self.fs = fs

    def _resolve(self, path: str) -> tuple[int, bytes]:
        parts = path.split("/")
        d = self.fs.root
        for p in parts[:-1]:
            d = self.fs.lookup(d, p.encode()).addr
        return d, parts[-1].encode()

    def _ino(self, path: str) -> int:
        d, name = self._resolve(path)
        return self.fs.lookup(d, name).addr

    def mkdir(self, path: str) -> None:
        self.fs.mkdir(*self._resolve(path), 0o755)

    def write_file(self, path: str, data: bytes, fsync: bool) -> None:
        i = self.fs.create(*self._resolve(path), 0o644)
        self.fs.write(i.addr, 0, data)
        if fsync:
            self.fs.fsync()

    def append(self, path: str, data: bytes) -> None:
        ino = self._ino(path)
        self.fs.write(ino, self.fs.inode(ino).size, data)

    def truncate(self, path: str, size: int) -> None:
        self.fs.truncate(self._ino(path), size)

    def unlink(self, path: str) -> None:
        self.fs.unlink(*self._resolve(path))

    def rmdir(self, path: str) -> None:
        self.fs.rmdir(*self._resolve(path))

    def rename(self, src: str, dst: str) -> None:
        self.fs.rename(*self._resolve(src), *self._resolve(dst))

    def link(self, src: str, dst: str) -> None:
        self.fs.link(self._ino(src), *self._resolve(dst))

    def symlink(self, target: str, path: str) -> None:
        self.fs.symlink(*self._resolve(path), target.encode())

    def setxattr(self, path: str, name: str, value: bytes) -> None:
        self.fs.setxattr(self._ino(path), name.encode(), value)

    def commit(self) -> None:
        self.fs.commit()


def read_tree(fs: Filesystem) -> Tree:
    out: Tree = {}

    def walk(d: int, prefix: str) -> None:
        for name, addr in fs.readdir(d):
            p = prefix + name.decode()
            i = fs.inode(addr)
            if stat.S_ISDIR(i.mode):
                out[p] = ("d",)
                walk(addr, p + "/")
            elif stat.S_ISLNK(i.mode):
                out[p] = ("l", fs.readlink(addr).decode())
            else:
                x = tuple((k.decode(), v) for k, v in i.xattrs.items())
                out[p] = ("f", fs.read(addr, 0, i.size), x)

    walk(fs.root, "")
    return out


def run_until_crash(image: Path, seed: int, crash_after: int | None) -> Workload:
    mkfs(str(image), "nolock", "", 1, 4, 16, force=True)
    fs = Filesystem(str(image), Options(commit_interval=3600, barrier=False))
    fs.dev.crash_after = None if crash_after is None else fs.dev.writes + crash_after
    w = Workload(seed)
    try:
        w.run(CoreTarget(fs))
        if crash_after is None:
            fs.unmount()
            return w
    except Crashed:
        pass
    fs.dev.close()  # the crash: memory is gone, the device keeps what was written
    return w


def check_recovery(image: Path, w: Workload, label: str) -> None:
    fs = Filesystem(str(image), Options(barrier=False))
    tree = read_tree(fs)
    fs.unmount()
    for p, data in w.precious.items():
        got = tree.get(p)
        assert got is not None and got[1] == data, f"{label}: fsync'd {p} lost or changed"
    k = matching_snapshot(w, tree)
    assert k is not None, f"{label}: recovered tree is no whole-operation state at or after " \
                          f"operation {w.durable_from}"
    rep = fsck.full(str(image))
    assert not rep.errors, f"{label}: fsck: {rep.errors[:5]}"


def test_crash_at_hundreds_of_write_points(tmp_path: Path) -> None:
    print(f"seed {SEED} (rerun with OGFS_TEST_SEED={SEED})")
    image = tmp_path / "img"
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    # A clean run first: how many writes the workload makes.
    mkfs(str(image), "nolock", "", 1, 4, 16, force=True)
    fs = Filesystem(str(image), Options(commit_interval=3600, barrier=False))
    start = fs.dev.writes
    clean = Workload(SEED)
    clean.run(CoreTarget(fs))
    total = fs.dev.writes - start
    fs.unmount()
    check_recovery(image, clean, "clean run")
    rng = random.Random(SEED)
    points = sorted(rng.sample(range(total), min(CRASH_POINTS, total)))
    print(f"{total} device writes; crashing at {len(points)} of them")
    for n in points:
        w = run_until_crash(image, SEED, n)
        check_recovery(image, w, f"seed {SEED}, crash before write {n}")
