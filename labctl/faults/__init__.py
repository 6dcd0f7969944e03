"""Faults as data: a catalogue of kinds (faults/kinds/), records kept with the lab, one nemesis.

``nemesis.apply(lab, "partition", ["fred", "barney"], {"oneway": True})`` makes a fault real and
returns its record; ``nemesis.heal(lab, "all")`` undoes what is active. docs/faults.md lists the
catalogue and what each fault shows about the seed's cluster.
"""

from labctl.faults.catalogue import Cut, FaultError, FaultKind
from labctl.faults.kinds import KINDS
from labctl.faults.nemesis import active, apply, cuts, end, heal, records
from labctl.faults.record import FaultRecord

__all__ = ["KINDS", "Cut", "FaultError", "FaultKind", "FaultRecord", "active", "apply", "cuts", "end",
           "heal", "records"]
