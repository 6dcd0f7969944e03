"""The power switch program (runtime/assets/labctl-switch) and its client (ogfs/powerswitch.py).

The switch runs as a real process; the engine behind it is tests/fake_engine.py.  The real engine
is the lab test's (tests/lab/test_fencing.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_engine import FakeEngine, node
from support import free_port, wait_for

from ogfs import powerswitch

SWITCH = Path(__file__).parents[2] / "labctl" / "runtime" / "assets" / "labctl-switch"


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[tuple[FakeEngine, int, subprocess.Popen[str]]]:
    engine = FakeEngine(str(tmp_path / "engine.sock"))
    engine.containers = {"labctl-x-fred": node("x", paused=True), "labctl-x-barney": node("x"),
                         "labctl-y-fred": node("y")}
    engine.start()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-u", str(SWITCH), "--lab", "x", "--listen", f"127.0.0.1:{port}",
         "--engine", str(tmp_path / "engine.sock"), "--allow", "127.0.0.1",
         "1=labctl-x-fred", "2=labctl-x-barney", "3=labctl-y-fred", "4=labctl-x-gone"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: _answers(port), 10, "the switch to listen")
    try:
        yield engine, port, proc
    finally:
        proc.terminate()
        proc.wait(10)
        engine.shutdown()


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def raw(port: int, data: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        return s.makefile("rb").readline().decode().strip()


def test_off_kills_a_frozen_node_and_confirms(switch: tuple[FakeEngine, int, Any]) -> None:
    engine, port, _ = switch
    assert powerswitch.power_off("127.0.0.1", port, "1") == "OK off 1"
    assert engine.kills == ["labctl-x-fred"]
    assert powerswitch.power_off("127.0.0.1", port, "1") == "OK off 1"  # already off: still OK
    assert engine.kills == ["labctl-x-fred"]
    assert powerswitch.request("127.0.0.1", port, "STATUS 2") == "OK on 2"
    assert powerswitch.request("127.0.0.1", port, "STATUS 1") == "OK off 1"


def test_it_acts_only_on_nodes_of_its_own_lab(switch: tuple[FakeEngine, int, Any]) -> None:
    engine, port, _ = switch
    with pytest.raises(powerswitch.SwitchError, match="not a node of lab x"):
        powerswitch.power_off("127.0.0.1", port, "3")
    with pytest.raises(powerswitch.SwitchError, match="no plug 9"):
        powerswitch.power_off("127.0.0.1", port, "9")
    assert powerswitch.power_off("127.0.0.1", port, "4") == "OK off 4"  # no such container: off
    assert engine.kills == []


@pytest.mark.parametrize("data", [b"off 1\n", b"OFF 1 2\n", b"OFF\n", b"OFF 1", b"X" * 5000 + b"\n",
                                  b"\xff\xfe\n", b"OFF 1;STATUS 2\n", b"STATUS -1\n", b"\n"])
def test_garbage_gets_an_error_and_the_switch_lives_on(switch: tuple[FakeEngine, int, Any],
                                                      data: bytes) -> None:
    engine, port, proc = switch
    try:
        answer = raw(port, data)
    except OSError:
        answer = ""
    assert not answer.startswith("OK"), answer
    assert proc.poll() is None
    assert engine.kills == []
    assert powerswitch.request("127.0.0.1", port, "STATUS 2") == "OK on 2"


def test_an_address_it_does_not_know_gets_nothing(tmp_path: Path) -> None:
    engine = FakeEngine(str(tmp_path / "engine.sock"))
    engine.containers = {"labctl-x-fred": node("x")}
    engine.start()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-u", str(SWITCH), "--lab", "x", "--listen", f"127.0.0.1:{port}",
         "--engine", str(tmp_path / "engine.sock"), "--allow", "127.0.0.2", "1=labctl-x-fred"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _answers(port), 10, "the switch to listen")
        with pytest.raises(powerswitch.SwitchError, match="answered 'OFF 1' with 'nothing'"):
            powerswitch.power_off("127.0.0.1", port, "1")
        assert engine.kills == []
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
        engine.shutdown()
    assert "refused a connection from 127.0.0.1" in out
