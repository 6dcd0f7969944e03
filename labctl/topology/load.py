"""Load a topology file into the frozen model, checking everything before anything is created.

Every problem is reported as ``<file>: <key.path>: <problem> (got <value>)``, all of them at once,
in one ``TopologyError`` (exit code 2). YAML syntax errors give ``<file>:<line>:<column>``.
The checks are our own code (not a JSON Schema validator) so that each message can say what is
wrong and why; ``schema.json`` next to this file describes the same format for editors.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

from labctl.errors import TopologyError
from labctl.topology.model import (
    BAUD_RATES,
    HOSTNAME_RE,
    NETBIOS_NAME_MAX,
    PARTITION_ROLES,
    STOMITH_KINDS,
    AutoFailback,
    Client,
    Cluster,
    Disk,
    HeartbeatOptions,
    HeartbeatTiming,
    Network,
    Node,
    Partition,
    PartitionRole,
    SerialCable,
    Share,
    StomithKind,
    Topology,
    lab_name_problem,
)
from labctl.topology.units import MiB, format_size, human_ms, parse_duration_ms, parse_size

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------------
# The format: every key each mapping may hold (tests check these against schema.json).

TOP_KEYS = (
    "name",
    "description",
    "network",
    "cluster",
    "nodes",
    "client",
    "serial",
    "disk",
    "heartbeat",
    "share",
)
NETWORK_KEYS = ("subnet", "gateway", "interface")
CLUSTER_KEYS = ("name", "ip", "lockdev_port", "cbport", "timeout", "stomith")
NODE_KEYS = ("name", "ip", "cid", "preferred")
CLIENT_KEYS = ("name", "ip")
SERIAL_KEYS = ("between", "baud", "device")
DISK_KEYS = ("size", "fstype", "partitions")
PARTITION_KEYS = ("name", "role", "start", "size")
HEARTBEAT_KEYS = ("profile", "udpport", "realtime", "auto_failback", "profiles")
PROFILE_KEYS = ("keepalive", "warntime", "deadtime", "initdead", "auto_failback")
SHARE_KEYS = ("name", "path", "workgroup", "force_user", "comment")

# Sizes the filesystem needs (docs/topology.md; ogfs design: cidev holds the config and per-node slots,
# journals are >= 8 MiB as in GFS2, the data partition holds the superblock, journals and resource groups).
ALIGN = 4096
MIN_CIDEV = 1 * MiB
MIN_JOURNAL = 8 * MiB
MIN_DATA = 64 * MiB
FIRST_PARTITION_START = 1 * MiB

# Heartbeat profiles used when a file gives none (ha-stack.md 1.2 and section 5).
DEFAULT_PROFILES: dict[str, dict[str, str]] = {
    "seed": {"keepalive": "1s", "warntime": "5s", "deadtime": "10s", "initdead": "30s"},
    "fast": {"keepalive": "200ms", "warntime": "500ms", "deadtime": "1s", "initdead": "12s"},
}
DEFAULT_PROFILE = "seed"

# Ports the node image uses for other things.
RESERVED_TCP = {139: "smbd (NetBIOS session)", 445: "smbd"}

PROFILE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
PARTITION_NAME_RE = re.compile(r"(?P<disk>[a-z]{2,8})(?P<num>[1-9][0-9]{0,2})\Z")
DEVICE_RE = re.compile(r"/dev/[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*\Z")
IFACE_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")
FSTYPE_RE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)?\Z")
MOUNT_PATH_RE = re.compile(r"/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\Z")
SHARE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}\Z")
SHARE_RESERVED = {"global", "homes", "printers", "print$", "ipc$"}
WORKGROUP_RE = re.compile(r"[A-Za-z0-9_-]{1,15}\Z")
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")

_MISSING: Any = object()


# ---------------------------------------------------------------------------------------------------
# Where topologies live.


def topology_dirs() -> list[Path]:
    """Directories searched for topology names, first match wins.

    ``$LABCTL_TOPOLOGIES`` (a path list) first; then ``<package>/../topologies`` (a source checkout or an
    editable install); then ``<package>/data/topologies`` (package data, if a release ships them inside
    the package); then ``<prefix>/share/labctl/topologies`` (data files of an installed wheel), and the
    same directory wherever the installer put the wheel's data files (``pip install --user``: found
    through the distribution's file list, ``installed_data_dir``).
    """
    dirs: list[Path] = []
    env = os.environ.get("LABCTL_TOPOLOGIES", "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    package = Path(__file__).resolve().parent.parent
    dirs.append(package.parent / "topologies")
    dirs.append(package / "data" / "topologies")
    dirs.append(Path(sys.prefix) / "share" / "labctl" / "topologies")
    data = installed_data_dir()
    if data is not None and data / "topologies" not in dirs:
        dirs.append(data / "topologies")
    return dirs


def installed_data_dir() -> Path | None:
    """``<data>/share/labctl`` of an installed (non-editable) labctl: where pyproject's data-files
    (``images/``, ``topologies/``) went, read from the distribution's file list. None otherwise."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("labctl")
    except PackageNotFoundError:
        return None
    for entry in dist.files or ():
        parts = entry.parts
        for i in range(len(parts) - 1):
            if parts[i] == "share" and parts[i + 1] == "labctl":
                located = Path(str(dist.locate_file(entry))).resolve()
                depth = len(parts) - (i + 2)
                return located.parents[depth - 1] if depth > 0 else located
    return None


