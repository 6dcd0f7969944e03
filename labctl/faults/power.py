"""Node power faults: kill (power cut), clean shutdown, power back on.

A fault is a small record: what was done (``kind``), to which node (``target``), when it was asked
for and when the engine confirmed it (``requested``, ``since``: wall-clock seconds; every container
shares the host's clock, faults-and-measurement.md 9.1-9.2). The state it leaves behind is the
node container's own (exited with 137 after a power cut, 0 after a clean shutdown), which
``labctl status`` shows, so no other record is kept.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal, cast

from labctl.runtime.lab import Lab, UsageError

FaultKind = Literal["fail", "shutdown", "recover"]
KINDS: tuple[FaultKind, ...] = ("fail", "shutdown", "recover")

DESCRIPTIONS = {
    "fail": "power cut (docker kill): the node dies at once and releases nothing",
    "shutdown": "clean shutdown (docker stop): heartbeat releases the group and tells its peer",
    "recover": "power back (docker start): the node boots and heartbeat rejoins",
}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    target: str
    requested: float  # time.time() just before the engine call
    since: float  # time.time() when the engine call returned: the fault is in effect
    detail: str = ""

    @property
    def took(self) -> float:
        return self.since - self.requested

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def apply(lab: Lab, kind: str, target: str, timeout: float | None = None) -> Fault:
    """Apply one fault to node ``target`` of ``lab``; returns its record once it is in effect."""
    if kind not in KINDS:
        raise UsageError(f"unknown fault {kind!r} (known: {', '.join(KINDS)})")
    if target not in lab.node_names:
        raise UsageError(
            f"{target!r} is not a node of lab {lab.name} (nodes: {', '.join(lab.node_names)})"
        )
    requested = time.time()
    detail = DESCRIPTIONS[kind]
    if kind == "fail":
        lab.kill(target)
    elif kind == "shutdown":
        code = lab.stop(target, timeout) if timeout is not None else lab.stop(target)
        detail += f"; exit code {code}" + (" (clean)" if code == 0 else " (not clean)")
    else:
        lab.start(target)
    return Fault(cast(FaultKind, kind), target, requested, time.time(), detail)
