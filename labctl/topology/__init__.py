"""Topology layer: a YAML file (or a packaged name) -> a validated, frozen ``Topology``."""

from labctl.topology.load import (
    available_topologies,
    load_topology,
    parse_topology,
    resolve_topology,
    topologies_dir,
    topology_dirs,
)
from labctl.topology.model import (
    Client,
    Cluster,
    Disk,
    HeartbeatOptions,
    HeartbeatTiming,
    HostLimits,
    Limits,
    Network,
    Node,
    Partition,
    SerialCable,
    Share,
    Topology,
    lab_name_problem,
)

__all__ = [
    "Client",
    "Cluster",
    "Disk",
    "HeartbeatOptions",
    "HeartbeatTiming",
    "HostLimits",
    "Limits",
    "Network",
    "Node",
    "Partition",
    "SerialCable",
    "Share",
    "Topology",
    "available_topologies",
    "lab_name_problem",
    "load_topology",
    "parse_topology",
    "resolve_topology",
    "topologies_dir",
    "topology_dirs",
]
