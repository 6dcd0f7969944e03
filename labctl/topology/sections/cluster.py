"""The ``cluster`` section: the floating cluster address and OpenGFS's cluster settings (ogfscf.cf)."""

from __future__ import annotations

from typing import Any, cast

from labctl.topology.model import NETBIOS_NAME_MAX, STOMITH_KINDS, Cluster, StomithKind
from labctl.topology.problems import Checker, Invalid

CLUSTER_KEYS = ("name", "ip", "lockdev_port", "cbport", "timeout", "stomith")

# Ports the node image uses for other things.
RESERVED_TCP = {139: "smbd (NetBIOS session)", 445: "smbd"}


def read_cluster(c: Checker, data: Any) -> Cluster | None:
    try:
        d = c.mapping(data, "cluster", CLUSTER_KEYS, required=("name", "ip"))
    except Invalid:
        return None
    k = "cluster"
    name = c.get(d, k, "name", lambda p, v: _cluster_name(c, p, v))
    ip = c.get(d, k, "ip", c.ip)
    lockdev_port = c.get(d, k, "lockdev_port", lambda p, v: _tcp_port(c, p, v), 15697)
    cbport = c.get(d, k, "cbport", lambda p, v: _tcp_port(c, p, v), 3001)
    timeout = c.get(d, k, "timeout", lambda p, v: c.integer(p, v, 1, 3600), 30)
    stomith = c.get(d, k, "stomith", lambda p, v: c.choice(p, v, STOMITH_KINDS), "manual")
    if lockdev_port is not None and lockdev_port == cbport:
        c.error(
            "cluster.cbport",
            f"{cbport} is also cluster.lockdev_port (memexpd and the OpenGFS callbacks need different ports)",
            cbport,
        )
        return None
    if (
        name is None
        or ip is None
        or lockdev_port is None
        or cbport is None
        or timeout is None
        or stomith is None
    ):
        return None
    return Cluster(name, ip, lockdev_port, cbport, timeout, cast(StomithKind, stomith))


def _cluster_name(c: Checker, key: str, value: Any) -> str:
    name = c.hostname(key, value)
    if len(name) > NETBIOS_NAME_MAX:
        raise c.fail(
            key,
            f"is longer than {NETBIOS_NAME_MAX} characters, the limit of a NetBIOS "
            "name (nmbd answers to the cluster name)",
            value,
        )
    return name


def _tcp_port(c: Checker, key: str, value: Any) -> int:
    port = c.port(key, value)
    if port in RESERVED_TCP:
        raise c.fail(key, f"port {port} is used by {RESERVED_TCP[port]} in the nodes", value)
    return port
