"""The render layer: the files each host gets, checked against the seed and heartbeat's parser rules."""

from __future__ import annotations

import configparser
import io
import re
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from labctl.render import (
    RenderedFile,
    hosts_entries,
    new_secret,
    render_authkeys,
    render_client,
    render_lab,
    render_node,
    tar_bytes,
    write_lab,
    write_tree,
)
from labctl.topology import Topology, load_topology

SECRET = "0123456789abcdef0123456789abcdef01234567"

# The seed's ogfscf.cf, comments removed: the keys and values, one a line, in order.
SEED_OGFSCF = [
    "datadev: /dev/sda3",
    "cidev: /dev/sda1",
    "lockdev: 192.168.1.100:15697",
    "cbport: 3001",
    "timeout: 30",
    "STOMITH: manual",
    "name: manual",
    "node: 192.168.1.1 0 SM: manual",
    "node: 192.168.1.2 1 SM: manual",
]
SEED_HARESOURCES = "fred 192.168.1.100 memexpd Filesystem::/dev/sda3::/ogfs::ogfs::hostdata={ip} smb"


@pytest.fixture(scope="module")
def seed() -> Topology:
    return load_topology("two-node")


@pytest.fixture(scope="module")
def trio() -> Topology:
    return load_topology("trio")


def content(topology: Topology, host: str, path: str, secret: str = SECRET) -> str:
    return render_lab(topology, secret)[host][path].content


