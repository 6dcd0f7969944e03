"""The serial cable: unplugged (both ends hear silence, never EOF), plugged back, or garbled.

The cable is the lab's relay container (labctl-cable); labctl asks it through its control
(``labctl-cable ctl DIR cut|restore|noise INDEX ...``, docs/runtime.md "Cutting and garbling the
serial cable"), which answers once the change is in effect. A cable is named by its ends,
``fred-barney`` (either order), or by its index in the topology's ``serial:`` list. Without a name:
every cable of the lab.

Serial cut alone changes nothing but heartbeat's view of that link; with the LAN cut too, each
node hears nothing of the other: split brain (the fencing work makes it end whole).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from labctl.errors import LabStateError, UsageError
from labctl.faults.catalogue import Applied, Cut, FaultError, FaultKind, same_active
from labctl.faults.record import FaultRecord
from labctl.render.serial import CABLE_SOCKET_DIR, RELAY_PATH
from labctl.runtime.lab import Lab


def cable_names(lab: Lab) -> list[str]:
    return [f"{c.a}-{c.b}" for c in lab.topology.serial]


def cable_index(lab: Lab, name: str) -> int:
    for i, c in enumerate(lab.topology.serial):
        if name in (str(i), f"{c.a}-{c.b}", f"{c.b}-{c.a}"):
            return i
    known = ", ".join(cable_names(lab)) or "none"
    raise UsageError(f"{name!r} is not a serial cable of lab {lab.name} (cables: {known})")


def resolve(lab: Lab, targets: Sequence[str]) -> tuple[str, ...]:
    """The cables named (canonical names), or every cable of the lab."""
    if not lab.topology.serial:
        raise UsageError(f"lab {lab.name} has no serial cable")
    names = cable_names(lab)
    return tuple(names[cable_index(lab, t)] for t in targets) if targets else tuple(names)


def ctl(lab: Lab, *words: str) -> str:
    res = lab.cable_exec([RELAY_PATH, "ctl", CABLE_SOCKET_DIR, *words], timeout=15)
    if not res.ok:
        raise FaultError(f"the cable relay refused {' '.join(words)}: exit {res.code}: "
                         f"{res.output.strip()[-300:]}")
    return res.output


def _for_each(lab: Lab, rec: FaultRecord, do: str, undo: str, *extra: str) -> None:
    done: list[str] = []
    try:
        for name in rec.targets:
            ctl(lab, do, str(cable_index(lab, name)), *extra)
            done.append(name)
    except BaseException:
        for name in done:
            ctl(lab, undo, str(cable_index(lab, name)))
        raise


def _refuse_overlap(active: Sequence[FaultRecord], rec: FaultRecord, what: str) -> None:
    for other in active:
        if other.kind == rec.kind and set(other.targets) & set(rec.targets):
            raise LabStateError(f"{', '.join(set(other.targets) & set(rec.targets))} {what} already "
                                f"(fault {other.id}: {other.describe()}); labctl heal {other.id} undoes it")


class SerialCut(FaultKind):
    name = "serial-cut"
    summary = "unplug the serial cable: both ends hear silence (never EOF)"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        _refuse_overlap(active, rec, "is cut")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        _for_each(lab, rec, "cut", "restore")
        return Applied(f"serial cable {', '.join(rec.targets)} unplugged")

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        for name in rec.targets:
            ctl(lab, "restore", str(cable_index(lab, name)))
        return f"serial cable {', '.join(rec.targets)} plugged back"

    def cuts(self, lab: Lab, rec: FaultRecord) -> set[Cut]:
        out = set()
        for name in rec.targets:
            c = lab.topology.serial[cable_index(lab, name)]
            out |= {Cut(c.a, c.b, "serial"), Cut(c.b, c.a, "serial")}
        return out


class SerialNoise(FaultKind):
    name = "serial-noise"
    summary = "garble the serial line: each byte replaced by a random one with probability --rate"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        rate = rec.args.get("rate")
        if rate is None or not 0 < float(rate) <= 1:
            raise UsageError(f"--rate {rate}: the fraction of bytes garbled, above 0 and at most 1")
        _refuse_overlap(active, rec, "is noisy")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        rate = str(float(rec.args["rate"]))
        done: list[str] = []
        try:
            for name in rec.targets:
                ctl(lab, "noise", str(cable_index(lab, name)), rate)
                done.append(name)
        except BaseException:
            for name in done:
                ctl(lab, "noise", str(cable_index(lab, name)), "0")
            raise
        return Applied(f"serial cable {', '.join(rec.targets)}: {float(rate):.1%} of bytes garbled")

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        for name in rec.targets:
            ctl(lab, "noise", str(cable_index(lab, name)), "0")
        return f"serial cable {', '.join(rec.targets)} clean again"


class SerialRestore(FaultKind):
    """Plug back and clean a cable that labctl has no record of cutting (an earlier labctl, a
    crash mid-apply); recorded cuts and noise are healed instead (nemesis ``ends``)."""

    name = "serial-restore"
    summary = "plug the serial cable back in, clean"
    one_shot = True
    ends = ("serial-cut", "serial-noise")

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        if same_active(active, rec) is None:
            wanted = {cable_index(lab, name) for name in rec.targets}
            try:
                cables = json.loads(ctl(lab, "status"))["cables"]
            except (ValueError, KeyError) as exc:
                raise FaultError(f"the cable relay's status does not read: {exc}") from None
            if not any(c["index"] in wanted and (c["state"] == "cut" or c["noise"] > 0) for c in cables):
                raise LabStateError(f"serial cable {', '.join(rec.targets)} is plugged in and clean")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        for name in rec.targets:
            ctl(lab, "restore", str(cable_index(lab, name)))
            ctl(lab, "noise", str(cable_index(lab, name)), "0")
        return Applied(f"serial cable {', '.join(rec.targets)} plugged in, clean")
