"""The client side of STOMITH method `labctl`: ask the lab's power switch to power a node off.

The switch (labctl's `switch` host, docs/fencing.md) plays the part of the seed's APC
MasterSwitch: a box on the network with numbered plugs.  ogfscf.cf names it like one::

    STOMITH: labctl
    name: labctl
    ipaddr: 10.x.y.z
    port: 7000

    node: 192.168.1.1 0 SM: labctl 1

One request per TCP connection, one line each way (ASCII):

    OFF <plug>       ->  OK off <plug>        the node is powered off (it was, or is now)
    STATUS <plug>    ->  OK on|off <plug>
    anything wrong   ->  ERR <reason>

The switch answers OK only once the node's processes are gone, so "OK off" is the confirmation
a replay waits for.  Runs on the nodes: standard library only.
"""

from __future__ import annotations

import socket

from .config import ClusterConfig, NodeEntry

DEFAULT_PORT = 7000
TIMEOUT = 20.0  # seconds for one request: a power-off through the engine takes about one


class SwitchError(Exception):
    """The switch could not be reached or refused; the message says which."""


def switch_of(cfg: ClusterConfig, node: NodeEntry) -> tuple[str, int, str] | None:
    """(address, port, plug) of the power switch that fences `node`, or None when its STOMITH
    method is not a `labctl` switch."""
    method = cfg.method(node.method)
    if method is None or method.kind != "labctl":
        return None
    addr = method.param("ipaddr")
    if not addr or not node.plug:
        raise SwitchError(f"STOMITH method '{method.name}' needs ipaddr: and node {node.ip} a plug "
                          f"(node: {node.ip} {node.cid} SM: {method.name} <plug>)")
    return addr, int(method.param("port", str(DEFAULT_PORT)) or DEFAULT_PORT), node.plug


def request(addr: str, port: int, line: str, timeout: float = TIMEOUT) -> str:
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            s.sendall(line.encode("ascii") + b"\n")
            answer = b""
            while not answer.endswith(b"\n") and len(answer) < 1024:
                chunk = s.recv(1024)
                if not chunk:
                    break
                answer += chunk
    except OSError as e:
        raise SwitchError(f"power switch {addr}:{port}: {e}") from None
    text = answer.decode("ascii", errors="replace").strip()
    if not text.startswith("OK "):
        raise SwitchError(f"power switch {addr}:{port} answered {line!r} with {text or 'nothing'!r}")
    return text


def power_off(addr: str, port: int, plug: str, timeout: float = TIMEOUT) -> str:
    """Power the node on `plug` off; returns the switch's confirmation, raises SwitchError."""
    answer = request(addr, port, f"OFF {plug}", timeout)
    if answer.split()[:3] != ["OK", "off", plug]:
        raise SwitchError(f"power switch {addr}:{port}: unexpected answer {answer!r}")
    return answer
