"""A fault as data: what was done (``kind``), where (``targets``), how (``args``), and when.

Every fault labctl applies leaves one record with the lab (runtime/records.py keeps them in the
lab's claim container, so any process in any directory sees them and ``down`` removes them).
Times are wall-clock seconds (``time.time()``): every container of a lab shares the host's clock,
so a record lines up with the hosts' own log lines in ``labctl events``.

The life of a record::

    requested --(applied)--> since --(heal asked)--> heal_requested --(undone)--> healed

A one-shot fault (a process killed, a planned move, an acknowledgement) is healed the moment it is
in effect: there is nothing to undo. ``active`` means in effect and not healed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any

POSITIONAL = ("process",)  # arguments the verb takes without an option name (kill NODE PROCESS)


@dataclass(frozen=True)
class FaultRecord:
    id: str  # six hex digits, random: short enough to type (labctl heal 3fa2c1)
    kind: str  # a verb of the catalogue: freeze, partition, serial-cut, kill, disk, ...
    targets: tuple[str, ...]  # node, cable or host names of the topology
    args: dict[str, Any] = field(default_factory=dict)
    requested: float = 0.0  # just before labctl touched anything
    since: float | None = None  # the fault is in effect
    heal_requested: float | None = None
    healed: float | None = None  # undone (or a one-shot that had nothing to undo)
    until: float | None = None  # --for: when labctl means to heal it
    detail: str = ""  # what was done, in words
    undo: dict[str, Any] = field(default_factory=dict)  # what heal needs to know (kind-specific)

    @property
    def active(self) -> bool:
        return self.since is not None and self.healed is None

    @property
    def took(self) -> float:
        return (self.since or self.requested) - self.requested

    def with_(self, **changes: Any) -> FaultRecord:
        return replace(self, **changes)

    def describe(self) -> str:
        """``partition fred barney --oneway``: the record as the command that made it."""
        words = [self.kind, *self.targets]
        for key, value in self.args.items():
            if key in POSITIONAL:
                words.append(str(value))
            elif value is True:
                words.append(f"--{key.replace('_', '-')}")
            elif value not in (None, False):
                words.append(f"--{key.replace('_', '-')} {value}")
        return " ".join(words)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["targets"] = list(self.targets)
        out["active"] = self.active
        out["command"] = self.describe()
        return out

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> FaultRecord:
        raw = json.loads(data)
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        known["targets"] = tuple(known.get("targets", ()))
        return cls(**known)


def new_id() -> str:
    return secrets.token_hex(3)
