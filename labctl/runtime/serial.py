"""The serial cable: heartbeat's second medium, a relay that never rides the LAN.

::

    fred                                  cable container                     barney
    heartbeat <-> /dev/ttyS0 = pty        (network: none)                      pty = /dev/ttyS0 <-> heartbeat
                  labctl-serial-end <-> 0-fred.sock | pacing | 0-barney.sock <-> labctl-serial-end

- The ends (``assets/labctl-serial-end``) run inside the nodes, started by a pre-heartbeat hook,
  and own the pty master for the node's whole life, so heartbeat never reads EOF (ha-stack.md G7).
- The relay (``assets/labctl-cable``) runs in its own container with no network; the sockets live
  on a volume that only the nodes and the cable mount (G8): cutting the LAN leaves the cable up.
- It paces each direction at the topology's baud rate (baud/10 bytes a second) and drops bytes for
  an end that is not plugged in: a dead node's peer hears silence.
"""

from __future__ import annotations

from importlib import resources

import docker
from docker.models.containers import Container
from docker.models.volumes import Volume

from labctl.runtime.engine import labels, object_name, put_files
from labctl.topology.model import Node, Topology

NODE_SOCKET_DIR = "/var/lib/labctl/cable"
CABLE_SOCKET_DIR = "/cable"
END_PATH = "/usr/local/lib/labctl/labctl-serial-end"
RELAY_PATH = "/usr/local/bin/labctl-cable"
HOOK_PATH = "/etc/labctl/pre-heartbeat.d/20-serial-cable"


def asset(name: str) -> bytes:
    return resources.files("labctl.runtime").joinpath("assets", name).read_bytes()


def cable_volume_name(lab: str) -> str:
    return object_name(lab, "cable")


def cable_container_name(lab: str) -> str:
    return object_name(lab, "cable")


def create_cable_volume(client: docker.DockerClient, lab: str) -> Volume:
    return client.volumes.create(cable_volume_name(lab), labels=labels(lab, "cable"))


def cable_specs(topology: Topology) -> list[str]:
    return [f"{i}:{c.a}:{c.b}:{c.baud}" for i, c in enumerate(topology.serial)]


def create_cable(client: docker.DockerClient, lab: str, topology: Topology, image: str) -> Container:
    """The relay container (not started). Needs no capability and no network."""
    container = client.containers.create(
        image,
        entrypoint=["/usr/bin/python3", "-u", RELAY_PATH],
        command=[CABLE_SOCKET_DIR, *cable_specs(topology)],
        name=cable_container_name(lab),
        hostname="cable",
        labels=labels(lab, "cable"),
        network_mode="none",
        volumes={cable_volume_name(lab): {"bind": CABLE_SOCKET_DIR, "mode": "rw"}},
        cap_drop=["ALL"],
        stop_signal="SIGTERM",
    )
    put_files(container, {RELAY_PATH: (asset("labctl-cable"), 0o755)})
    return container


def node_files(topology: Topology, node: Node) -> dict[str, tuple[bytes, int]]:
    """What a node needs for its cable ends: the end program and the hook that starts one per cable."""
    cables = [(i, c) for i, c in enumerate(topology.serial) if node.name in c.ends]
    if not cables:
        return {}
    lines = [
        "#!/bin/sh",
        "# labctl: start this node's end of every serial cable before heartbeat (it needs the tty to exist).",
        "set -e",
    ]
    for i, cable in cables:
        tty = cable.device.rsplit("/", 1)[-1]
        lines.append(
            f"{END_PATH} --device {cable.device} --socket {NODE_SOCKET_DIR}/{i}-{node.name}.sock "
            f"--pidfile /run/labctl/serial-{tty}.pid --log /var/log/labctl/serial-{tty}.log"
        )
    hook = "\n".join(lines) + "\n"
    return {END_PATH: (asset("labctl-serial-end"), 0o755), HOOK_PATH: (hook.encode(), 0o755)}
