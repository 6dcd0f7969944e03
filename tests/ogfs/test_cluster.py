"""Two nodes on one disk: two real FUSE mounts with different hostdata against one real memexpd.

The "nodes" are loopback addresses (127.0.0.2 and 127.0.0.3, cid 0 and 1) on this host; memexpd
listens on 127.0.0.1.  The cluster timeout is 2 s so expiry tests are quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ogfsrun import NODE_ENV, NODE_PYTHON, SBIN, LoopDevice, Mount, ogfs_cmd, tear_down_mounts_under
from support import free_port, wait_for

from ogfs import slots, slotwatch
from ogfs.blockdev import Device
from ogfs.layout import SB_BLOCK, Superblock, unpack_rgrp, unpack_rindex

pytestmark = pytest.mark.slow

A_IP, B_IP = "127.0.0.2", "127.0.0.3"
TIMEOUT = 2


@dataclass
class Cluster:
    cidev: LoopDevice
    data: LoopDevice
    port: int
    tmp: Path
    memexpd: subprocess.Popen | None = None

    def start_memexpd(self) -> None:
        log = open(self.tmp / "memexpd.log", "ab")
        self.memexpd = subprocess.Popen(
            [NODE_PYTHON, str(SBIN / "memexpd"), "-d", self.cidev.path, "-f",
             "--pidfile", str(self.tmp / "memexpd.pid"), "--log", str(self.tmp / "memexpd.log"), "--debug"],
            env=NODE_ENV, stdout=log, stderr=log)
        wait_for(lambda: self._answers(), 15, "memexpd to listen")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def kill_memexpd(self, sig: int = signal.SIGKILL) -> None:
        assert self.memexpd is not None
        self.memexpd.send_signal(sig)
        self.memexpd.wait(10)
        self.memexpd = None

    def mount(self, ip: str, name: str) -> Mount:
        mnt = self.tmp / name
        mnt.mkdir(exist_ok=True)
        m = Mount(self.data.path, mnt, f"hostdata={ip}")
        m.mount()
        return m

    def tool(self, *args: str) -> dict:
        res = ogfs_cmd("ogfs_tool", *args, "-d", self.cidev.path, "--json", check=True)
        return json.loads(res.stdout)

    def log(self) -> str:
        return (self.tmp / "memexpd.log").read_text()


def write_config(path: Path, port: int, cbport: int, switch_port: int | None = None) -> None:
    """The cluster's ogfscf.cf: STOMITH manual, or the lab's power switch on 127.0.0.1:switch_port."""
    stomith = ("STOMITH: manual\nname: manual\n" if switch_port is None else
               f"STOMITH: labctl\nname: labctl\nipaddr: 127.0.0.1\nport: {switch_port}\n")
    method = "manual" if switch_port is None else "labctl"
    plugs = ("", "") if switch_port is None else (" 1", " 2")
    path.write_text(
        "datadev: /dev/sda3\ncidev: /dev/sda1\n"
        f"lockdev: 127.0.0.1:{port}\ncbport: {cbport}\ntimeout: {TIMEOUT}\n{stomith}"
        f"node: {A_IP} 0 SM: {method}{plugs[0]}\nnode: {B_IP} 1 SM: {method}{plugs[1]}\n")


@pytest.fixture
def cluster(loopdev: LoopDevice, tmp_path: Path) -> Iterator[Cluster]:
    yield from _cluster(loopdev, tmp_path, None)


def _cluster(loopdev: LoopDevice, tmp_path: Path, switch_port: int | None) -> Iterator[Cluster]:
    cidev = LoopDevice(tmp_path / "cidev.img", 4 << 20)
    port = free_port()
    write_config(tmp_path / "ogfscf.cf", port, free_port(), switch_port)
    ogfs_cmd("ogfsconf", "-c", tmp_path / "ogfscf.cf", "-d", cidev, check=True)
    ogfs_cmd("mkfs.ogfs", "-p", "memexp", "-t", cidev.path, "-j", "2", "-J", "8", "-O", "-q", loopdev,
             check=True)
    c = Cluster(cidev, loopdev, port, tmp_path)
    c.start_memexpd()
    try:
        yield c
    finally:
        tear_down_mounts_under(tmp_path)
        if c.memexpd is not None:
            c.kill_memexpd(signal.SIGTERM)
        cidev.detach()


def fsck_clean(c: Cluster) -> None:
    res = ogfs_cmd("fsck.ogfs", "-n", c.data)
    assert res.returncode == 0, res.stdout


def test_a_write_on_one_node_is_read_on_the_other_at_once(cluster: Cluster) -> None:
    a = cluster.mount(A_IP, "a")
    b = cluster.mount(B_IP, "b")
    for i in range(20):
        (a.path / f"f{i}").write_bytes(b"from a %d" % i)
        assert (b.path / f"f{i}").read_bytes() == b"from a %d" % i
        (b.path / f"f{i}").write_bytes(b"from b %d" % i)
        assert (a.path / f"f{i}").read_bytes() == b"from b %d" % i
    (b.path / "dir").mkdir()
    (b.path / "dir" / "x").write_bytes(b"x" * 100000)
    assert sorted(os.listdir(a.path / "dir")) == ["x"]
    os.rename(a.path / "dir" / "x", a.path / "y")
    assert not (b.path / "dir" / "x").exists() and (b.path / "y").stat().st_size == 100000
    info = json.loads(ogfs_cmd("ogfs_tool", "counters", a.path, "--json", check=True).stdout)
    assert info["callbacks"] > 0 and info["demotes"] > 0  # the locks really moved
    a.umount()
    b.umount()
    fsck_clean(cluster)


def _appender(path: Path, tag: str, n: int, errors: list[BaseException]) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        for i in range(n):
            os.write(fd, f"{tag} {i:05d}\n".encode())
        os.close(fd)
    except BaseException as e:  # noqa: BLE001
        errors.append(e)


def test_concurrent_appends_from_both_nodes_lose_nothing(cluster: Cluster) -> None:
    a = cluster.mount(A_IP, "a")
    b = cluster.mount(B_IP, "b")
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_appender, args=(m.path / "log", tag, 300, errors))
               for m, tag in ((a, "A"), (b, "B"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    lines = (a.path / "log").read_text().splitlines()
    assert sorted(lines) == sorted([f"A {i:05d}" for i in range(300)] + [f"B {i:05d}" for i in range(300)])
    assert (b.path / "log").read_text().splitlines() == lines


def _churn(root: Path, tag: str, n: int, errors: list[BaseException]) -> None:
    try:
        for i in range(n):
            p = root / f"{tag}{i}"
            p.write_bytes(tag.encode() * (i % 50))
            if i % 3 == 0:
                os.rename(p, root / f"{tag}{i}.renamed")
            if i % 5 == 0 and i:
                try:
                    os.unlink(root / f"{tag}{i - 5}")
                except FileNotFoundError:
                    os.unlink(root / f"{tag}{i - 5}.renamed")
    except BaseException as e:  # noqa: BLE001
        errors.append(e)


def test_concurrent_namespace_changes_in_one_directory_end_consistent(cluster: Cluster) -> None:
    a = cluster.mount(A_IP, "a")
    b = cluster.mount(B_IP, "b")
    (a.path / "shared").mkdir()
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_churn, args=(m.path / "shared", tag, 120, errors))
               for m, tag in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    seen_a, seen_b = sorted(os.listdir(a.path / "shared")), sorted(os.listdir(b.path / "shared"))
    assert seen_a == seen_b and len(seen_a) == 2 * (120 - 120 // 5 + 1)
    a.umount()
    b.umount()
    fsck_clean(cluster)


def _mount_caching(cluster: Cluster, ip: str, name: str) -> Mount:
    """A mount whose kernel may keep attributes for an hour: only the withdrawal at a glock
    callback can make it see the other node's changes."""
    mnt = cluster.tmp / name
    mnt.mkdir()
    m = Mount(cluster.data.path, mnt, f"hostdata={ip},cache=3600")
    m.mount()
    return m


