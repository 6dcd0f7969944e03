"""The OpenGFS cluster configuration file, ``ogfscf.cf``: parse, validate, format.

The format follows the sample in the seed (OpenGFS, 2003)::

    datadev: /dev/sda3
    cidev: /dev/sda1
    lockdev: 192.168.1.100:15697
    cbport: 3001
    timeout: 30
    STOMITH: manual
    name: manual
    node: 192.168.1.1 0 SM: manual
    node: 192.168.1.2 1 SM: manual

One optional key is a labctl extension: ``slot_interval: <seconds>`` (a decimal, 0.05..2), how
often a mounted node rewrites its disk-heartbeat slot (ogfs.slots); without it
min(timeout / 3, 2 s).

``#`` starts a comment to the end of the line. ``STOMITH: <kind>`` opens a method section, the
``name:`` in it names the method, and any other ``key: value`` in the section is a parameter of
that method (for power switches). A ``node:`` or the next ``STOMITH:`` closes the section.

This module runs on the cluster nodes: standard library only.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# One disk-heartbeat slot per CID on the cidev (see ogfs.cidev), so CIDs stop at 255.
MAX_NODES = 256

# "labctl" is the lab's virtual power switch; "none" disables fencing (test setups only).
STOMITH_KINDS = ("labctl", "manual", "none")

# Kinds whose sections take parameters; for the others a parameter is almost surely a typo.
_KINDS_WITH_PARAMS = ("labctl",)

_REQUIRED_KEYS = ("datadev", "cidev", "lockdev", "cbport", "timeout")
_GLOBAL_KEYS = (*_REQUIRED_KEYS, "slot_interval")
_ALL_KEYS = (*_GLOBAL_KEYS, "STOMITH", "name", "node")
SLOT_INTERVAL_RANGE = (0.05, 2.0)  # seconds: a write every 50 ms at most, the default's 2 s at least
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?\Z")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_DIGITS = re.compile(r"[0-9]+\Z")


class ConfigError(ValueError):
    """One or more problems in a config text.

    ``str()`` gives one ``<source>:<line>: <problem>`` line per problem, in file order;
    ``line`` and ``problem`` are those of the first one.
    """

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        self.line, self.problem = self.problems[0]
        super().__init__("\n".join(f"{source}:{line}: {problem}" for line, problem in self.problems))


@dataclass(frozen=True)
class StomithMethod:
    kind: str
    name: str
    # Ordered (key, value) pairs, as in the file: a tuple keeps the dataclass hashable and frozen.
    params: tuple[tuple[str, str], ...] = ()

    def param(self, key: str, default: str | None = None) -> str | None:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class NodeEntry:
    ip: str
    cid: int
    method: str
    plug: str | None = None


@dataclass(frozen=True)
class ClusterConfig:
    datadev: str
    cidev: str
    lockdev_ip: str
    lockdev_port: int
    cbport: int
    timeout: int
    methods: tuple[StomithMethod, ...]
    # Ordered by CID: parse() sorts them, so the CID is also the index.
    nodes: tuple[NodeEntry, ...]
    slot_interval: float | None = None  # seconds; None: the default below

    @property
    def slot_interval_ms(self) -> int:
        """How often a mounted node rewrites its disk-heartbeat slot."""
        seconds = self.slot_interval if self.slot_interval is not None else min(self.timeout / 3, 2.0)
        return int(seconds * 1000)

    @property
    def lockdev(self) -> str:
        return f"{self.lockdev_ip}:{self.lockdev_port}"

    def node_by_ip(self, ip: str) -> NodeEntry | None:
        return next((n for n in self.nodes if n.ip == ip), None)

    def node_by_cid(self, cid: int) -> NodeEntry | None:
        return next((n for n in self.nodes if n.cid == cid), None)

    def method(self, name: str) -> StomithMethod | None:
        return next((m for m in self.methods if m.name == name), None)


# --- parsing -------------------------------------------------------------------------------------------


def _check_ip(value: str) -> str | None:
    """Return a problem description, or None if ``value`` is a usable IPv4 host address."""
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        return f"'{value}' is not an IPv4 address"
    if addr.is_unspecified or addr.is_multicast or value == "255.255.255.255":
        return f"'{value}' is not a usable host address"
    return None


def _port(value: str) -> int | None:
    # int() alone would also take "+5", " 5" and "5_000"; a port is plain digits.
    if _DIGITS.match(value) and 1 <= int(value) <= 65535:
        return int(value)
    return None


class _Section:
    """A STOMITH section being read."""

    def __init__(self, kind: str, line: int) -> None:
        self.kind = kind
        self.line = line
        self.name: str | None = None
        self.name_line = line
        self.params: dict[str, str] = {}
        self.param_lines: dict[str, int] = {}


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.problems: list[tuple[int, str]] = []
        self.values: dict[str, tuple[int, str]] = {}  # global key -> (line, raw value)
        self.sections: list[_Section] = []
        self.section: _Section | None = None  # the open one, if any
        self.nodes: list[tuple[int, NodeEntry]] = []
        # After a bad node or STOMITH line, the checks across lines (CID gaps, undefined methods)
        # would only repeat the same mistake in other words: skip them.
        self.bad_node = False
        self.bad_method = False
        self.last_line = 1

    def error(self, line: int, problem: str) -> None:
        self.problems.append((line, problem))

    def run(self) -> ClusterConfig:
        # Split on newlines only (str.splitlines() also splits on form feeds etc., shifting line numbers).
        lines = self.text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for number, raw in enumerate(lines, start=1):
            self.last_line = number
            line = raw.split("#", 1)[0].strip()
            if line:
                self.line(number, line)
        self.close_section()
        cfg = self.finish()
        if self.problems:
            # Stable sort: problems found at the end (e.g. CID gaps) still land at their line.
            raise ConfigError(self.source, sorted(self.problems, key=lambda p: p[0]))
        assert cfg is not None
        return cfg

    def line(self, number: int, line: str) -> None:
        key, colon, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not colon or not key or any(c.isspace() for c in key):
            first = line.split()[0].rstrip(":")
            if first in _ALL_KEYS:
                self.error(number, f"{first}: the key must be followed by ':'")
                self.bad_node |= first == "node"
                self.bad_method |= first in ("STOMITH", "name")
            else:
                self.error(number, f"expected 'key: value', got '{line}'")
            return
        if key == "node":
            self.close_section()
            self.node(number, value)
        elif key == "STOMITH":
            self.close_section()
            self.stomith(number, value)
        elif key == "name":
            self.name(number, value)
        elif key in _GLOBAL_KEYS:
            # Global keys stay global even inside a STOMITH section: they are never parameters.
            self.global_key(number, key, value)
        elif self.section is not None:
            self.param(number, key, value)
        else:
            hint = next((f" (keys are case-sensitive: did you mean '{k}'?)" for k in _ALL_KEYS
                         if k.lower() == key.lower()), "")
            self.error(number, f"unknown key '{key}'{hint}")

    def single(self, number: int, key: str, value: str) -> bool:
        if not value:
            self.error(number, f"{key}: missing value")
            return False
        if len(value.split()) > 1:
            self.error(number, f"{key}: expected one value, got '{value}'")
            return False
        return True

    def global_key(self, number: int, key: str, value: str) -> None:
        if key in self.values:
            self.error(number, f"{key}: given twice (first on line {self.values[key][0]})")
            return
        self.values[key] = (number, value)  # even if bad: it is not "missing"
        if not self.single(number, key, value):
            return
        if key in ("datadev", "cidev") and not value.startswith("/"):
            self.error(number, f"{key}: device path '{value}' is not absolute")
        elif key == "lockdev":
            ip, colon, port = value.rpartition(":")
            if not colon:
                self.error(number, f"lockdev: expected IP:port, got '{value}'")
                return
            if (problem := _check_ip(ip)) is not None:
                self.error(number, f"lockdev: {problem}")
            if _port(port) is None:
                self.error(number, f"lockdev: port '{port}' is not a port (an integer 1..65535)")
        elif key == "cbport" and _port(value) is None:
            self.error(number, f"cbport: '{value}' is not a port (an integer 1..65535)")
        elif key == "timeout" and not (_DIGITS.match(value) and int(value) > 0):
            self.error(number, f"timeout: '{value}' is not a positive integer (seconds)")
        elif key == "slot_interval":
            low, high = SLOT_INTERVAL_RANGE
            if not (_DECIMAL.match(value) and low <= float(value) <= high):
                self.error(number, f"slot_interval: '{value}' is not a number of seconds "
                                   f"from {low:g} to {high:g}")

    def stomith(self, number: int, kind: str) -> None:
        if not self.single(number, "STOMITH", kind):
            kind, self.bad_method = "?", True
        elif kind not in STOMITH_KINDS:
            self.error(number, f"STOMITH: unknown kind '{kind}' (known: {', '.join(STOMITH_KINDS)})")
        self.section = _Section(kind, number)

    def name(self, number: int, name: str) -> None:
        section = self.section
        if section is None:
            self.error(number, f"name: '{name}' is outside a STOMITH section "
                               "(name it after 'STOMITH: <kind>')")
            self.bad_method = True
            return
        if section.name is not None:
            self.error(number, f"name: given twice in one STOMITH section "
                               f"(first on line {section.name_line})")
            return
        if not self.single(number, "name", name):
            name, self.bad_method = "", True  # "" keeps the section from also reporting "has no name"
        elif not _WORD.match(name):
            self.error(number, f"name: '{name}' is not a valid method name (letters, digits, '_', '.', '-')")
            self.bad_method = True
        else:
            for other in self.sections:
                if other.name == name:
                    self.error(number, f"name: STOMITH method name '{name}' already used "
                                       f"on line {other.name_line}")
        section.name, section.name_line = name, number

    def param(self, number: int, key: str, value: str) -> None:
        section = self.section
        assert section is not None
        if section.kind not in _KINDS_WITH_PARAMS:
            self.error(number, f"unknown key '{key}' (a STOMITH {section.kind} method takes no parameters)")
        elif key in section.params:
            self.error(number, f"{key}: given twice in one STOMITH section (first on line "
                               f"{section.param_lines[key]})")
        elif not _WORD.match(key):
            self.error(number, f"'{key}' is not a valid parameter name (letters, digits, '_', '.', '-')")
        elif not value:
            self.error(number, f"{key}: missing value")
        else:
            section.params[key] = value
            section.param_lines[key] = number

    def close_section(self) -> None:
        section, self.section = self.section, None
        if section is None:
            return
        if section.name is None:
            self.error(section.line, f"STOMITH: {section.kind} method has no 'name:' line")
            self.bad_method = True
        self.sections.append(section)

    def node(self, number: int, value: str) -> None:
        fields = value.split()
        label = f"node {fields[0]}" if fields else "node"
        usage = "expected 'node: <IPv4> <CID> SM: <method> [<plug/port>]'"
        if "SM:" not in fields:
            why = "missing 'SM:'"
        elif fields.index("SM:") != 2:
            why = "'SM:' must be the third field"
        elif len(fields) < 4:
            why = "missing the method name after 'SM:'"
        elif len(fields) > 5:
            why = f"extra fields '{' '.join(fields[5:])}'"
        else:
            why = ""
        if why:
            self.error(number, f"{label}: {why}: {usage}, got '{value}'")
            self.bad_node = True
            return
        ip, cid_text, _, method = fields[:4]
        plug = fields[4] if len(fields) == 5 else None
        ok = True
        if (problem := _check_ip(ip)) is not None:
            self.error(number, f"node: {problem}")
            ok = False
        if not _DIGITS.match(cid_text):
            self.error(number, f"{label}: CID '{cid_text}' is not a non-negative integer")
            ok = False
        elif int(cid_text) >= MAX_NODES:
            self.error(number, f"{label}: CID {int(cid_text)} is out of range 0..{MAX_NODES - 1}")
            ok = False
        if ok:
            self.nodes.append((number, NodeEntry(ip, int(cid_text), method, plug)))
        else:
            self.bad_node = True

    def finish(self) -> ClusterConfig | None:
        for key in _REQUIRED_KEYS:
            if key not in self.values:
                self.error(self.last_line, f"missing required key '{key}:'")
        if not self.sections and not self.bad_method:
            self.error(self.last_line, "missing a STOMITH method ('STOMITH: <kind>' then 'name: <name>')")
        if not self.nodes and not self.bad_node:
            self.error(self.last_line, "missing 'node:' lines (at least one node)")

        lockdev_ip = self.values.get("lockdev", (0, ""))[1].rpartition(":")[0]
        datadev = self.values.get("datadev", (0, ""))[1]
        if "cidev" in self.values and self.values["cidev"][1] == datadev and datadev.startswith("/"):
            self.error(self.values["cidev"][0], f"cidev: '{datadev}' is also the datadev "
                                                "(the cluster information needs its own device)")
        lockdev_port = self.values.get("lockdev", (0, ""))[1].rpartition(":")[2]
        if "cbport" in self.values and self.values["cbport"][1] == lockdev_port and _port(lockdev_port):
            self.error(self.values["cbport"][0], f"cbport: {lockdev_port} is also the lockdev port "
                                                 "(memexpd and the callbacks need different ports)")

        names = {s.name for s in self.sections if s.name}
        by_ip: dict[str, int] = {}
        by_cid: dict[int, str] = {}
        accepted: list[tuple[int, NodeEntry]] = []
        for number, node in self.nodes:
            label = f"node {node.ip}"
            if node.ip in by_ip:
                self.error(number, f"{label}: IP address already used by the node on line {by_ip[node.ip]}")
                self.bad_node = True
                continue
            by_ip[node.ip] = number
            if node.cid in by_cid:
                self.error(number, f"{label}: CID {node.cid} already used by {by_cid[node.cid]}")
                self.bad_node = True
                continue
            by_cid[node.cid] = node.ip
            if node.ip == lockdev_ip:
                self.error(number, f"{label}: address is the lockdev address "
                                   "(the cluster IP must be its own address, not a node's)")
            if node.method not in names and not self.bad_method:
                known = ", ".join(sorted(names)) or "none"
                self.error(number, f"{label}: STOMITH method '{node.method}' is not defined "
                                   f"(defined: {known})")
            accepted.append((number, node))

        # CIDs index the heartbeat slots and journals: they must be exactly 0..n-1.
        n = len(accepted)
        cids = {node.cid for _, node in accepted}
        for number, node in accepted if not self.bad_node else []:
            if node.cid >= n:
                gap = min(set(range(n)) - cids)
                expected = ("the CID must be 0" if n == 1
                            else f"the CIDs must be 0..{n - 1}, and {gap} is missing")
                self.error(number, f"node {node.ip}: CID {node.cid} leaves a gap: with {n} "
                                   f"node{'s' if n != 1 else ''} {expected}")
                break

        if self.problems:
            return None
        v = {key: value for key, (_, value) in self.values.items()}
        ip, _, port = v["lockdev"].rpartition(":")
        methods = tuple(StomithMethod(s.kind, s.name or "", tuple(s.params.items())) for s in self.sections)
        nodes = tuple(sorted((node for _, node in accepted), key=lambda n: n.cid))
        slot_interval = float(v["slot_interval"]) if "slot_interval" in v else None
        return ClusterConfig(v["datadev"], v["cidev"], ip, int(port), int(v["cbport"]), int(v["timeout"]),
                             methods, nodes, slot_interval)


def parse(text: str, source: str = "<config>") -> ClusterConfig:
    """Parse and validate an ``ogfscf.cf`` text; raise ConfigError naming ``source`` and the line."""
    return _Parser(text, source).run()


# --- formatting ----------------------------------------------------------------------------------------

HEADER = "# OpenGFS cluster configuration (ogfscf.cf), normalised by ogfsconf"


# Shadows the builtin inside this module only (unused here): ogfs.config.format is the public name.
def format(cfg: ClusterConfig) -> str:
    """The normalised text: one key a line, fixed order, nodes by CID; ``parse`` reads it back equal."""
    lines = [
        HEADER,
        f"datadev: {cfg.datadev}",
        f"cidev: {cfg.cidev}",
        f"lockdev: {cfg.lockdev}",
        f"cbport: {cfg.cbport}",
        f"timeout: {cfg.timeout}",
    ]
    if cfg.slot_interval is not None:
        lines.append(f"slot_interval: {cfg.slot_interval:g}")
    for method in cfg.methods:
        lines += ["", f"STOMITH: {method.kind}", f"name: {method.name}"]
        lines += [f"{key}: {value}" for key, value in method.params]
    lines.append("")
    for node in sorted(cfg.nodes, key=lambda n: n.cid):
        plug = f" {node.plug}" if node.plug is not None else ""
        lines.append(f"node: {node.ip} {node.cid} SM: {node.method}{plug}")
    return "\n".join(lines) + "\n"
