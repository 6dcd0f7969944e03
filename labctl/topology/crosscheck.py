"""Cross-checks: the rules that relate several sections, run once every section has been read.

Each takes the sections' values (None where a section was wrong, and then checks what it can) and
records its problems on the ``Checker``; none of them changes a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from labctl.topology.model import NETBIOS_NAME_MAX, Client, Cluster, HeartbeatOptions, Node, Share
from labctl.topology.problems import Checker
from labctl.topology.sections.network import NetworkSection


@dataclass
class _Addr:
    """An address claimed by some key, for the uniqueness and subnet checks."""

    key: str
    owner: str
    ip: IPv4Address


def check_addresses(
    c: Checker,
    network: NetworkSection,
    cluster: Cluster | None,
    nodes: tuple[Node, ...] | None,
    client: Client | None,
) -> None:
    """Every node, client and cluster address is a usable host of the subnet, not the gateway, and its own."""
    net = network.network
    claims = [_Addr(f"nodes[{i}].ip", f"node {node.name}", node.ip) for i, node in enumerate(nodes or ())]
    if client is not None:
        claims.append(_Addr("client.ip", f"client {client.name}", client.ip))
    if cluster is not None:
        claims.append(_Addr("cluster.ip", f"cluster {cluster.name}", cluster.ip))
    gw_given = network.gateway_given
    seen: dict[IPv4Address, _Addr] = {}
    for claim in claims:
        if claim.ip not in net.subnet:
            c.error(claim.key, f"{claim.ip} is outside subnet {net.subnet}")
            continue
        if claim.ip in (net.subnet.network_address, net.subnet.broadcast_address):
            which = "network" if claim.ip == net.subnet.network_address else "broadcast"
            c.error(claim.key, f"{claim.ip} is the {which} address of subnet {net.subnet}")
            continue
        if claim.ip == net.gateway:
            how = "network.gateway" if gw_given else "the default gateway, the subnet's last usable address"
            c.error(
                claim.key,
                f"{claim.ip} is the gateway ({how}); Docker gives it to the bridge"
                + ("" if gw_given else ": pick another address or set network.gateway"),
            )
            continue
        if claim.ip in seen:
            other = seen[claim.ip]
            c.error(claim.key, f"{claim.ip} is already the address of {other.owner} ({other.key})")
            continue
        seen[claim.ip] = claim


# A host's container is labctl-<lab>-<host>; the serial relay is labctl-<lab>-cable and the helpers
# labctl-<lab>-helper-<job>, and `labctl render` writes the relay's and the disk helper's files
# beside the hosts' (render/lab.py), so a host may not take these names.
RESERVED_HOST_NAMES = frozenset({"cable", "disk", "switch"})
RESERVED_HOST_PREFIX = "helper-"


def check_host_names(
    c: Checker, cluster: Cluster | None, nodes: tuple[Node, ...] | None, client: Client | None
) -> None:
    """The client and cluster names differ from the nodes' and from each other (/etc/hosts maps each
    name to one address)."""
    names: dict[str, str] = {}
    hosts = [(f"nodes[{i}].name", n.name) for i, n in enumerate(nodes or ())]
    hosts += [("client.name", client.name)] if client else []
    for key, host in hosts:
        if host in RESERVED_HOST_NAMES or host.startswith(RESERVED_HOST_PREFIX):
            c.error(key, f"{host} is a name labctl gives its own containers and files (reserved: "
                    f"{', '.join(sorted(RESERVED_HOST_NAMES))}, {RESERVED_HOST_PREFIX}...)", host)
    if nodes is not None:
        for i, node in enumerate(nodes):
            names.setdefault(node.name, f"nodes[{i}].name")
    for key, name in (
        ("client.name", client.name if client else None),
        ("cluster.name", cluster.name if cluster else None),
    ):
        if name is None:
            continue
        if name in names:
            c.error(
                key,
                f"{name} is already the name of {names[name]} (every name resolves to one "
                "address in /etc/hosts)",
                name,
            )
        names.setdefault(name, key)


def check_workgroup(c: Checker, share: Share | None, cluster: Cluster | None, client: Client | None) -> None:
    """The Samba workgroup is not also a NetBIOS name of the lab (the cluster's or the client's)."""
    if share is None:
        return
    group = share.workgroup.upper()
    for key, name in (
        ("cluster.name", cluster.name if cluster else None),
        ("client.name", client.name if client else None),
    ):
        if name is not None and name.upper()[:NETBIOS_NAME_MAX] == group:
            c.error(
                "share.workgroup",
                f"is also the NetBIOS name of {key} ({name}); Samba needs them to differ",
                share.workgroup,
            )


def check_ports(c: Checker, cluster: Cluster | None, options: HeartbeatOptions | None) -> None:
    """``heartbeat.udpport`` is neither ``cluster.lockdev_port`` nor ``cluster.cbport``."""
    if cluster is None or options is None:
        return
    for key, port in (("cluster.lockdev_port", cluster.lockdev_port), ("cluster.cbport", cluster.cbport)):
        if port == options.udpport:
            c.error("heartbeat.udpport", f"{port} is also {key}", port)