def test_attributes_the_kernel_caches_are_withdrawn_when_the_other_node_takes_the_lock(
        cluster: Cluster) -> None:
    a = _mount_caching(cluster, A_IP, "a")
    b = _mount_caching(cluster, B_IP, "b")
    (a.path / "d").mkdir()
    (a.path / "f").write_bytes(b"abc")
    fds = [os.open(p, os.O_RDONLY) for p in (a.path / "f", a.path / "d", a.path)]
    try:
        f, d, root = fds
        before = [os.fstat(fd) for fd in fds]  # a's kernel caches these from here on
        assert before[0].st_size == 3
        with open(b.path / "f", "ab") as out:
            out.write(b"defg")
        os.chmod(b.path / "f", 0o600)
        (b.path / "d" / "sub").mkdir()
        (b.path / "new").mkdir()
        # fstat asks the kernel, not a path walk: no lookup refreshes anything on the way
        assert os.fstat(f).st_size == 7 and stat.S_IMODE(os.fstat(f).st_mode) == 0o600
        assert os.fstat(d).st_nlink == before[1].st_nlink + 1
        assert os.fstat(root).st_nlink == before[2].st_nlink + 1
        os.truncate(b.path / "f", 1)
        assert os.fstat(f).st_size == 1 and os.read(f, 10) == b"a"
    finally:
        for fd in fds:
            os.close(fd)
    a.umount()
    b.umount()
    fsck_clean(cluster)


