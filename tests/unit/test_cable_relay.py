"""labctl-cable's control (``labctl-cable ctl DIR cut|restore|noise|status``), run on the host as the
cable container runs it: the relay as a subprocess, two UNIX sockets as the nodes' ends, ``ctl`` as
labctl's ``docker exec`` would run it. No Docker, no pty: test_serial_cable.py covers the ends."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import wait_for

RELAY = Path(__file__).resolve().parents[2] / "labctl" / "runtime" / "assets" / "labctl-cable"
NAME = "cable 0 (fred <-> barney, 115200 baud)"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d labctl-cable: "


class Relay:
    """labctl-cable in ``directory`` with one cable fred<->barney, its stdout in a file."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.out = directory.parent / "relay.out"
        with self.out.open("wb") as fh:
            self.proc = subprocess.Popen([sys.executable, str(RELAY), str(directory), "0:fred:barney:115200"],
                                         stdout=fh)
        wait_for(lambda: "control socket" in self.log() or self.proc.poll() is not None, 10, "the relay")
        assert self.proc.poll() is None, self.log()

    def log(self) -> str:
        return self.out.read_text() if self.out.exists() else ""

    def has_line(self, tail: str) -> bool:
        """Whether stdout has ``<time> labctl-cable: <tail>`` as a whole line."""
        return re.search(f"^{STAMP}{re.escape(tail)}$", self.log(), re.M) is not None

    def ctl(self, *words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(RELAY), "ctl", str(self.dir), *words],
                              capture_output=True, text=True, timeout=20)

    def ok(self, *words: str) -> str:
        res = self.ctl(*words)
        assert res.returncode == 0, res
        return res.stdout

    def status(self) -> dict[str, Any]:
        cables: list[dict[str, Any]] = json.loads(self.ok("status"))["cables"]
        assert [c["index"] for c in cables] == [0]
        return cables[0]

    def plug(self, node: str) -> socket.socket:
        """Connect as ``node``'s end, once the relay has taken the connection."""
        before = self.log().count(f"{NAME}: {node} plugged in")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(self.dir / f"0-{node}.sock"))
        wait_for(lambda: self.log().count(f"{NAME}: {node} plugged in") > before, 5, f"{node} plugged in")
        return s

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


def receive(s: socket.socket, n: int, timeout: float = 5.0) -> bytes:
    """``n`` bytes from ``s`` (or what came before ``timeout``); EOF fails: the relay never closes."""
    got = b""
    s.settimeout(timeout)
    while len(got) < n:
        try:
            chunk = s.recv(n - len(got))
        except TimeoutError:
            break
        assert chunk, "EOF: the relay closed an end"
        got += chunk
    return got


def silent(s: socket.socket, timeout: float = 0.3) -> None:
    """Nothing arrives within ``timeout``, and the connection stays open (a timeout, not EOF)."""
    s.settimeout(timeout)
    with pytest.raises(TimeoutError):
        data = s.recv(4096)
        raise AssertionError(f"the line should be silent: got {data!r} (b'' is EOF)")


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    directory = tmp_path / "cable"
    r = Relay(directory)
    try:
        yield r
    finally:
        r.stop()


Ends = tuple[Relay, socket.socket, socket.socket]  # the relay, fred's end, barney's end


@pytest.fixture
def ends(relay: Relay) -> Iterator[Ends]:
    fred, barney = relay.plug("fred"), relay.plug("barney")
    try:
        yield relay, fred, barney
    finally:
        fred.close()
        barney.close()


def flows(fred: socket.socket, barney: socket.socket, payload: bytes = b"heartbeat\n") -> None:
    fred.sendall(payload)
    assert receive(barney, len(payload)) == payload
    barney.sendall(payload[::-1])
    assert receive(fred, len(payload)) == payload[::-1]


