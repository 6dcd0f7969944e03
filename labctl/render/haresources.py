"""``/etc/ha.d/haresources``: the seed's one resource group.

``<preferred> <cluster ip> memexpd Filesystem::<datadev>::<mount>::<fstype>::hostdata=<this node's ip> smb``

The seed breaks heartbeat's "identical on all nodes" advice on purpose: OpenGFS needs the mounting
node's own address, and each node runs its own line after a takeover (ha-stack.md 1.4). So the file
differs between nodes in the ``hostdata=`` field only.
"""

from __future__ import annotations

from labctl.topology.model import Node, Topology

PATH = "/etc/ha.d/haresources"

HEADER = """\
# heartbeat resources, rendered by labctl: preferred node, cluster IP (IPaddr), the OpenGFS lock
# server (memexpd), the OpenGFS mount, Samba (smb). Started left to right, stopped right to left.
# hostdata= is the address of the node this file is on (OpenGFS needs it to mount).
"""


def resource_line(topology: Topology, node: Node) -> str:
    disk, share = topology.disk, topology.share
    filesystem = "::".join(
        ("Filesystem", disk.datadev.path, share.path, disk.fstype, f"hostdata={node.hostdata}")
    )
    return f"{topology.preferred_node.name} {topology.cluster.ip} memexpd {filesystem} smb"


def render_haresources(topology: Topology, node: Node) -> str:
    return HEADER + resource_line(topology, node) + "\n"
