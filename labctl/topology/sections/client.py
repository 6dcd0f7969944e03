"""The ``client`` section: the SMB client container's host name and address."""

from __future__ import annotations

from typing import Any

from labctl.topology.model import Client
from labctl.topology.problems import Checker, Invalid

CLIENT_KEYS = ("name", "ip")


def read_client(c: Checker, data: Any) -> Client | None:
    try:
        d = c.mapping(data, "client", CLIENT_KEYS, required=("ip",))
    except Invalid:
        return None
    name = c.get(d, "client", "name", c.hostname, "client")
    ip = c.get(d, "client", "ip", c.ip)
    if name is None or ip is None:
        return None
    return Client(name, ip)
