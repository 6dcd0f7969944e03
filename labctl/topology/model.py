"""The topology model: frozen dataclasses, the single source of truth for what a lab should be.

Built only by ``labctl.topology.load`` (which validates everything first), read by ``render/`` and
``runtime/``. Addresses are ``ipaddress`` objects, sizes bytes, durations milliseconds.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Literal

from labctl.topology.units import MiB

# Docker object names (networks, volumes, containers) derive from the lab name.
LAB_NAME_MAX = 40
LAB_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")

# RFC 1123 host name label, lower case (heartbeat lower-cases `uname -n` and the node lines).
HOSTNAME_RE = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")

# NetBIOS names (the cluster name answers as one through nmbd) are at most 15 characters.
NETBIOS_NAME_MAX = 15

PartitionRole = Literal["cidev", "journal", "data"]
PARTITION_ROLES: tuple[str, ...] = ("cidev", "journal", "data")

AutoFailback = Literal["on", "off", "legacy"]

# What ogfs.config accepts after "STOMITH:" (ogfs/config.py STOMITH_KINDS).
StomithKind = Literal["manual", "labctl", "none"]
STOMITH_KINDS: tuple[str, ...] = ("manual", "labctl", "none")

# heartbeat 3.0.6 config.c StringToBaud.
BAUD_RATES: tuple[int, ...] = (9600, 19200, 38400, 57600, 115200, 230400, 460800)

# Default cgroup limits of each container (memory without swap, number of processes/threads). Chosen
# so that 50 labs fit a 24 GiB machine: 2 nodes + client + cable = 2 x 192 + 64 + 32 = 480 MiB a lab,
# 50 labs 23.4 GiB. The pids bounds stop a fork loop in one lab from starving the others.
DEFAULT_NODE_MEMORY = 192 * MiB
DEFAULT_NODE_PIDS = 512
DEFAULT_CLIENT_MEMORY = 64 * MiB
DEFAULT_CLIENT_PIDS = 128
DEFAULT_CABLE_MEMORY = 32 * MiB
DEFAULT_CABLE_PIDS = 32


def lab_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a lab name, or None if it can."""
    if len(name) > LAB_NAME_MAX:
        return f"a lab name is at most {LAB_NAME_MAX} characters (Docker object names derive from it)"
    if not LAB_NAME_RE.match(name):
        return (
            "a lab name uses lower-case letters, digits and '-', and starts and ends with a letter or "
            "digit (Docker object names derive from it)"
        )
    return None


@dataclass(frozen=True)
class Node:
    """A cluster node: a container whose hostname is ``name``; ``cid`` is its OpenGFS cluster id."""

    name: str
    ip: IPv4Address
    cid: int
    preferred: bool = False

    @property
    def hostdata(self) -> str:
        """The ``hostdata=`` mount option: the node's address, as in the seed."""
        return str(self.ip)


@dataclass(frozen=True)
class Client:
    """The SMB client container (smbclient and a Python SMB client)."""

    name: str
    ip: IPv4Address


@dataclass(frozen=True)
class Cluster:
    """The floating cluster address and the OpenGFS cluster settings (ogfscf.cf)."""

    name: str  # resolves to ip everywhere; also the NetBIOS name nmbd answers to
    ip: IPv4Address  # heartbeat's IPaddr resource, and memexpd's address (lockdev)
    lockdev_port: int = 15697
    cbport: int = 3001
    timeout: int = 30  # seconds before OpenGFS considers a node dead
    stomith: StomithKind = "manual"

    @property
    def lockdev(self) -> str:
        return f"{self.ip}:{self.lockdev_port}"


@dataclass(frozen=True)
class SerialCable:
    """A null-modem cable between nodes ``a`` and ``b``, seen as ``device`` in both."""

    a: str
    b: str
    baud: int = 19200
    device: str = "/dev/ttyS0"

    @property
    def ends(self) -> tuple[str, str]:
        return (self.a, self.b)

    def peer(self, node: str) -> str:
        """The node at the other end from ``node``."""
        if node == self.a:
            return self.b
        if node == self.b:
            return self.a
        raise KeyError(node)


@dataclass(frozen=True)
class Partition:
    """A region of the shared disk, seen in every node as ``/dev/<name>``."""

    name: str  # e.g. "sda1"
    role: PartitionRole
    start: int  # bytes from the start of the disk
    size: int  # bytes

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def path(self) -> str:
        return f"/dev/{self.name}"


