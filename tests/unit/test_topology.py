"""The topology layer: shipped files load and match the schema; every bad input is refused precisely."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import labctl.topology.load as load_mod
from labctl.errors import LabctlError, TopologyError
from labctl.topology import (
    Topology,
    available_topologies,
    lab_name_problem,
    load_topology,
    model,
    topologies_dir,
)
from labctl.topology.model import HostLimits, Limits
from labctl.topology.units import format_size, parse_duration_ms, parse_size

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "topologies"
SCHEMA_PATH = ROOT / "labctl" / "topology" / "schema.json"
BAD = Path(__file__).resolve().parent / "bad_topologies"
SHIPPED = sorted(TOPOLOGIES.glob("*.yaml"))


def seed_data() -> dict[str, Any]:
    return yaml.safe_load((TOPOLOGIES / "two-node.yaml").read_text())


def write(tmp_path: Path, data: Any, name: str = "lab.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def refused(path: Path, profile: str | None = None) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        load_topology(str(path), profile)
    return info.value


# --- the shipped topologies -------------------------------------------------------------------------


def test_both_shipped_topologies_are_there() -> None:
    assert {"two-node", "trio"} <= {p.stem for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_topology_loads_by_name_and_by_path(path: Path) -> None:
    by_name = load_topology(path.stem)
    by_path = load_topology(str(path))
    assert by_name == by_path
    assert by_name.name == path.stem
    assert by_name.source == path


def test_two_node_is_the_seed() -> None:
    t = load_topology("two-node")
    assert [(n.name, str(n.ip), n.cid, n.preferred) for n in t.nodes] == [
        ("fred", "192.168.1.1", 0, True),
        ("barney", "192.168.1.2", 1, False),
    ]
    assert t.preferred_node.name == "fred"
    assert t.subnet == IPv4Network("192.168.1.0/24")
    assert t.gateway not in {n.ip for n in t.nodes}
    assert (t.cluster.name, str(t.cluster.ip)) == ("fscluster", "192.168.1.100")
    assert (t.cluster.lockdev, t.cluster.cbport, t.cluster.timeout, t.cluster.stomith) == (
        "192.168.1.100:15697",
        3001,
        30,
        "manual",
    )
    assert [(c.a, c.b, c.baud, c.device) for c in t.serial] == [("fred", "barney", 19200, "/dev/ttyS0")]
    assert t.disk.cidev.path == "/dev/sda1" and t.disk.datadev.path == "/dev/sda3"
    assert set(t.profiles) >= {"seed", "fast"} and t.heartbeat.name == "seed"
    assert t.profiles["fast"].keepalive_ms < 1000
    assert t.share.name == "ogfs" and t.share.path == "/ogfs"
    assert t.client.name == "client" and t.client.ip in t.subnet
    assert ("fscluster", IPv4Address("192.168.1.100")) in t.hosts()


def test_trio_shares_nothing_with_the_seed() -> None:
    seed, trio = load_topology("two-node"), load_topology("trio")
    assert not set(seed.node_names) & set(trio.node_names)
    assert not trio.subnet.overlaps(seed.subnet)
    assert trio.disk.size != seed.disk.size
    assert trio.cluster.name != seed.cluster.name
    # Its gateway is the default: the last usable address of the subnet.
    assert trio.gateway == trio.subnet.broadcast_address - 1
    # Its preferred node is not the first listed, and CIDs are not in list order.
    assert trio.preferred_node is not trio.nodes[0]


def test_model_helpers() -> None:
    t = load_topology("two-node")
    assert t.node("barney").cid == 1
    with pytest.raises(KeyError):
        t.node("nobody")
    assert [p.name for p in t.peers("fred")] == ["barney"]
    assert t.cables_of("barney")[0].peer("barney") == "fred"
    assert t.disk.partition("sda2").role == "journal"
    assert t.nodes[1].hostdata == "192.168.1.2"
    assert t.with_profile("fast").heartbeat.name == "fast"
    with pytest.raises(KeyError):
        t.with_profile("nope")


def test_packaged_directory_and_names() -> None:
    assert topologies_dir() == TOPOLOGIES
    assert set(available_topologies()) >= {"two-node", "trio"}


def test_env_var_adds_a_topology_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = seed_data()
    data["name"] = "elsewhere"
    write(tmp_path, data, "elsewhere.yaml")
    monkeypatch.setenv("LABCTL_TOPOLOGIES", str(tmp_path))
    assert load_topology("elsewhere").name == "elsewhere"


# --- JSON Schema ---------------------------------------------------------------------------------------


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def test_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_topology_matches_schema(path: Path) -> None:
    jsonschema.Draft202012Validator(schema()).validate(yaml.safe_load(path.read_text()))


def _mappings(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = []
    if isinstance(data, dict):
        found.append(path)
        for k, v in data.items():
            found += _mappings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += _mappings(v, (*path, i))
    return found


def test_schema_refuses_unknown_keys_everywhere_the_loader_does(tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    base = seed_data()
    base["limits"] = {"node": {"memory": "256MiB"}, "client": {"pids": 64}, "cable": {}}
    for where in _mappings(base):
        if where == ("heartbeat", "profiles"):
            continue  # profile names are free
        data = copy.deepcopy(base)
        target = data
        for step in where:
            target = target[step]
        target["bogus_key"] = 1
        assert not validator.is_valid(data), where
        error = refused(write(tmp_path, data))
        assert "bogus_key: unknown key" in str(error)


def _schema_keys(node: dict[str, Any]) -> tuple[str, ...]:
    return tuple(node["properties"])


def test_loader_keys_match_schema() -> None:
    s = schema()
    props = s["properties"]
    assert _schema_keys(s) == load_mod.TOP_KEYS
    assert _schema_keys(props["network"]) == load_mod.NETWORK_KEYS
    assert _schema_keys(props["cluster"]) == load_mod.CLUSTER_KEYS
    assert _schema_keys(props["nodes"]["items"]) == load_mod.NODE_KEYS
    assert _schema_keys(props["client"]) == load_mod.CLIENT_KEYS
    assert _schema_keys(props["serial"]["items"]) == load_mod.SERIAL_KEYS
    assert _schema_keys(props["disk"]) == load_mod.DISK_KEYS
    assert _schema_keys(props["disk"]["properties"]["partitions"]["items"]) == load_mod.PARTITION_KEYS
    assert _schema_keys(props["heartbeat"]) == load_mod.HEARTBEAT_KEYS
    assert (
        _schema_keys(props["heartbeat"]["properties"]["profiles"]["additionalProperties"])
        == load_mod.PROFILE_KEYS
    )
    assert _schema_keys(props["share"]) == load_mod.SHARE_KEYS
    assert _schema_keys(props["limits"]) == load_mod.LIMITS_KEYS
    assert _schema_keys(s["$defs"]["host_limits"]) == load_mod.HOST_LIMITS_KEYS
    assert props["serial"]["items"]["properties"]["baud"]["enum"] == list(load_mod.BAUD_RATES)


# --- bad files ------------------------------------------------------------------------------------------

BAD_FILES = sorted(BAD.glob("*.yaml"))


def test_there_are_bad_files() -> None:
    assert len(BAD_FILES) >= 8


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_file_is_refused_naming_file_and_key(path: Path) -> None:
    header = path.read_text().splitlines()[0]
    match = re.match(r"# expect: (.+?) \| (.+)\Z", header)
    assert match, f"{path.name}: first line must be '# expect: <key> | <text>'"
    where, text = match.groups()
    error = refused(path)
    message = str(error)
    assert error.exit_code == 2
    if re.fullmatch(r"\d+:\d+", where):
        assert f"{path}:{where}: " in message
    else:
        assert f"{path}: {where}: " in message
    assert text in message


# --- every check, as a change to the seed ------------------------------------------------------------

_DEL = object()


def _edit(data: Any, dotted: str, value: Any) -> None:
    *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    for step in parents:
        data = data[step]
    if value is _DEL:
        del data[last]
    else:
        data[last] = value


THIRD_NODE = [
    {"name": "fred", "ip": "192.168.1.1", "cid": 0},
    {"name": "barney", "ip": "192.168.1.2", "cid": 1},
    {"name": "wilma", "ip": "192.168.1.3", "cid": 2},
]

# A layout that is right but for its count: cidev, seven journals, data.
NINE_PARTITIONS = [
    {"name": "sda1", "role": "cidev", "size": "16MiB"},
    *({"name": f"sda{i}", "role": "journal", "size": "8MiB"} for i in range(2, 9)),
    {"name": "sda9", "role": "data"},
]

# (id, edits, key path, text the message must contain, value the message must show)
CASES: list[tuple[str, dict[str, Any], str, str, str | None]] = [
    ("unknown-node-key", {"nodes.0.addr": "x"}, "nodes[0].addr", "unknown key", "x"),
    ("unknown-top-key", {"nodez": 1}, "nodez", "did you mean 'nodes'?", "1"),
    (
        "unknown-profile-key",
        {"heartbeat.profiles.fast.keepalve": "1s"},
        "heartbeat.profiles.fast.keepalve",
        "did you mean 'keepalive'?",
        "1s",
    ),
    (
        "node-outside-subnet",
        {"nodes.1.ip": "192.168.2.5"},
        "nodes[1].ip",
        "192.168.2.5 is outside subnet 192.168.1.0/24",
        None,
    ),
    ("cluster-outside-subnet", {"cluster.ip": "10.9.9.9"}, "cluster.ip", "is outside subnet", "10.9.9.9"),
    ("client-outside-subnet", {"client.ip": "192.168.3.9"}, "client.ip", "is outside subnet", "192.168.3.9"),
    ("node-is-gateway", {"nodes.1.ip": "192.168.1.254"}, "nodes[1].ip", "is the gateway", "192.168.1.254"),
    (
        "client-is-default-gateway",
        {"network.gateway": _DEL, "client.ip": "192.168.1.254"},
        "client.ip",
        "the subnet's last usable address",
        "192.168.1.254",
    ),
    (
        "cluster-is-gateway",
        {"network.gateway": "192.168.1.100"},
        "cluster.ip",
        "is the gateway",
        "192.168.1.100",
    ),
    (
        "gateway-outside",
        {"network.gateway": "10.0.0.1"},
        "network.gateway",
        "not a usable host address",
        "10.0.0.1",
    ),
    ("network-address", {"nodes.0.ip": "192.168.1.0"}, "nodes[0].ip", "network address", "192.168.1.0"),
    ("broadcast-address", {"client.ip": "192.168.1.255"}, "client.ip", "broadcast address", "192.168.1.255"),
    (
        "cluster-ip-is-a-node",
        {"cluster.ip": "192.168.1.2"},
        "cluster.ip",
        "already the address of node barney",
        "192.168.1.2",
    ),
    (
        "duplicate-node-ip",
        {"nodes.1.ip": "192.168.1.1"},
        "nodes[1].ip",
        "already the address of node fred",
        "192.168.1.1",
    ),
    (
        "client-ip-is-a-node",
        {"client.ip": "192.168.1.2"},
        "client.ip",
        "already the address of node barney",
        "192.168.1.2",
    ),
    ("not-an-ip", {"nodes.0.ip": "192.168.1.300"}, "nodes[0].ip", "not an IPv4 address", "192.168.1.300"),
    ("ip-not-a-string", {"nodes.0.ip": 5}, "nodes[0].ip", "must be an IPv4 address", "5"),
    ("duplicate-node-name", {"nodes.1.name": "fred"}, "nodes[1].name", "duplicate node name", "fred"),
    ("duplicate-cid", {"nodes.1.cid": 0}, "nodes[1].cid", "duplicate CID", "0"),
    ("cid-gap", {"nodes.1.cid": 5}, "nodes[1].cid", "CIDs must be 0..1", "5"),
    ("cid-negative", {"nodes.0.cid": -1}, "nodes[0].cid", "must be in 0..255", "-1"),
    ("cid-not-int", {"nodes.0.cid": "zero"}, "nodes[0].cid", "must be an integer", "zero"),
    ("upper-case-node", {"nodes.1.name": "Barney"}, "nodes[1].name", "must be lower case", "Barney"),
    ("bad-hostname", {"nodes.1.name": "bar ney"}, "nodes[1].name", "not a valid host name", '"bar ney"'),
    (
        "two-preferred",
        {"nodes.1.preferred": True},
        "nodes[1].preferred",
        "only one node can be preferred",
        "true",
    ),
    ("preferred-not-bool", {"nodes.0.preferred": "yes"}, "nodes[0].preferred", "true or false", "yes"),
    ("three-nodes", {"nodes": THIRD_NODE, "serial": []}, "nodes", "exactly 2 nodes", "wilma"),
    ("node-missing-ip", {"nodes.1.ip": _DEL}, "nodes[1].ip", "required key is missing", None),
    ("client-missing", {"client": _DEL}, "client", "required key is missing", None),
    ("cluster-ip-empty", {"cluster.ip": None}, "cluster.ip", "must not be empty", None),
    (
        "cluster-name-is-node",
        {"cluster.name": "fred"},
        "cluster.name",
        "already the name of nodes[0].name",
        "fred",
    ),
    (
        "client-name-is-node",
        {"client.name": "barney"},
        "client.name",
        "already the name of nodes[1].name",
        "barney",
    ),
    (
        "netbios-too-long",
        {"cluster.name": "averyverylongcluster"},
        "cluster.name",
        "15 characters",
        "averyverylongcluster",
    ),
    ("cbport-is-lockdev", {"cluster.cbport": 15697}, "cluster.cbport", "also cluster.lockdev_port", "15697"),
    ("port-used-by-smbd", {"cluster.lockdev_port": 445}, "cluster.lockdev_port", "used by smbd", "445"),
    ("port-out-of-range", {"cluster.cbport": 70000}, "cluster.cbport", "1..65535", "70000"),
    ("udpport-clash", {"heartbeat.udpport": 3001}, "heartbeat.udpport", "also cluster.cbport", "3001"),
    ("unknown-stomith", {"cluster.stomith": "fence"}, "cluster.stomith", "must be one of manual", "fence"),
    (
        "cable-unknown-node",
        {"serial.0.between": ["fred", "wilma"]},
        "serial[0].between[1]",
        "unknown node wilma",
        "wilma",
    ),
    (
        "cable-same-node",
        {"serial.0.between": ["fred", "fred"]},
        "serial[0].between",
        "two different nodes",
        "fred",
    ),
    ("cable-one-end", {"serial.0.between": ["fred"]}, "serial[0].between", "two node names", "fred"),
    ("bad-baud", {"serial.0.baud": 14400}, "serial[0].baud", "must be one of 9600, 19200", "14400"),
    (
        "second-cable-same-device",
        {"serial.1": {"between": ["barney", "fred"]}},
        "serial[1].device",
        "already has a cable on /dev/ttyS0",
        "/dev/ttyS0",
    ),
    (
        "second-cable-other-baud",
        {"serial.1": {"between": ["barney", "fred"], "device": "/dev/ttyS1", "baud": 9600}},
        "serial[1].baud",
        "one baud rate per node",
        "9600",
    ),
    (
        "partition-beyond-disk",
        {"disk.partitions.2.size": "1GiB"},
        "disk.partitions[2].size",
        "beyond the end of the 1GiB disk",
        "1GiB",
    ),
    (
        "partition-start-beyond-disk",
        {"disk.partitions.2.start": "2GiB"},
        "disk.partitions[2].start",
        "beyond the end of the 1GiB disk",
        "2GiB",
    ),
    (
        "partitions-overlap",
        {"disk.partitions.1.start": "2MiB"},
        "disk.partitions[1].start",
        "overlaps sda1",
        "2MiB",
    ),
    (
        "partition-unaligned",
        {"disk.partitions.1.size": "1001KiB"},
        "disk.partitions[1].size",
        "multiple of 4096",
        "1001KiB",
    ),
    (
        "partition-start-unaligned",
        {"disk.partitions.0.start": 1000},
        "disk.partitions[0].start",
        "multiple of 4096",
        "1000",
    ),
    (
        "cidev-too-small",
        {"disk.partitions.0.size": "512KiB"},
        "disk.partitions[0].size",
        "at least 1MiB",
        "512KiB",
    ),
    ("data-too-small", {"disk.size": "128MiB"}, "disk.partitions[2].size", "at least 64MiB", None),
    (
        "journal-too-small",
        {"disk.partitions.1.size": "4MiB"},
        "disk.partitions[1].size",
        "at least 8MiB",
        "4MiB",
    ),
    (
        "no-data-partition",
        {"disk.partitions.2.role": "journal"},
        "disk.partitions",
        "exactly one partition with role data",
        None,
    ),
    (
        "two-cidevs",
        {"disk.partitions.1.role": "cidev"},
        "disk.partitions",
        "exactly one partition with role cidev",
        None,
    ),
    (
        "unknown-role",
        {"disk.partitions.1.role": "swap"},
        "disk.partitions[1].role",
        "must be one of cidev",
        "swap",
    ),
    (
        "partition-name",
        {"disk.partitions.1.name": "/dev/sda2"},
        "disk.partitions[1].name",
        "not a partition name",
        "/dev/sda2",
    ),
    ("two-disks", {"disk.partitions.1.name": "sdb2"}, "disk.partitions", "share its device name", "sdb2"),
    (
        "duplicate-partition",
        {"disk.partitions.1.name": "sda1"},
        "disk.partitions[1].name",
        "duplicate partition name",
        "sda1",
    ),
    (
        "size-only-last",
        {"disk.partitions.1.size": _DEL},
        "disk.partitions[1].size",
        "only the last partition may leave it out",
        None,
    ),
    ("ambiguous-unit", {"disk.size": "1G"}, "disk.size", "ambiguous", "1G"),
    ("disk-not-aligned", {"disk.size": 1000000000}, "disk.size", "multiple of 4096", "1000000000"),
    ("disk-too-small", {"disk.size": "32MiB"}, "disk.size", "too small", "32MiB"),
    (
        "deadtime-vs-keepalive",
        {"heartbeat.profiles.fast.deadtime": "400ms"},
        "heartbeat.profiles.fast.deadtime",
        "more than twice keepalive (200ms)",
        "400ms",
    ),
    (
        "initdead-below-deadtime",
        {"heartbeat.profiles.seed.initdead": "5s"},
        "heartbeat.profiles.seed.initdead",
        "at least deadtime (10s)",
        "5s",
    ),
    (
        "warntime-not-below-deadtime",
        {"heartbeat.profiles.seed.warntime": 10},
        "heartbeat.profiles.seed.warntime",
        "less than deadtime",
        "10",
    ),
    (
        "bad-duration",
        {"heartbeat.profiles.seed.keepalive": "quick"},
        "heartbeat.profiles.seed.keepalive",
        "not a duration",
        "quick",
    ),
    (
        "zero-keepalive",
        {"heartbeat.profiles.seed.keepalive": "0ms"},
        "heartbeat.profiles.seed.keepalive",
        "more than 0",
        "0ms",
    ),
    (
        "missing-deadtime",
        {"heartbeat.profiles.fast.deadtime": _DEL},
        "heartbeat.profiles.fast.deadtime",
        "required key is missing",
        None,
    ),
    (
        "bad-auto-failback",
        {"heartbeat.auto_failback": "sometimes"},
        "heartbeat.auto_failback",
        "must be one of on, off, legacy",
        "sometimes",
    ),
    (
        "unknown-default-profile",
        {"heartbeat.profile": "turbo"},
        "heartbeat.profile",
        "unknown profile turbo",
        None,
    ),
    (
        "bad-profile-name",
        {"heartbeat.profiles.Fast Lane": {"keepalive": 1, "deadtime": 5}},
        "heartbeat.profiles.Fast Lane",
        "not a valid profile name",
        None,
    ),
    ("lab-name-characters", {"name": "Two_Node"}, "name", "lower-case letters, digits and '-'", "Two_Node"),
    ("lab-name-length", {"name": "a" * 41}, "name", "at most 40 characters", "a" * 41),
    (
        "subnet-host-bits",
        {"network.subnet": "192.168.1.1/24"},
        "network.subnet",
        "host bits",
        "192.168.1.1/24",
    ),
    ("subnet-too-small", {"network.subnet": "192.168.1.0/30"}, "network.subnet", "too small", None),
    ("subnet-no-prefix", {"network.subnet": "192.168.1.0"}, "network.subnet", "prefix length", None),
    ("share-path-space", {"share.path": "/my share"}, "share.path", "no spaces", '"/my share"'),
    ("share-reserved", {"share.name": "global"}, "share.name", "Samba reserves", "global"),
    (
        "workgroup-is-cluster-name",
        {"share.workgroup": "FSCluster"},
        "share.workgroup",
        "NetBIOS name of cluster.name",
        "FSCluster",
    ),
    ("nodes-not-a-list", {"nodes": {"fred": "192.168.1.1"}}, "nodes", "must be a list", "fred"),
    (
        "too-many-partitions",
        {"disk.partitions": NINE_PARTITIONS},
        "disk.partitions",
        "has 9 partitions, at most 8 are allowed (each is a loop device on the host)",
        "sda9",
    ),
    ("limits-not-a-mapping", {"limits": 5}, "limits", "must be a mapping of node, client, cable", "5"),
    ("limits-unknown-key", {"limits": {"nodes": {}}}, "limits.nodes", "did you mean 'node'?", None),
    (
        "host-limits-unknown-key",
        {"limits": {"cable": {"mem": "64MiB"}}},
        "limits.cable.mem",
        "unknown key (did you mean 'memory'? known keys here: memory, pids)",
        "64MiB",
    ),
    (
        "host-limits-not-a-mapping",
        {"limits": {"node": "big"}},
        "limits.node",
        "must be a mapping of memory, pids",
        "big",
    ),
    (
        "memory-below-minimum",
        {"limits": {"client": {"memory": "31MiB"}}},
        "limits.client.memory",
        "must be in 32MiB..16GiB",
        "31MiB",
    ),
    (
        "memory-above-maximum",
        {"limits": {"node": {"memory": "17GiB"}}},
        "limits.node.memory",
        "must be in 32MiB..16GiB",
        "17GiB",
    ),
    ("memory-bytes-too-few", {"limits": {"node": {"memory": 4096}}}, "limits.node.memory", "32MiB..", "4096"),
    ("memory-ambiguous", {"limits": {"node": {"memory": "1G"}}}, "limits.node.memory", "ambiguous", "1G"),
    ("memory-not-a-size", {"limits": {"node": {"memory": True}}}, "limits.node.memory", "not a size", "true"),
    (
        "pids-below-minimum",
        {"limits": {"cable": {"pids": 8}}},
        "limits.cable.pids",
        "must be in 16..32768",
        "8",
    ),
    ("pids-above-maximum", {"limits": {"node": {"pids": 40000}}}, "limits.node.pids", "16..32768", "40000"),
    ("pids-not-an-integer", {"limits": {"node": {"pids": "512"}}}, "limits.node.pids", "an integer", "512"),
    ("pids-a-boolean", {"limits": {"node": {"pids": True}}}, "limits.node.pids", "an integer", "true"),
]


@pytest.mark.parametrize(("edits", "key", "text", "value"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_value_is_refused(
    tmp_path: Path, edits: dict[str, Any], key: str, text: str, value: str | None
) -> None:
    data = seed_data()
    for dotted, new in edits.items():
        if dotted == "serial.1":
            data["serial"].append(new)
            continue
        _edit(data, dotted, new)
    path = write(tmp_path, data, "broken.yaml")
    error = refused(path)
    line = next((ln for ln in error.problems if ln.startswith(f"{path}: {key}: ")), None)
    assert line is not None, f"no problem about {key!r} in:\n{error}"
    assert text in line
    if value is not None:
        assert value in line
    assert isinstance(error, LabctlError) and error.exit_code == 2


def test_message_format_matches_the_issue(tmp_path: Path) -> None:
    data = seed_data()
    data["nodes"][1]["ip"] = "192.168.2.5"
    error = refused(write(tmp_path, data, "two-node.yaml"))
    assert (
        str(error)
        == f"{tmp_path / 'two-node.yaml'}: nodes[1].ip: 192.168.2.5 is outside subnet 192.168.1.0/24"
    )


def test_value_is_shown_as_got(tmp_path: Path) -> None:
    data = seed_data()
    data["serial"][0]["baud"] = 14400
    assert str(refused(write(tmp_path, data))).endswith("(got 14400)")


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    data = seed_data()
    data["nodes"][1]["ip"] = "10.0.0.2"
    data["serial"][0]["baud"] = 1234
    data["heartbeat"]["profiles"]["fast"]["deadtime"] = "300ms"
    error = refused(write(tmp_path, data))
    assert len(error.problems) == 3
    assert str(error).count("\n") == 2


def test_name_lookup_errors() -> None:
    with pytest.raises(TopologyError, match="no topology of that name; did you mean 'two-node'"):
        load_topology("two-nod")
    with pytest.raises(TopologyError, match="no such file"):
        load_topology("missing/lab.yaml")


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert "the file is empty" in str(refused(empty))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    assert "not UTF-8" in str(refused(binary))
    with pytest.raises(TopologyError, match="not a file"):
        load_topology(str(tmp_path) + "/")


def test_name_is_checked_before_anything_else_when_yaml_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: ok\nnodes: [\n")
    message = str(refused(path))
    assert message.startswith(f"{path}:3:1: invalid YAML")


# --- profiles ---------------------------------------------------------------------------------------


def test_default_profile_is_the_files() -> None:
    assert load_topology("two-node").heartbeat.name == "seed"
    assert load_topology("trio").heartbeat.name == "steady"


def test_profile_selection() -> None:
    fast = load_topology("two-node", profile="fast")
    assert fast.heartbeat == fast.profiles["fast"]
    assert (
        fast.heartbeat.keepalive_ms,
        fast.heartbeat.warntime_ms,
        fast.heartbeat.deadtime_ms,
        fast.heartbeat.initdead_ms,
    ) == (200, 500, 1000, 12000)
    assert fast.default_profile == "seed"
    seed = load_topology("two-node")
    assert (seed.heartbeat.keepalive_ms, seed.heartbeat.deadtime_ms) == (1000, 10000)
    # G15: the seed profile must detect a death well within the seed's 30 s.
    assert seed.heartbeat.deadtime_ms <= 20000


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(TopologyError) as info:
        load_topology("two-node", profile="turbo")
    message = str(info.value)
    assert "two-node.yaml: heartbeat.profile: turbo was asked for" in message
    assert "seed" in message and "fast" in message
    assert info.value.exit_code == 2


def test_profile_defaults_follow_heartbeat(tmp_path: Path) -> None:
    data = seed_data()
    data["heartbeat"] = {
        "auto_failback": False,
        "profiles": {
            "a": {"keepalive": "1s", "deadtime": "30s"},  # initdead = deadtime when deadtime > 10 s
            "b": {"keepalive": 1, "deadtime": 8},  # 2 x deadtime when 6..10 s
            "c": {"keepalive": "100ms", "deadtime": 0.5, "auto_failback": "legacy"},  # 12 s below 6 s
        },
    }
    t = load_topology(str(write(tmp_path, data)))
    assert t.heartbeat.name == "a"  # no 'seed' profile: the first one
    a, b, c = t.profiles["a"], t.profiles["b"], t.profiles["c"]
    assert (a.warntime_ms, a.initdead_ms, a.auto_failback) == (15000, 30000, "off")
    assert (b.warntime_ms, b.initdead_ms) == (4000, 16000)
    assert (c.deadtime_ms, c.initdead_ms, c.auto_failback) == (500, 12000, "legacy")


def test_builtin_profiles_when_the_file_has_none(tmp_path: Path) -> None:
    data = seed_data()
    del data["heartbeat"]
    t = load_topology(str(write(tmp_path, data)), profile="fast")
    assert set(t.profiles) == {"seed", "fast"} and t.default_profile == "seed"
    assert t.heartbeat.keepalive_ms == 200 and t.heartbeat_options.udpport == 694


# --- defaults --------------------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    minimal = {
        "network": {"subnet": "10.20.30.0/24"},
        "cluster": {"name": "vip", "ip": "10.20.30.40"},
        "nodes": [{"name": "left", "ip": "10.20.30.1"}, {"name": "right", "ip": "10.20.30.2"}],
        "client": {"ip": "10.20.30.3"},
        "disk": {
            "size": "256MiB",
            "partitions": [
                {"name": "vdb1", "role": "cidev", "size": "2MiB"},
                {"name": "vdb2", "role": "data"},
            ],
        },
    }
    t = load_topology(str(write(tmp_path, minimal, "small-lab.yaml")))
    assert t.name == "small-lab"  # from the file name
    assert t.gateway == IPv4Address("10.20.30.254")
    assert [(n.cid, n.preferred) for n in t.nodes] == [(0, True), (1, False)]
    assert t.client.name == "client"
    assert t.serial == ()
    assert (t.cluster.lockdev_port, t.cluster.cbport, t.cluster.timeout, t.cluster.stomith) == (
        15697,
        3001,
        30,
        "manual",
    )
    parts = t.disk.partitions
    assert (parts[0].start, parts[1].start, parts[1].end) == (1 << 20, 3 << 20, 256 << 20)
    assert t.disk.fstype == "ogfs" and t.disk.journals == ()
    assert (t.share.name, t.share.path, t.share.workgroup) == ("ogfs", "/ogfs", "WORKGROUP")
    assert t.network.interface == "eth0"


def test_file_name_that_is_no_lab_name(tmp_path: Path) -> None:
    data = seed_data()
    del data["name"]
    message = str(refused(write(tmp_path, data, "My Lab.yaml")))
    assert ": name: " in message and "give a name: key" in message and "My Lab" in message


def test_topology_is_frozen() -> None:
    t = load_topology("two-node")
    with pytest.raises(AttributeError):
        t.name = "x"  # type: ignore[misc]
    assert isinstance(t, Topology)


def test_topology_error_is_a_labctl_error() -> None:
    assert issubclass(TopologyError, LabctlError)
    assert TopologyError.exit_code == 2 and LabctlError.exit_code == 1
    assert TopologyError("x").problems == ("x",)


# --- limits ---------------------------------------------------------------------------------------------


def test_limits_default_to_the_model_constants() -> None:
    t = load_topology("two-node")
    assert t.limits == Limits()
    assert t.limits.node == HostLimits(model.DEFAULT_NODE_MEMORY, model.DEFAULT_NODE_PIDS)
    assert t.limits.client == HostLimits(model.DEFAULT_CLIENT_MEMORY, model.DEFAULT_CLIENT_PIDS)
    assert t.limits.cable == HostLimits(model.DEFAULT_CABLE_MEMORY, model.DEFAULT_CABLE_PIDS)
    assert (t.limits.node.memory, t.limits.node.pids) == (192 << 20, 512)
    assert (t.limits.client.memory, t.limits.client.pids) == (64 << 20, 128)
    assert (t.limits.cable.memory, t.limits.cable.pids) == (32 << 20, 32)


def test_default_limits_fit_fifty_labs_in_24_gib() -> None:
    limits = Limits()
    per_lab = 2 * limits.node.memory + limits.client.memory + limits.cable.memory
    assert per_lab == 480 << 20
    assert 50 * per_lab <= 24 << 30


@pytest.mark.parametrize("section", [None, {}, {"node": None, "client": {}}])
def test_empty_limits_keep_the_defaults(tmp_path: Path, section: Any) -> None:
    data = seed_data()
    data["limits"] = section
    assert load_topology(str(write(tmp_path, data))).limits == Limits()


def test_limits_override_only_what_they_name(tmp_path: Path) -> None:
    data = seed_data()
    data["limits"] = {"node": {"memory": "256MiB"}, "client": {"pids": 64}, "cable": {"memory": 33554432}}
    limits = load_topology(str(write(tmp_path, data))).limits
    assert limits.node == HostLimits(256 << 20, model.DEFAULT_NODE_PIDS)
    assert limits.client == HostLimits(model.DEFAULT_CLIENT_MEMORY, 64)
    assert limits.cable == HostLimits(32 << 20, model.DEFAULT_CABLE_PIDS)


def test_limit_bounds_are_inclusive(tmp_path: Path) -> None:
    data = seed_data()
    data["limits"] = {"node": {"memory": "16GiB", "pids": 32768}, "cable": {"memory": "32MiB", "pids": 16}}
    limits = load_topology(str(write(tmp_path, data))).limits
    assert (limits.node.memory, limits.node.pids) == (16 << 30, 32768)
    assert (limits.cable.memory, limits.cable.pids) == (32 << 20, 16)


def test_limit_problems_are_reported_at_once(tmp_path: Path) -> None:
    data = seed_data()
    data["limits"] = {"node": {"memory": "8MiB", "pids": "lots"}, "client": {"cpu": 1}, "desk": {}}
    path = write(tmp_path, data)
    assert sorted(refused(path).problems) == sorted(
        [
            f"{path}: limits.node.memory: must be in 32MiB..16GiB (got 8MiB)",
            f"{path}: limits.node.pids: must be an integer 16..32768 (got lots)",
            f"{path}: limits.client.cpu: unknown key (known keys here: memory, pids) (got 1)",
            f"{path}: limits.desk: unknown key (known keys here: node, client, cable) (got {{}})",
        ]
    )


def test_limits_in_the_schema(tmp_path: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    data = seed_data()
    data["limits"] = {"node": {"memory": "256MiB", "pids": 1024}}
    assert validator.is_valid(data)
    for bad in ({"node": {"pids": 8}}, {"node": {"memory": 1024}}, {"node": {"pids": "many"}}, {"nodes": {}}):
        data["limits"] = bad
        assert not validator.is_valid(data), bad


def test_at_most_eight_partitions(tmp_path: Path) -> None:
    data = seed_data()
    data["disk"]["partitions"] = NINE_PARTITIONS[:-2] + NINE_PARTITIONS[-1:]
    assert len(load_topology(str(write(tmp_path, data))).disk.partitions) == 8
    data["disk"]["partitions"] = NINE_PARTITIONS
    path = write(tmp_path, data)
    assert refused(path).problems == (
        f"{path}: disk.partitions: has 9 partitions, at most 8 are allowed (each is a loop device on the "
        'host) (got ["sda1", "sda2", "sda3", "sda4", "sda5", "sda6", "sda7", "sda8", "sda9"])',
    )
    assert not jsonschema.Draft202012Validator(schema()).is_valid(data)


def test_limits_keep_existing_constructors_working() -> None:
    t = load_topology("two-node")
    fields = {f: getattr(t, f) for f in Topology.__dataclass_fields__ if f != "limits"}
    assert Topology(**fields).limits == Limits()


# --- units and names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (4096, 4096),
        ("64MiB", 64 << 20),
        ("1GiB", 1 << 30),
        ("1.5GiB", 3 << 29),
        ("512 KiB", 512 << 10),
        ("7B", 7),
        ("10", 10),
    ],
)
def test_parse_size(text: Any, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["1G", "1 MB", "-5", "lots", True, None, 1.5, "0.3B"])
def test_parse_size_refuses(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [(1, 1000), ("1", 1000), ("1s", 1000), ("200ms", 200), (1.5, 1500), ("0.25s", 250), ("30s", 30000)],
)
def test_parse_duration(text: Any, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["1m", "fast", "1.0005s", True, None, "-1s"])
def test_parse_duration_refuses(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


@given(st.integers(min_value=0, max_value=1 << 44))
def test_size_round_trip(size: int) -> None:
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("two-node", True),
        ("a", True),
        ("lab-2", True),
        ("x" * 40, True),
        ("x" * 41, False),
        ("Two", False),
        ("-a", False),
        ("a-", False),
        ("a_b", False),
        ("", False),
    ],
)
def test_lab_name_rules(name: str, ok: bool) -> None:
    assert (lab_name_problem(name) is None) == ok


# --- nothing about the seed in the code ----------------------------------------------------------------


def test_no_seed_specifics_in_code() -> None:
    offenders: list[str] = []
    patterns: list[tuple[str, Callable[[str], bool]]] = [
        ("fred", lambda line: re.search(r"\bfred\b", line, re.I) is not None),
        ("barney", lambda line: re.search(r"\bbarney\b", line, re.I) is not None),
        ("192.168.1.", lambda line: "192.168.1." in line),
        ("fscluster", lambda line: "fscluster" in line),
    ]
    for package in ("topology", "render"):
        for path in sorted((ROOT / "labctl" / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for word, hit in patterns:
                    if hit(line):
                        offenders.append(f"{path.name}:{number}: {word}")
    assert offenders == []
