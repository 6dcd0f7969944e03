"""memexpd as a real process (/usr/bin/python3, as on a node) against scripted nodes.

The nodes are loopback addresses 127.0.0.2/3/4 (cid 0/1/2; the third never logs in, so a
grace period runs its full length).  Each scripted node speaks the protocol with
protocol.send/recv over a socket bound to its address, and listens on <its IP>:cbport for CB
and RECOVER like ogfs's client does.  The cluster timeout is 2 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ogfsrun import NODE_ENV, NODE_PYTHON, SBIN, ogfs_cmd
from support import free_port, wait_for

from ogfs import cidev, config, slots
from ogfs.memexp import protocol
from ogfs.memexp.protocol import EX, INODE, JOURNAL, NOEXP, SH, UN

pytestmark = pytest.mark.slow

IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
TIMEOUT = 2
L1, L2 = [INODE, 25], [INODE, 26]


class Node:
    """A scripted node: its lock connection, its callback listener, optional heartbeats."""

    def __init__(self, cid: int, cbport: int, lockdev: tuple[str, int]) -> None:
        self.cid, self.ip, self.cbport, self.lockdev = cid, IPS[cid], cbport, lockdev
        self.incarnation = int.from_bytes(os.urandom(4), "big")
        self.cond = threading.Condition()
        self.msgs: list[dict[str, Any]] = []  # from the lock connection
        self.cbs: list[dict[str, Any]] = []   # from the callback connection
        self.sock: socket.socket | None = None
        self.listener: socket.socket | None = None
        self.cb_conns: list[socket.socket] = []
        self.send_lock = threading.Lock()
        self.hb_stop = threading.Event()
        self.hb_thread: threading.Thread | None = None

    # callback port
    def listen(self) -> None:
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((self.ip, self.cbport))
        lst.listen(4)
        self.listener = lst
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                conn, _ = lst.accept()
            except OSError:
                return
            self.cb_conns.append(conn)
            threading.Thread(target=self._read, args=(conn, self.cbs), daemon=True).start()

    def unlisten(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for c in self.cb_conns:
            c.close()
        self.cb_conns.clear()

    def _read(self, sock: socket.socket, into: list[dict[str, Any]]) -> None:
        while True:
            try:
                msg = protocol.recv(sock)
            except (OSError, ConnectionError, protocol.ProtocolError):
                msg = {"op": "<closed>"}
            with self.cond:
                into.append(msg)
                self.cond.notify_all()
            if msg["op"] == "<closed>":
                return

    # lock connection
    def login(self, reclaim: list[list[int]] | None = None, mounted: bool = False,
              answer: str = "WELCOME") -> dict[str, Any]:
        s = socket.socket()
        s.bind((self.ip, 0))
        s.connect(self.lockdev)
        self.sock = s
        with self.cond:
            self.msgs.clear()
        threading.Thread(target=self._read, args=(s, self.msgs), daemon=True).start()
        self.send("HELLO", ip=self.ip, cid=self.cid, cbport=self.cbport, uuid="test-fs",
                  incarnation=self.incarnation, mounted=mounted, reclaim=reclaim or [])
        return self.expect(answer)

    def send(self, op: str, **fields: Any) -> None:
        assert self.sock is not None
        with self.send_lock:
            protocol.send(self.sock, op, **fields)

    def heartbeats(self) -> None:
        self.hb_stop.clear()

        def beat() -> None:
            seq = 0
            while not self.hb_stop.wait(TIMEOUT / 5):
                seq += 1
                try:
                    self.send("HB", seq=seq)
                except OSError:
                    return
        self.hb_thread = threading.Thread(target=beat, daemon=True)
        self.hb_thread.start()

    def silence(self) -> None:
        self.hb_stop.set()
        if self.hb_thread is not None:
            self.hb_thread.join()

    def _take(self, box: list[dict[str, Any]], op: str, match: dict[str, Any]) -> dict[str, Any] | None:
        for i, m in enumerate(box):
            if m["op"] == op and all(m.get(k) == v for k, v in match.items()):
                return box.pop(i)
        return None

    def expect(self, op: str, timeout: float = 10, _box: str = "msgs", **match: Any) -> dict[str, Any]:
        box = getattr(self, _box)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = self._take(box, op, match)
                if got is not None:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"node {self.ip}: no {op} {match} within {timeout} s; got {box}")
                self.cond.wait(left)

    def expect_cb(self, op: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        return self.expect(op, timeout, _box="cbs", **match)

    def seen(self, op: str) -> list[dict[str, Any]]:
        with self.cond:
            return [m for m in self.msgs if m["op"] == op]

    def close(self) -> None:
        self.silence()
        if self.sock is not None:
            self.sock.close()
        self.unlisten()


class Memexpd:
    def __init__(self, tmp: Path, dev: Path, port: int) -> None:
        self.tmp, self.dev, self.port = tmp, dev, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = tmp / "memexpd.log"

    def start(self, *extra: str) -> None:
        out = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [NODE_PYTHON, str(SBIN / "memexpd"), "-d", str(self.dev), "-f", "--pidfile",
             str(self.tmp / "memexpd.pid"), "--log", str(self.logfile), *extra],
            env=NODE_ENV, stdout=out, stderr=out)
        out.close()
        wait_for(lambda: self.try_status() is not None, 15, "memexpd to answer STATUS")

    def try_status(self) -> dict[str, Any] | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"memexpd exited {self.proc.returncode} while starting:\n{self.log()}")
        try:
            return self.status()
        except OSError:
            return None

    def status(self) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            protocol.send(s, "STATUS")
            return protocol.recv(s)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(10)
        self.proc = None
        return code

    def log(self) -> str:
        return self.logfile.read_text()

    def node(self, cid: int) -> dict[str, Any]:
        return next(n for n in self.status()["nodes"] if n["cid"] == cid)

    def lock(self, name: list[int]) -> dict[str, Any] | None:
        return next((lk for lk in self.status()["locks"] if lk["name"] == name), None)


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port, self.cbport = free_port(), free_port()
        self.dev = tmp / "cidev.img"
        with open(self.dev, "wb") as f:
            f.truncate(cidev.MIN_SIZE)
        text = (f"datadev: /dev/sda3\ncidev: {self.dev}\nlockdev: 127.0.0.1:{self.port}\n"
                f"cbport: {self.cbport}\ntimeout: {TIMEOUT}\nSTOMITH: manual\nname: manual\n"
                + "".join(f"node: {ip} {cid} SM: manual\n" for cid, ip in enumerate(IPS)))
        (tmp / "ogfscf.cf").write_text(text)
        cidev.write_config(str(self.dev), config.parse(text))
        self.memexpd = Memexpd(tmp, self.dev, self.port)
        self.nodes: list[Node] = []
        self.old_epoch: int | None = None

    def node(self, cid: int, listen: bool = True, login: bool = True, hb: bool = True) -> Node:
        n = Node(cid, self.cbport, ("127.0.0.1", self.port))
        self.nodes.append(n)
        if listen:
            n.listen()
        if login:
            n.login()
        if hb:
            n.heartbeats()
        return n

    def tool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return ogfs_cmd("ogfs_tool", *args, "-d", self.dev, check=check, timeout=30)

    def tool_json(self, *args: str) -> Any:
        return json.loads(self.tool(*args, "--json").stdout)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.memexpd.start("--grace", "0")
    try:
        yield c
    finally:
        for n in c.nodes:
            n.close()
        if c.memexpd.proc is not None:
            c.memexpd.stop(signal.SIGKILL)


# -- callbacks -------------------------------------------------------------------------------------------

def test_a_conflicting_request_calls_the_holder_back_and_waits_for_its_demote(cluster: Cluster) -> None:
    a, b = cluster.node(0), cluster.node(1)
    a.send("LOCK", id=1, name=L1, state=EX, flags=0)
    assert a.expect("GRANTED", id=1)["state"] == EX
    b.send("LOCK", id=1, name=L1, state=SH, flags=0)
    cb = a.expect_cb("CB", name=L1)
    assert cb["need"] == SH
    assert not b.seen("GRANTED")  # still held EX by a
    lock = cluster.tool_json("lockdump")["locks"][0]
    assert [(h["ip"], h["state"]) for h in lock["holders"]] == [(a.ip, "EX")]
    assert [(w["ip"], w["state"]) for w in lock["waiters"]] == [(b.ip, "SH")]
    text = cluster.tool("lockdump").stdout
    assert "Lock inode:25" in text and f"Holder  node {a.ip} (cid 0)  EX" in text and "Waiter" in text
    a.send("DEMOTE", name=L1, state=SH)
    assert b.expect("GRANTED", id=1)["state"] == SH
    lock = cluster.memexpd.lock(L1)
    assert lock is not None and sorted(h["state"] for h in lock["holders"]) == ["SH", "SH"]
    nodes = cluster.tool_json("nodes")
    assert [(n["ip"], n["state"]) for n in nodes] == [(a.ip, "live"), (b.ip, "live"), (IPS[2], "unknown")]
    text = cluster.tool("nodes").stdout
    assert f"0   {a.ip}" in text and "live" in text


def test_callbacks_are_sent_again_once_the_callback_port_answers(cluster: Cluster) -> None:
    a = cluster.node(0, listen=False)  # its callback port is blocked (as with iptables)
    b = cluster.node(1)
    a.send("LOCK", id=1, name=L1, state=EX, flags=0)
    a.expect("GRANTED", id=1)
    b.send("LOCK", id=7, name=L1, state=EX, flags=0)
    wait_for(lambda: "cannot connect to the callback port 127.0.0.2" in cluster.memexpd.log(), 10,
             "memexpd to report the blocked callback port")
    assert not b.seen("GRANTED")
    a.listen()
    assert a.expect_cb("CB", name=L1, timeout=15)["need"] == EX
    a.send("DEMOTE", name=L1, state=UN)
    b.expect("GRANTED", id=7)


# -- expiry, STOMITH, recovery -----------------------------------------------------------------------------

def test_a_silent_node_expires_its_lock_stays_frozen_until_stomith_ack_and_recovery(cluster: Cluster) -> None:
    a, b = cluster.node(0), cluster.node(1)
    a.send("MOUNT")
    assert a.expect("MOUNTED")["first"] is True
    a.send("OTHERS_MAY_MOUNT")
    b.send("MOUNT")
    assert b.expect("MOUNTED") == {"v": 1, "op": "MOUNTED", "jid": 1, "first": False, "recover": []}
    a.send("LOCK", id=1, name=L1, state=EX, flags=0)
    a.expect("GRANTED", id=1)
    a.silence()  # a hangs: no more heartbeats, no answer to callbacks
    b.send("LOCK", id=2, name=L1, state=EX, flags=0)
    a.expect_cb("CB", name=L1, need=EX)
    silent_since = time.monotonic()
    wait_for(lambda: cluster.memexpd.node(0)["state"] == "stomith_wait", 5 * TIMEOUT, "a's expiry")
    assert time.monotonic() - silent_since >= TIMEOUT - 0.5
    log = cluster.memexpd.log()
    assert "node 127.0.0.2 (cid 0) expired: no heartbeat for 2 s" in log
    assert "STOMITH manual: reset 127.0.0.2, then run: ogfs_tool stomith-ack 127.0.0.2" in log
    assert a.expect("ERROR")["reason"].startswith("node 127.0.0.2 (cid 0) is stomith_wait")
    nodes = cluster.tool_json("nodes")
    assert nodes[0]["state"] == "stomith_wait" and nodes[1]["state"] == "live"
    assert "reset it, then: ogfs_tool stomith-ack 127.0.0.2" in cluster.tool("nodes").stdout
    lock = cluster.tool_json("lockdump")["locks"][0]
    assert lock["holders"] == [] and lock["frozen"] == [{"cid": 0, "ip": a.ip, "state": "EX"}]
    assert [w["id"] for w in lock["waiters"]] == [2]
    assert not b.seen("GRANTED") and not b.cbs  # frozen: no grant, and no RECOVER before the ack
    # the expired incarnation may not come back
    assert "must be restarted" in a.login(answer="ERROR")["reason"]

    res = cluster.tool("stomith-ack", "127.0.0.2")
    assert "STOMITH of node 127.0.0.2 (cid 0) acknowledged" in res.stdout
    assert b.expect_cb("RECOVER")["jid"] == 0
    assert cluster.memexpd.node(0)["state"] == "recovering"
    b.send("LOCK", id=3, name=[JOURNAL, 0], state=EX, flags=NOEXP)  # as recovery does
    b.expect("GRANTED", id=3)
    assert not b.seen("GRANTED")  # the frozen inode lock still waits
    b.send("DEMOTE", name=[JOURNAL, 0], state=UN)
    b.send("RECOVERY_DONE", jid=0, ok=True)
    assert b.expect("GRANTED", id=2)["state"] == EX
    assert cluster.memexpd.node(0)["state"] == "gone"
    assert "journal 0 (127.0.0.2) recovered by node 127.0.0.3 (cid 1): 1 expired lock(s) released" in (
        cluster.memexpd.log())
    res = cluster.tool("stomith-ack", "0", check=False)  # twice: refused
    assert res.returncode == 1 and "not waiting for STOMITH" in res.stderr


# -- mounts ---------------------------------------------------------------------------------------------

def test_the_second_mount_waits_for_the_first_mounters_others_may_mount(cluster: Cluster) -> None:
    a, b = cluster.node(0), cluster.node(1)
    a.send("MOUNT")
    assert a.expect("MOUNTED") == {"v": 1, "op": "MOUNTED", "jid": 0, "first": True, "recover": []}
    b.send("MOUNT")
    wait_for(lambda: cluster.memexpd.status()["mount_queue"] == [1], 10, "b's MOUNT to queue")
    assert not b.seen("MOUNTED")
    assert "first mounter" in cluster.tool("nodes").stdout
    a.send("OTHERS_MAY_MOUNT")
    assert b.expect("MOUNTED") == {"v": 1, "op": "MOUNTED", "jid": 1, "first": False, "recover": []}
    b.send("UNMOUNT")
    b.expect("BYE")
    wait_for(lambda: cluster.memexpd.node(1)["state"] == "gone", 10, "b to be gone")


# -- memexpd restart --------------------------------------------------------------------------------------

def test_after_a_restart_reclaims_come_back_and_new_requests_wait_for_the_grace_period(
        cluster: Cluster) -> None:
    a, b = cluster.node(0), cluster.node(1)
    a.send("MOUNT")
    a.expect("MOUNTED")
    a.send("OTHERS_MAY_MOUNT")
    a.send("LOCK", id=1, name=L1, state=EX, flags=0)
    a.expect("GRANTED", id=1)
    cluster.old_epoch = cluster.memexpd.status()["epoch"]
    cluster.memexpd.stop(signal.SIGKILL)
    a.silence()
    b.silence()
    grace = 3.0
    # A third node is alive on the disk (its heartbeat slot moves) but never comes back to
    # memexpd: the grace period must run its full length for it.
    stop = threading.Event()
    writer = threading.Thread(target=_live_slot, args=(cluster.dev, 2, IPS[2], stop))
    writer.start()
    try:
        _restart_under_grace(cluster, a, b, grace)
    finally:
        stop.set()
        writer.join()


def _live_slot(dev: Path, cid: int, ip: str, stop: threading.Event) -> None:
    s = slots.Slot(cid, slots.MOUNTED, 7, 0, 0, 200, ip)
    while not stop.is_set():
        s.counter += 1
        slots.write_slot(str(dev), s)
        stop.wait(0.2)


def _restart_under_grace(cluster: Cluster, a: Node, b: Node, grace: float) -> None:
    cluster.memexpd.start("--grace", str(grace))
    started = time.monotonic()
    welcome = a.login(reclaim=[[*L1, EX]], mounted=True)
    a.heartbeats()
    assert welcome["epoch"] != cluster.old_epoch and welcome["refused"] == []
    assert 0 < welcome["grace"] <= grace
    assert welcome["timeout"] == TIMEOUT
    welcome = b.login(reclaim=[[*L1, SH]])  # a conflicting reclaim is refused
    b.heartbeats()
    assert welcome["refused"] == [[*L1, SH]]
    b.send("LOCK", id=1, name=L2, state=EX, flags=0)  # nobody holds it, but: grace period
    b.send("LOCK", id=2, name=L1, state=SH, flags=0)
    b.send("LOCK", id=3, name=L2, state=SH, flags=1)  # TRY: fails at once
    assert b.expect("TRYFAILED", id=3)["reason"].startswith("grace period")
    st = cluster.memexpd.status()
    assert st["grace"] is True
    lock = next(lk for lk in st["locks"] if lk["name"] == L1)
    assert [(h["cid"], h["state"]) for h in lock["holders"]] == [(0, "EX")]
    assert next(n for n in st["nodes"] if n["cid"] == 0)["mounted"] is True
    assert b.expect("GRANTED", id=1, timeout=grace + 5)["state"] == EX
    assert time.monotonic() - started >= grace - 0.5
    assert "grace period over (time is up)" in cluster.memexpd.log()
    assert a.expect_cb("CB", name=L1)["need"] == SH  # only now is the holder called back
    a.send("DEMOTE", name=L1, state=SH)
    assert b.expect("GRANTED", id=2)["state"] == SH


# -- the wire ---------------------------------------------------------------------------------------------

def _raw(cluster: Cluster, body: bytes) -> tuple[dict[str, Any], bytes]:
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=5) as s:
        s.sendall(len(body).to_bytes(4, "big") + body)
        reply = protocol.recv(s)
        rest = s.recv(10)  # the server closes after ERROR
        return reply, rest


def test_a_version_mismatch_and_garbage_get_error_and_the_connection_closed(cluster: Cluster) -> None:
    reply, rest = _raw(cluster, b'{"v": 2, "op": "HELLO"}')
    assert reply["op"] == "ERROR" and "protocol version 2" in reply["reason"] and rest == b""
    reply, rest = _raw(cluster, b"not json")
    assert reply["op"] == "ERROR" and "not JSON" in reply["reason"] and rest == b""
    reply, rest = _raw(cluster, b'{"v": 1, "op": "LOCK", "id": 1, "name": [2, 1], "state": 1}')
    assert reply == {"v": 1, "op": "ERROR", "reason": "LOCK before HELLO"} and rest == b""
    reply, _ = _raw(cluster, b'{"v": 1, "op": "HELLO", "cid": 9, "ip": "127.0.0.9", "cbport": 1, '
                             b'"incarnation": 1}')
    assert reply["op"] == "ERROR" and "not in the node table" in reply["reason"]
    assert cluster.memexpd.proc is not None and cluster.memexpd.proc.poll() is None


def test_the_tools_find_memexpd_through_a_filesystems_lock_table(cluster: Cluster, image: Path) -> None:
    short = Path(tempfile.mkdtemp(prefix="ogfs-")) / "cidev"  # the superblock keeps 63 bytes of it
    short.symlink_to(cluster.dev)
    try:
        ogfs_cmd("mkfs.ogfs", "-p", "memexp", "-t", short, "-j", "2", "-J", "8", "-q", image, check=True)
        nodes = json.loads(ogfs_cmd("ogfs_tool", "nodes", image, "--json", check=True).stdout)
    finally:
        shutil.rmtree(short.parent)
    assert [n["ip"] for n in nodes] == IPS
    res = ogfs_cmd("ogfs_tool", "lockdump", "-c", cluster.tmp / "ogfscf.cf", check=True)
    assert f"memexpd 127.0.0.1:{cluster.port}" in res.stdout and "0 lock(s)" in res.stdout
    res = ogfs_cmd("ogfs_tool", "stomith-ack", "127.0.0.9", "-d", cluster.dev)
    assert res.returncode == 1 and "127.0.0.9 is not a node of the cidev" in res.stderr
    cluster.memexpd.stop()
    res = ogfs_cmd("ogfs_tool", "nodes", "-d", cluster.dev)
    assert res.returncode == 1 and f"memexpd at 127.0.0.1:{cluster.port} does not answer" in res.stderr


# -- the daemon -------------------------------------------------------------------------------------------

def test_daemon_mode_pidfile_and_sigterm(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    pidfile, logfile = tmp_path / "d.pid", tmp_path / "d.log"
    res = subprocess.run([NODE_PYTHON, str(SBIN / "memexpd"), "-c", str(tmp_path / "ogfscf.cf"),
                          "--pidfile", str(pidfile), "--log", str(logfile)],
                         env=NODE_ENV, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    pid = int(pidfile.read_text())  # written once listening, before the start command returns
    assert c.memexpd.status()["op"] == "STATUS"
    res = subprocess.run([NODE_PYTHON, str(SBIN / "memexpd"), "-c", str(tmp_path / "ogfscf.cf"),
                          "--pidfile", str(pidfile), "--log", str(logfile)],
                         env=NODE_ENV, capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and f"already running (pid {pid}" in res.stderr
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pidfile.exists(), 10, "the pidfile to go")
    text = logfile.read_text()
    assert "memexpd started: epoch" in text and "SIGTERM: stopping" in text


def test_memexpd_gives_up_when_the_lockdev_address_never_becomes_local(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    res = subprocess.run([NODE_PYTHON, str(SBIN / "memexpd"), "-d", str(c.dev), "--listen", "192.0.2.77",
                          "--bind-wait", "1", "--pidfile", str(tmp_path / "p"), "--log", str(tmp_path / "l")],
                         env=NODE_ENV, capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert f"cannot listen on 192.0.2.77:{c.port}: 192.0.2.77 is not an address of this host" in res.stderr
    assert not (tmp_path / "p").exists()
