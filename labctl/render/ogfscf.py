"""``/etc/ogfscf.cf``: the OpenGFS cluster configuration, in the seed's format and key order."""

from __future__ import annotations

from labctl.topology.model import Topology

PATH = "/etc/ogfscf.cf"


def render_ogfscf(topology: Topology) -> str:
    """The same text on every node: devices, lock server, callback port, timeout, STOMITH, node table."""
    disk, cluster = topology.disk, topology.cluster
    method = cluster.stomith
    lines = [
        f"# OpenGFS cluster configuration of lab {topology.name}, rendered by labctl from the topology.",
        "# the pool device that will contain the data (the larger of the 2)",
        f"datadev: {disk.datadev.path}",
        "# the pool device that will contain the cluster info (the small one)",
        f"cidev: {disk.cidev.path}",
        "# the IP:Port of the server that is going to be running memexpd (the cluster IP)",
        f"lockdev: {cluster.lockdev}",
        "# the port used for callbacks between cluster nodes",
        f"cbport: {cluster.cbport}",
        "# time before a node is considered dead",
        f"timeout: {cluster.timeout}",
        '# method used for STOMITHing "dead" nodes, and its unique name',
        f"STOMITH: {method}",
        f"name: {method}",
        "# Tag IPAddr CID STOMITH Method",
    ]
    lines += [
        f"node: {node.ip} {node.cid} SM: {method}" for node in sorted(topology.nodes, key=lambda n: n.cid)
    ]
    return "\n".join(lines) + "\n"