def test_blocks_a_node_reserved_for_its_next_inodes_can_go_to_the_other_node(cluster: Cluster) -> None:
    # a reserves the blocks after its last new inode and holds their locks before it needs
    # them.  b, once it holds that resource group (it unlinks one of a's files there), creates
    # its own inodes on those very blocks; then a creates again and must pass over them.
    a = cluster.mount(A_IP, "a")
    b = cluster.mount(B_IP, "b")
    (a.path / "shared").mkdir()
    for i in range(10):
        (a.path / "shared" / f"a{i}").write_bytes(b"a%d" % i * 500)
    counters = json.loads(ogfs_cmd("ogfs_tool", "counters", a.path, "--json", check=True).stdout)
    assert counters["prefetches"] > 0
    os.unlink(b.path / "shared" / "a0")
    for i in range(10):
        (b.path / "shared" / f"b{i}").write_bytes(b"b%d" % i * 500)
    for i in range(10, 20):
        (a.path / "shared" / f"a{i}").write_bytes(b"a%d" % i * 500)
    want = {f"a{i}": b"a%d" % i * 500 for i in range(1, 20)} | {f"b{i}": b"b%d" % i * 500 for i in range(10)}
    for m in (a, b):
        assert sorted(os.listdir(m.path / "shared")) == sorted(want)
        assert {n: (m.path / "shared" / n).read_bytes() for n in want} == want
    a.umount()
    b.umount()
    fsck_clean(cluster)


def counters(m: Mount) -> dict:
    return json.loads(ogfs_cmd("ogfs_tool", "counters", m.path, "--json", check=True).stdout)


def forgets_then(check: Callable[[], bool]) -> Callable[[], bool]:
    """`check`, after asking the kernel to drop unused inodes, so FUSE sends their FORGETs (an
    unlinked inode is freed at its last forget)."""
    def f() -> bool:
        Path("/proc/sys/vm/drop_caches").write_text("2\n")
        return check()
    return f


def unlinked_on_disk(dev: LoopDevice) -> int:
    """Inodes the resource groups on the device count as unlinked and not yet freed."""
    d = Device(dev.path, readonly=True)
    try:
        sb = Superblock.unpack(d.read(SB_BLOCK))
        rindex = unpack_rindex([d.read(sb.rindex_start + i) for i in range(sb.rindex_blocks)],
                               sb.rgrp_count)
        return sum(unpack_rgrp(d.read(e.header))[3] for e in rindex)
    finally:
        d.close()


