"""Cluster nodes (fred, barney): the node image under labctl-init, one container per node.

A node lives while heartbeat runs and dies with it. It gets only the capabilities it needs on
top of Docker's defaults: NET_ADMIN (its lab interface, the cluster IP, iptables), NET_RAW
(send_arp, ping; a default, named to say so), SYS_ADMIN (FUSE mounts, ogfs-modload's bind over
/proc/filesystems, blockdev); never privileged mode. /dev/fuse and every partition of the shared
disk (as /dev/sda1, ...); a tmpfs on /run, since pidfiles, tty locks and FIFOs must die with the
node (ha-stack G6); the cable volume. No restart policy: a killed node stays down until ``recover``.
"""

from __future__ import annotations

from labctl.plan.kinds import cable
from labctl.plan.kinds.base import Kind, PlanContext, no_volumes
from labctl.plan.model import ContainerSpec, PartitionDevice, VolumeMount
from labctl.plan.names import object_name
from labctl.render import serial

CAPS = ("NET_ADMIN", "NET_RAW", "SYS_ADMIN")
STOP_TIMEOUT = 120  # seconds `docker stop` gives heartbeat to release the group before SIGKILL
SKIPPED_FILES = {"/etc/hosts"}  # Docker writes a container's /etc/hosts; extra_hosts adds ours


def containers(ctx: PlanContext) -> list[ContainerSpec]:
    t = ctx.topology
    mounts = (VolumeMount(cable.volume_name(ctx.lab), serial.NODE_SOCKET_DIR),) if t.serial else ()
    parts = tuple(PartitionDevice(p.name, p.path) for p in t.disk.partitions)
    return [
        ContainerSpec(
            name=object_name(ctx.lab, n.name),
            host=n.name,
            role="node",
            image="node",
            labels=ctx.host_labels("node", n.name),
            hostname=n.name,
            memory=t.limits.node.memory,
            pids=t.limits.node.pids,
            network=ctx.network,
            address=ctx.overlay.address(n.name),
            extra_hosts=ctx.extra_hosts(n.name),
            cap_add=CAPS,
            devices=("/dev/fuse:/dev/fuse:rwm",),
            partitions=parts,
            tmpfs={"/run": "rw,nosuid,nodev,mode=0755"},
            mounts=mounts,
            files=tuple(f for p, f in ctx.rendered[n.name].items() if p not in SKIPPED_FILES),
            dirs=(t.share.path,),
            stop_timeout=STOP_TIMEOUT,
            start_group=1,
        )
        for n in t.nodes
    ]


KIND = Kind("node", no_volumes, containers)
