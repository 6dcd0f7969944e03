"""The serial cable's files in a node: the hook that starts this node's end of every cable.

The end program (``labctl-serial-end``) owns the pty heartbeat opens as ``/dev/ttyS0`` for the
node's whole life (docs/runtime.md, "The serial cable"); the hook starts one per cable before
heartbeat, since heartbeat needs the tty to exist when it reads ha.cf.
"""

from __future__ import annotations

from labctl.render.files import RenderedFile
from labctl.topology.model import Node, Topology

NODE_SOCKET_DIR = "/var/lib/labctl/cable"  # the cable volume, in nodes
CABLE_SOCKET_DIR = "/cable"  # the same volume, in the cable container
END_PATH = "/usr/local/lib/labctl/labctl-serial-end"
RELAY_PATH = "/usr/local/bin/labctl-cable"
HOOK_PATH = "/etc/labctl/pre-heartbeat.d/20-serial-cable"


def socket_name(index: int, node: str) -> str:
    return f"{index}-{node}.sock"


def cable_specs(topology: Topology) -> list[str]:
    """The relay's arguments: ``index:a:b:baud`` for every cable."""
    return [f"{i}:{c.a}:{c.b}:{c.baud}" for i, c in enumerate(topology.serial)]


def render_serial_hook(topology: Topology, node: Node) -> str | None:
    cables = [(i, c) for i, c in enumerate(topology.serial) if node.name in c.ends]
    if not cables:
        return None
    lines = [
        "#!/bin/sh",
        "# labctl: start this node's end of every serial cable before heartbeat (it needs the tty to exist).",
        "set -e",
    ]
    for i, cable in cables:
        tty = cable.device.rsplit("/", 1)[-1]
        lines.append(
            f"{END_PATH} --device {cable.device} --socket {NODE_SOCKET_DIR}/{socket_name(i, node.name)} "
            f"--pidfile /run/labctl/serial-{tty}.pid --log /var/log/labctl/serial-{tty}.log"
        )
    return "\n".join(lines) + "\n"


def render_serial_files(topology: Topology, node: Node, program: RenderedFile) -> dict[str, RenderedFile]:
    hook = render_serial_hook(topology, node)
    if hook is None:
        return {}
    return {END_PATH: program, HOOK_PATH: RenderedFile(HOOK_PATH, hook, 0o755)}
