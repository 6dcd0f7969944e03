"""What a host kind is: a name and two pure functions of the plan's context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from labctl.plan.model import ContainerSpec, Role, VolumeSpec
from labctl.render.files import RenderedFile
from labctl.render.lan import Overlay
from labctl.topology.model import Topology


@dataclass(frozen=True)
class PlanContext:
    """What every kind may read: the lab, its model, its rendered files and its outer network."""

    lab: str
    topology: Topology
    rendered: dict[str, dict[str, RenderedFile]]
    overlay: Overlay
    network: str  # the outer network's name
    lockproto: str
    host_labels: Callable[[Role, str], dict[str, str]]  # (role, host) -> labels of a host container

    def extra_hosts(self, host: str) -> dict[str, str]:
        """Every lab name but the host's own, to its lab address (Docker owns /etc/hosts)."""
        return {name: str(ip) for name, ip in self.topology.hosts() if name != host}


@dataclass(frozen=True)
class Kind:
    name: str
    volumes: Callable[[PlanContext], list[VolumeSpec]]
    containers: Callable[[PlanContext], list[ContainerSpec]]


def no_volumes(_ctx: PlanContext) -> list[VolumeSpec]:
    return []
