"""The ``network`` section: the LAN subnet, the Docker bridge's gateway and the nodes' interface."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from typing import Any

from labctl.topology.model import Network
from labctl.topology.problems import Checker, Invalid

NETWORK_KEYS = ("subnet", "gateway", "interface")

IFACE_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")


@dataclass(frozen=True)
class NetworkSection:
    """The network, and whether the file chose the gateway (messages about a clash say how it came)."""

    network: Network
    gateway_given: bool


def read_network(c: Checker, data: Any) -> NetworkSection | None:
    try:
        d = c.mapping(data, "network", NETWORK_KEYS, required=("subnet",))
    except Invalid:
        return None
    subnet = c.get(d, "network", "subnet", lambda k, v: _subnet(c, k, v))
    interface = c.get(
        d, "network", "interface", lambda k, v: c.matching(k, v, IFACE_RE, "an interface name"), "eth0"
    )
    if subnet is None or interface is None:
        c.get(d, "network", "gateway", c.ip, None)  # still report a bad gateway
        return None
    default_gw = subnet.broadcast_address - 1
    gateway_given = d.get("gateway") is not None
    gateway = c.get(d, "network", "gateway", c.ip, default_gw)
    if gateway is None:
        return None
    if "gateway" in d and d["gateway"] is not None and not usable(subnet, gateway):
        c.error("network.gateway", f"{gateway} is not a usable host address of subnet {subnet}", d["gateway"])
        return None
    return NetworkSection(Network(subnet, gateway, interface), gateway_given)


def _subnet(c: Checker, key: str, value: Any) -> IPv4Network:
    if not isinstance(value, str):
        raise c.fail(key, "must be an IPv4 network such as 192.0.2.0/24 (a string)", value)
    if "/" not in value:
        raise c.fail(key, "needs a prefix length, e.g. 192.0.2.0/24", value)
    try:
        net = IPv4Network(value, strict=False)
    except (AddressValueError, NetmaskValueError, ValueError):
        raise c.fail(key, "is not an IPv4 network such as 192.0.2.0/24", value) from None
    if str(net.network_address) != value.split("/")[0].strip():
        raise c.fail(key, f"has host bits set: the network is {net}", value)
    if net.prefixlen > 29:
        raise c.fail(
            key,
            "is too small: the lab needs a /29 or larger (network, gateway, cluster "
            "address, nodes, client, broadcast)",
            value,
        )
    return net


def usable(subnet: IPv4Network, ip: IPv4Address) -> bool:
    """Whether ``ip`` is a host of ``subnet``: inside it, and neither its network nor broadcast address."""
    return ip in subnet and ip not in (subnet.network_address, subnet.broadcast_address)
