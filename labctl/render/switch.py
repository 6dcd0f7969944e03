"""The lab's power switch (STOMITH method ``labctl``, docs/fencing.md): where it listens, its
plugs, and how ogfscf.cf names it.  A node's plug is its CID + 1, as an APC switch numbers its
outlets from 1."""

from __future__ import annotations

from labctl.render.lan import Overlay
from labctl.topology.model import Node, Topology

SWITCH = "switch"  # render_lab's key for its files, and its container's name suffix
PROGRAM_PATH = "/usr/local/lib/labctl/labctl-switch"
PORT = 7000
ENGINE_SOCKET = "/run/labctl/engine.sock"  # where the engine's socket is mounted in the switch


def enabled(topology: Topology) -> bool:
    return topology.cluster.stomith == "labctl"


def plug(node: Node) -> int:
    return node.cid + 1


def address(overlay: Overlay) -> str:
    if overlay.switch is None:
        raise ValueError("this lab has no power switch (cluster.stomith is not labctl)")
    return str(overlay.switch)
