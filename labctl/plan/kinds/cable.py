"""The serial cable's relay: one container, no network, no capability (docs/runtime.md).

heartbeat's second medium must not share fate with the LAN, so the relay has no network at all;
its UNIX sockets live on a volume only the nodes and the relay mount.
"""

from __future__ import annotations

from labctl.plan.kinds.base import Kind, PlanContext
from labctl.plan.model import ContainerSpec, VolumeMount, VolumeSpec
from labctl.plan.names import labels, object_name
from labctl.render import serial
from labctl.render.lab import CABLE


def volume_name(lab: str) -> str:
    return object_name(lab, "cable")


def volumes(ctx: PlanContext) -> list[VolumeSpec]:
    if not ctx.topology.serial:
        return []
    return [VolumeSpec(volume_name(ctx.lab), "cable", labels(ctx.lab, "cable"))]


def containers(ctx: PlanContext) -> list[ContainerSpec]:
    t = ctx.topology
    if not t.serial:
        return []
    return [
        ContainerSpec(
            name=object_name(ctx.lab, CABLE),
            host=CABLE,
            role="cable",
            image="base",
            labels=labels(ctx.lab, "cable"),
            hostname=CABLE,
            memory=t.limits.cable.memory,
            pids=t.limits.cable.pids,
            entrypoint=("/usr/bin/python3", "-u", serial.RELAY_PATH),
            command=(serial.CABLE_SOCKET_DIR, *serial.cable_specs(t)),
            cap_drop=("ALL",),
            mounts=(VolumeMount(volume_name(ctx.lab), serial.CABLE_SOCKET_DIR),),
            files=tuple(ctx.rendered[CABLE].values()),
            start_group=0,
        )
    ]


KIND = Kind("cable", volumes, containers)