def unmount_clean_and_nothing_left_unlinked(c: Cluster, *mounts: Mount) -> None:
    for m in mounts:
        m.umount()
    fsck_clean(c)
    assert unlinked_on_disk(c.data) == 0


def test_a_file_unlinked_on_one_node_lives_while_the_other_has_it_open(cluster: Cluster) -> None:
    a = cluster.mount(A_IP, "a")
    b = cluster.mount(B_IP, "b")
    data = os.urandom(1 << 20)
    (a.path / "f").write_bytes(data)
    fd = os.open(b.path / "f", os.O_RDONLY)
    try:
        os.unlink(a.path / "f")
        assert os.fstat(fd).st_nlink == 0  # b sees the unlink at once
        # a's kernel lets the inode go: a tries to free it, and must find it open on b.
        wait_for(forgets_then(lambda: counters(a)["unlinked_held_elsewhere"] >= 1), 20,
                 "node a to try to free the unlinked inode")
        assert counters(a)["unlinked_freed"] == 0
        for i in range(6):  # new data on a: it must not land on the open file's blocks
            with open(a.path / f"g{i}", "wb") as g:
                g.write(os.urandom(1 << 20))
                os.fsync(g.fileno())
        assert os.pread(fd, len(data) + 1, 0) == data
    finally:
        os.close(fd)
    # b's last close and forget free it: b was called back when a's try failed.
    wait_for(forgets_then(lambda: counters(b)["unlinked_freed"] >= 1), 20,
             "node b to free the inode after its last close")
    unmount_clean_and_nothing_left_unlinked(cluster, a, b)


def test_a_file_unlinked_while_nobody_has_it_open_is_freed_at_once(cluster: Cluster) -> None:
    a = cluster.mount(A_IP, "a")
    b = cluster.mount(B_IP, "b")
    for i in range(5):
        (b.path / f"f{i}").write_bytes(os.urandom(100000))
        assert (a.path / f"f{i}").stat().st_size == 100000
    for i in range(5):
        os.unlink(a.path / f"f{i}")
    wait_for(forgets_then(lambda: counters(a)["unlinked_freed"] + counters(b)["unlinked_freed"] >= 5),
             20, "the five unlinked inodes to be freed")
    unmount_clean_and_nothing_left_unlinked(cluster, a, b)


def test_a_dead_node_is_expired_stomithed_and_recovered_by_the_survivor(cluster: Cluster) -> None:
    a = cluster.mount(A_IP, "a")
    b = cluster.mount(B_IP, "b")
    for i in range(30):  # fsync'd files on a, its journal full of recent transactions
        with open(a.path / f"keep{i}", "wb") as f:
            f.write(os.urandom(3000) + b"%d" % i)
            f.flush()
            os.fsync(f.fileno())
    expect = {f"keep{i}": (a.path / f"keep{i}").read_bytes() for i in range(30)}
    with open(a.path / "busy", "wb") as f:  # a holds this inode's lock (and the root's) EX
        f.write(b"held by a")
        f.flush()
        os.fsync(f.fileno())
    pid = a.pid()
    os.kill(pid, signal.SIGKILL)
    a.force_detach()
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append((b.path / "busy").read_bytes()))
    reader.start()  # blocks: a's lock is frozen until a's journal is recovered
    wait_for(lambda: "expired" in cluster.log(), 10 * TIMEOUT, "memexpd to expire node a")
    nodes = cluster.tool("nodes")
    assert any(n["ip"] == A_IP and n["state"] in ("stomith_wait", "expired") for n in nodes), nodes
    assert reader.is_alive(), "read returned while a's lock should be frozen"
    assert "ogfs_tool stomith-ack" in cluster.log()
    ogfs_cmd("ogfs_tool", "stomith-ack", A_IP, "-d", cluster.cidev.path, check=True)
    reader.join(30)
    assert result == [b"held by a"]
    for name, data in expect.items():
        assert (b.path / name).read_bytes() == data
    wait_for(lambda: "replayed" in _daemon_log(b), 10, "b's recovery log line")
    b.umount()
    fsck_clean(cluster)


