"""The real daemon, a real mount, a real SIGKILL at random device writes.

mount.ogfs passes OGFS_CRASH_AFTER_WRITES to the daemon, which SIGKILLs itself instead of its
Nth device write after the mount is live.  The workload (workload.py) runs through the kernel
until the mount dies; then the dead mount is detached, the device mounted again (journal
replay), and the same checks as test_crash_points.py apply, plus `fsck.ogfs -n` as a command.
"""

from __future__ import annotations

import json
import os
import random
import stat
from pathlib import Path

import pytest
from ogfsrun import LoopDevice, Mount, ogfs_cmd
from workload import Tree, Workload, matching_snapshot

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("OGFS_TEST_SEED", random.randrange(1 << 30)))
KILLS = int(os.environ.get("OGFS_DAEMON_KILLS", "60"))


class MountTarget:
    """The workload's operations as system calls on a mounted tree."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _p(self, rel: str) -> Path:
        return self.root / rel

    def mkdir(self, path: str) -> None:
        os.mkdir(self._p(path))

    def write_file(self, path: str, data: bytes, fsync: bool) -> None:
        fd = os.open(self._p(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, path: str, data: bytes) -> None:
        fd = os.open(self._p(path), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def truncate(self, path: str, size: int) -> None:
        os.truncate(self._p(path), size)

    def unlink(self, path: str) -> None:
        os.unlink(self._p(path))

    def rmdir(self, path: str) -> None:
        os.rmdir(self._p(path))

    def rename(self, src: str, dst: str) -> None:
        os.rename(self._p(src), self._p(dst))

    def link(self, src: str, dst: str) -> None:
        os.link(self._p(src), self._p(dst))

    def symlink(self, target: str, path: str) -> None:
        os.symlink(target, self._p(path))

    def setxattr(self, path: str, name: str, value: bytes) -> None:
        os.setxattr(self._p(path), name, value)

    def commit(self) -> None:
        pass  # the daemon commits on its own timer (commit=0.05 below)


def read_tree(root: Path) -> Tree:
    out: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("d",)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(full))
            else:
                x = tuple((k, os.getxattr(full, k)) for k in os.listxattr(full))
                out[rel] = ("f", full.read_bytes(), x)
    return out


def test_sigkill_at_random_writes(loopdev: LoopDevice, tmp_path: Path) -> None:
    print(f"seed {SEED}, {KILLS} kills (rerun with OGFS_TEST_SEED={SEED})")
    rng = random.Random(SEED)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    m = Mount(loopdev.path, mnt, "lockproto=nolock,commit=0.05")
    # Clean runs first: how many device writes the workload makes after the mount is live (the
    # hook counts from there: the mount's own writes are not in its range). Timed commits
    # (commit=0.05) make the count vary with the machine's load, so the kill point is drawn below
    # the fewest of three runs of what the killed runs do.
    def writes() -> int:
        return int(json.loads(ogfs_cmd("ogfs_tool", "counters", mnt, "--json", check=True).stdout)
                   ["device_writes"])

    counts = []
    for _ in range(3):
        ogfs_cmd("mkfs.ogfs", "-p", "nolock", "-j", "1", "-J", "4", "-O", "-q", loopdev, check=True)
        m.mount()
        base = writes()
        Workload(SEED, ops=300, split_creates=True).run(MountTarget(mnt))
        counts.append(writes() - base)
        m.umount()
    total = min(counts)
    killed = 0
    for _ in range(KILLS):
        ogfs_cmd("mkfs.ogfs", "-p", "nolock", "-j", "1", "-J", "4", "-O", "-q", loopdev, check=True)
        n = rng.randrange(1, total)
        m.mount(env={"OGFS_CRASH_AFTER_WRITES": str(n)})
        w = Workload(SEED, ops=300, split_creates=True)  # create and write: two system calls
        try:
            w.run(MountTarget(mnt))
            # the hook may fire on the commit timer after the last operation: nobody saw an error,
            # but the daemon is gone (before, such runs were counted as not killed)
            crashed = ogfs_cmd("ogfs_tool", "counters", mnt, "--json").returncode != 0
        except OSError:
            crashed = True
        label = f"seed {SEED}, SIGKILL before write {n} of {total}"
        if crashed:
            killed += 1
            m.force_detach()
        else:
            m.umount()
        assert not m.is_mounted()
        m.mount()  # replays the dead daemon's journal
        tree = read_tree(mnt)
        m.umount()
        for p, data in w.precious.items():
            assert tree.get(p, (None, None))[1] == data, f"{label}: fsync'd {p} lost or changed"
        assert matching_snapshot(w, tree) is not None, f"{label}: not a whole-operation state"
        res = ogfs_cmd("fsck.ogfs", "-n", loopdev)
        assert res.returncode == 0, f"{label}: {res.stdout}"
    # Timed commits make the write count vary a little between runs; nearly all must die.
    assert killed >= KILLS * 3 // 4, f"only {killed} of {KILLS} runs were killed: the hook did not fire"
