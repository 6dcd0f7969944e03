"""ogfs.config (ogfscf.cf parsing, validation, formatting) and ogfs.cidev (the on-disk store)."""

from __future__ import annotations

import ipaddress
import os
import struct
import textwrap
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ogfs import cidev, config
from ogfs.config import ClusterConfig, ConfigError, NodeEntry, StomithMethod

ROOT = Path(__file__).resolve().parents[2]

SEED_FILE = ROOT / "tests" / "data" / "ogfscf.cf"

# Line numbers below refer to this text.
BASE = """\
datadev: /dev/sda3
cidev: /dev/sda1
lockdev: 192.168.1.100:15697
cbport: 3001
timeout: 30
STOMITH: manual
name: manual
node: 192.168.1.1 0 SM: manual
node: 192.168.1.2 1 SM: manual
"""

SEED_CONFIG = ClusterConfig(
    datadev="/dev/sda3",
    cidev="/dev/sda1",
    lockdev_ip="192.168.1.100",
    lockdev_port=15697,
    cbport=3001,
    timeout=30,
    methods=(StomithMethod("manual", "manual"),),
    nodes=(NodeEntry("192.168.1.1", 0, "manual"), NodeEntry("192.168.1.2", 1, "manual")),
)


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def error_of(text: str, source: str = "ogfscf.cf") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config.parse(text, source)
    return info.value


# --- the seed's file -------------------------------------------------------------------------------------


def test_seed_file_parses_to_the_seed_values() -> None:
    cfg = config.parse(SEED_FILE.read_text(), "ogfscf.cf")
    assert cfg == SEED_CONFIG
    assert cfg.lockdev == "192.168.1.100:15697"
    assert cfg.node_by_ip("192.168.1.2") == NodeEntry("192.168.1.2", 1, "manual", None)
    assert cfg.node_by_ip("192.168.1.100") is None
    assert cfg.node_by_cid(0) == NodeEntry("192.168.1.1", 0, "manual")
    assert cfg.node_by_cid(2) is None
    assert cfg.method("manual") == StomithMethod("manual", "manual", ())
    assert cfg.method("apc") is None


def test_seed_file_is_the_blog_text_one_key_a_line() -> None:
    text = SEED_FILE.read_text()
    assert text.count("\n") == 32
    assert "datadev: /dev/sda3\n" in text and text.endswith("node: 192.168.1.2 1 SM: manual\n")


def test_seed_file_error_names_file_and_line() -> None:
    text = edit("node: 192.168.1.2 1 SM: manual", "node: 192.168.1.2 0 SM: manual", SEED_FILE.read_text())
    e = error_of(text)
    assert str(e) == "ogfscf.cf:32: node 192.168.1.2: CID 0 already used by 192.168.1.1"
    assert (e.source, e.line) == ("ogfscf.cf", 32)


def test_normalised_seed_text() -> None:
    assert config.format(SEED_CONFIG) == (
        "# OpenGFS cluster configuration (ogfscf.cf), normalised by ogfsconf\n"
        "datadev: /dev/sda3\n"
        "cidev: /dev/sda1\n"
        "lockdev: 192.168.1.100:15697\n"
        "cbport: 3001\n"
        "timeout: 30\n"
        "\n"
        "STOMITH: manual\n"
        "name: manual\n"
        "\n"
        "node: 192.168.1.1 0 SM: manual\n"
        "node: 192.168.1.2 1 SM: manual\n"
    )


# --- accepted variations ---------------------------------------------------------------------------------


def test_labctl_method_with_params_plugs_and_comments() -> None:
    text = textwrap.dedent("""\
    datadev: /dev/sda3   # trailing comment
    cidev: /dev/sda1
    lockdev: 10.0.0.100:15697
    cbport: 3001
    STOMITH: labctl
    name: pdu
    server: 10.0.0.5:8080
    timeout: 30              # a global key stays global inside a section
    login: lab admin
    STOMITH: manual
    name: operator
    node: 10.0.0.2 1 SM: operator
    node: 10.0.0.1 0 SM: pdu 3
    """)
    cfg = config.parse(text)
    assert cfg.timeout == 30
    assert cfg.methods == (
        StomithMethod("labctl", "pdu", (("server", "10.0.0.5:8080"), ("login", "lab admin"))),
        StomithMethod("manual", "operator"),
    )
    assert cfg.method("pdu") is not None and cfg.method("pdu").param("login") == "lab admin"
    # Nodes come back in CID order whatever the file order.
    assert cfg.nodes == (NodeEntry("10.0.0.1", 0, "pdu", "3"), NodeEntry("10.0.0.2", 1, "operator"))
    assert config.parse(config.format(cfg)) == cfg