def topologies_dir() -> Path:
    """The first existing directory of ``topology_dirs()`` (the source checkout's if none exists)."""
    dirs = topology_dirs()
    checkout = Path(__file__).resolve().parent.parent.parent / "topologies"
    return next((d for d in dirs if d.is_dir()), checkout)


def available_topologies() -> dict[str, Path]:
    """Topology names that ``load_topology`` accepts, with their files, sorted by name."""
    found: dict[str, Path] = {}
    for directory in topology_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or os.sep in ref or ref.endswith((".yaml", ".yml")) or ref.startswith(".")


def resolve_topology(ref: str) -> Path:
    """The file for ``ref``: a path to a file, or the name of a packaged topology."""
    if not ref:
        raise TopologyError("topology: no topology given (a name such as 'two-node' or a path to a file)")
    if _looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.exists():
            raise TopologyError(f"{ref}: no such file")
        if not path.is_file():
            raise TopologyError(f"{ref}: not a file")
        return path
    names = available_topologies()
    if ref in names:
        return names[ref]
    if Path(ref).is_file():
        return Path(ref)
    known = ", ".join(names) or "none found"
    close = difflib.get_close_matches(ref, list(names), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    searched = ", ".join(str(d) for d in topology_dirs())
    raise TopologyError(
        f"{ref}: no topology of that name{hint} (known: {known}; searched {searched}; "
        "a path to a .yaml file also works)"
    )


# ---------------------------------------------------------------------------------------------------
# YAML with duplicate keys refused (PyYAML silently keeps the last one).


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key: SafeLoader reports it below
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first given on line {first})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(text: str, shown: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else shown
        what = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise TopologyError(f"{where}: invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"{shown}: invalid YAML: {exc}") from None


# ---------------------------------------------------------------------------------------------------
# Problems.


def show(value: object) -> str:
    """A value as the user wrote it, short."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str):
        plain = value and value.isprintable() and not any(ch.isspace() for ch in value)
        text = value if plain else json.dumps(value)
    elif isinstance(value, int | float | IPv4Address | IPv4Network):
        text = str(value)
    else:
        try:
            text = json.dumps(value, default=str, sort_keys=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def key_path(base: str, sub: str | int) -> str:
    if isinstance(sub, int):
        return f"{base}[{sub}]"
    return f"{base}.{sub}" if base else str(sub)


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    problem: str
    value: Any = _MISSING

    def __str__(self) -> str:
        text = f"{self.file}: {self.key or '(top level)'}: {self.problem}"
        if self.value is not _MISSING:
            shown = show(self.value)
            if not self.problem.startswith(shown + " "):
                text += f" (got {shown})"
        return text


class _Invalid(Exception):
    """A value was wrong; the problem is already recorded."""


class _Checker:
    def __init__(self, shown: str) -> None:
        self.file = shown
        self.problems: list[Problem] = []

    def error(self, key: str, problem: str, value: Any = _MISSING) -> None:
        self.problems.append(Problem(self.file, key, problem, value))

    def fail(self, key: str, problem: str, value: Any = _MISSING) -> _Invalid:
        self.error(key, problem, value)
        return _Invalid()

    # -- structure

    def mapping(
        self, data: Any, key: str, known: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, Any]:
        """``data`` as a mapping with only ``known`` keys; missing required keys are reported."""
        if not isinstance(data, dict):
            raise self.fail(key, f"must be a mapping of {', '.join(known)}", data)
        known = tuple(known)
        for name, value in data.items():
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                self.error(
                    key_path(key, str(name)),
                    f"unknown key ({hint}known keys here: {', '.join(known)})",
                    value,
                )
        for name in required:
            if name not in data:
                self.error(key_path(key, name), "required key is missing")
            elif data[name] is None:
                self.error(key_path(key, name), "must not be empty")
        return {k: v for k, v in data.items() if k in known}

    def sequence(self, data: Any, key: str) -> list[Any]:
        if not isinstance(data, list):
            raise self.fail(key, "must be a list", data)
        return data

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        name: str,
        convert: Callable[[str, Any], T],
        default: T | Any = _MISSING,
    ) -> T | None:
        """``field()``, or None when the value is missing or wrong (the problem is then recorded)."""
        try:
            return self.field(data, key, name, convert, default)
        except _Invalid:
            return None

    def field(
        self,
        data: Mapping[str, Any],
        key: str,
        name: str,
        convert: Callable[[str, Any], T],
        default: T | Any = _MISSING,
    ) -> T:
        """Convert ``data[name]``; a missing value gives ``default`` (or _Invalid if there is none)."""
        path = key_path(key, name)
        if name not in data or data[name] is None:
            if default is _MISSING:
                raise _Invalid()  # reported by mapping() as a missing required key
            return cast(T, default)
        return convert(path, data[name])

    # -- scalar converters: (key path, raw value) -> value, or record the problem and raise _Invalid

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(key, "must be a string", value)
        return value

    def integer(self, key: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer {low}..{high}", value)
        if not low <= value <= high:
            raise self.fail(key, f"must be in {low}..{high}", value)
        return value

    def port(self, key: str, value: Any) -> int:
        return self.integer(key, value, 1, 65535)

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false", value)
        return value

    def ip(self, key: str, value: Any) -> IPv4Address:
        if not isinstance(value, str):
            raise self.fail(key, "must be an IPv4 address such as 192.0.2.10 (a string)", value)
        try:
            return IPv4Address(value)
        except AddressValueError:
            raise self.fail(key, "is not an IPv4 address", value) from None

    def hostname(self, key: str, value: Any) -> str:
        name = self.string(key, value)
        if name != name.lower() and HOSTNAME_RE.match(name.lower()):
            raise self.fail(
                key,
                "must be lower case (heartbeat lower-cases `uname -n` and its node lines, "
                "so a mixed-case name would not match)",
                value,
            )
        if not HOSTNAME_RE.match(name):
            raise self.fail(
                key,
                "is not a valid host name (a letter, then letters, digits or '-', "
                "at most 63, not ending in '-')",
                value,
            )
        if name == "localhost":
            raise self.fail(key, "cannot be 'localhost'", value)
        return name

    def size(self, key: str, value: Any) -> int:
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.fail(key, str(exc), value) from None

    def duration(self, key: str, value: Any) -> int:
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            raise self.fail(key, str(exc), value) from None
        if ms <= 0:
            raise self.fail(key, "must be more than 0 (heartbeat refuses it)", value)
        return ms

    def choice(self, key: str, value: Any, choices: Iterable[Any]) -> Any:
        choices = tuple(choices)
        if isinstance(value, bool) or value not in choices:
            raise self.fail(key, f"must be one of {', '.join(str(c) for c in choices)}", value)
        return value

    def matching(self, key: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
        text = self.string(key, value)
        if not pattern.match(text):
            raise self.fail(key, f"is not {what}", value)
        return text


def _try(fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except _Invalid:
        return None


# ---------------------------------------------------------------------------------------------------
# Sections.


@dataclass
class _Addr:
    """An address claimed by some key, for the uniqueness and subnet checks."""

    key: str
    owner: str
    ip: IPv4Address


class _TopologyReader:
    def __init__(self, checker: _Checker, path: Path) -> None:
        self.c = checker
        self.path = path
        self.gateway_given = False

    # -- network

    def network(self, data: Any) -> Network | None:
        c = self.c
        try:
            d = c.mapping(data, "network", NETWORK_KEYS, required=("subnet",))
        except _Invalid:
            return None
        subnet = c.get(d, "network", "subnet", self._subnet)
        interface = c.get(
            d, "network", "interface", lambda k, v: c.matching(k, v, IFACE_RE, "an interface name"), "eth0"
        )
        if subnet is None or interface is None:
            c.get(d, "network", "gateway", c.ip, None)
            return None
        default_gw = subnet.broadcast_address - 1
        self.gateway_given = d.get("gateway") is not None
        gateway = c.get(d, "network", "gateway", c.ip, default_gw)
        if gateway is None:
            return None
        if "gateway" in d and d["gateway"] is not None and not self._usable(subnet, gateway):
            c.error(
                "network.gateway", f"{gateway} is not a usable host address of subnet {subnet}", d["gateway"]
            )
            return None
        return Network(subnet, gateway, interface)

    def _subnet(self, key: str, value: Any) -> IPv4Network:
        c = self.c
        if not isinstance(value, str):
            raise c.fail(key, "must be an IPv4 network such as 192.0.2.0/24 (a string)", value)
        if "/" not in value:
            raise c.fail(key, "needs a prefix length, e.g. 192.0.2.0/24", value)
        try:
            net = IPv4Network(value, strict=False)
        except (AddressValueError, NetmaskValueError, ValueError):
            raise c.fail(key, "is not an IPv4 network such as 192.0.2.0/24", value) from None
        if str(net.network_address) != value.split("/")[0].strip():
            raise c.fail(key, f"has host bits set: the network is {net}", value)
        if net.prefixlen > 29:
            raise c.fail(
                key,
                "is too small: the lab needs a /29 or larger (network, gateway, cluster "
                "address, nodes, client, broadcast)",
                value,
            )
        return net

    @staticmethod
    def _usable(subnet: IPv4Network, ip: IPv4Address) -> bool:
        return ip in subnet and ip not in (subnet.network_address, subnet.broadcast_address)

    # -- cluster

    def cluster(self, data: Any) -> Cluster | None:
        c = self.c
        try:
            d = c.mapping(data, "cluster", CLUSTER_KEYS, required=("name", "ip"))
        except _Invalid:
            return None
        k = "cluster"
        name = c.get(d, k, "name", self._cluster_name)
        ip = c.get(d, k, "ip", c.ip)
        lockdev_port = c.get(d, k, "lockdev_port", self._tcp_port, 15697)
        cbport = c.get(d, k, "cbport", self._tcp_port, 3001)
        timeout = c.get(d, k, "timeout", lambda p, v: c.integer(p, v, 1, 3600), 30)
        stomith = c.get(d, k, "stomith", lambda p, v: c.choice(p, v, STOMITH_KINDS), "manual")
        if lockdev_port is not None and lockdev_port == cbport:
            c.error(
                "cluster.cbport",
                f"{cbport} is also cluster.lockdev_port (memexpd and the OpenGFS "
                "callbacks need different ports)",
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

    def _cluster_name(self, key: str, value: Any) -> str:
        name = self.c.hostname(key, value)
        if len(name) > NETBIOS_NAME_MAX:
            raise self.c.fail(
                key,
                f"is longer than {NETBIOS_NAME_MAX} characters, the limit of a NetBIOS "
                "name (nmbd answers to the cluster name)",
                value,
            )
        return name

    def _tcp_port(self, key: str, value: Any) -> int:
        port = self.c.port(key, value)
        if port in RESERVED_TCP:
            raise self.c.fail(key, f"port {port} is used by {RESERVED_TCP[port]} in the nodes", value)
        return port

    # -- nodes

    def nodes(self, data: Any) -> tuple[Node, ...] | None:
        c = self.c
        try:
            items = c.sequence(data, "nodes")
        except _Invalid:
            return None
        nodes: list[Node | None] = []
        preferred_given: list[tuple[int, bool]] = []
        for i, item in enumerate(items):
            k = key_path("nodes", i)
            try:
                d = c.mapping(item, k, NODE_KEYS, required=("name", "ip"))
            except _Invalid:
                nodes.append(None)
                continue
            name = c.get(d, k, "name", c.hostname)
            ip = c.get(d, k, "ip", c.ip)
            cid = c.get(d, k, "cid", lambda p, v: c.integer(p, v, 0, 255), i)
            preferred = c.get(d, k, "preferred", c.boolean, None)
            if preferred is not None:
                preferred_given.append((i, preferred))
            if name is None or ip is None or cid is None:
                nodes.append(None)
                continue
            nodes.append(Node(name, ip, cid, False))
        if len(items) != 2:
            # mach_down, which takes a dead node's groups over, "will only work for a two machine setup".
            c.error(
                "nodes",
                "heartbeat in haresources mode manages exactly 2 nodes "
                f"(mach_down only works for a two-machine setup), this has {len(items)}",
                [n.get("name") if isinstance(n, dict) else n for n in items],
            )
        if any(n is None for n in nodes) or not nodes:
            return None
        good = [n for n in nodes if n is not None]
        ok = True
        # Unique names and CIDs; CIDs are 0..n-1 (they index OpenGFS journals and heartbeat slots).
        seen_names: dict[str, int] = {}
        seen_cids: dict[int, int] = {}
        for i, node in enumerate(good):
            if node.name in seen_names:
                c.error(
                    f"nodes[{i}].name",
                    f"duplicate node name (also nodes[{seen_names[node.name]}])",
                    node.name,
                )
                ok = False
            seen_names.setdefault(node.name, i)
            if node.cid in seen_cids:
                c.error(f"nodes[{i}].cid", f"duplicate CID (also nodes[{seen_cids[node.cid]}])", node.cid)
                ok = False
            seen_cids.setdefault(node.cid, i)
        if ok:
            for i, node in enumerate(good):
                if node.cid >= len(good):
                    missing = min(set(range(len(good))) - set(seen_cids))
                    c.error(
                        f"nodes[{i}].cid",
                        f"CIDs must be 0..{len(good) - 1} (sequential from 0), {missing} is missing",
                        node.cid,
                    )
                    ok = False
                    break
        # Exactly one preferred node; the first one when none says so.
        chosen = [i for i, p in preferred_given if p]
        if len(chosen) > 1:
            c.error(
                f"nodes[{chosen[1]}].preferred",
                f"only one node can be preferred (nodes[{chosen[0]}] already is)",
                True,
            )
            ok = False
        if not ok:
            return None
        first = chosen[0] if chosen else 0
        return tuple(Node(n.name, n.ip, n.cid, i == first) for i, n in enumerate(good))

    # -- client

    def client(self, data: Any) -> Client | None:
        c = self.c
        try:
            d = c.mapping(data, "client", CLIENT_KEYS, required=("ip",))
        except _Invalid:
            return None
        name = c.get(d, "client", "name", c.hostname, "client")
        ip = c.get(d, "client", "ip", c.ip)
        if name is None or ip is None:
            return None
        return Client(name, ip)

    # -- serial

    def serial(self, data: Any, nodes: tuple[Node, ...] | None) -> tuple[SerialCable, ...] | None:
        c = self.c
        if data is None:
            return ()
        try:
            items = c.sequence(data, "serial")
        except _Invalid:
            return None
        cables: list[SerialCable] = []
        ok = True
        names = [n.name for n in nodes] if nodes is not None else None
        for i, item in enumerate(items):
            k = key_path("serial", i)
            try:
                d = c.mapping(item, k, SERIAL_KEYS, required=("between",))
            except _Invalid:
                ok = False
                continue
            ends = c.get(d, k, "between", lambda p, v: self._ends(p, v, names))
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

    def _ends(self, key: str, value: Any, names: list[str] | None) -> tuple[str, str]:
        c = self.c
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
            raise _Invalid()
        if value[0] == value[1]:
            raise c.fail(key, "a cable joins two different nodes", value)
        return (value[0], value[1])

    # -- disk

    def disk(self, data: Any) -> Disk | None:
        c = self.c
        try:
            d = c.mapping(data, "disk", DISK_KEYS, required=("size", "partitions"))
        except _Invalid:
            return None
        size = c.get(d, "disk", "size", c.size)
        fstype = c.get(
            d,
            "disk",
            "fstype",
            lambda p, v: c.matching(p, v, FSTYPE_RE, "a filesystem type such as ogfs"),
            "ogfs",
        )
        if size is not None and size % ALIGN:
            c.error("disk.size", f"must be a multiple of {ALIGN} bytes", d["size"])
            size = None
        if size is not None and size < FIRST_PARTITION_START + MIN_CIDEV + MIN_DATA:
            c.error(
                "disk.size",
                f"is too small: the cidev and the data partition alone need "
                f"{format_size(FIRST_PARTITION_START + MIN_CIDEV + MIN_DATA)}",
                d["size"],
            )
            size = None
        try:
            items = (
                c.sequence(d["partitions"], "disk.partitions") if d.get("partitions") is not None else None
            )
        except _Invalid:
            items = None
        if items is None or size is None or fstype is None:
            return None
        parts = self._partitions(items, size)
        if parts is None:
            return None
        return Disk(size, parts, fstype)

    def _partitions(self, items: list[Any], disk_size: int) -> tuple[Partition, ...] | None:
        c = self.c
        parts: list[Partition] = []
        raw: list[dict[str, Any]] = []
        ok = True
        cursor: int | None = FIRST_PARTITION_START
        for i, item in enumerate(items):
            k = key_path("disk.partitions", i)
            try:
                d = c.mapping(item, k, PARTITION_KEYS, required=("name", "role"))
            except _Invalid:
                ok, cursor = False, None
                continue
            name = c.get(
                d,
                k,
                "name",
                lambda p, v: c.matching(p, v, PARTITION_NAME_RE, "a partition name such as sda1"),
            )
            role = c.get(d, k, "role", lambda p, v: c.choice(p, v, PARTITION_ROLES))
            start_given = d.get("start") is not None
            size_given = d.get("size") is not None
            start = c.get(d, k, "start", c.size, cursor)
            size = c.get(d, k, "size", c.size, None)
            this_ok = name is not None and role is not None and (size is not None or not size_given)
            if start is None:
                this_ok = False
                if not start_given:
                    c.error(
                        f"{k}.start",
                        "required key is missing (it defaults to the end of the previous "
                        "partition, but that one is invalid)",
                    )
            if start is not None and start % ALIGN:
                c.error(f"{k}.start", f"must be a multiple of {ALIGN} bytes", d["start"])
                this_ok = False
            if size is not None and size % ALIGN:
                c.error(f"{k}.size", f"must be a multiple of {ALIGN} bytes", d["size"])
                this_ok = False
            if size is not None and size == 0:
                c.error(f"{k}.size", "must be more than 0", d["size"])
                this_ok = False
            if this_ok and start is not None and size is None:
                if i != len(items) - 1:
                    c.error(
                        f"{k}.size",
                        "required key is missing (only the last partition may leave it "
                        "out, to fill the rest of the disk)",
                    )
                    this_ok = False
                elif start >= disk_size:
                    after = "" if start_given else f" (right after {parts[-1].name})" if parts else ""
                    c.error(
                        f"{k}.start",
                        f"{format_size(start)}{after} is at or beyond the end of the "
                        f"{format_size(disk_size)} disk",
                        d.get("start", format_size(start)),
                    )
                    this_ok = False
                else:
                    size = disk_size - start
            if not this_ok or name is None or role is None or start is None or size is None:
                ok, cursor = False, None
                continue
            cursor = start + size
            parts.append(Partition(name, cast(PartitionRole, role), start, size))
            raw.append(d)
        if not ok:
            return None
        for i, part in enumerate(parts):
            k = f"disk.partitions[{i}]"
            if part.end > disk_size:
                c.error(
                    f"{k}.size",
                    f"{part.name} ends at {format_size(part.end)}, beyond the end of the "
                    f"{format_size(disk_size)} disk",
                    raw[i].get("size", format_size(part.size)),
                )
                ok = False
        disks = {m["disk"] for p in parts if (m := PARTITION_NAME_RE.match(p.name))}
        if len(disks) > 1:
            c.error(
                "disk.partitions",
                f"partitions of one disk share its device name, got {', '.join(sorted(disks))}",
                [p.name for p in parts],
            )
            ok = False
        seen: dict[str, int] = {}
        for i, part in enumerate(parts):
            if part.name in seen:
                c.error(
                    f"disk.partitions[{i}].name",
                    f"duplicate partition name (also disk.partitions[{seen[part.name]}])",
                    part.name,
                )
                ok = False
            seen.setdefault(part.name, i)
        order = sorted(range(len(parts)), key=lambda j: parts[j].start)
        for a, b in zip(order, order[1:], strict=False):
            pa, pb = parts[a], parts[b]
            if pb.start < pa.end:
                c.error(
                    f"disk.partitions[{b}].start",
                    f"{pb.name} ({format_size(pb.start)}..{format_size(pb.end)}) overlaps {pa.name} "
                    f"({format_size(pa.start)}..{format_size(pa.end)})",
                    raw[b].get("start", format_size(pb.start)),
                )
                ok = False
        roles: list[str] = [p.role for p in parts]
        for role in ("cidev", "data"):
            if roles.count(role) != 1:
                c.error(
                    "disk.partitions",
                    f"needs exactly one partition with role {role}, has {roles.count(role)}",
                    [f"{p.name}:{p.role}" for p in parts],
                )
                ok = False
        minimum = {"cidev": MIN_CIDEV, "journal": MIN_JOURNAL, "data": MIN_DATA}
        why = {
            "cidev": "the cluster information device",
            "journal": "a journal",
            "data": "the filesystem (superblock, journals, resource groups)",
        }
        for i, part in enumerate(parts):
            if part.size < minimum[part.role]:
                c.error(
                    f"disk.partitions[{i}].size",
                    f"{part.name} ({part.role}) is "
                    f"{format_size(part.size)}; {why[part.role]} needs at least "
                    f"{format_size(minimum[part.role])}",
                    raw[i].get("size", format_size(part.size)),
                )
                ok = False
        return tuple(parts) if ok else None

    # -- heartbeat

    def heartbeat(
        self, data: Any, profile: str | None
    ) -> tuple[HeartbeatTiming, dict[str, HeartbeatTiming], str, HeartbeatOptions] | None:
        c = self.c
        try:
            d = c.mapping({} if data is None else data, "heartbeat", HEARTBEAT_KEYS)
        except _Invalid:
            return None
        udpport = c.get(d, "heartbeat", "udpport", c.port, 694)
        realtime = c.get(d, "heartbeat", "realtime", c.boolean, False)
        failback = c.get(d, "heartbeat", "auto_failback", self._failback, "on")
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
            timing = self._profile(k, pname, pdata, failback or "on")
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
        return profiles[chosen], profiles, default, HeartbeatOptions(udpport, realtime)

    def _failback(self, key: str, value: Any) -> str:
        if value is True:
            return "on"
        if value is False:
            return "off"
        return cast(str, self.c.choice(key, value, ("on", "off", "legacy")))

    def _profile(self, k: str, name: str, data: Any, failback: str) -> HeartbeatTiming | None:
        c = self.c
        try:
            d = c.mapping(data, k, PROFILE_KEYS, required=("keepalive", "deadtime"))
        except _Invalid:
            return None
        keepalive = c.get(d, k, "keepalive", c.duration)
        deadtime = c.get(d, k, "deadtime", c.duration)
        warntime = c.get(d, k, "warntime", c.duration, None)
        initdead = c.get(d, k, "initdead", c.duration, None)
        fb = c.get(d, k, "auto_failback", self._failback, failback)
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

    def share(self, data: Any) -> Share | None:
        c = self.c
        try:
            d = c.mapping({} if data is None else data, "share", SHARE_KEYS)
        except _Invalid:
            return None
        k = "share"
        name = c.get(d, k, "name", self._share_name, "ogfs")
        path = c.get(
            d,
            k,
            "path",
            lambda p, v: c.matching(
                p,
                v,
                MOUNT_PATH_RE,
                "an absolute path of letters, digits, '.', '_', '-' (no spaces or ':': "
                "it goes on the haresources line)",
            ),
            "/ogfs",
        )
        workgroup = c.get(
            d,
            k,
            "workgroup",
            lambda p, v: c.matching(
                p, v, WORKGROUP_RE, "a workgroup name (at most 15 letters, digits, '-', '_')"
            ),
            "WORKGROUP",
        )
        user = c.get(d, k, "force_user", lambda p, v: c.matching(p, v, USER_RE, "a user name"), "root")
        comment = c.get(d, k, "comment", self._one_line, "OpenGFS cluster filesystem")
        if name is None or path is None or workgroup is None or user is None or comment is None:
            return None
        return Share(name, path, workgroup, user, comment)

    def _share_name(self, key: str, value: Any) -> str:
        name = self.c.matching(key, value, SHARE_NAME_RE, "a share name (letters, digits, '-', '_')")
        if name.lower() in SHARE_RESERVED:
            raise self.c.fail(key, "is a name Samba reserves", value)
        return name

    def _one_line(self, key: str, value: Any) -> str:
        text = self.c.string(key, value)
        if not text.isprintable():
            raise self.c.fail(key, "must be one line of printable text", value)
        return text

    # -- name

    def lab_name(self, data: Mapping[str, Any]) -> str | None:
        c = self.c
        if data.get("name") is None:
            name = self.path.stem
            problem = lab_name_problem(name)
            if problem:
                c.error(
                    "name", f"{problem}; the file name does not make a lab name, so give a name: key", name
                )
                return None
            return name
        given = _try(lambda: c.string("name", data["name"]))
        if given is not None and (problem := lab_name_problem(given)):
            c.error("name", problem, given)
            return None
        return given

    # -- cross checks

    def addresses(
        self, net: Network, cluster: Cluster | None, nodes: tuple[Node, ...] | None, client: Client | None
    ) -> None:
        c = self.c
        claims = [_Addr(f"nodes[{i}].ip", f"node {node.name}", node.ip) for i, node in enumerate(nodes or ())]
        if client is not None:
            claims.append(_Addr("client.ip", f"client {client.name}", client.ip))
        if cluster is not None:
            claims.append(_Addr("cluster.ip", f"cluster {cluster.name}", cluster.ip))
        gw_given = self.gateway_given
        seen: dict[IPv4Address, _Addr] = {}
        for claim in claims:
            if claim.ip not in net.subnet:
                c.error(claim.key, f"{claim.ip} is outside subnet {net.subnet}")
                continue
            if claim.ip in (net.subnet.network_address, net.subnet.broadcast_address):
                which = "network" if claim.ip == net.subnet.network_address else "broadcast"
                c.error(claim.key, f"{claim.ip} is the {which} address of subnet {net.subnet}")
                continue
            if claim.ip == net.gateway:
                how = (
                    "network.gateway" if gw_given else "the default gateway, the subnet's last usable address"
                )
                c.error(
                    claim.key,
                    f"{claim.ip} is the gateway ({how}); Docker gives it to the bridge"
                    + ("" if gw_given else ": pick another address or set network.gateway"),
                )
                continue
            if claim.ip in seen:
                other = seen[claim.ip]
                c.error(claim.key, f"{claim.ip} is already the address of {other.owner} ({other.key})")
                continue
            seen[claim.ip] = claim

    def host_names(
        self, cluster: Cluster | None, nodes: tuple[Node, ...] | None, client: Client | None
    ) -> None:
        names: dict[str, str] = {}
        if nodes is not None:
            for i, node in enumerate(nodes):
                names.setdefault(node.name, f"nodes[{i}].name")
        for key, name in (
            ("client.name", client.name if client else None),
            ("cluster.name", cluster.name if cluster else None),
        ):
            if name is None:
                continue
            if name in names:
                self.c.error(
                    key,
                    f"{name} is already the name of {names[name]} (every name resolves to one "
                    "address in /etc/hosts)",
                    name,
                )
            names.setdefault(name, key)

    def workgroup(self, share: Share | None, cluster: Cluster | None, client: Client | None) -> None:
        if share is None:
            return
        group = share.workgroup.upper()
        for key, name in (
            ("cluster.name", cluster.name if cluster else None),
            ("client.name", client.name if client else None),
        ):
            if name is not None and name.upper()[:NETBIOS_NAME_MAX] == group:
                self.c.error(
                    "share.workgroup",
                    f"is also the NetBIOS name of {key} ({name}); Samba needs them to differ",
                    share.workgroup,
                )

    def ports(self, cluster: Cluster | None, options: HeartbeatOptions | None) -> None:
        if cluster is None or options is None:
            return
        for key, port in (("cluster.lockdev_port", cluster.lockdev_port), ("cluster.cbport", cluster.cbport)):
            if port == options.udpport:
                self.c.error("heartbeat.udpport", f"{port} is also {key}", port)


def _read(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise TopologyError(f"{shown}: not a file") from None
    except UnicodeDecodeError as exc:
        raise TopologyError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TopologyError(f"{shown}: cannot read: {exc.strerror}") from None


def parse_topology(text: str, path: Path, profile: str | None = None, shown: str | None = None) -> Topology:
    """Validate a topology given as text; ``path`` names it (in messages, and the default lab name)."""
    shown = shown if shown is not None else str(path)
    data = _parse_yaml(text, shown)
    checker = _Checker(shown)
    if data is None:
        raise TopologyError(f"{shown}: the file is empty")
    try:
        top = checker.mapping(data, "", TOP_KEYS, required=("network", "cluster", "nodes", "client", "disk"))
    except _Invalid:
        raise _error(checker) from None
    reader = _TopologyReader(checker, path)
    name = reader.lab_name(top)
    description = checker.get(top, "", "description", checker.string, "")
    network = reader.network(top["network"]) if top.get("network") is not None else None
    cluster = reader.cluster(top["cluster"]) if top.get("cluster") is not None else None
    nodes = reader.nodes(top["nodes"]) if top.get("nodes") is not None else None
    client = reader.client(top["client"]) if top.get("client") is not None else None
    serial = reader.serial(top.get("serial"), nodes)
    disk = reader.disk(top["disk"]) if top.get("disk") is not None else None
    hb = reader.heartbeat(top.get("heartbeat"), profile)
    share = reader.share(top.get("share"))
    if network is not None:
        reader.addresses(network, cluster, nodes, client)
    reader.host_names(cluster, nodes, client)
    reader.ports(cluster, hb[3] if hb else None)
    reader.workgroup(share, cluster, client)
    if checker.problems:
        raise _error(checker)
    assert name is not None and network is not None and cluster is not None and nodes is not None
    assert client is not None and serial is not None and disk is not None and hb is not None
    assert share is not None and description is not None
    timing, profiles, default, options = hb
    return Topology(
        name=name,
        source=path,
        network=network,
        cluster=cluster,
        nodes=nodes,
        client=client,
        serial=serial,
        disk=disk,
        heartbeat=timing,
        profiles=profiles,
        default_profile=default,
        heartbeat_options=options,
        share=share,
        description=description,
    )


def _error(checker: _Checker) -> TopologyError:
    lines = [str(p) for p in checker.problems]
    return TopologyError("\n".join(lines), lines)


def load_topology(ref: str | os.PathLike[str], profile: str | None = None) -> Topology:
    """Load and validate a topology: ``ref`` is a name (``two-node``) or a path to a YAML file.

    ``profile`` selects a heartbeat profile (default: the file's ``heartbeat.profile``).
    Raises ``TopologyError`` (exit code 2) naming the file, key path and value of every problem.
    """
    text_ref = os.fspath(ref)
    path = resolve_topology(text_ref)
    shown = text_ref if _looks_like_path(text_ref) or path == Path(text_ref) else path.name
    return parse_topology(_read(path, shown), path, profile, shown)
