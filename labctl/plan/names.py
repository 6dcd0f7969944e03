"""Names and labels of a lab's objects: the engine's only record of what belongs to which lab.

Every object a lab creates carries ``labctl.lab=<lab>`` and ``labctl.role=<role>`` from the moment
the engine makes it, so ``down`` and ``status`` find a lab from any directory and after a crash,
and never look at objects that are not the lab's. Names derive from the lab name:
``labctl-<lab>-<what>``; the claim is ``labctl-<lab>.lab`` (lab and host names hold no dot, so it
can never be another object's name).
"""

from __future__ import annotations

from labctl.plan.model import Role

LABEL_LAB = "labctl.lab"
LABEL_ROLE = "labctl.role"
LABEL_HOST = "labctl.host"  # node or client name (containers)
LABEL_TOPOLOGY = "labctl.topology"  # the topology file's text (claim, node and client containers)
LABEL_SOURCE = "labctl.topology.source"  # where it was loaded from (shown, never read again)
LABEL_PROFILE = "labctl.profile"
LABEL_LOCKPROTO = "labctl.lockproto"
LABEL_OUTER = "labctl.outer"  # on the claim: the outer subnet the engine gave the lab
LABEL_HELPER_IMAGE = "labctl.helper.image"  # on the disk volume: the image that can detach its loops

ROLES: tuple[Role, ...] = ("node", "client", "cable", "switch", "disk", "net", "helper", "lab")
PREFIX = "labctl-"


def object_name(lab: str, what: str) -> str:
    """``labctl-<lab>-<what>``: the name of a container, network or volume of a lab."""
    return f"{PREFIX}{lab}-{what}"


def claim_name(lab: str) -> str:
    return f"{PREFIX}{lab}.lab"


def labels(lab: str, role: Role, **extra: str) -> dict[str, str]:
    out = {LABEL_LAB: lab, LABEL_ROLE: role}
    out.update(extra)
    return out