def directives(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# --- ogfscf.cf -------------------------------------------------------------------------------------


def test_ogfscf_is_the_seeds(seed: Topology) -> None:
    for node in ("fred", "barney"):
        assert directives(content(seed, node, "/etc/ogfscf.cf")) == SEED_OGFSCF


def test_a_fast_profile_makes_the_disk_heartbeat_as_fast_as_heartbeat() -> None:
    from ogfs import config
    fast = load_topology("two-node", profile="fast")  # deadtime 1 s
    cfg = config.parse(content(fast, "fred", "/etc/ogfscf.cf"), "ogfscf.cf")
    assert cfg.slot_interval == 0.25 and cfg.slot_interval_ms == 250
    seed = config.parse(content(load_topology("two-node"), "fred", "/etc/ogfscf.cf"), "ogfscf.cf")
    assert seed.slot_interval is None and seed.slot_interval_ms == 2000  # the seed's own default


def test_ogfscf_parses_with_ogfs_config(seed: Topology, trio: Topology) -> None:
    from ogfs import config
    cfg = config.parse(content(seed, "fred", "/etc/ogfscf.cf"), "ogfscf.cf")
    assert (cfg.datadev, cfg.cidev, cfg.lockdev, cfg.cbport, cfg.timeout) == (
        "/dev/sda3",
        "/dev/sda1",
        "192.168.1.100:15697",
        3001,
        30,
    )
    assert [(n.ip, n.cid, n.method) for n in cfg.nodes] == [
        ("192.168.1.1", 0, "manual"),
        ("192.168.1.2", 1, "manual"),
    ]
    other = config.parse(content(trio, "castor", "/etc/ogfscf.cf"), "ogfscf.cf")
    assert other.lockdev == f"{trio.cluster.ip}:{trio.cluster.lockdev_port}"
    assert [(n.ip, n.cid) for n in other.nodes] == sorted(
        ((str(n.ip), n.cid) for n in trio.nodes), key=lambda x: x[1]
    )


# --- haresources -----------------------------------------------------------------------------------


def test_haresources_is_the_seeds_line(seed: Topology) -> None:
    for node in seed.nodes:
        lines = directives(content(seed, node.name, "/etc/ha.d/haresources"))
        assert lines == [SEED_HARESOURCES.format(ip=node.ip)]


def test_haresources_differs_between_nodes_only_in_hostdata(seed: Topology, trio: Topology) -> None:
    for topology in (seed, trio):
        a, b = (content(topology, n.name, "/etc/ha.d/haresources") for n in topology.nodes)
        assert a != b
        strip = re.compile(r"hostdata=[0-9.]+")
        assert strip.sub("hostdata=X", a) == strip.sub("hostdata=X", b)
        for node in topology.nodes:
            text = content(topology, node.name, "/etc/ha.d/haresources")
            assert f"hostdata={node.ip} " in text
            assert directives(text)[0].split()[:2] == [topology.preferred_node.name, str(topology.cluster.ip)]


# --- ha.cf -----------------------------------------------------------------------------------------


def hacf(topology: Topology, node: str) -> list[tuple[str, str]]:
    return [
        (d.split()[0], " ".join(d.split()[1:]))
        for d in directives(content(topology, node, "/etc/ha.d/ha.cf"))
    ]


def first(lines: list[tuple[str, str]], key: str) -> int:
    return next(i for i, (k, _) in enumerate(lines) if k == key)


def test_ha_cf_directive_order(seed: Topology, trio: Topology) -> None:
    media = {"ucast", "bcast", "mcast", "serial"}
    for topology in (seed, trio):
        for node in topology.nodes:
            lines = hacf(topology, node.name)
            keys = [k for k, _ in lines]
            ucasts = [i for i, k in enumerate(keys) if k == "ucast"]
            assert ucasts and first(lines, "udpport") < min(ucasts)
            # baud before serial, and (heartbeat's config.c) before any medium at all, and only once
            assert keys.count("baud") == 1
            assert first(lines, "baud") < min(i for i, k in enumerate(keys) if k in media)
            assert first(lines, "baud") < first(lines, "serial")
            # timings before the node lines: a node's dead time is fixed when it is added
            for timing in ("keepalive", "warntime", "deadtime", "initdead"):
                assert first(lines, timing) < first(lines, "node")


def test_ha_cf_content(seed: Topology) -> None:
    lines = hacf(seed, "fred")
    d = dict(lines)
    assert d["crm"] == "off" and d["uuidfrom"] == "nodename"
    assert (d["logfacility"], d["use_logd"]) == ("none", "no")
    assert d["logfile"].startswith("/") and d["debugfile"].startswith("/")
    assert [v for k, v in lines if k == "node"] == ["fred", "barney"]
    assert [v for k, v in lines if k == "ucast"] == ["eth0 192.168.1.2"]
    assert [v for k, v in lines if k == "serial"] == ["/dev/ttyS0"]
    assert d["baud"] == "19200" and d["udpport"] == "694"
    assert d["auto_failback"] == "legacy"  # the seed sets none: heartbeat's default
    assert [v for k, v in hacf(seed, "barney") if k == "ucast"] == ["eth0 192.168.1.1"]


def test_ha_cf_timings_have_units(seed: Topology) -> None:
    d = dict(hacf(seed, "fred"))
    assert (d["keepalive"], d["warntime"], d["deadtime"], d["initdead"]) == (
        "1000ms",
        "5000ms",
        "10000ms",
        "30000ms",
    )
    fast = dict(hacf(seed.with_profile("fast"), "fred"))
    assert (fast["keepalive"], fast["warntime"], fast["deadtime"], fast["initdead"]) == (
        "200ms",
        "500ms",
        "1000ms",
        "12000ms",
    )


def _ms(value: str) -> int:
    match = re.fullmatch(r"(\d+)ms", value)
    assert match, value
    return int(match[1])


@pytest.mark.parametrize("name", ["two-node", "trio"])
def test_every_profile_passes_heartbeats_own_checks(name: str) -> None:
    topology = load_topology(name)
    for profile in topology.profiles:
        d = dict(hacf(topology.with_profile(profile), topology.nodes[0].name))
        keepalive, warntime, deadtime, initdead = (
            _ms(d[k]) for k in ("keepalive", "warntime", "deadtime", "initdead")
        )
        assert keepalive > 0 and warntime > 0
        assert deadtime > 2 * keepalive  # config.c: "Dead time ... too small compared to keepalive"
        assert initdead >= deadtime  # config.c: "Initial dead time ... smaller than deadtime"
        assert warntime < deadtime


def test_ha_cf_without_cable_has_no_serial(tmp_path: Path) -> None:
    data = yaml.safe_load(Path(load_topology("two-node").source or "").read_text())
    data["serial"] = []
    path = tmp_path / "lan-only.yaml"
    path.write_text(yaml.safe_dump(data))
    keys = [k for k, _ in hacf(load_topology(str(path)), "fred")]
    assert "serial" not in keys and "baud" not in keys and "ucast" in keys


# --- authkeys --------------------------------------------------------------------------------------


def test_authkeys(seed: Topology, tmp_path: Path) -> None:
    files = render_node(seed, "fred", SECRET)
    keys = files["/etc/ha.d/authkeys"]
    assert keys.mode == 0o600
    assert directives(keys.content) == ["auth 1", f"1 sha1 {SECRET}"]
    written = {p.name: p for p in write_tree(files, tmp_path)}
    assert stat.S_IMODE(written["authkeys"].stat().st_mode) == 0o600
    assert stat.S_IMODE(written["ha.cf"].stat().st_mode) == 0o644


def test_secret_is_random_per_lab_and_shared_by_its_nodes(seed: Topology) -> None:
    one, two = render_lab(seed), render_lab(seed)

    def secret(rendered: dict[str, dict[str, RenderedFile]], host: str) -> str:
        return directives(rendered[host]["/etc/ha.d/authkeys"].content)[1].split()[2]

    assert secret(one, "fred") == secret(one, "barney")
    assert secret(one, "fred") != secret(two, "fred")
    assert len(secret(one, "fred")) >= 32
    assert new_secret() != new_secret()


@pytest.mark.parametrize("bad", ["", "short", "has space in it", "tab\there12345"])
def test_authkeys_refuses_bad_secrets(bad: str) -> None:
    with pytest.raises(ValueError):
        render_authkeys(bad)


# --- smb.conf ----------------------------------------------------------------------------------------


def smb(topology: Topology, host: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(content(topology, host, "/etc/samba/smb.conf"))
    return parser


@pytest.mark.parametrize("name", ["two-node", "trio"])
def test_smb_conf(name: str) -> None:
    topology = load_topology(name)
    conf = smb(topology, topology.nodes[0].name)
    g, share = conf["global"], conf[topology.share.name]
    assert g["netbios name"] == topology.cluster.name.upper()
    assert str(topology.cluster.ip) in g["interfaces"].split()[-1]
    assert g["bind interfaces only"] == "yes"
    assert g["map to guest"] == "Bad User"
    assert "139" in g["smb ports"] and g["disable netbios"] == "no"  # nmbd answers for the cluster name
    assert g["log file"].startswith("/var/log/samba/")
    assert share["path"] == topology.share.path
    assert (share["read only"], share["guest ok"], share["browseable"]) == ("no", "yes", "yes")
    # acknowledged writes survive failover
    assert (share["strict sync"], share["sync always"]) == ("yes", "yes")
    assert (share["oplocks"], share["level2 oplocks"], g["smb2 leases"]) == ("no", "no", "no")
    assert (share["kernel oplocks"], share["posix locking"]) == ("no", "no")
    assert share["store dos attributes"] == "no"


def test_smb_conf_is_the_same_on_every_node(seed: Topology) -> None:
    assert content(seed, "fred", "/etc/samba/smb.conf") == content(seed, "barney", "/etc/samba/smb.conf")


@pytest.mark.parametrize("name", ["two-node", "trio"])
def test_smb_conf_passes_testparm(name: str, tmp_path: Path) -> None:
    topology = load_topology(name)
    rendered = render_lab(topology, SECRET)
    for host in (topology.nodes[0].name, topology.client.name):
        path = tmp_path / f"{host}.conf"
        path.write_text(rendered[host]["/etc/samba/smb.conf"].content)
        result = subprocess.run(["testparm", "-s", str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        problems = [
            ln
            for ln in result.stderr.splitlines()
            if re.search(r"WARNING|ERROR|Unknown|Ignoring", ln) and "Weak crypto" not in ln
        ]
        assert problems == []


# --- hosts and the client ------------------------------------------------------------------------------


def test_hosts(seed: Topology) -> None:
    for host in ("fred", "barney", "client"):
        lines = directives(content(seed, host, "/etc/hosts"))
        entries = {tuple(line.split()) for line in lines}
        assert ("192.168.1.100", "fscluster") in entries
        assert {("192.168.1.1", "fred"), ("192.168.1.2", "barney"), ("192.168.1.10", "client")} <= entries
        assert ("127.0.0.1", "localhost") in entries
    assert ("fscluster", "192.168.1.100") in hosts_entries(seed)


def test_client_files(seed: Topology) -> None:
    files = render_client(seed)
    assert set(files) == {"/etc/hosts", "/etc/samba/smb.conf", "/etc/labctl/lan.json",
                          "/usr/local/lib/labctl/labctl-lan"}
    assert "/etc/ha.d/authkeys" not in files


def test_node_files(seed: Topology) -> None:
    assert set(render_node(seed, seed.node("barney"), SECRET)) == {
        "/etc/ogfscf.cf",
        "/etc/ha.d/ha.cf",
        "/etc/ha.d/haresources",
        "/etc/ha.d/authkeys",
        "/etc/samba/smb.conf",
        "/etc/hosts",
        "/etc/labctl/lan.json",
        "/etc/labctl/pre-heartbeat.d/00-lan",
        "/usr/local/lib/labctl/labctl-lan",
        "/etc/labctl/pre-heartbeat.d/20-serial-cable",
        "/usr/local/lib/labctl/labctl-serial-end",
    }
    with pytest.raises(KeyError):
        render_node(seed, "wilma", SECRET)
    assert set(render_lab(seed)) == {"fred", "barney", "client", "cable", "disk"}


# --- the second topology -------------------------------------------------------------------------------


def test_trio_renders_its_own_names_and_nothing_of_the_seed(trio: Topology, tmp_path: Path) -> None:
    written = write_lab(render_lab(trio), tmp_path)
    hosts = {p.relative_to(tmp_path).parts[0] for p in written}
    assert hosts == {"castor", "pollux", "desk", "cable", "disk"}
    text = "\n".join(p.read_text() for p in written if "/usr/local/" not in str(p))  # not the programs
    for word in ("fred", "barney", "fscluster", "192.168.1."):
        assert word not in text
    for word in (
        "castor",
        "pollux",
        "desk",
        "gemini",
        "172.29.8.20:16697",
        "/vault",
        "sda2::/vault",
        "baud 38400",
        "auto_failback off",
        "[vault]",
    ):
        assert word in text
    assert "pollux 172.29.8.20 memexpd" in content(trio, "castor", "/etc/ha.d/haresources")


# --- writing -------------------------------------------------------------------------------------------


def test_write_lab_layout(seed: Topology, tmp_path: Path) -> None:
    write_lab(render_lab(seed, SECRET), tmp_path)
    assert (tmp_path / "fred" / "etc" / "ha.d" / "ha.cf").is_file()
    assert (tmp_path / "client" / "etc" / "hosts").is_file()
    # writing again over a 0600 file works
    write_lab(render_lab(seed, SECRET), tmp_path)


def test_tar_bytes_keeps_modes(seed: Topology) -> None:
    files = render_node(seed, "fred", SECRET)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(files, mtime=0)), mode="r") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["etc/ha.d/authkeys"].mode == 0o600
        assert members["etc/ha.d/ha.cf"].mode == 0o644
        assert members["etc/ogfscf.cf"].uid == 0
        extracted = tar.extractfile(members["etc/ha.d/haresources"])
        assert extracted is not None
        assert extracted.read().decode() == files["/etc/ha.d/haresources"].content


@pytest.mark.parametrize("path", ["etc/hosts", "/etc/../root/x"])
def test_rendered_file_path_must_be_absolute(path: str) -> None:
    with pytest.raises(ValueError):
        RenderedFile(path, "")


def test_render_is_pure(seed: Topology) -> None:
    assert render_lab(seed, SECRET) == render_lab(seed, SECRET)
