"""Faults: what can be done to a lab's nodes, as data (``Fault``) applied through the runtime.

``fail`` is a power cut (``docker kill``: the node dies at once, releasing nothing), ``shutdown``
the seed's step 11 taken literally (a clean stop: heartbeat gives its resources up and tells its
peer), ``recover`` power back (the node boots and rejoins).
"""

from labctl.faults.power import KINDS, Fault, FaultKind, apply

__all__ = ["KINDS", "Fault", "FaultKind", "apply"]
