"""The ``limits`` section: each container's memory and process bounds (node, client, cable relay).

Every key is optional: a missing one keeps the model's default (``labctl.topology.model``,
``DEFAULT_*_MEMORY`` and ``DEFAULT_*_PIDS``), so ``limits: {node: {memory: 256MiB}}`` changes only
that one value.
"""

from __future__ import annotations

from typing import Any

from labctl.topology.model import HostLimits, Limits
from labctl.topology.problems import Checker, Invalid, key_path
from labctl.topology.units import GiB, MiB, format_size

LIMITS_KEYS = ("node", "client", "cable")
HOST_LIMITS_KEYS = ("memory", "pids")

# 32 MiB is the smallest default (the cable relay, one python3 process): nothing in a lab is meant to
# run in less. 16 GiB is far more than any lab container needs: a larger value is a slip ("192GiB").
MEMORY_MIN = 32 * MiB
MEMORY_MAX = 16 * GiB
# 16 tasks: an init, a shell and a few daemons. 32768: the kernel's traditional pid_max.
PIDS_MIN = 16
PIDS_MAX = 32768


def read_limits(c: Checker, data: Any) -> Limits | None:
    """The limits, each missing key taking its default (all of them when the section is absent)."""
    try:
        d = c.mapping({} if data is None else data, "limits", LIMITS_KEYS)
    except Invalid:
        return None
    defaults = Limits()
    node = _host(c, d, "node", defaults.node)
    client = _host(c, d, "client", defaults.client)
    cable = _host(c, d, "cable", defaults.cable)
    if node is None or client is None or cable is None:
        return None
    return Limits(node, client, cable)


def _host(c: Checker, data: dict[str, Any], name: str, default: HostLimits) -> HostLimits | None:
    k = key_path("limits", name)
    raw = data.get(name)
    try:
        d = c.mapping({} if raw is None else raw, k, HOST_LIMITS_KEYS)
    except Invalid:
        return None
    memory = c.get(d, k, "memory", lambda p, v: _memory(c, p, v), default.memory)
    pids = c.get(d, k, "pids", lambda p, v: c.integer(p, v, PIDS_MIN, PIDS_MAX), default.pids)
    if memory is None or pids is None:
        return None
    return HostLimits(memory, pids)


def _memory(c: Checker, key: str, value: Any) -> int:
    size = c.size(key, value)
    if not MEMORY_MIN <= size <= MEMORY_MAX:
        raise c.fail(key, f"must be in {format_size(MEMORY_MIN)}..{format_size(MEMORY_MAX)}", value)
    return size
