#!/usr/bin/env python3
"""lock_memexp costs, measured in one run: lock round trip, cached locks, ping-pong, recovery.

    sudo python3 benchmarks/memexp_locks.py [--locks 2000] [--files 2000] [--turns 300] [--runs 3]
                                            [--timeout 30] [--only roundtrip,cached,pingpong,recovery]

A real memexpd (foreground, 127.0.0.1, a free port) and real FUSE mounts of "nodes" on loopback
addresses (127.0.0.2 = cid 0, 127.0.0.3 = cid 1), as in tests/ogfs/test_cluster.py: a cidev
written by ogfsconf and a filesystem made by mkfs.ogfs -p memexp (32 MB journals, as in the lab),
on loop devices.

round trip  a scripted node (127.0.0.4) speaks the protocol itself (HELLO with a listening
            callback socket, heartbeats), then LOCK EX on --locks distinct inode names, each
            followed by DEMOTE UN; LOCK -> GRANTED in ms, median and p99.  Target: median <= 1 ms.
cached      create + 4 KiB write + close, per second, --files files, on one memexp mount (alone:
            its directory and resource group locks stay cached; each new inode still asks memexpd
            once) and on a nolock mount of the same device (ogfs_single_node.py's figure), in the
            same run.  Target: memexp >= 80 % of nolock.  Also nolock with cache=0 (no kernel
            cache at all, as memexp mounts ran until 2026-11-25; now they cache attributes but
            not names).
ping-pong   node A and node B append one line each, strictly by turns (two threads, a turnstile),
            to one file through their own mounts: every append moves the inode's EX lock (callback,
            commit + checkpoint on the demoting node, grant).  Hand-overs per second over --turns.
recovery    node A mounts with commit=3600 (no timer commits) and creates files until its journal
            is nearly half full (half is where ogfs checkpoints on its own), then fsyncs; its daemon
            is SIGKILLed, memexpd is killed, a fresh memexpd starts and node B mounts as first
            mounter, replaying A's journal.  Times the fresh memexpd + B's mount end to end, and
            the same sequence again with nothing to replay (the fixed waits of a first mount).

--timeout is the cluster timeout written to the cidev (the lab's two-node topology has 30): it
sets the disk-heartbeat interval (min(timeout/3, 2 s)), and so how long a fresh memexpd and a
first mounter watch a dead node's slot before they go on.
Needs root (loop devices, FUSE) and Debian's python3-pyfuse3 (the ogfs commands run on
/usr/bin/python3).  Prints medians of --runs runs; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ogfs import journal, mountopts  # noqa: E402
from ogfs.blockdev import Device  # noqa: E402
from ogfs.layout import HDR_SIZE, SB_BLOCK, T_LOGCOMMIT, T_LOGDESC, CorruptBlock, Superblock, check  # noqa: E402
from ogfs.memexp import protocol  # noqa: E402

SBIN = ROOT / "ogfs" / "sbin"
NODE_PYTHON = "/usr/bin/python3"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"}
A_IP, B_IP, RT_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
MiB = 1 << 20
PARTS = ("roundtrip", "cached", "pingpong", "recovery")


class BenchError(Exception):
    pass


def cmd(name: str, *args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([NODE_PYTHON, str(SBIN / name), *map(str, args)], env=ENV, capture_output=True,
                         text=True, timeout=timeout)
    if res.returncode != 0:
        raise BenchError(f"{name} {' '.join(map(str, args))} exited {res.returncode}:\n"
                         f"{res.stdout}{res.stderr}")
    return res


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], object], timeout: float, what: str, poll: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise BenchError(f"timed out after {timeout} s waiting for {what}")


def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[98] if len(xs) >= 2 else xs[0]


def write_config(path: Path, port: int, cbport: int, timeout: int, nodes: list[str]) -> None:
    path.write_text(
        "datadev: /dev/sda3\ncidev: /dev/sda1\n"
        f"lockdev: 127.0.0.1:{port}\ncbport: {cbport}\ntimeout: {timeout}\n"
        "STOMITH: manual\nname: manual\n"
        + "".join(f"node: {ip} {cid} SM: manual\n" for cid, ip in enumerate(nodes)))


# --------------------------------------------------------------------------- the pieces


class Memexpd:
    """memexpd in the foreground, its output in a log file; started and stopped by us only."""

    def __init__(self, work: Path, cidev: str, port: int, tag: str) -> None:
        self.work, self.cidev, self.port = work, cidev, port
        self.log = work / f"memexpd-{tag}.log"
        self.pidfile = work / f"memexpd-{tag}.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [NODE_PYTHON, str(SBIN / "memexpd"), "-d", self.cidev, "-f", "--pidfile", str(self.pidfile),
                 "--log", str(self.log), *extra], env=ENV, stdout=out, stderr=out)
        wait_for(self._answers, 15, "memexpd to answer STATUS")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"memexpd exited {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                protocol.send(s, "STATUS")
                return protocol.recv(s)["op"] == "STATUS"
        except (OSError, ConnectionError, protocol.ProtocolError):
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc = None


class Mounts:
    """Mounts made by this run, unmounted at the end whatever happened."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def mount(self, dev: str, mnt: Path, options: str) -> float:
        mnt.mkdir(parents=True, exist_ok=True)
        self.paths.append(mnt)
        t = time.perf_counter()
        cmd("mount.ogfs", dev, mnt, "-o", options, timeout=180)
        return time.perf_counter() - t

    @staticmethod
    def is_mounted(mnt: Path) -> bool:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == str(mnt) for line in f)

    def umount(self, mnt: Path) -> None:
        cmd("umount.fuse.ogfs", mnt, timeout=120)

    def kill(self, mnt: Path) -> None:
        """SIGKILL the mount's daemon (a node dying) and drop the dead FUSE connection."""
        pid = int(Path(mountopts.run_paths(str(mnt)).pid).read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10, "the daemon to die")
        if self.is_mounted(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)

    def cleanup(self) -> None:
        for mnt in reversed(self.paths):
            if not self.is_mounted(mnt):
                continue
            try:
                self.umount(mnt)
            except (BenchError, subprocess.TimeoutExpired) as e:
                print(f"cleanup: umount {mnt} failed ({str(e).strip()[:200]}); detaching", file=sys.stderr)
                pidfile = Path(mountopts.run_paths(str(mnt)).pid)
                if pidfile.exists():
                    try:
                        os.kill(int(pidfile.read_text()), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
                subprocess.run(["umount", "-l", str(mnt)], check=False)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def ask(mnt: Path, req: str = "info") -> dict[str, Any]:
    """What `ogfs_tool counters --json` asks: the daemon's control socket, without a process."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(mountopts.run_paths(str(mnt)).sock)
        s.sendall(req.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return dict(json.loads(buf))


def counters(mnt: Path) -> dict[str, Any] | None:
    """The daemon's counters, or None when its answer comes cut short (ogfs's control socket
    sends one chunk: a mount caching thousands of glocks answers with truncated JSON)."""
    try:
        return dict(ask(mnt)["counters"])
    except ValueError:
        return None


def tool_json(*args: object) -> Any:
    return json.loads(cmd("ogfs_tool", *args, "--json").stdout)


def daemon_log(mnt: Path) -> str:
    p = Path(mountopts.run_paths(str(mnt)).log)
    return p.read_text() if p.exists() else ""


def creates(directory: Path, n: int, data: bytes) -> float:
    t = time.perf_counter()
    for i in range(n):
        fd = os.open(directory / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
    return n / (time.perf_counter() - t)


class Loops:
    def __init__(self) -> None:
        self.devs: list[str] = []

    def attach(self, backing: Path, size: int) -> str:
        with open(backing, "wb") as f:
            f.truncate(size)
        dev = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True, capture_output=True,
                             text=True).stdout.strip()
        self.devs.append(dev)
        return dev

    def cleanup(self) -> None:
        for dev in reversed(self.devs):
            subprocess.run(["losetup", "-d", dev], check=False)


# --------------------------------------------------------------------------- 1. round trip


class ScriptedNode:
    """A node that is only a protocol client: HELLO, heartbeats, a callback listener."""

    def __init__(self, ip: str, cid: int, cbport: int, port: int, timeout: int) -> None:
        self.ip, self.cid, self.cbport, self.port, self.timeout = ip, cid, cbport, port, timeout
        self.send_lock = threading.Lock()
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((ip, cbport))
        self.listener.listen(4)
        self.callbacks: list[dict[str, Any]] = []
        threading.Thread(target=self._accept, daemon=True).start()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as trio's streams (the node)
        self.sock.bind((ip, 0))
        self.sock.connect(("127.0.0.1", port))
        self.send("HELLO", ip=ip, cid=cid, cbport=cbport, uuid="bench-roundtrip",
                  incarnation=int.from_bytes(os.urandom(6), "big"), mounted=False, reclaim=[])
        msg = protocol.recv(self.sock)
        if msg["op"] != "WELCOME":
            raise BenchError(f"memexpd refused the scripted node: {msg}")
        threading.Thread(target=self._heartbeats, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    self.callbacks.append(protocol.recv(conn))
                except (OSError, ConnectionError, protocol.ProtocolError):
                    return

    def _heartbeats(self) -> None:
        seq = 0
        while not self.stop.wait(self.timeout / 5):
            seq += 1
            try:
                self.send("HB", seq=seq)
            except OSError:
                return

    def send(self, op: str, **fields: Any) -> None:
        with self.send_lock:
            protocol.send(self.sock, op, **fields)

    def lock_round_trips(self, names: range) -> list[float]:
        out = []
        for i, number in enumerate(names):
            name = [protocol.INODE, number]
            t = time.perf_counter()
            self.send("LOCK", id=i + 1, name=name, state=protocol.EX, flags=0)
            msg = protocol.recv(self.sock)
            dt = time.perf_counter() - t
            if msg["op"] != "GRANTED" or msg.get("id") != i + 1:
                raise BenchError(f"expected GRANTED for id {i + 1}, got {msg}")
            out.append(dt * 1000)
            self.send("DEMOTE", name=name, state=protocol.UN)
        return out

    def close(self) -> None:
        self.stop.set()
        for s in (self.sock, self.listener):
            try:
                s.close()
            except OSError:
                pass


def bench_roundtrip(work: Path, a: argparse.Namespace) -> dict[str, list[float]]:
    """A memexpd of its own, on a cidev file (no loop device needed): the scripted node's cid 0."""
    port, cbport = free_port(), free_port()
    cidev = work / "rt-cidev.img"
    with open(cidev, "wb") as f:
        f.truncate(4 * MiB)
    write_config(work / "rt.cf", port, cbport, a.timeout, [RT_IP])
    cmd("ogfsconf", "-c", work / "rt.cf", "-d", cidev)
    m = Memexpd(work, str(cidev), port, "roundtrip")
    res: dict[str, list[float]] = {"median": [], "p99": [], "mean": []}
    m.start("--grace", "0")
    node = None
    try:
        node = ScriptedNode(RT_IP, 0, cbport, port, a.timeout)
        node.lock_round_trips(range(1, 101))  # warm up: imports, first allocations
        for r in range(a.runs):
            ms = node.lock_round_trips(range(10_000 * (r + 1), 10_000 * (r + 1) + a.locks))
            res["median"].append(statistics.median(ms))
            res["p99"].append(p99(ms))
            res["mean"].append(statistics.fmean(ms))
        if node.callbacks:
            print(f"  (round trip: {len(node.callbacks)} unexpected callbacks)", file=sys.stderr)
    finally:
        if node is not None:
            node.close()
        m.stop()
    return res


