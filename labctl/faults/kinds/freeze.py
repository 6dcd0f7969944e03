"""Freeze and thaw: every process of a node stops, then goes on (the cgroup freezer, ``docker pause``).

The seed warns of "unnecessary STOMITHing in the case of slow nodes": a node frozen for longer than
deadtime is declared dead by its peer, which takes the group over while the frozen node still
"holds" it all: the IP configured, memexpd's state, the mount, smbd. What the thawed node does then
is the point of the exercise (docs/faults.md). A frozen node answers no ``docker exec``: faults that
run commands in a node refuse a frozen one.
"""

from __future__ import annotations

from collections.abc import Sequence

from labctl.errors import LabStateError
from labctl.faults.catalogue import Applied, FaultKind, need_node, need_running
from labctl.faults.record import FaultRecord
from labctl.runtime.lab import Lab


class Freeze(FaultKind):
    name = "freeze"
    summary = "every process of the node stops (cgroup freezer) until thaw"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        need_running(lab, need_node(lab, rec.targets[0]))

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        lab.pause(rec.targets[0])
        return Applied(self.summary)

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        node = rec.targets[0]
        if lab.state(node).status != "paused":
            return f"{node} was not frozen any more ({lab.state(node).status})"
        lab.unpause(node)
        return f"{node} thawed"


class Thaw(FaultKind):
    """Thaw a node frozen by other means (``docker pause``); one frozen by labctl is thawed by
    healing its freeze (nemesis ``ends``)."""

    name = "thaw"
    summary = "the frozen node's processes go on where they stopped"
    one_shot = True
    ends = ("freeze",)

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        node = need_node(lab, rec.targets[0])
        if lab.state(node).status != "paused":
            raise LabStateError(f"{node} is not frozen ({lab.state(node).status})")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        lab.unpause(rec.targets[0])
        return Applied(self.summary)
