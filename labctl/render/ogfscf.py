"""``/etc/ogfscf.cf``: the OpenGFS cluster configuration, in the seed's format and key order."""

from __future__ import annotations

from labctl.render import switch
from labctl.render.lan import Overlay, overlay_for
from labctl.topology.model import Topology

PATH = "/etc/ogfscf.cf"
MAX_SLOT_INTERVAL = 2.0  # seconds (ogfs.config.SLOT_INTERVAL_RANGE)
MIN_SLOT_INTERVAL = 0.05


def slot_interval(topology: Topology) -> float:
    """The disk-heartbeat interval for the lab's timing profile: deadtime / 4, within 0.05..2 s.
    A first mounter counts a slot frozen for 1.5 intervals as dead (ogfs/slots.py)."""
    quarter = topology.heartbeat.deadtime_ms / 4000
    return round(min(MAX_SLOT_INTERVAL, max(MIN_SLOT_INTERVAL, quarter)), 3)


def render_ogfscf(topology: Topology, overlay: Overlay | None = None) -> str:
    """The same text on every node: devices, lock server, callback port, timeout, STOMITH, node table.
    With STOMITH ``labctl`` the method names the lab's power switch (its outer address on
    ``overlay``) and each node its plug, as the seed's APC MasterSwitch section would."""
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
    ]
    interval = slot_interval(topology)
    if interval != min(cluster.timeout / 3, MAX_SLOT_INTERVAL):  # the seed's file stays the seed's
        lines += [
            "# labctl: how often a mounted node rewrites its disk-heartbeat slot (seconds): a quarter of",
            "# heartbeat's deadtime, at most 2, so the disk tells a dead node about as fast as heartbeat",
            f"slot_interval: {interval:g}",
        ]
    lines += [
        '# method used for STOMITHing "dead" nodes, and its unique name',
        f"STOMITH: {method}",
        f"name: {method}",
    ]
    if switch.enabled(topology):
        lines += [
            "# labctl: the lab's power switch (docs/fencing.md), on the lab's management network",
            f"ipaddr: {switch.address(overlay or overlay_for(topology))}",
            f"port: {switch.PORT}",
            "# Tag IPAddr CID STOMITH Method Plug",
        ]
        lines += [f"node: {node.ip} {node.cid} SM: {method} {switch.plug(node)}"
                  for node in sorted(topology.nodes, key=lambda n: n.cid)]
    else:
        lines += ["# Tag IPAddr CID STOMITH Method"]
        lines += [f"node: {node.ip} {node.cid} SM: {method}"
                  for node in sorted(topology.nodes, key=lambda n: n.cid)]
    return "\n".join(lines) + "\n"
