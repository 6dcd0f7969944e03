"""Host kinds: each module contributes the volumes and containers of one kind of lab host.

A kind is one module with a ``KIND`` and one line in ``KINDS`` below; nothing else in labctl
names the kinds (the runtime applies whatever the plan holds). Order matters: volumes and
containers are created in this order.
"""

from __future__ import annotations

from labctl.plan.kinds import cable, client, node, switch
from labctl.plan.kinds.base import Kind, PlanContext

KINDS: tuple[Kind, ...] = (
    cable.KIND,
    switch.KIND,
    node.KIND,
    client.KIND,
)

__all__ = ["KINDS", "Kind", "PlanContext"]
