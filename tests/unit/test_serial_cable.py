"""The serial cable's two programs, run here as they run in the lab (no Docker needed): each node's
end (a pty that never reads EOF) and the relay between them (paced at the baud rate, silence for a
missing end, reconnecting)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_for

ASSETS = Path(__file__).resolve().parents[2] / "labctl" / "runtime" / "assets"


class Cable:
    """labctl-cable in a temporary directory, with one cable a<->b."""

    def __init__(self, directory: Path, baud: int) -> None:
        self.dir, self.baud = directory, baud
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ASSETS / "labctl-cable"), str(self.dir),
                                      f"0:a:b:{self.baud}"], stdout=subprocess.DEVNULL)
        wait_for(lambda: (self.dir / "0-a.sock").exists() and (self.dir / "0-b.sock").exists(), 10, "sockets")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


class End:
    """labctl-serial-end for node ``name`` (in the foreground), and the tty heartbeat would open."""

    def __init__(self, tmp: Path, name: str, cable_dir: Path) -> None:
        self.device = tmp / f"ttyS0-{name}"
        self.log = tmp / f"serial-{name}.log"
        self.proc = subprocess.Popen([sys.executable, str(ASSETS / "labctl-serial-end"), "--foreground",
                                      "--device", str(self.device),
                                      "--socket", str(cable_dir / f"0-{name}.sock"),
                                      "--pidfile", str(tmp / f"{name}.pid"), "--log", str(self.log)])
        wait_for(self.device.exists, 10, f"{self.device}")
        self.fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        attrs = termios.tcgetattr(self.fd)
        assert not attrs[3] & termios.ECHO, "the line must be raw before heartbeat configures it"

    def connected(self) -> bool:
        text = self.log.read_text() if self.log.exists() else ""
        return text.count("cable connected") > text.count("cable lost")

    def read(self, timeout: float) -> bytes:
        """Everything that arrives within ``timeout``; b'' is silence. An EOF would raise."""
        got = b""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                break
            data = os.read(self.fd, 4096)  # a closed master gives b'' or EIO here
            assert data, "EOF on the tty: heartbeat would flood 'EOF in ttygets'"
            got += data
        return got

    def close(self) -> None:
        os.close(self.fd)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[Cable, End, End]]:
    cable_dir = tmp_path / "cable"
    cable_dir.mkdir()
    cable = Cable(cable_dir, 9600)
    cable.start()
    a, b = End(tmp_path, "a", cable_dir), End(tmp_path, "b", cable_dir)
    try:
        wait_for(lambda: a.connected() and b.connected(), 10, "both ends to connect")
        yield cable, a, b
    finally:
        a.close()
        b.close()
        cable.stop()


def test_bytes_cross_the_cable_both_ways(wired: tuple[Cable, End, End]) -> None:
    _, a, b = wired
    os.write(a.fd, b">>>\nt=status\n<<<\n")
    assert b.read(1.0) == b">>>\nt=status\n<<<\n"
    os.write(b.fd, b"pong\n")
    assert a.read(1.0) == b"pong\n"


def test_the_line_is_paced_at_the_baud_rate(wired: tuple[Cable, End, End]) -> None:
    _, a, b = wired
    payload = bytes(range(32, 127)) * 8  # 760 bytes; at 9600 baud (960 bytes/s) about 0.8 s
    started = time.monotonic()
    os.write(a.fd, payload)
    got = b""
    while len(got) < len(payload) and time.monotonic() - started < 5:
        got += b.read(0.2)
    took = time.monotonic() - started
    assert got == payload
    assert 0.6 < took < 2.0, f"{len(payload)} bytes at 960 bytes/s took {took:.2f} s"


def test_a_missing_cable_is_silence_and_the_ends_reconnect(wired: tuple[Cable, End, End]) -> None:
    cable, a, b = wired
    cable.stop()
    wait_for(lambda: not a.connected() and not b.connected(), 5, "both ends to notice")
    os.write(a.fd, b"into the void\n")  # no EIO: the end still owns the master
    assert b.read(1.0) == b""  # silence, not EOF
    assert a.read(0.3) == b""
    cable.start()
    wait_for(lambda: a.connected() and b.connected(), 10, "both ends to reconnect")
    os.write(a.fd, b"back\n")
    assert b.read(1.0) == b"back\n"


def test_a_dead_peer_is_silence(wired: tuple[Cable, End, End]) -> None:
    _, a, b = wired
    b.proc.kill()
    b.proc.wait(5)
    # Twice: before the relay may have noticed the dead peer, and after a second of silence
    # (a.read waits), when it surely has. Neither may read as EOF or end the living end.
    for _ in range(2):
        os.write(a.fd, b"anyone?\n")
        assert a.read(1.0) == b""
        assert a.proc.poll() is None, "the living end must keep running"


def test_the_end_daemonizes_and_returns_once_the_device_exists(tmp_path: Path) -> None:
    device = tmp_path / "ttyS0"
    pidfile = tmp_path / "end.pid"
    res = subprocess.run([sys.executable, str(ASSETS / "labctl-serial-end"), "--device", str(device),
                          "--socket", str(tmp_path / "none.sock"), "--pidfile", str(pidfile),
                          "--log", str(tmp_path / "end.log")], timeout=20)
    assert res.returncode == 0
    try:
        assert device.is_symlink() and os.readlink(device).startswith("/dev/pts/")
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
        assert "the line is silent" in wait_for(lambda: (tmp_path / "end.log").read_text(), 5, "log")
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGTERM)