def test_bytes_flow_both_ways_and_status_counts_them(ends: Ends) -> None:
    relay, fred, barney = ends
    flows(fred, barney)
    st = relay.status()
    assert (st["a"], st["b"], st["baud"]) == ("fred", "barney", 115200)
    assert (st["state"], st["noise"]) == ("plugged", 0.0)
    assert sorted(st["connected"]) == ["barney", "fred"]
    for way in ("a_to_b", "b_to_a"):
        assert st[way] == {"passed": 10, "dropped": 0, "garbled": 0, "queued": 0}


def test_cut_is_silence_both_ways_never_eof_and_restore_plugs_back(ends: Ends) -> None:
    relay, fred, barney = ends
    flows(fred, barney)
    assert relay.ok("cut", "0").strip() == f"{NAME}: cut by labctl"
    assert relay.has_line(f"{NAME}: cut by labctl")
    assert relay.status()["state"] == "cut"

    fred.sendall(b"x" * 20)
    barney.sendall(b"y" * 30)
    # Once the relay has counted them dropped they cannot arrive later: silence is certain.
    wait_for(lambda: (s := relay.status())["a_to_b"]["dropped"] == 20 and s["b_to_a"]["dropped"] == 30,
             5, "the bytes dropped both ways")
    silent(barney)
    silent(fred)
    st = relay.status()
    assert sorted(st["connected"]) == ["barney", "fred"], "a cut keeps both connections"
    assert st["a_to_b"]["passed"] == st["b_to_a"]["passed"] == 10

    assert relay.ok("cut", "0").strip() == f"{NAME}: cut already"
    assert relay.log().count("cut by labctl") == 1, "no change, no line"

    assert relay.ok("restore", "0").strip() == f"{NAME}: restored"
    assert relay.has_line(f"{NAME}: restored")
    flows(fred, barney, b"back again\n")
    assert relay.status()["state"] == "plugged"


def test_a_node_that_reconnects_while_cut_stays_cut(ends: Ends) -> None:
    relay, fred, barney = ends
    relay.ok("cut", "0")
    fred.close()
    fred = relay.plug("fred")  # fred rebooted
    try:
        assert relay.status()["state"] == "cut"
        fred.sendall(b"hello?")
        wait_for(lambda: relay.status()["a_to_b"]["dropped"] == 6, 5, "the bytes dropped")
        silent(barney)
        relay.ok("restore", "0")
        flows(fred, barney)
    finally:
        fred.close()


def test_noise_garbles_both_ways_and_zero_is_clean(ends: Ends) -> None:
    relay, fred, barney = ends
    assert relay.ok("noise", "0", "1.0").strip() == f"{NAME}: noise 1"
    assert relay.has_line(f"{NAME}: noise 1")
    payload = bytes(range(256))
    for src, dst in ((fred, barney), (barney, fred)):
        src.sendall(payload)
        got = receive(dst, len(payload))
        assert len(got) == len(payload), "noise changes bytes, it neither adds nor loses any"
        differ = sum(x != y for x, y in zip(got, payload, strict=True))
        assert differ > 0.9 * len(payload), f"at rate 1.0 only {differ} of {len(payload)} bytes differ"
    st = relay.status()
    assert st["noise"] == 1.0
    assert st["a_to_b"]["garbled"] == st["b_to_a"]["garbled"] == 256

    assert relay.ok("noise", "0", "0.05").strip() == f"{NAME}: noise 0.05"
    assert relay.has_line(f"{NAME}: noise 0.05")
    assert relay.ok("noise", "0", "0").strip() == f"{NAME}: noise 0"
    assert relay.has_line(f"{NAME}: noise 0")
    flows(fred, barney, payload)