def _daemon_log(m: Mount) -> str:
    return Path(f"/var/log/ogfs/{str(m.path).strip('/').replace('/', '-')}.log").read_text()


def test_seed_failover_in_miniature(cluster: Cluster) -> None:
    """memexpd and the only mount die together; a fresh memexpd; the other node mounts first."""
    a = cluster.mount(A_IP, "a")
    for i in range(40):
        with open(a.path / f"f{i}", "wb") as f:
            f.write(b"%d" % i * 1000)
            f.flush()
            os.fsync(f.fileno())
    pid = a.pid()
    os.kill(pid, signal.SIGKILL)
    cluster.kill_memexpd()
    a.force_detach()
    journals = json.loads(ogfs_cmd("ogfs_tool", "journals", cluster.data, "--json", check=True).stdout)
    assert journals[0]["state"] == "dirty"
    cluster.start_memexpd()
    b = cluster.mount(B_IP, "b")
    for i in range(40):
        assert (b.path / f"f{i}").read_bytes() == b"%d" % i * 1000
    assert "first mounter" in _daemon_log(b)
    b.umount()
    journals = json.loads(ogfs_cmd("ogfs_tool", "journals", cluster.data, "--json", check=True).stdout)
    assert [j["state"] for j in journals] == ["clean", "clean"]
    fsck_clean(cluster)


def test_memexpd_restart_under_two_live_mounts(cluster: Cluster) -> None:
    a = cluster.mount(A_IP, "a")
    b = cluster.mount(B_IP, "b")
    (a.path / "before").write_bytes(b"1")
    assert (b.path / "before").read_bytes() == b"1"
    cluster.kill_memexpd()
    cluster.start_memexpd()
    (a.path / "after").write_bytes(b"2")  # waits for the reconnect and the grace period
    assert (b.path / "after").read_bytes() == b"2"
    (b.path / "before").write_bytes(b"3")
    assert (a.path / "before").read_bytes() == b"3"
    a.umount()
    b.umount()
    fsck_clean(cluster)


def test_first_mount_refused_while_another_slot_is_alive(cluster: Cluster) -> None:
    stop = threading.Event()

    def live_node() -> None:  # node a, alive and writing its disk heartbeat, unknown to memexpd
        s = slots.Slot(0, slots.MOUNTED, 42, 0, 0, 200, A_IP)
        while not stop.is_set():
            s.counter += 1
            s.time_ns = time.time_ns()
            slots.write_slot(cluster.cidev.path, s)
            stop.wait(0.2)

    t = threading.Thread(target=live_node)
    t.start()
    try:
        mnt = cluster.tmp / "b"
        mnt.mkdir()
        res = ogfs_cmd("mount.ogfs", cluster.data, mnt, "-o", f"hostdata={B_IP}")
        assert res.returncode == 32
        assert "refusing to mount as first node" in res.stderr and A_IP in res.stderr
    finally:
        stop.set()
        t.join()
    b = cluster.mount(B_IP, "b")  # the slot stopped moving: a is dead, b may mount
    assert "it did not move while we watched: dead" in _daemon_log(b)  # no watcher here
    b.umount()


