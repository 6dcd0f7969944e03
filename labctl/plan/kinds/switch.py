"""The lab's power switch, STOMITH method ``labctl`` (docs/fencing.md, docs/security.md).

One small container on the outer network (the lab's management network: LAN faults act on the lab
interface and leave it alone), no capability, the engine's socket mounted: it powers nodes off
through the engine when the cluster asks, and does nothing else.  Only labs whose
``cluster.stomith`` is ``labctl`` have one.
"""

from __future__ import annotations

from labctl.plan.kinds.base import Kind, PlanContext, no_volumes
from labctl.plan.model import ContainerSpec
from labctl.plan.names import labels, object_name
from labctl.render import switch


def containers(ctx: PlanContext) -> list[ContainerSpec]:
    t = ctx.topology
    if not switch.enabled(t):
        return []
    addr = switch.address(ctx.overlay)
    plugs = [f"{switch.plug(n)}={object_name(ctx.lab, n.name)}" for n in t.nodes]
    allow = [arg for n in t.nodes for arg in ("--allow", str(ctx.overlay.address(n.name)))]
    return [
        ContainerSpec(
            name=object_name(ctx.lab, switch.SWITCH),
            host=switch.SWITCH,
            role="switch",
            image="base",
            labels=labels(ctx.lab, "switch"),
            hostname=switch.SWITCH,
            memory=t.limits.cable.memory,  # a relay's size: one Python process, a few threads
            pids=t.limits.cable.pids,
            network=ctx.network,
            address=ctx.overlay.switch,
            entrypoint=("/usr/bin/python3", "-u", switch.PROGRAM_PATH),
            command=("--lab", ctx.lab, "--listen", f"{addr}:{switch.PORT}",
                     "--engine", switch.ENGINE_SOCKET, *allow, *plugs),
            cap_drop=("ALL",),
            engine_socket=switch.ENGINE_SOCKET,
            files=tuple(ctx.rendered[switch.SWITCH].values()),
            start_group=0,
        )
    ]


KIND = Kind("switch", no_volumes, containers)