def test_bad_arguments_exit_2_and_an_unknown_index_names_the_cables(relay: Relay) -> None:
    res = relay.ctl("cut", "7")
    assert res.returncode == 2, res
    assert "no cable 7" in res.stderr and "0 (fred <-> barney)" in res.stderr
    for unknown in (("restore", "1"), ("noise", "3", "0.5")):
        res = relay.ctl(*unknown)
        assert res.returncode == 2 and "0 (fred <-> barney)" in res.stderr, res
    bad: list[tuple[str, ...]] = [
        (), ("frobnicate",), ("cut",), ("cut", "x"), ("cut", "-1"), ("cut", "0", "1"), ("status", "0"),
        ("noise", "0"), ("noise", "0", "1.5"), ("noise", "0", "-0.1"), ("noise", "0", "nan"),
        ("noise", "0", "lots"),
    ]
    for words in bad:
        res = relay.ctl(*words)
        assert res.returncode == 2, (words, res)
        assert "usage: labctl-cable ctl DIR" in res.stderr, (words, res)
    assert relay.status()["state"] == "plugged" and relay.status()["noise"] == 0.0


def ctl_address(directory: Path) -> str:
    """The relay's control socket: abstract, named after its directory (labctl-cable's docstring)."""
    return "\0labctl-cable-ctl:" + os.path.realpath(directory)


def test_the_control_socket_is_abstract_not_a_file_in_the_shared_directory(ends: Ends) -> None:
    relay, _, _ = ends
    assert not (relay.dir / "ctl.sock").exists()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(ctl_address(relay.dir))  # (a node, in its own namespace, cannot: tests/lab)


def test_no_relay_exits_1(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(RELAY), "ctl", str(tmp_path), "status"],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 1 and "no relay answers" in res.stderr, res
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(ctl_address(tmp_path))  # bound, nobody listening, then gone: as after a relay's death
    stale.close()
    res = subprocess.run([sys.executable, str(RELAY), "ctl", str(tmp_path), "cut", "0"],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 1 and "no relay answers" in res.stderr, res


def test_hostile_control_clients_do_not_stop_the_cable(ends: Ends) -> None:
    relay, fred, barney = ends
    path = ctl_address(relay.dir)

    def client() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s

    def answer(s: socket.socket) -> dict[str, Any]:
        raw = b""
        s.settimeout(5)
        try:
            while chunk := s.recv(65536):
                raw += chunk
        except ConnectionResetError:  # the relay closed with input unread: after its answer
            pass
        s.close()
        parsed: dict[str, Any] = json.loads(raw)
        return parsed

    def ask(raw: bytes, eof: bool = False) -> dict[str, Any]:
        s = client()
        s.sendall(raw)
        if eof:
            s.shutdown(socket.SHUT_WR)
        return answer(s)

    hung = [client() for _ in range(3)]  # connect and say nothing
    half = client()
    half.sendall(b'{"op": "cut", "ind')  # half a request, then hang
    hung.append(half)

    for raw in (b"\x00\xff garbage\n", b"[1, 2]\n", b"null\n", b'{"op": 5}\n', b'{"op": "cut"}\n',
                b'{"op": "cut", "index": "0"}\n', b'{"op": "cut", "index": true}\n',
                b'{"op": "noise", "index": 0, "rate": "NaN"}\n', b'{"op": "noise", "index": 0}\n',
                b"[" * 3000 + b"\n", b'{"op": "status"}' + b" " * 5000 + b"\n"):
        got = ask(raw)
        assert got["ok"] is False and got["usage"] is True, (raw[:40], got)
    assert ask(b'{"op": "status"}', eof=True)["ok"] is True, "a request may end at EOF, not a newline"

    huge = client()  # a megabyte without a newline, and never reads the answer
    huge.setblocking(False)
    sent = 0
    for _ in range(256):
        try:
            sent += huge.send(b"A" * 4096)
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            break
    hung.append(huge)

    flows(fred, barney)  # the hung clients still hold their connections (CTL_TIMEOUT, 2 s)
    assert relay.status()["state"] == "plugged"
    # More clients than the relay takes at once: the oldest go, ctl still gets through.
    crowd = [client() for _ in range(20)]
    hung += crowd
    assert relay.ok("cut", "0").strip() == f"{NAME}: cut by labctl"
    relay.ok("restore", "0")
    flows(fred, barney)
    # Every hung client is let go by its deadline: EOF (or a reset), never a stuck relay.
    for s in hung:
        s.settimeout(10)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        s.close()
    assert relay.proc.poll() is None
    flows(fred, barney)