def test_a_first_mount_takes_the_slot_watchers_word(cluster: Cluster) -> None:
    # Node a died mounted: its slot says "mounted" and never moves again.  This host's
    # ogfs_slotwatch (started at boot on a lab node) has seen it frozen for longer than 1.5 of
    # a's intervals, so b's first mount counts a as dead without watching the slot itself.
    dead = slots.Slot(0, slots.MOUNTED, 42, 7, time.time_ns(), 100, A_IP)
    slots.write_slot(cluster.cidev.path, dead)
    watcher = subprocess.Popen([NODE_PYTHON, str(SBIN / "ogfs_slotwatch"), "-d", cluster.cidev.path],
                               env=NODE_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: frozen_for(cluster, dead) > 0.15, 10, "the watcher to see a's slot frozen")
        b = cluster.mount(B_IP, "b")
        assert "ogfs_slotwatch has seen it frozen for" in _daemon_log(b)
        b.umount()
    finally:
        watcher.terminate()
        out = watcher.communicate(timeout=10)[0]
    assert "watching the disk heartbeats of cids 0, 1" in out
    assert f"cid 0 ({A_IP}): mounted" in out


def frozen_for(cluster: Cluster, slot: slots.Slot) -> float:
    """Seconds this host's ogfs_slotwatch has seen `slot` on the cidev as it is now; -1: not."""
    since = slotwatch.unchanged_since(cluster.cidev.path, slot)
    return -1.0 if since is None else time.monotonic() - since


def test_mount_without_memexpd_fails_in_bounded_time(cluster: Cluster) -> None:
    cluster.kill_memexpd()
    mnt = cluster.tmp / "a"
    mnt.mkdir()
    t = time.monotonic()
    res = ogfs_cmd("mount.ogfs", cluster.data, mnt, "-o", f"hostdata={A_IP}")
    assert res.returncode == 32
    assert "cannot reach the lock server memexpd at 127.0.0.1" in res.stderr
    assert time.monotonic() - t < 60


def _mount_state(m: Mount) -> dict:
    res = ogfs_cmd("ogfs_tool", "mount", m.path, "--json")
    return json.loads(res.stdout) if res.returncode == 0 else {}


def _block_hashes(dev: LoopDevice) -> list[bytes]:
    import hashlib
    with open(dev.path, "rb") as f:
        return [hashlib.sha1(b).digest() for b in iter(lambda: f.read(4096), b"")]


# Writes a0, a1, ... under argv[1], fsync'd, printing each name once it is durable; exits with
# the errno of the first write that fails.
_FSYNC_WRITER = """
import os, sys
try:
    for i in range(100000):
        with open(os.path.join(sys.argv[1], "a%d" % i), "wb") as f:
            f.write(b"a%d" % i * 500)
            f.flush()
            os.fsync(f.fileno())
        print("a%d" % i)
except OSError as e:
    print(e, file=sys.stderr)
    sys.exit(e.errno)
"""


