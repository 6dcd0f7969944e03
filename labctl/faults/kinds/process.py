"""Kill one daemon of a node (SIGKILL): the lock server, Samba, heartbeat, the mount, the slot watcher.

heartbeat in haresources mode starts and stops resources but never watches them (docs/images.md):
a killed memexpd or smbd stays dead, nobody fails over, and the lab shows what that means to the
mount and the client. A killed heartbeat leaves its resources running with nobody speaking for
them: after deadtime its peer takes over too (split brain, shown by ``status``).

Healing a kill power-cycles the node (kill, then start), as an operator of such a cluster would:
nothing else brings an unmonitored stack back to a state heartbeat knows. Its peer covers the
outage as for any power cut.
"""

from __future__ import annotations

from collections.abc import Sequence

from labctl.errors import LabStateError, UsageError
from labctl.faults.catalogue import Applied, FaultKind, need_node, need_running
from labctl.faults.record import FaultRecord
from labctl.runtime.lab import Lab

# name -> pgrep/pkill selector. Exact process names (comm) where the daemon has its own; the mount
# daemon is "python3 -m ogfs.daemon": matched on its command line, the bracket keeping the pattern
# from matching the pkill (and its timeout wrapper) that carries it.
PROCESSES: dict[str, tuple[str, ...]] = {
    "memexpd": ("-x", "memexpd"),
    "smbd": ("-x", "smbd"),
    "nmbd": ("-x", "nmbd"),
    "heartbeat": ("-x", "heartbeat"),
    "mount": ("-f", r"[o]gfs\.daemon"),
    "slotwatch": ("-x", "ogfs_slotwatch"),
}


class Kill(FaultKind):
    name = "kill"
    summary = "SIGKILL one daemon of a node: " + ", ".join(PROCESSES)

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        node = need_node(lab, rec.targets[0])
        what = rec.args.get("process")
        if what not in PROCESSES:
            raise UsageError(f"{what!r} is not a process labctl kills (processes: {', '.join(PROCESSES)})")
        need_running(lab, node)

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        node, what = rec.targets[0], str(rec.args["process"])
        sel = PROCESSES[what]
        found = lab.exec(node, ["pgrep", *sel])
        pids = found.output.split() if found.ok else []
        if not pids:
            holder = "" if what in ("heartbeat", "slotwatch") else " (it runs on the group's holder only)"
            raise LabStateError(f"no {what} runs on {node}{holder}")
        res = lab.exec(node, ["pkill", "-KILL", *sel])
        if not res.ok:
            raise LabStateError(f"{what} on {node} went away before it could be killed")
        return Applied(f"{what} killed on {node} (pid {', '.join(pids)}); heal power-cycles {node}",
                       {"pids": pids})

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        node = rec.targets[0]
        state = lab.state(node).status
        if state == "paused":
            raise LabStateError(f"{node} is frozen: labctl thaw {node} first")
        if state == "running":
            lab.kill(node)
        lab.start(node)
        return f"{node} power-cycled"