def test_crlf_and_blank_lines() -> None:
    assert config.parse("\r\n\r\n" + BASE.replace("\n", "\r\n")) == SEED_CONFIG


# --- errors ----------------------------------------------------------------------------------------------

ERRORS = [
    # (id, text, line, message fragment)
    ("unknown key", edit("timeout: 30\n", "timeout: 30\ncolour: blue\n"), 6, "unknown key 'colour'"),
    ("case hint", edit("STOMITH: manual", "stomith: manual"), 6,
     "unknown key 'stomith' (keys are case-sensitive: did you mean 'STOMITH'?)"),
    ("missing colon", edit("node: 192.168.1.1", "node 192.168.1.1"), 8,
     "node: the key must be followed by ':'"),
    ("not key value", edit("timeout: 30\n", "timeout: 30\njust words\n"), 6,
     "expected 'key: value', got 'just words'"),
    ("missing datadev", edit("datadev: /dev/sda3\n", ""), 8, "missing required key 'datadev:'"),
    ("missing cidev", edit("cidev: /dev/sda1\n", ""), 8, "missing required key 'cidev:'"),
    ("missing lockdev", edit("lockdev: 192.168.1.100:15697\n", ""), 8, "missing required key 'lockdev:'"),
    ("missing cbport", edit("cbport: 3001\n", ""), 8, "missing required key 'cbport:'"),
    ("missing timeout", edit("timeout: 30\n", ""), 8, "missing required key 'timeout:'"),
    ("missing nodes", BASE.split("node:")[0], 7, "missing 'node:' lines"),
    ("given twice", edit("timeout: 30\n", "timeout: 30\ntimeout: 40\n"), 6,
     "timeout: given twice (first on line 5)"),
    ("name outside", edit("STOMITH: manual\n", ""), 6, "name: 'manual' is outside a STOMITH section"),
    ("no name", edit("name: manual\n", ""), 6, "STOMITH: manual method has no 'name:' line"),
    ("name twice", edit("name: manual\n", "name: manual\nname: other\n"), 8,
     "name: given twice in one STOMITH section (first on line 7)"),
    ("duplicate method", edit("name: manual\n", "name: manual\nSTOMITH: none\nname: manual\n"), 9,
     "name: STOMITH method name 'manual' already used on line 7"),
    ("bad method name", edit("name: manual", "name: man:ual"), 7,
     "name: 'man:ual' is not a valid method name"),
    ("unknown kind", edit("STOMITH: manual", "STOMITH: apc"), 6,
     "STOMITH: unknown kind 'apc' (known: labctl, manual, none)"),
    ("params on manual", edit("name: manual\n", "name: manual\nserver: 10.0.0.5\n"), 8,
     "unknown key 'server' (a STOMITH manual method takes no parameters)"),
    ("lockdev no port", edit("192.168.1.100:15697", "192.168.1.100"), 3,
     "lockdev: expected IP:port, got '192.168.1.100'"),
    ("lockdev bad ip", edit("192.168.1.100:", "192.168.1.300:"), 3,
     "lockdev: '192.168.1.300' is not an IPv4 address"),
    ("lockdev hostname", edit("192.168.1.100:", "fscluster:"), 3,
     "lockdev: 'fscluster' is not an IPv4 address"),
    ("lockdev multicast", edit("192.168.1.100:", "224.0.0.1:"), 3,
     "lockdev: '224.0.0.1' is not a usable host address"),
    ("lockdev port 0", edit(":15697", ":0"), 3, "lockdev: port '0' is not a port (an integer 1..65535)"),
    ("lockdev port big", edit(":15697", ":65536"), 3, "lockdev: port '65536' is not a port"),
    ("lockdev port text", edit(":15697", ":memexp"), 3, "lockdev: port 'memexp' is not a port"),
    ("cbport big", edit("cbport: 3001", "cbport: 70000"), 4,
     "cbport: '70000' is not a port (an integer 1..65535)"),
    ("cbport negative", edit("cbport: 3001", "cbport: -1"), 4, "cbport: '-1' is not a port"),
    ("cbport plus", edit("cbport: 3001", "cbport: +3001"), 4, "cbport: '+3001' is not a port"),
    ("cbport empty", edit("cbport: 3001", "cbport:"), 4, "cbport: missing value"),
    ("cbport two values", edit("cbport: 3001", "cbport: 3001 3002"), 4,
     "cbport: expected one value, got '3001 3002'"),
    ("cbport is lockdev port", edit("cbport: 3001", "cbport: 15697"), 4,
     "cbport: 15697 is also the lockdev port"),
    ("timeout zero", edit("timeout: 30", "timeout: 0"), 5, "timeout: '0' is not a positive integer"),
    ("timeout negative", edit("timeout: 30", "timeout: -5"), 5, "timeout: '-5' is not a positive integer"),
    ("timeout float", edit("timeout: 30", "timeout: 1.5"), 5, "timeout: '1.5' is not a positive integer"),
    ("slot_interval too short", edit("timeout: 30", "timeout: 30\nslot_interval: 0.01"), 6,
     "slot_interval: '0.01' is not a number of seconds from 0.05 to 2"),
    ("slot_interval not a number", edit("timeout: 30", "timeout: 30\nslot_interval: 1s"), 6,
     "slot_interval: '1s' is not a number of seconds from 0.05 to 2"),
    ("datadev relative", edit("datadev: /dev/sda3", "datadev: sda3"), 1,
     "datadev: device path 'sda3' is not absolute"),
    ("cidev relative", edit("cidev: /dev/sda1", "cidev: dev/sda1"), 2,
     "cidev: device path 'dev/sda1' is not absolute"),
    ("cidev is datadev", edit("cidev: /dev/sda1", "cidev: /dev/sda3"), 2,
     "cidev: '/dev/sda3' is also the datadev"),
    ("node no SM", edit("0 SM: manual", "0 manual"), 8, "node 192.168.1.1: missing 'SM:'"),
    ("node SM glued", edit("0 SM: manual", "0 SM:manual"), 8, "node 192.168.1.1: missing 'SM:'"),
    ("node no method", edit("0 SM: manual", "0 SM:"), 8,
     "node 192.168.1.1: missing the method name after 'SM:'"),
    ("node no cid", edit("0 SM: manual", "SM: manual"), 8, "node 192.168.1.1: 'SM:' must be the third field"),
    ("node extra", edit("0 SM: manual", "0 SM: manual 3 spare"), 8, "node 192.168.1.1: extra fields 'spare'"),
    ("node bad ip", edit("node: 192.168.1.1 ", "node: 192.168.1 "), 8,
     "node: '192.168.1' is not an IPv4 address"),
    ("node zero ip", edit("node: 192.168.1.1 ", "node: 0.0.0.0 "), 8,
     "node: '0.0.0.0' is not a usable host address"),
    ("node bad cid", edit("1 SM: manual", "one SM: manual"), 9,
     "node 192.168.1.2: CID 'one' is not a non-negative integer"),
    ("node cid range", edit("1 SM: manual", "256 SM: manual"), 9,
     "node 192.168.1.2: CID 256 is out of range 0..255"),
    ("duplicate ip", edit("192.168.1.2 1", "192.168.1.1 1"), 9,
     "node 192.168.1.1: IP address already used by the node on line 8"),
    ("duplicate cid", edit("192.168.1.2 1", "192.168.1.2 0"), 9,
     "node 192.168.1.2: CID 0 already used by 192.168.1.1"),
    ("cid gap", edit("192.168.1.2 1", "192.168.1.2 2"), 9,
     "node 192.168.1.2: CID 2 leaves a gap: with 2 nodes the CIDs must be 0..1, and 1 is missing"),
    ("cid not from 0", edit("192.168.1.1 0", "192.168.1.1 2"), 8,
     "node 192.168.1.1: CID 2 leaves a gap: with 2 nodes the CIDs must be 0..1, and 0 is missing"),
    ("undefined method", edit("1 SM: manual", "1 SM: fence"), 9,
     "node 192.168.1.2: STOMITH method 'fence' is not defined (defined: manual)"),
    ("node is lockdev", edit("node: 192.168.1.2", "node: 192.168.1.100"), 9,
     "node 192.168.1.100: address is the lockdev address (the cluster IP must be its own address"),
]


