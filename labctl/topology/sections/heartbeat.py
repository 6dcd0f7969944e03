"""The ``heartbeat`` section: ha.cf options and the timing profiles, checked against heartbeat's own rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from labctl.topology.model import AutoFailback, HeartbeatOptions, HeartbeatTiming
from labctl.topology.problems import Checker, Invalid, key_path
from labctl.topology.units import human_ms

HEARTBEAT_KEYS = ("profile", "udpport", "realtime", "auto_failback", "profiles")
PROFILE_KEYS = ("keepalive", "warntime", "deadtime", "initdead", "auto_failback")

# Heartbeat profiles used when a file gives none (ha-stack.md 1.2 and section 5).
DEFAULT_PROFILES: dict[str, dict[str, str]] = {
    "seed": {"keepalive": "1s", "warntime": "5s", "deadtime": "10s", "initdead": "30s"},
    "fast": {"keepalive": "200ms", "warntime": "500ms", "deadtime": "1s", "initdead": "12s"},
}
DEFAULT_PROFILE = "seed"

PROFILE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")


@dataclass(frozen=True)
class HeartbeatSection:
    """What the section gives the topology: the selected profile among all, and the other ha.cf options."""

    selected: HeartbeatTiming
    profiles: Mapping[str, HeartbeatTiming]
    default_profile: str  # the file's own choice, whichever was asked for
    options: HeartbeatOptions


def read_heartbeat(c: Checker, data: Any, profile: str | None) -> HeartbeatSection | None:
    """The section (built-in profiles when it gives none), with ``profile`` selected (default: the file's)."""
    try:
        d = c.mapping({} if data is None else data, "heartbeat", HEARTBEAT_KEYS)
    except Invalid:
        return None
    udpport = c.get(d, "heartbeat", "udpport", c.port, 694)
    realtime = c.get(d, "heartbeat", "realtime", c.boolean, False)
    failback = c.get(d, "heartbeat", "auto_failback", lambda p, v: _failback(c, p, v), "on")
    raw_profiles: Any = d.get("profiles")
    profiles_key = "heartbeat.profiles"
    if raw_profiles is None:
        raw_profiles = DEFAULT_PROFILES
    profiles: dict[str, HeartbeatTiming] = {}
    ok = udpport is not None and realtime is not None and failback is not None
    if not isinstance(raw_profiles, dict) or not raw_profiles:
        c.error(profiles_key, "must be a mapping of profile name to timings", raw_profiles)
        return None
    for pname, pdata in raw_profiles.items():
        k = key_path(profiles_key, str(pname))
        if not isinstance(pname, str) or not PROFILE_NAME_RE.match(pname):
            c.error(k, "is not a valid profile name (lower-case letters, digits, '-', '_')", pname)
            ok = False
            continue
        timing = _profile(c, k, pname, pdata, failback or "on")
        if timing is None:
            ok = False
        else:
            profiles[pname] = timing
    default = c.get(
        d,
        "heartbeat",
        "profile",
        c.string,
        DEFAULT_PROFILE if DEFAULT_PROFILE in raw_profiles else next(iter(raw_profiles)),
    )
    if default is not None and default not in raw_profiles:
        c.error(
            "heartbeat.profile",
            f"unknown profile {default} (profiles: {', '.join(map(str, raw_profiles))})",
            default,
        )
        ok = False
    if not ok or default is None:
        return None
    chosen = default if profile is None else profile
    if chosen not in profiles:
        c.error(
            "heartbeat.profile",
            f"{chosen} was asked for, but this file's profiles are {', '.join(profiles)}",
            chosen,
        )
        return None
    assert udpport is not None and realtime is not None
    return HeartbeatSection(profiles[chosen], profiles, default, HeartbeatOptions(udpport, realtime))


def _failback(c: Checker, key: str, value: Any) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    return cast(str, c.choice(key, value, ("on", "off", "legacy")))


def _profile(c: Checker, k: str, name: str, data: Any, failback: str) -> HeartbeatTiming | None:
    try:
        d = c.mapping(data, k, PROFILE_KEYS, required=("keepalive", "deadtime"))
    except Invalid:
        return None
    keepalive = c.get(d, k, "keepalive", c.duration)
    deadtime = c.get(d, k, "deadtime", c.duration)
    warntime = c.get(d, k, "warntime", c.duration, None)
    initdead = c.get(d, k, "initdead", c.duration, None)
    fb = c.get(d, k, "auto_failback", lambda p, v: _failback(c, p, v), failback)
    if keepalive is None or deadtime is None or fb is None:
        return None
    bad = ("warntime" in d and d["warntime"] is not None and warntime is None) or (
        "initdead" in d and d["initdead"] is not None and initdead is None
    )
    if bad:
        return None
    # heartbeat config.c: "Dead time ... is too small compared to keepalive" is a hard error.
    if deadtime <= 2 * keepalive:
        c.error(
            f"{k}.deadtime",
            f"must be more than twice keepalive ({human_ms(keepalive)}), or heartbeat refuses to start",
            d["deadtime"],
        )
        return None
    if warntime is None:
        warntime = deadtime // 2  # heartbeat's own default
    elif warntime >= deadtime:
        c.error(
            f"{k}.warntime",
            f"must be less than deadtime ({human_ms(deadtime)}): a warning about a "
            "late heartbeat comes before the node is declared dead",
            d["warntime"],
        )
        return None
    if initdead is None:  # heartbeat's own default (config.c)
        initdead = deadtime if deadtime > 10000 else (12000 if deadtime < 6000 else 2 * deadtime)
    elif initdead < deadtime:
        c.error(
            f"{k}.initdead",
            f"must be at least deadtime ({human_ms(deadtime)}), or heartbeat refuses to start",
            d["initdead"],
        )
        return None
    return HeartbeatTiming(name, keepalive, warntime, deadtime, initdead, cast(AutoFailback, fb))


# -- share
