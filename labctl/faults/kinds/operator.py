"""What an operator does on purpose: a planned move (standby, takeover) and the STOMITH ack.

``standby NODE`` runs heartbeat's ``hb_standby`` on it: the node gives its resources to its peer,
which takes them at once (no deadtime). ``takeover NODE`` runs ``hb_takeover``: the node asks for
the group. Both are one-shot: the move is the effect, nothing stays to heal.

``stomith-ack NODE`` is the seed's ``STOMITH: manual`` step: the operator has made sure NODE is
really down and says so to memexpd (``ogfs_tool stomith-ack`` on a living node), which then lets
the survivors replay NODE's journal.
"""

from __future__ import annotations

from collections.abc import Sequence

from labctl.errors import LabStateError
from labctl.faults.catalogue import Applied, FaultError, FaultKind, need_node, need_running, run
from labctl.faults.record import FaultRecord
from labctl.runtime.lab import Lab

HB_TOOLS = "/usr/share/heartbeat"  # where Debian's heartbeat puts hb_standby and hb_takeover


def need_nice_failback(lab: Lab, verb: str) -> None:
    """heartbeat 3.0.6 moves a group on request only with nice_failback, which ``auto_failback on``
    or ``off`` turns on; in the seed's ``legacy`` mode it logs "Standby mode only implemented when
    nice_failback on" and does nothing (measured; docs/faults.md)."""
    mode = lab.topology.heartbeat.auto_failback
    if mode == "legacy":
        raise LabStateError(f"{verb}: heartbeat does planned moves only with auto_failback on or off; "
                            f"this lab's topology has {mode} (the seed's): heartbeat would ignore it. "
                            "labctl shutdown NODE is the seed's planned move")


class PlannedMove(FaultKind):
    """Run one of heartbeat's move tools on the node: the group moves without anyone's deadtime."""

    one_shot = True

    def __init__(self, name: str, tool: str, summary: str) -> None:
        self.name, self.tool, self.summary = name, tool, summary

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        need_running(lab, need_node(lab, rec.targets[0]))
        need_nice_failback(lab, self.name)

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        out = run(lab, rec.targets[0], [f"{HB_TOOLS}/{self.tool}"], self.tool)
        return Applied(f"{rec.targets[0]}: {self.tool}: {out.strip()[-200:] or 'done'}")


STANDBY = PlannedMove("standby", "hb_standby",
                      "planned move: the node gives its resources to its peer (hb_standby)")
TAKEOVER = PlannedMove("takeover", "hb_takeover", "planned move: the node asks for the group (hb_takeover)")


class StomithAck(FaultKind):
    name = "stomith-ack"
    summary = "the operator's word that a node is really down (ogfs_tool stomith-ack, STOMITH: manual)"
    one_shot = True

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        need_node(lab, rec.targets[0])
        if not self._living(lab, rec.targets[0]):
            raise LabStateError(f"no other node of lab {lab.name} is running to tell memexpd")

    @staticmethod
    def _living(lab: Lab, node: str) -> list[str]:
        return [n for n in lab.node_names if n != node and lab.state(n).status == "running"]

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        node = rec.targets[0]
        via = self._living(lab, node)[0]
        ip = str(lab.topology.node(node).ip)
        res = lab.exec(via, ["ogfs_tool", "stomith-ack", ip])
        if not res.ok and "not waiting for STOMITH" in res.output:
            raise LabStateError(f"memexpd waits for no STOMITH of {node}: {res.output.strip()[-200:]}")
        if not res.ok:
            raise FaultError(f"ogfs_tool stomith-ack on {via}: exit {res.code}: {res.output.strip()[-300:]}")
        out = res.output
        return Applied(f"memexpd told (from {via}) that {node} ({ip}) was reset: {out.strip()[-200:]}")
