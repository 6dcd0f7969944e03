"""Load a topology file into the frozen model, checking everything before anything is created.

Every problem is reported as ``<file>: <key.path>: <problem> (got <value>)``, all of them at once,
in one ``TopologyError`` (exit code 2). YAML syntax errors give ``<file>:<line>:<column>``.
The checks are our own code (not a JSON Schema validator) so that each message can say what is
wrong and why; ``schema.json`` next to this file describes the same format for editors.

This module only puts the pieces together: ``strict_yaml`` parses, ``sections`` read one top-level
key each, ``crosscheck`` relates them, ``problems`` collects what is wrong, ``locate`` finds files.
The names below that are not defined here are re-exported: other code and the tests import them
from ``labctl.topology.load``.
"""

from __future__ import annotations

import os
from pathlib import Path

from labctl.errors import TopologyError
from labctl.topology.crosscheck import check_addresses, check_host_names, check_ports, check_workgroup
from labctl.topology.locate import (
    available_topologies,
    installed_data_dir,
    looks_like_path,
    resolve_topology,
    topologies_dir,
    topology_dirs,
)
from labctl.topology.model import BAUD_RATES, Topology
from labctl.topology.problems import Checker, Invalid, topology_error
from labctl.topology.sections.client import CLIENT_KEYS, read_client
from labctl.topology.sections.cluster import CLUSTER_KEYS, read_cluster
from labctl.topology.sections.disk import DISK_KEYS, PARTITION_KEYS, read_disk
from labctl.topology.sections.heartbeat import HEARTBEAT_KEYS, PROFILE_KEYS, read_heartbeat
from labctl.topology.sections.limits import HOST_LIMITS_KEYS, LIMITS_KEYS, read_limits
from labctl.topology.sections.name import read_lab_name
from labctl.topology.sections.network import NETWORK_KEYS, read_network
from labctl.topology.sections.nodes import NODE_KEYS, read_nodes
from labctl.topology.sections.serial import SERIAL_KEYS, read_serial
from labctl.topology.sections.share import SHARE_KEYS, read_share
from labctl.topology.strict_yaml import parse_yaml, read_text

__all__ = [
    "BAUD_RATES",
    "CLIENT_KEYS",
    "CLUSTER_KEYS",
    "DISK_KEYS",
    "HEARTBEAT_KEYS",
    "HOST_LIMITS_KEYS",
    "LIMITS_KEYS",
    "NETWORK_KEYS",
    "NODE_KEYS",
    "PARTITION_KEYS",
    "PROFILE_KEYS",
    "SERIAL_KEYS",
    "SHARE_KEYS",
    "TOP_KEYS",
    "available_topologies",
    "installed_data_dir",
    "load_topology",
    "parse_topology",
    "resolve_topology",
    "topologies_dir",
    "topology_dirs",
]

# The format's top level, in the schema's order (tests check every *_KEYS against schema.json).
TOP_KEYS = (
    "name",
    "description",
    "network",
    "cluster",
    "nodes",
    "client",
    "serial",
    "disk",
    "heartbeat",
    "share",
    "limits",
)


def parse_topology(text: str, path: Path, profile: str | None = None, shown: str | None = None) -> Topology:
    """Validate a topology given as text; ``path`` names it (in messages, and the default lab name)."""
    shown = shown if shown is not None else str(path)
    data = parse_yaml(text, shown)
    checker = Checker(shown)
    if data is None:
        raise TopologyError(f"{shown}: the file is empty")
    try:
        top = checker.mapping(data, "", TOP_KEYS, required=("network", "cluster", "nodes", "client", "disk"))
    except Invalid:
        raise topology_error(checker) from None
    # Every section is read even when an earlier one is wrong, so that all problems come out at once;
    # the order here is the order of the messages.
    name = read_lab_name(checker, top, path)
    description = checker.get(top, "", "description", checker.string, "")
    network = read_network(checker, top["network"]) if top.get("network") is not None else None
    cluster = read_cluster(checker, top["cluster"]) if top.get("cluster") is not None else None
    nodes = read_nodes(checker, top["nodes"]) if top.get("nodes") is not None else None
    client = read_client(checker, top["client"]) if top.get("client") is not None else None
    serial = read_serial(checker, top.get("serial"), nodes)
    disk = read_disk(checker, top["disk"]) if top.get("disk") is not None else None
    heartbeat = read_heartbeat(checker, top.get("heartbeat"), profile)
    share = read_share(checker, top.get("share"))
    limits = read_limits(checker, top.get("limits"))
    if network is not None:
        check_addresses(checker, network, cluster, nodes, client)
    check_host_names(checker, cluster, nodes, client)
    check_ports(checker, cluster, heartbeat.options if heartbeat else None)
    check_workgroup(checker, share, cluster, client)
    if checker.problems:
        raise topology_error(checker)
    assert name is not None and network is not None and cluster is not None and nodes is not None
    assert client is not None and serial is not None and disk is not None and heartbeat is not None
    assert share is not None and description is not None and limits is not None
    return Topology(
        name=name,
        source=path,
        network=network.network,
        cluster=cluster,
        nodes=nodes,
        client=client,
        serial=serial,
        disk=disk,
        heartbeat=heartbeat.selected,
        profiles=heartbeat.profiles,
        default_profile=heartbeat.default_profile,
        heartbeat_options=heartbeat.options,
        share=share,
        description=description,
        limits=limits,
    )


def load_topology(ref: str | os.PathLike[str], profile: str | None = None) -> Topology:
    """Load and validate a topology: ``ref`` is a name (``two-node``) or a path to a YAML file.

    ``profile`` selects a heartbeat profile (default: the file's ``heartbeat.profile``).
    Raises ``TopologyError`` (exit code 2) naming the file, key path and value of every problem.
    """
    text_ref = os.fspath(ref)
    path = resolve_topology(text_ref)
    shown = text_ref if looks_like_path(text_ref) or path == Path(text_ref) else path.name
    return parse_topology(read_text(path, shown), path, profile, shown)