# --------------------------------------------------------------------------- the cluster parts


class Cluster:
    def __init__(self, work: Path, loops: Loops, mounts: Mounts, timeout: int) -> None:
        self.work, self.mounts = work, mounts
        self.cidev = loops.attach(work / "cidev.img", 4 * MiB)
        self.data = loops.attach(work / "data.img", 1024 * MiB)
        self.port = free_port()
        write_config(work / "ogfscf.cf", self.port, free_port(), timeout, [A_IP, B_IP])
        cmd("ogfsconf", "-c", work / "ogfscf.cf", "-d", self.cidev)
        self.memexpd = Memexpd(work, self.cidev, self.port, "cluster")
        self.n = 0

    def mkfs(self) -> None:
        cmd("mkfs.ogfs", "-p", "memexp", "-t", self.cidev, "-j", "2", "-O", "-q", self.data)

    def mnt(self, tag: str) -> Path:
        self.n += 1  # a fresh mount point each time: its daemon log is its own
        return self.work / f"{tag}{self.n}"

    def ensure_memexpd(self) -> None:
        if self.memexpd.proc is None or self.memexpd.proc.poll() is not None:
            self.memexpd.start()


def bench_cached(c: Cluster, a: argparse.Namespace) -> dict[str, list[float]]:
    data = os.urandom(4096)
    res: dict[str, list[float]] = {"nolock": [], "nolock0": [], "memexp": [], "lock_requests": [],
                                   "cached_hits": []}
    options = {"nolock": "lockproto=nolock", "nolock0": "lockproto=nolock,cache=0",
               "memexp": f"hostdata={A_IP}"}
    c.ensure_memexpd()
    for r in range(a.runs):
        c.mkfs()
        order = list(options) if r % 2 == 0 else list(reversed(options))
        for kind in order:
            mnt = c.mnt(kind)
            opts = options[kind]
            c.mounts.mount(c.data, mnt, opts)
            (mnt / kind).mkdir()
            res[kind].append(creates(mnt / kind, a.files, data))
            if kind == "memexp":
                cnt = counters(mnt)
                if cnt is not None:
                    res["lock_requests"].append(cnt["lock_requests"] / a.files)
                    res["cached_hits"].append(cnt["cached_hits"] / a.files)
            c.mounts.umount(mnt)  # on errors Mounts.cleanup unmounts
    return res


