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


NOLOCK_NOTE = "# lockproto nolock (labctl up --lockproto nolock): no lock server in the group.\n"


def resource_line(topology: Topology, node: Node, lockproto: str = "memexp") -> str:
    """The group, left to right. With ``nolock`` the filesystem needs no lock server, so memexpd
    leaves the group (docs/runtime.md, "Lock protocol")."""
    disk, share = topology.disk, topology.share
    filesystem = "::".join(
        ("Filesystem", disk.datadev.path, share.path, disk.fstype, f"hostdata={node.hostdata}")
    )
    lock = " memexpd" if lockproto != "nolock" else ""
    return f"{topology.preferred_node.name} {topology.cluster.ip}{lock} {filesystem} smb"


def render_haresources(topology: Topology, node: Node, lockproto: str = "memexp") -> str:
    note = NOLOCK_NOTE if lockproto == "nolock" else ""
    return note + HEADER + resource_line(topology, node, lockproto) + "\n"
