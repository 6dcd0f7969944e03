"""Power: a cut (``docker kill``), a clean shutdown (``docker stop``), power back (``docker start``).

A cut node dies at once and releases nothing; its peer declares it dead after heartbeat's deadtime.
A clean shutdown is the seed's step 11: heartbeat gives the group up and tells its peer, which
takes over at once. Both stay in effect until ``recover`` (or ``heal``) powers the node back on.
"""

from __future__ import annotations

from collections.abc import Sequence

from labctl.errors import LabStateError
from labctl.faults.catalogue import Applied, FaultKind, need_node, need_running
from labctl.faults.record import FaultRecord
from labctl.runtime.lab import Lab


def _power_on(lab: Lab, node: str) -> str:
    if lab.state(node).status == "running":
        return f"{node} was running already"
    lab.start(node)
    return f"{node} powered on"


class Fail(FaultKind):
    name = "fail"
    summary = "power cut (docker kill): the node dies at once and releases nothing"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        need_running(lab, need_node(lab, rec.targets[0]))

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        lab.kill(rec.targets[0])
        return Applied(self.summary)

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        return _power_on(lab, rec.targets[0])


class Shutdown(FaultKind):
    name = "shutdown"
    summary = "clean shutdown (docker stop): heartbeat releases the group and tells its peer"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        need_running(lab, need_node(lab, rec.targets[0]))

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        timeout = rec.args.get("stop_timeout")
        node = rec.targets[0]
        code = lab.stop(node, float(timeout)) if timeout else lab.stop(node)
        return Applied(f"{self.summary}; exit code {code}" + (" (clean)" if code == 0 else " (not clean)"))

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        return _power_on(lab, rec.targets[0])


class Recover(FaultKind):
    """Power back for a node that is down for a reason labctl did not record (it fenced itself, it
    crashed); a node labctl cut or shut down is recovered by healing that fault (nemesis ``ends``)."""

    name = "recover"
    summary = "power back (docker start): the node boots and heartbeat rejoins"
    one_shot = True
    ends = ("fail", "shutdown")

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        node = need_node(lab, rec.targets[0])
        state = lab.state(node).status
        if state == "running":
            raise LabStateError(f"{node} is already running")
        if state == "paused":
            raise LabStateError(f"{node} is frozen, not down: labctl thaw {node}")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        lab.start(rec.targets[0])
        return Applied(self.summary)