@pytest.mark.parametrize(("text", "line", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error(text: str, line: int, message: str) -> None:
    e = error_of(text)
    first = str(e).splitlines()[0]
    assert first.startswith(f"ogfscf.cf:{line}: "), str(e)
    assert message in first, str(e)
    assert (e.line, e.source) == (line, "ogfscf.cf")
    assert e.problem == first.split(": ", 1)[1]


def test_missing_method_reported_with_node_errors() -> None:
    e = error_of(edit("STOMITH: manual\nname: manual\n", ""))
    assert "ogfscf.cf:7: missing a STOMITH method" in str(e)
    assert str(e).splitlines()[0] == (
        "ogfscf.cf:6: node 192.168.1.1: STOMITH method 'manual' is not defined (defined: none)")


def test_cid_gap_reports_the_missing_cid() -> None:
    text = edit("node: 192.168.1.2 1 SM: manual\n",
                "node: 192.168.1.2 3 SM: manual\nnode: 192.168.1.3 1 SM: manual\n")
    assert str(error_of(text)) == ("ogfscf.cf:9: node 192.168.1.2: CID 3 leaves a gap: with 3 nodes "
                                   "the CIDs must be 0..2, and 2 is missing")


def test_all_problems_are_listed_in_file_order() -> None:
    text = edit("timeout: 30", "timeout: soon", edit("cbport: 3001", "cbport: 0", edit("/dev/sda3", "sda3")))
    text = edit("1 SM: manual", "0 SM: manual", text)
    e = error_of(text)
    assert [line.split(":")[1] for line in str(e).splitlines()] == ["1", "4", "5", "9"]
    assert e.problems[0] == (1, "datadev: device path 'sda3' is not absolute")


def test_empty_text() -> None:
    e = error_of("# nothing here\n")
    assert str(e).splitlines()[0] == "ogfscf.cf:1: missing required key 'datadev:'"
    assert "missing a STOMITH method" in str(e) and "missing 'node:' lines" in str(e)


def test_default_source_name() -> None:
    assert str(error_of(edit("timeout: 30", "timeout: 0"), "<config>")).startswith("<config>:5: timeout:")


# --- round trips ---------------------------------------------------------------------------------------

_RESERVED = {"datadev", "cidev", "lockdev", "cbport", "timeout", "STOMITH", "name", "node"}
words = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,11}", fullmatch=True)
param_keys = words.filter(lambda k: k not in _RESERVED)
# Printable ASCII without '#' (a comment), no leading or trailing blank (the parser strips them).
param_values = st.from_regex(r'[!-"$-~]([ !-"$-~]{0,20}[!-"$-~])?', fullmatch=True)
paths = st.from_regex(r"/[A-Za-z0-9_./-]{1,20}", fullmatch=True)
plugs = st.none() | st.from_regex(r"[A-Za-z0-9_./:-]{1,8}", fullmatch=True)
# 1.0.0.0 .. 223.255.255.254: no 0.0.0.0, no multicast, no broadcast.
host_ips = st.integers(0x01000000, 0xDFFFFFFE).map(lambda n: str(ipaddress.IPv4Address(n)))
ports = st.integers(1, 65535)


@st.composite
def cluster_configs(draw: st.DrawFn) -> ClusterConfig:
    methods = []
    for name in draw(st.lists(words, min_size=1, max_size=4, unique=True)):
        kind = draw(st.sampled_from(config.STOMITH_KINDS))
        params: tuple[tuple[str, str], ...] = ()
        if kind == "labctl":
            keys = draw(st.lists(param_keys, max_size=3, unique=True))
            params = tuple((key, draw(param_values)) for key in keys)
        methods.append(StomithMethod(kind, name, params))
    lock_ip, *node_ips = draw(st.lists(host_ips, min_size=2, max_size=9, unique=True))
    nodes = tuple(NodeEntry(ip, cid, draw(st.sampled_from(methods)).name, draw(plugs))
                  for cid, ip in enumerate(node_ips))
    datadev, cidev_path = draw(st.lists(paths, min_size=2, max_size=2, unique=True))
    lock_port, cbport = draw(st.lists(ports, min_size=2, max_size=2, unique=True))
    slot_interval = draw(st.one_of(st.none(), st.integers(50, 2000).map(lambda ms: ms / 1000)))
    return ClusterConfig(datadev, cidev_path, lock_ip, lock_port, cbport, draw(st.integers(1, 10**6)),
                         tuple(methods), nodes, slot_interval)


@given(cluster_configs())
@settings(max_examples=200, deadline=None)
def test_format_parse_round_trip(cfg: ClusterConfig) -> None:
    text = config.format(cfg)
    assert config.parse(text) == cfg
    assert config.format(config.parse(text)) == text


@given(cluster_configs(), st.randoms(use_true_random=False))
@settings(max_examples=50, deadline=None)
def test_node_order_in_the_file_does_not_matter(cfg: ClusterConfig, rnd) -> None:
    lines = config.format(cfg).splitlines()
    node_lines = [line for line in lines if line.startswith("node:")]
    rnd.shuffle(node_lines)
    text = "\n".join([line for line in lines if not line.startswith("node:")] + node_lines)
    assert config.parse(text) == cfg


def test_seed_round_trip() -> None:
    cfg = config.parse(SEED_FILE.read_text())
    assert config.parse(config.format(cfg)) == cfg
    assert config.format(config.parse(config.format(cfg))) == config.format(cfg)


# --- cidev -----------------------------------------------------------------------------------------------


def make_device(tmp_path: Path, size: int = cidev.MIN_SIZE, fill: bytes = b"\0") -> Path:
    dev = tmp_path / "cidev.img"
    dev.write_bytes(fill * size)
    return dev


def test_layout_constants() -> None:
    assert (cidev.BLOCK, cidev.SLOT_FIRST_BLOCK, cidev.MAX_NODES) == (4096, 16, 256)
    assert cidev.MIN_SIZE == 528 * 4096  # slots, then fence records


def test_write_read_round_trip(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    assert cidev.write_config(str(dev), SEED_CONFIG) == 1
    assert cidev.read_config(str(dev)) == SEED_CONFIG
    assert cidev.read_text(str(dev)) == config.format(SEED_CONFIG)
    header = cidev.read_header(str(dev))
    assert (header.version, header.generation) == (1, 1)


def test_header_bytes(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    cidev.write_config(str(dev), SEED_CONFIG)
    raw = dev.read_bytes()
    text = config.format(SEED_CONFIG).encode()
    magic, version, generation, length, text_crc, head_crc = struct.unpack(">8sIQIII", raw[:32])
    assert (magic, version, generation, length) == (b"OGFSCIDV", 1, 1, len(text))
    assert text_crc == zlib.crc32(text)
    assert head_crc == zlib.crc32(raw[:28])
    assert not any(raw[32:4096])
    assert raw[4096:4096 + len(text)] == text
    assert not any(raw[4096 + len(text):16 * 4096])


def test_generation_increments(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    assert [cidev.write_config(str(dev), SEED_CONFIG) for _ in range(3)] == [1, 2, 3]
    assert cidev.read_header(str(dev)).generation == 3


def test_rewrite_with_a_shorter_config(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    big = replace(SEED_CONFIG, methods=(
        StomithMethod("labctl", "manual", tuple((f"k{i}", "v" * 50) for i in range(50))),))
    cidev.write_config(str(dev), big)
    cidev.write_config(str(dev), SEED_CONFIG)
    assert cidev.read_config(str(dev)) == SEED_CONFIG


def test_slots_and_fences_zeroed_on_first_write_and_kept_on_rewrite(tmp_path: Path) -> None:
    size = cidev.MIN_SIZE + 8 * 4096
    dev = make_device(tmp_path, size, b"\xff")
    slots = slice(16 * 4096, 528 * 4096)  # the slots, then the fence records
    cidev.write_config(str(dev), SEED_CONFIG)
    raw = dev.read_bytes()
    assert not any(raw[slots])
    assert raw[528 * 4096:] == b"\xff" * 8 * 4096  # beyond the fence records: not ours

    pattern = bytes(range(256)) * (512 * 4096 // 256)
    with open(dev, "r+b") as f:
        f.seek(16 * 4096)
        f.write(pattern)
    assert cidev.write_config(str(dev), SEED_CONFIG) == 2
    assert dev.read_bytes()[slots] == pattern


def test_blank_device(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    with pytest.raises(cidev.CidevError, match="no cluster information.*blank"):
        cidev.read_config(str(dev))


def test_bad_magic(tmp_path: Path) -> None:
    dev = make_device(tmp_path, fill=b"\x5a")
    with pytest.raises(cidev.CidevError, match="bad magic"):
        cidev.read_text(str(dev))


def flip(dev: Path, offset: int) -> None:
    with open(dev, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("offset", [8, 12, 20, 24, 28, 31])
def test_corrupt_header(tmp_path: Path, offset: int) -> None:
    dev = make_device(tmp_path)
    cidev.write_config(str(dev), SEED_CONFIG)
    flip(dev, offset)
    with pytest.raises(cidev.CidevError, match="header CRC mismatch"):
        cidev.read_config(str(dev))


def test_corrupt_text(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    cidev.write_config(str(dev), SEED_CONFIG)
    flip(dev, 4096 + 10)
    with pytest.raises(cidev.CidevError, match="config text CRC mismatch"):
        cidev.read_text(str(dev))


def test_interrupted_rewrite_is_detected(tmp_path: Path) -> None:
    # A crash after the new text but before the new header: the old header no longer matches.
    dev = make_device(tmp_path)
    cidev.write_config(str(dev), SEED_CONFIG)
    other = replace(SEED_CONFIG, timeout=60)
    with open(dev, "r+b") as f:
        f.seek(4096)
        f.write(config.format(other).encode())
    with pytest.raises(cidev.CidevError, match="interrupted"):
        cidev.read_config(str(dev))
    assert cidev.write_config(str(dev), other) == 2  # the header is still valid: a rewrite repairs it
    assert cidev.read_config(str(dev)) == other


def test_unsupported_version_is_neither_read_nor_overwritten(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    head = struct.pack(">8sIQII", b"OGFSCIDV", 2, 7, 0, 0)
    with open(dev, "r+b") as f:
        f.write(head + struct.pack(">I", zlib.crc32(head)))
    before = dev.read_bytes()
    with pytest.raises(cidev.CidevError, match="version 2 is not supported"):
        cidev.read_config(str(dev))
    with pytest.raises(cidev.CidevError, match="version 2 is not supported"):
        cidev.write_config(str(dev), SEED_CONFIG)
    assert dev.read_bytes() == before


def test_device_too_small(tmp_path: Path) -> None:
    dev = make_device(tmp_path, cidev.MIN_SIZE - 1)
    for call in (lambda: cidev.write_config(str(dev), SEED_CONFIG), lambda: cidev.read_text(str(dev))):
        with pytest.raises(cidev.CidevError, match=f"device too small: {cidev.MIN_SIZE - 1} bytes"):
            call()
    assert not any(dev.read_bytes())


def test_device_not_found(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(cidev.CidevError, match="no such device or file"):
        cidev.write_config(missing, SEED_CONFIG)
    with pytest.raises(cidev.CidevError, match="no such device or file"):
        cidev.read_config(missing)
    assert not os.path.exists(missing)  # never created


def test_text_too_long(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    huge = replace(SEED_CONFIG, methods=(
        StomithMethod("labctl", "manual", tuple((f"k{i}", "v" * 100) for i in range(700))),))
    with pytest.raises(cidev.CidevError, match="holds at most 61440"):
        cidev.write_config(str(dev), huge)
    assert not any(dev.read_bytes())


def test_invalid_config_is_not_written(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    bad = replace(SEED_CONFIG, timeout=0)
    with pytest.raises(ConfigError, match="timeout"):
        cidev.write_config(str(dev), bad)
    assert not any(dev.read_bytes())
