"""A lab plan: every network, volume and container a lab consists of, as plain data.

``make_plan`` (plan/build.py) computes it from the topology, the rendered files and the options;
``runtime`` applies it as one transaction, ``labctl render`` prints it, and ``labctl export
compose`` writes it as a compose project. Nothing here talks to Docker: images are named by kind
(``node``, ``client``, ``base``) and the runtime puts in the tags; a partition's loop device is
named by partition, since the engine attaches it only when the lab is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Literal

from labctl.render.files import RenderedFile
from labctl.topology.model import Topology

ImageKind = Literal["base", "node", "client"]
Role = Literal["node", "client", "cable", "switch", "disk", "net", "helper", "lab"]


@dataclass(frozen=True)
class NetworkSpec:
    """The lab's outer network: internal (no route out), on a subnet free on the engine."""

    name: str
    subnet: IPv4Network
    gateway: IPv4Address
    labels: dict[str, str]
    internal: bool = True


@dataclass(frozen=True)
class VolumeSpec:
    name: str
    role: Role
    labels: dict[str, str]


@dataclass(frozen=True)
class VolumeMount:
    volume: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class PartitionDevice:
    """A partition of the shared disk, mapped into a container at ``path`` (``/dev/sda1``)."""

    partition: str
    path: str


@dataclass(frozen=True)
class ContainerSpec:
    """One container of the lab, complete: the runtime adds only image tags and loop devices."""

    name: str
    host: str  # the host name it stands for (fred, client), or its role for the cable
    role: Role
    image: ImageKind
    labels: dict[str, str]
    hostname: str
    memory: int  # bytes (cgroup limit; swap not added)
    pids: int
    network: str | None = None  # the outer network; None: no network at all
    address: IPv4Address | None = None  # its outer address
    extra_hosts: dict[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()  # host:container:perms, fixed ones (/dev/fuse)
    partitions: tuple[PartitionDevice, ...] = ()
    tmpfs: dict[str, str] = field(default_factory=dict)
    mounts: tuple[VolumeMount, ...] = ()
    # Where the engine's own API socket is mounted, for the one host that needs the engine (the
    # power switch, docs/security.md); None for every other.  The runtime knows the socket's path.
    engine_socket: str | None = None
    files: tuple[RenderedFile, ...] = ()  # copied in before the first start
    dirs: tuple[str, ...] = ()  # empty directories made before the first start
    stop_signal: str = "SIGTERM"
    stop_timeout: int | None = None
    start_group: int = 1  # containers start group by group: 0 the cable and switch, 1 the nodes, 2 the client


@dataclass(frozen=True)
class DiskSpec:
    """The shared disk: a sparse image on ``volume``, formatted by a helper with ``files``."""

    volume: str
    size: int
    partitions: tuple[str, ...]
    files: tuple[RenderedFile, ...]
    script: str  # the path of the format script among ``files``
    lockproto: str


@dataclass(frozen=True)
class LabPlan:
    """Everything ``up`` creates for lab ``lab``, in the order it creates it."""

    lab: str
    topology: Topology
    lockproto: str
    claim: ContainerSpec  # made first: its name is the lab's lock (docs/runtime.md, "One up per lab")
    network: NetworkSpec
    volumes: tuple[VolumeSpec, ...]
    disk: DiskSpec
    containers: tuple[ContainerSpec, ...]

    def container(self, host: str) -> ContainerSpec:
        for c in self.containers:
            if c.host == host:
                return c
        raise KeyError(host)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able view (file contents left out: ``labctl render`` writes them as files)."""

        def spec(c: ContainerSpec) -> dict[str, Any]:
            return {
                "name": c.name, "host": c.host, "role": c.role, "image": c.image, "hostname": c.hostname,
                "network": c.network, "address": str(c.address) if c.address else None,
                "memory": c.memory, "pids": c.pids, "cap_add": list(c.cap_add), "cap_drop": list(c.cap_drop),
                "devices": list(c.devices),
                "partitions": {p.path: p.partition for p in c.partitions},
                "tmpfs": c.tmpfs, "mounts": [{"volume": m.volume, "target": m.target} for m in c.mounts],
                "engine_socket": c.engine_socket,
                "entrypoint": list(c.entrypoint) if c.entrypoint else None,
                "command": list(c.command) if c.command else None,
                "extra_hosts": c.extra_hosts, "files": sorted(f.path for f in c.files),
                "stop_timeout": c.stop_timeout, "start_group": c.start_group,
                "labels": {k: v for k, v in c.labels.items() if k != "labctl.topology"},
            }

        return {
            "lab": self.lab,
            "lockproto": self.lockproto,
            "network": {"name": self.network.name, "subnet": str(self.network.subnet),
                        "gateway": str(self.network.gateway), "internal": self.network.internal},
            "volumes": [{"name": v.name, "role": v.role} for v in self.volumes],
            "disk": {"volume": self.disk.volume, "size": self.disk.size,
                     "partitions": list(self.disk.partitions), "lockproto": self.disk.lockproto},
            "claim": spec(self.claim),
            "containers": [spec(c) for c in self.containers],
        }