@dataclass(frozen=True)
class Disk:
    """The shared disk (a sparse image, attached to every node) and its partitions."""

    size: int
    partitions: tuple[Partition, ...]
    fstype: str = "ogfs"  # the fstype field of heartbeat's Filesystem resource

    def by_role(self, role: PartitionRole) -> tuple[Partition, ...]:
        return tuple(p for p in self.partitions if p.role == role)

    def partition(self, name: str) -> Partition:
        for part in self.partitions:
            if part.name == name:
                return part
        raise KeyError(name)

    @property
    def cidev(self) -> Partition:
        return self.by_role("cidev")[0]

    @property
    def datadev(self) -> Partition:
        return self.by_role("data")[0]

    @property
    def journals(self) -> tuple[Partition, ...]:
        return self.by_role("journal")


@dataclass(frozen=True)
class HeartbeatTiming:
    """One heartbeat timing profile (ha.cf keepalive/warntime/deadtime/initdead, auto_failback)."""

    name: str
    keepalive_ms: int
    warntime_ms: int
    deadtime_ms: int
    initdead_ms: int
    auto_failback: AutoFailback = "on"


@dataclass(frozen=True)
class HeartbeatOptions:
    """ha.cf settings that are not timings."""

    udpport: int = 694
    realtime: bool = False  # ha-stack.md 1.8: an RT process can hog a shared CI host


@dataclass(frozen=True)
class Network:
    """The LAN: a user-defined Docker bridge with an explicit gateway (never a node's address)."""

    subnet: IPv4Network
    gateway: IPv4Address
    interface: str = "eth0"  # the LAN interface inside nodes (ha.cf ucast lines)


@dataclass(frozen=True)
class Share:
    """The Samba share of the mounted cluster filesystem."""

    name: str = "ogfs"
    path: str = "/ogfs"  # also the mount point of the data partition
    workgroup: str = "WORKGROUP"
    force_user: str = "root"
    comment: str = "OpenGFS cluster filesystem"


@dataclass(frozen=True)
class HostLimits:
    """The resource bounds of one container: ``memory`` bytes (no swap on top) and ``pids`` tasks."""

    memory: int
    pids: int


@dataclass(frozen=True)
class Limits:
    """Resource bounds per kind of container: each node, the client, the serial cable."""

    node: HostLimits = HostLimits(DEFAULT_NODE_MEMORY, DEFAULT_NODE_PIDS)
    client: HostLimits = HostLimits(DEFAULT_CLIENT_MEMORY, DEFAULT_CLIENT_PIDS)
    cable: HostLimits = HostLimits(DEFAULT_CABLE_MEMORY, DEFAULT_CABLE_PIDS)


@dataclass(frozen=True)
class Topology:
    """A validated lab description. ``heartbeat`` is the selected profile among ``profiles``."""

    name: str
    source: Path | None
    network: Network
    cluster: Cluster
    nodes: tuple[Node, ...]
    client: Client
    serial: tuple[SerialCable, ...]
    disk: Disk
    heartbeat: HeartbeatTiming
    profiles: Mapping[str, HeartbeatTiming]
    default_profile: str
    heartbeat_options: HeartbeatOptions = field(default_factory=HeartbeatOptions)
    share: Share = field(default_factory=Share)
    description: str = ""
    limits: Limits = field(default_factory=Limits)

    @property
    def subnet(self) -> IPv4Network:
        return self.network.subnet

    @property
    def gateway(self) -> IPv4Address:
        return self.network.gateway

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    def node(self, name: str) -> Node:
        """The node called ``name``; KeyError if there is none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def preferred_node(self) -> Node:
        """The node named first on the haresources line (where resources start)."""
        return next(n for n in self.nodes if n.preferred)

    def peers(self, node: Node | str) -> tuple[Node, ...]:
        name = node if isinstance(node, str) else node.name
        return tuple(n for n in self.nodes if n.name != name)

    def cables_of(self, node: Node | str) -> tuple[SerialCable, ...]:
        """Serial cables with an end in ``node``."""
        name = node if isinstance(node, str) else node.name
        return tuple(c for c in self.serial if name in c.ends)

    def hosts(self) -> tuple[tuple[str, IPv4Address], ...]:
        """(name, address) of every host name the lab resolves: nodes, client, cluster name."""
        return (
            *((n.name, n.ip) for n in self.nodes),
            (self.client.name, self.client.ip),
            (self.cluster.name, self.cluster.ip),
        )

    def with_profile(self, profile: str) -> Topology:
        """The same topology with another heartbeat profile selected; KeyError if it is unknown."""
        return dataclasses.replace(self, heartbeat=self.profiles[profile])
