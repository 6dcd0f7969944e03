"""``make_plan``: a pure function from a topology, its rendered files and the options to a LabPlan.

What ``up`` creates is exactly what this returns (``labctl render`` writes the same plan), so a
question such as "what does a nolock lab's haresources say" or "what limits does the client get"
is answered without an engine. The outer subnet is an input: the runtime asks the engine for a
free one first (runtime/network.py), and a render or compose export uses the pool's first.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from labctl.errors import UsageError
from labctl.plan.kinds import KINDS, PlanContext
from labctl.plan.model import ContainerSpec, DiskSpec, LabPlan, NetworkSpec, Role, VolumeSpec
from labctl.plan.names import (
    LABEL_HOST,
    LABEL_LOCKPROTO,
    LABEL_OUTER,
    LABEL_PROFILE,
    LABEL_SOURCE,
    LABEL_TOPOLOGY,
    claim_name,
    labels,
    object_name,
)
from labctl.render import render_lab
from labctl.render.disk import LOCKPROTOS
from labctl.render.lab import DISK, FORMAT_SCRIPT_PATH
from labctl.render.lan import overlay_for
from labctl.topology.model import Topology, lab_name_problem

CLAIM_MEMORY = 8 << 20  # the claim never runs; the engine still wants a limit to be sane
CLAIM_PIDS = 16


def lan_name(lab: str) -> str:
    return object_name(lab, "lan")


def disk_volume_name(lab: str) -> str:
    return object_name(lab, "disk")


def make_plan(
    topology: Topology,
    *,
    lab: str | None = None,
    lockproto: str = "memexp",
    outer: IPv4Network | None = None,
    secret: str | None = None,
    topology_text: str = "",
) -> LabPlan:
    """The plan of lab ``lab`` (default: the topology's name) on outer subnet ``outer``.

    ``topology_text`` (the file's text) travels in the labels of the claim and the hosts, so every
    verb after ``up`` rebuilds the model from the engine alone.
    """
    name = lab or topology.name
    problem = lab_name_problem(name)
    if problem:
        raise UsageError(f"--lab {name!r}: {problem}")
    if lockproto not in LOCKPROTOS:
        raise UsageError(f"--lockproto {lockproto!r}: choose one of {', '.join(LOCKPROTOS)}")
    overlay = overlay_for(topology, outer)
    rendered = render_lab(topology, secret, lockproto=lockproto, overlay=overlay)
    source = str(topology.source) if topology.source else f"{topology.name}.yaml"
    record = {
        LABEL_TOPOLOGY: topology_text,
        LABEL_SOURCE: source,
        LABEL_PROFILE: topology.heartbeat.name,
        LABEL_LOCKPROTO: lockproto,
    }

    def host_labels(role: Role, host: str) -> dict[str, str]:
        return labels(name, role, **{LABEL_HOST: host, **record})

    network = NetworkSpec(lan_name(name), overlay.subnet, overlay.gateway, labels(name, "net"))
    ctx = PlanContext(name, topology, rendered, overlay, network.name, lockproto, host_labels)
    volumes = [v for kind in KINDS for v in kind.volumes(ctx)]
    containers = [c for kind in KINDS for c in kind.containers(ctx)]
    disk_files = rendered[DISK]
    disk = DiskSpec(disk_volume_name(name), topology.disk.size,
                    tuple(p.name for p in topology.disk.partitions), tuple(disk_files.values()),
                    FORMAT_SCRIPT_PATH, lockproto)
    claim = ContainerSpec(
        name=claim_name(name),
        host="lab",
        role="lab",
        image="base",
        labels=labels(name, "lab", **record, **{LABEL_OUTER: str(overlay.subnet)}),
        hostname="lab",
        memory=CLAIM_MEMORY,
        pids=CLAIM_PIDS,
        command=("true",),
        cap_drop=("ALL",),
    )
    return LabPlan(
        lab=name,
        topology=topology,
        lockproto=lockproto,
        claim=claim,
        network=network,
        volumes=(VolumeSpec(disk.volume, "disk", labels(name, "disk")), *volumes),
        disk=disk,
        containers=tuple(containers),
    )
