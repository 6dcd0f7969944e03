"""The client: what the seed's Windows desktop did to \\\\fscluster\\ogfs, with smbclient.

Its one added capability is NET_ADMIN, to make its own lab interface at boot (``labctl-lan``:
the lab's addresses exist only inside its hosts); it needs nothing else.
"""

from __future__ import annotations

from labctl.plan.kinds.base import Kind, PlanContext, no_volumes
from labctl.plan.kinds.node import SKIPPED_FILES
from labctl.plan.model import ContainerSpec
from labctl.plan.names import object_name
from labctl.render import lan

CAPS = ("NET_ADMIN",)


def containers(ctx: PlanContext) -> list[ContainerSpec]:
    t = ctx.topology
    who = t.client
    return [
        ContainerSpec(
            name=object_name(ctx.lab, who.name),
            host=who.name,
            role="client",
            image="client",
            labels=ctx.host_labels("client", who.name),
            hostname=who.name,
            memory=t.limits.client.memory,
            pids=t.limits.client.pids,
            network=ctx.network,
            address=ctx.overlay.address(who.name),
            extra_hosts=ctx.extra_hosts(who.name),
            # the image's entrypoint (tini) stays PID 1; the lab interface first, then wait
            command=("sh", "-c", f"{lan.PROGRAM_PATH} {lan.CONF_PATH} && exec sleep infinity"),
            cap_add=CAPS,
            files=tuple(f for p, f in ctx.rendered[who.name].items() if p not in SKIPPED_FILES),
            start_group=2,
        )
    ]


KIND = Kind("client", no_volumes, containers)
