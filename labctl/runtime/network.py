"""The lab's LAN: one internal Docker bridge with the topology's subnet and an explicit gateway.

- ``internal=True``: no route out of the machine, nothing published; a lab never sends a packet
  beyond its own networks.
- The gateway is the topology's (never a node's address: ha-stack.md G22); the cluster address is
  reserved with an aux-address so Docker's IPAM never hands it to a container.
- The serial cable never rides this network (serial.py).
"""

from __future__ import annotations

from ipaddress import IPv4Network, ip_network

import docker
import docker.errors
import docker.types
from docker.models.networks import Network

from labctl.runtime.engine import LABEL_LAB, EngineError, LabStateError, labels, object_name
from labctl.topology.model import Topology


def lan_name(lab: str) -> str:
    return object_name(lab, "lan")


def subnet_conflicts(client: docker.DockerClient, subnet: IPv4Network) -> list[str]:
    """Docker networks whose subnets overlap ``subnet``, as ``name (lab X)`` strings."""
    found = []
    for net in client.networks.list():
        try:
            net.reload()
        except docker.errors.NotFound:
            continue
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            text = cfg.get("Subnet")
            if not text:
                continue
            try:
                other = ip_network(text, strict=False)
            except ValueError:
                continue
            if other.version == 4 and other.overlaps(subnet):
                owner = (net.attrs.get("Labels") or {}).get(LABEL_LAB)
                found.append(f"{net.name} ({text}{', lab ' + owner if owner else ''})")
    return found


def create_lan(client: docker.DockerClient, lab: str, topology: Topology) -> Network:
    net = topology.network
    pool = docker.types.IPAMPool(
        subnet=str(net.subnet),
        gateway=str(net.gateway),
        aux_addresses={topology.cluster.name: str(topology.cluster.ip)},
    )
    try:
        return client.networks.create(
            lan_name(lab),
            driver="bridge",
            internal=True,
            ipam=docker.types.IPAMConfig(pool_configs=[pool]),
            labels=labels(lab, "net"),
            check_duplicate=True,
        )
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc)
        if "overlap" in text.lower():
            raise LabStateError(
                f"cannot create the LAN {net.subnet}: it overlaps a network that exists ({text}); "
                "labs side by side need distinct subnets"
            ) from None
        raise EngineError(f"cannot create network {lan_name(lab)}: {text}") from None
