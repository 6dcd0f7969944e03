"""The ``serial`` section: null-modem cables between nodes, heartbeat's second medium next to the LAN."""

from __future__ import annotations

import re
from typing import Any

from labctl.topology.model import BAUD_RATES, Node, SerialCable
from labctl.topology.problems import Checker, Invalid, key_path

SERIAL_KEYS = ("between", "baud", "device")

DEVICE_RE = re.compile(r"/dev/[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*\Z")


def read_serial(c: Checker, data: Any, nodes: tuple[Node, ...] | None) -> tuple[SerialCable, ...] | None:
    """The cables (none when the key is absent); their ends must be ``nodes`` (if that section was good)."""
    if data is None:
        return ()
    try:
        items = c.sequence(data, "serial")
    except Invalid:
        return None
    cables: list[SerialCable] = []
    ok = True
    names = [n.name for n in nodes] if nodes is not None else None
    for i, item in enumerate(items):
        k = key_path("serial", i)
        try:
            d = c.mapping(item, k, SERIAL_KEYS, required=("between",))
        except Invalid:
            ok = False
            continue
        ends = c.get(d, k, "between", lambda p, v: _ends(c, p, v, names))
        baud = c.get(d, k, "baud", lambda p, v: c.choice(p, v, BAUD_RATES), 19200)
        device = c.get(
            d,
            k,
            "device",
            lambda p, v: c.matching(p, v, DEVICE_RE, "a device path such as /dev/ttyS0"),
            "/dev/ttyS0",
        )
        if ends is None or baud is None or device is None:
            ok = False
            continue
        cables.append(SerialCable(ends[0], ends[1], baud, device))
    if not ok:
        return None
    # One device per node can carry one cable; heartbeat takes one baud line per node.
    used: dict[tuple[str, str], int] = {}
    baud_of: dict[str, tuple[int, int]] = {}
    for i, cable in enumerate(cables):
        for end in cable.ends:
            if (end, cable.device) in used:
                c.error(
                    f"serial[{i}].device",
                    f"{end} already has a cable on {cable.device} (serial[{used[end, cable.device]}])",
                    cable.device,
                )
                ok = False
            used.setdefault((end, cable.device), i)
            if end in baud_of and baud_of[end][0] != cable.baud:
                c.error(
                    f"serial[{i}].baud",
                    f"{end} already has a cable at {baud_of[end][0]} baud "
                    f"(serial[{baud_of[end][1]}]); heartbeat takes one baud "
                    "rate per node",
                    cable.baud,
                )
                ok = False
            baud_of.setdefault(end, (cable.baud, i))
    return tuple(cables) if ok else None


def _ends(c: Checker, key: str, value: Any, names: list[str] | None) -> tuple[str, str]:
    if not isinstance(value, list) or len(value) != 2:
        raise c.fail(key, "must be a list of the two node names the cable joins", value)
    ok = True
    for j, end in enumerate(value):
        if not isinstance(end, str):
            c.error(key_path(key, j), "must be a node name", end)
            ok = False
        elif names is not None and end not in names:
            c.error(key_path(key, j), f"unknown node {end}: the nodes are {', '.join(names)}", end)
            ok = False
    if not ok:
        raise Invalid()
    if value[0] == value[1]:
        raise c.fail(key, "a cable joins two different nodes", value)
    return (value[0], value[1])


# -- disk
