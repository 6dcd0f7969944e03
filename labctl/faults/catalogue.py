"""What every fault kind is: a verb with targets and arguments, how it is applied and healed.

A kind is data plus two actions (Jepsen's nemesis, split per fault): ``apply`` makes the fault real
and returns what ``heal`` needs to undo it; ``heal`` undoes it. The nemesis (faults/nemesis.py)
keeps the record around them. Rules every kind keeps:

- ``check`` raises before anything is touched: a name that is not the topology's is a UsageError
  (exit 2) that lists the names there are; a lab state that does not allow the fault (a node
  down, frozen, already cut) is a LabStateError (exit 3).
- ``apply`` is all or nothing: when a step fails it undoes the steps it made, then raises.
- ``heal`` is idempotent where it can be: an undo that finds the fault already gone (a node that
  rebooted lost its iptables rules) says so in its answer instead of failing.
- Only the runtime (``Lab``) talks to the engine; a kind runs commands in hosts through it.

Kinds are registered in faults/kinds/__init__.py, one line each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from labctl.errors import LabctlError, LabStateError, UsageError
from labctl.faults.record import FaultRecord
from labctl.runtime.lab import Lab


class FaultError(LabctlError):
    """A fault could not be applied or healed (exit 1); what was applied was undone."""


@dataclass(frozen=True)
class Cut:
    """Traffic from ``src`` to ``dst`` over ``medium`` (lan or serial) that a fault stops."""

    src: str
    dst: str
    medium: str


@dataclass(frozen=True)
class Applied:
    detail: str  # what was done, in words
    undo: dict[str, Any] = field(default_factory=dict)  # what heal needs


class FaultKind:
    name: str = ""
    summary: str = ""  # one line: --help and ``labctl faults``
    one_shot: bool = False  # nothing to undo: healed the moment it is in effect
    ends: tuple[str, ...] = ()  # kinds whose active records on the same targets this verb heals

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        """Raise UsageError for bad names or arguments, LabStateError when the lab does not allow it."""

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        raise NotImplementedError

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        """Undo ``rec``; returns what was done, in words."""
        return "nothing to undo"

    def cuts(self, lab: Lab, rec: FaultRecord) -> set[Cut]:
        """The traffic this fault stops while active (``status`` marks those links cut by labctl)."""
        return set()


# --------------------------------------------------------------------------- checks kinds share


def need_node(lab: Lab, name: str) -> str:
    if name not in lab.node_names:
        raise UsageError(f"{name!r} is not a node of lab {lab.name} (nodes: {', '.join(lab.node_names)})")
    return name


def need_host(lab: Lab, name: str) -> str:
    if name not in lab.host_names:
        raise UsageError(f"{name!r} is not a host of lab {lab.name} (hosts: {', '.join(lab.host_names)})")
    return name


def need_running(lab: Lab, host: str) -> None:
    state = lab.state(host).status
    if state == "paused":
        raise LabStateError(f"{host} is frozen: labctl thaw {host} first")
    if state != "running":
        raise LabStateError(f"{host} is not running ({state}): labctl recover {host} first")


def run(lab: Lab, host: str, argv: list[str], what: str, timeout: float = 30) -> str:
    """Run ``argv`` in ``host``; its output, or FaultError naming ``what`` failed."""
    res = lab.exec(host, argv, timeout)
    if not res.ok:
        raise FaultError(f"{what} on {host}: exit {res.code}: {res.output.strip()[-300:]}")
    return res.output


def same_active(active: Sequence[FaultRecord], rec: FaultRecord) -> FaultRecord | None:
    """An active record of the same kind on the same targets, if there is one."""
    return next((r for r in active if r.kind == rec.kind and set(r.targets) == set(rec.targets)), None)


def refuse_same(active: Sequence[FaultRecord], rec: FaultRecord, what: str) -> None:
    other = same_active(active, rec)
    if other is not None:
        raise LabStateError(f"{what} already (fault {other.id}: {other.describe()}); "
                            f"labctl heal {other.id} undoes it")