def test_a_node_frozen_past_its_lease_wakes_up_fenced_and_writes_nothing(cluster: Cluster) -> None:
    """The seed's failover with a node that is only frozen (docs/ogfs.md, "Fencing"): a mounts
    and writes; a and memexpd freeze; a fresh memexpd, and b mounts first, judges a dead by its
    slot, replays a's journal (unfenced: STOMITH manual) and writes.  a wakes up: its lease has
    run out, its renewal finds the fence, and it withdraws before writing a single block."""
    a = cluster.mount(A_IP, "a")
    # The writer is a process of its own, not a thread: a file it has open on a's mount while a's
    # daemon is stopped would be inherited by every subprocess this test forks, and each child's
    # close of it (FUSE FLUSH) would hang until a wakes up.
    writer = subprocess.Popen([sys.executable, "-u", "-c", _FSYNC_WRITER, str(a.path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    acked = [writer.stdout.readline().strip() for _ in range(20)]
    assert acked == [f"a{i}" for i in range(20)], acked
    assert cluster.memexpd is not None
    os.kill(a.pid(), signal.SIGSTOP)
    os.kill(cluster.memexpd.pid, signal.SIGSTOP)
    cluster.kill_memexpd()  # a stopped memexpd dies of SIGKILL: the port is free for a fresh one
    cluster.start_memexpd()
    b = cluster.mount(B_IP, "b")
    for i in range(20):
        with open(b.path / f"b{i}", "wb") as f:
            f.write(os.urandom(6000))
            f.flush()
            os.fsync(f.fileno())
    mine = {f"b{i}": (b.path / f"b{i}").read_bytes() for i in range(20)}
    taken = _mount_state(b)["fences"]
    assert [(f["jid"], f["unfenced"]) for f in taken] == [(0, True)], taken
    assert "replaying its journal UNFENCED" in _daemon_log(b)
    on_disk = _block_hashes(cluster.data)

    os.kill(a.pid(), signal.SIGCONT)
    st = wait_for(lambda: (s := _mount_state(a)) and s.get("withdrawn") and s, 30, "a to withdraw")
    assert f"journal 0 taken by {B_IP} (cid 1)" in st["withdrawn"], st
    assert st["lease"]["fenced"], st
    rest, err = writer.communicate(timeout=30)
    acked += rest.split()
    assert writer.returncode == 5, (writer.returncode, err)  # EIO: a's mount was withdrawn
    for name in acked:  # every write a had acknowledged before it froze is on the disk b replayed
        assert (b.path / name).read_bytes() == b"a%d" % int(name[1:]) * 500
    assert _block_hashes(cluster.data) == on_disk, "a wrote to the disk after it woke up"
    assert "fenced: journal 0 taken by" in _daemon_log(a)

    a.umount()
    assert {n: (b.path / n).read_bytes() for n in mine} == mine
    b.umount()
    fsck_clean(cluster)


SWITCH = Path(__file__).parents[2] / "labctl" / "runtime" / "assets" / "labctl-switch"


def test_memexpds_stomith_powers_a_frozen_node_off_through_the_switch(loopdev: LoopDevice,
                                                                      tmp_path: Path) -> None:
    """STOMITH labctl with the real switch program (its engine a fake whose kill SIGKILLs node a's
    daemon): a freezes holding a lock b wants; memexpd expires it, has the switch power it off,
    and only after the switch's OK asks b to replay a's journal."""
    from fake_engine import FakeEngine, node

    engine = FakeEngine(str(tmp_path / "engine.sock")).start()
    engine.containers = {"node-a": node("t"), "node-b": node("t")}
    switch_port = free_port()
    switch = subprocess.Popen(
        [sys.executable, "-u", str(SWITCH), "--lab", "t", "--listen", f"127.0.0.1:{switch_port}",
         "--engine", str(tmp_path / "engine.sock"), "--allow", "127.0.0.1", "1=node-a", "2=node-b"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    gen = _cluster(loopdev, tmp_path, switch_port)
    c = next(gen)
    try:
        a = c.mount(A_IP, "a")
        b = c.mount(B_IP, "b")
        for i in range(20):
            with open(a.path / f"keep{i}", "wb") as f:
                f.write(b"%d" % i * 700)
                f.flush()
                os.fsync(f.fileno())
        with open(a.path / "busy", "wb") as f:
            f.write(b"held by a")
            f.flush()
            os.fsync(f.fileno())
        pid = a.pid()
        engine.on_kill["node-a"] = lambda: os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGSTOP)  # frozen: no heartbeat to memexpd, no disk heartbeat
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append((b.path / "busy").read_bytes()))
        reader.start()  # blocks until a's journal is recovered
        reader.join(60)
        assert result == [b"held by a"]
        assert engine.kills == ["node-a"]
        log = c.log()
        assert f"STOMITH of node {A_IP} (cid 0) done: the power switch says 'OK off 1'" in log, log[-2000:]
        assert "ogfs_tool stomith-ack" not in log  # nobody had to acknowledge anything
        taken = _mount_state(b)["fences"]
        assert [(f["jid"], f["unfenced"], f["how"]) for f in taken] == [(0, False, "powered off by the lab's "
                                                                          "power switch")], taken
        for i in range(20):
            assert (b.path / f"keep{i}").read_bytes() == b"%d" % i * 700
        a.force_detach()
        b.umount()
        fsck_clean(c)
    finally:
        switch.terminate()
        switch.wait(10)
        engine.shutdown()
        with contextlib.suppress(StopIteration):
            next(gen)