def alternate(fds: list[int], turns: int, lat: list[float]) -> float:
    """Node A appends, then node B, then A...: two threads and a turnstile.  Returns seconds."""
    turn = [threading.Semaphore(1), threading.Semaphore(0)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def side(me: int, n: int) -> None:
        try:
            for i in range(n):
                while not turn[me].acquire(timeout=0.5):
                    if stop.is_set():
                        return
                t = time.perf_counter()
                os.write(fds[me], f"{'AB'[me]} {i:05d}\n".encode())
                lat.append((time.perf_counter() - t) * 1000)
                turn[1 - me].release()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=side, args=(0, (turns + 1) // 2), daemon=True),
               threading.Thread(target=side, args=(1, turns // 2), daemon=True)]
    t0 = time.perf_counter()
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    finally:
        stop.set()
    if errors:
        raise BenchError(f"ping-pong failed: {errors[0]!r}")
    return time.perf_counter() - t0


def bench_pingpong(c: Cluster, a: argparse.Namespace) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {"rate": [], "median_ms": [], "p99_ms": [], "callbacks": []}
    c.ensure_memexpd()
    for _ in range(a.runs):
        c.mkfs()
        ma, mb = c.mnt("a"), c.mnt("b")
        c.mounts.mount(c.data, ma, f"hostdata={A_IP}")
        c.mounts.mount(c.data, mb, f"hostdata={B_IP}")
        (ma / "pingpong").write_bytes(b"")
        wait_for((mb / "pingpong").exists, 30, "node B to see the file")
        before = sum(ask(m)["counters"]["callbacks"] for m in (ma, mb))  # few glocks: answers whole
        fds = [os.open(m / "pingpong", os.O_WRONLY | os.O_APPEND) for m in (ma, mb)]
        lat: list[float] = []
        try:
            elapsed = alternate(fds, a.turns, lat)
        finally:
            for fd in fds:
                os.close(fd)
        callbacks = sum(ask(m)["counters"]["callbacks"] for m in (ma, mb)) - before
        lines = (mb / "pingpong").read_text().splitlines()
        want = [f"{'AB'[i % 2]} {i // 2:05d}" for i in range(a.turns)]
        if lines != want:
            print(f"  ping-pong: the file does not hold the {a.turns} lines in turn order "
                  f"({len(lines)} lines)", file=sys.stderr)
        res["rate"].append(a.turns / elapsed)
        res["median_ms"].append(statistics.median(lat))
        res["p99_ms"].append(p99(lat))
        res["callbacks"].append(callbacks)
        c.mounts.umount(mb)
        c.mounts.umount(ma)
    return res


def journal_usage(dev: str, jid: int) -> tuple[int, int, int, int]:
    """(blocks used, transactions, block images, journal blocks) of journal `jid`, read from the
    device: the log head, then each transaction's first descriptor and its commit block (the
    walk of journal.Log.transactions without reading the images, so it is cheap to poll)."""
    d = Device(dev, readonly=True)
    try:
        sb = Superblock.unpack(d.read(SB_BLOCK))
        region = sb.journals[jid]
        seq, _ = journal.Log(d, region, jid, sb.uuid).read_head()
        pos, n, images = 1, 0, 0
        while pos < region.length:
            try:
                first = d.read(region.start + pos)
                check(first, T_LOGDESC)
                s, total, _ = journal._DESC.unpack_from(first, HDR_SIZE)
                ndesc = -(-total // journal.DESC_PER_BLOCK) if total else 1
                if s != seq + n or pos + ndesc + total + 1 > region.length:
                    break
                commit = d.read(region.start + pos + ndesc + total)
                check(commit, T_LOGCOMMIT)
            except CorruptBlock:
                break
            cs, ctotal, _ = journal._COMMIT.unpack_from(commit, HDR_SIZE)
            if cs != s or ctotal != total:
                break
            pos, n, images = pos + ndesc + total + 1, n + 1, images + total
        return pos - 1, n, images, region.length
    finally:
        d.close()


def fill_journal(mnt: Path, dev: str, data: bytes) -> dict[str, Any]:
    """Create files until the next commit would take journal 0 past half (where ogfs checkpoints
    by itself), then fsync: the journal is about as full as ogfs ever lets it be.

    ogfs commits by itself when the dirty set passes a quarter of the journal, so the journal
    ends up holding that transaction and the fsync's.  The fill level is read from the device:
    the daemon's counters (ogfs_tool counters) cannot be asked once the mount caches ~4,000
    glocks (its answer is cut short: see benchmarks/README.md)."""
    (mnt / "fill").mkdir()
    batch, i = 16, 0
    per_file, since = 1.5, 0  # journal blocks a file adds to the dirty set; files at the last commit seen
    seen_txns = 0
    while True:
        for _ in range(batch):
            fd = os.open(mnt / "fill" / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)
            i += 1
        used, txns, images, blocks = journal_usage(dev, 0)
        if txns != seen_txns:  # ogfs committed by itself: measure what a file costs
            seen_txns, since = txns, i
            per_file = max(images / i, 1.0)
        dirty = per_file * (i - since)
        if used + dirty + dirty / journal.DESC_PER_BLOCK + 2 + 3 * batch * per_file >= blocks // 2:
            break
        if i > 200_000:
            raise BenchError("the journal does not fill (commits or checkpoints on their own?)")
    fd = os.open(mnt / "fill" / f"f{i - 1}", os.O_WRONLY)
    os.fsync(fd)
    os.close(fd)
    used, txns, images, blocks = journal_usage(dev, 0)
    return {"files": i, "journal_used": used, "journal_blocks": blocks, "transactions": txns}


def timed_first_mount(c: Cluster, mnt: Path) -> tuple[float, float]:
    """A fresh memexpd, then B's mount: (memexpd start to mount returned, mount alone)."""
    t = time.perf_counter()
    c.memexpd.start()
    took = c.mounts.mount(c.data, mnt, f"hostdata={B_IP}")
    return time.perf_counter() - t, took


def bench_recovery(c: Cluster, a: argparse.Namespace) -> dict[str, list[float]]:
    data = os.urandom(4096)
    res: dict[str, list[float]] = {k: [] for k in ("replay_total", "replay_mount", "clean_total",
                                                   "clean_mount", "replayed", "used", "blocks", "files")}
    for _ in range(a.runs):
        c.ensure_memexpd()
        c.mkfs()
        ma = c.mnt("a")
        c.mounts.mount(c.data, ma, f"hostdata={A_IP},commit=3600")
        filled = fill_journal(ma, c.data, data)
        if filled["transactions"] < 2 or filled["journal_used"] * 2 > filled["journal_blocks"]:
            print(f"  recovery: node A's journal holds {filled['transactions']} transaction(s), "
                  f"{filled['journal_used']}/{filled['journal_blocks']} blocks", file=sys.stderr)
        c.mounts.kill(ma)
        c.memexpd.stop(signal.SIGKILL)
        waiting = next(j for j in tool_json("journals", c.data) if j["jid"] == 0)
        if waiting["state"] != "dirty":
            raise BenchError(f"node A's journal is {waiting['state']} after the kill")
        mb = c.mnt("b")
        total, took = timed_first_mount(c, mb)
        log = daemon_log(mb)
        m = re.search(r"jid=0: Replaying journal\.\.\. replayed (\d+) transaction", log)
        if m is None or "first mounter" not in log:
            raise BenchError(f"node B's mount did not replay journal 0:\n{log[-2000:]}")
        if not int(m.group(1)) == waiting["transactions"] == filled["transactions"]:
            print(f"  recovery: {filled['transactions']} transaction(s) written, {waiting['transactions']} "
                  f"found by ogfs_tool journals, B replayed {m.group(1)}", file=sys.stderr)
        files = len(os.listdir(mb / "fill"))
        if files != filled["files"]:
            print(f"  recovery: B sees {files} of the {filled['files']} fsync'd files", file=sys.stderr)
        res["replay_total"].append(total)
        res["replay_mount"].append(took)
        res["replayed"].append(int(m.group(1)))
        res["used"].append(filled["journal_used"])
        res["blocks"].append(filled["journal_blocks"])
        res["files"].append(filled["files"])
        # the same again with nothing to replay: the fixed cost of a failover's first mount
        c.mounts.umount(mb)
        c.memexpd.stop(signal.SIGKILL)
        mb2 = c.mnt("b")
        total, took = timed_first_mount(c, mb2)
        res["clean_total"].append(total)
        res["clean_mount"].append(took)
        c.mounts.umount(mb2)
    return res


# --------------------------------------------------------------------------- main


@contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--locks", type=int, default=2000)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--turns", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=30, help="cluster timeout in the cidev (lab: 30)")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    a = ap.parse_args()
    parts = [p.strip() for p in a.only.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        ap.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        print("needs root (loop devices, FUSE)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="memexp-bench-"))
    loops, mounts = Loops(), Mounts()
    cluster: Cluster | None = None
    out: dict[str, dict[str, list[float]]] = {}
    try:
        with terminated_as_interrupt():
            if "roundtrip" in parts:
                out["roundtrip"] = bench_roundtrip(work, a)
            if set(parts) - {"roundtrip"}:
                cluster = Cluster(work, loops, mounts, a.timeout)
            for name, fn in (("cached", bench_cached), ("pingpong", bench_pingpong),
                             ("recovery", bench_recovery)):
                if name in parts:
                    assert cluster is not None
                    out[name] = fn(cluster, a)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    except (BenchError, subprocess.TimeoutExpired, OSError) as e:
        print(f"failed: {e}", file=sys.stderr)
        return 1
    finally:
        mounts.cleanup()
        if cluster is not None:
            cluster.memexpd.stop()
        loops.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    report(out, a)
    return 0


def report(out: dict[str, dict[str, list[float]]], a: argparse.Namespace) -> None:
    def med(part: str, key: str) -> float:
        return statistics.median(out[part][key])

    print(f"memexp locking, median of {a.runs} runs (cluster timeout {a.timeout} s)")
    if "roundtrip" in out:
        rt = med("roundtrip", "median")
        print(f"  lock round trip     LOCK EX -> GRANTED, {a.locks} names: median {rt:.3f} ms   "
              f"p99 {med('roundtrip', 'p99'):.3f} ms   mean {med('roundtrip', 'mean'):.3f} ms   "
              f"median/target {rt / 1.0:.0%}   (target median <= 1 ms)")
    if "cached" in out:
        nl, n0, mx = med("cached", "nolock"), med("cached", "nolock0"), med("cached", "memexp")
        print(f"  create+4KiB+close   nolock {nl:6.0f} /s   memexp {mx:6.0f} /s   ratio {mx / nl:.0%}   "
              f"(target >= 80%)")
        per = (f"{med('cached', 'lock_requests'):.1f} lock requests, {med('cached', 'cached_hits'):.1f} "
               "cached hits per file" if out["cached"]["lock_requests"] else "counters n/a")
        print(f"                      [memexp: {per}; nolock with cache=0 (no kernel cache): "
              f"{n0:.0f} /s, memexp/that {mx / n0:.0%}]")
    if "pingpong" in out:
        print(f"  ping-pong appends   {med('pingpong', 'rate'):6.1f} hand-overs/s over {a.turns} turns   "
              f"append median {med('pingpong', 'median_ms'):.1f} ms   "
              f"p99 {med('pingpong', 'p99_ms'):.1f} ms   [{med('pingpong', 'callbacks'):.0f} callbacks]")
    if "recovery" in out:
        r = out["recovery"]
        print(f"  recovery            journal {med('recovery', 'used'):.0f}/{med('recovery', 'blocks'):.0f} "
              f"blocks used ({med('recovery', 'files'):.0f} files), replayed "
              f"{'/'.join(str(int(x)) for x in r['replayed'])} transaction(s)")
        rt, ct = med("recovery", "replay_total"), med("recovery", "clean_total")
        print(f"                      fresh memexpd + first mount: with replay {rt:.2f} s "
              f"(mount {med('recovery', 'replay_mount'):.2f} s)   nothing to replay {ct:.2f} s "
              f"(mount {med('recovery', 'clean_mount'):.2f} s)   replay adds {rt - ct:+.2f} s")


if __name__ == "__main__":
    sys.exit(main())
