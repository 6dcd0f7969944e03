"""The lab plan (labctl/plan/): a pure function of the topology and the options, read without an engine."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network

import pytest

from labctl.cli import hoist_lab
from labctl.errors import UsageError
from labctl.plan import make_plan
from labctl.render.lan import DEFAULT_POOL, overlay_for
from labctl.topology import load_topology

TWO = load_topology("two-node")
TRIO = load_topology("trio")
OUTER = IPv4Network("10.213.7.0/24")


def test_every_object_carries_the_lab_label_and_derives_its_name() -> None:
    plan = make_plan(TWO, lab="bob", outer=OUTER)
    specs = [plan.claim, *plan.containers]
    assert all(s.labels["labctl.lab"] == "bob" for s in specs)
    assert all(v.labels["labctl.lab"] == "bob" for v in plan.volumes)
    assert plan.network.labels["labctl.lab"] == "bob"
    assert [c.name for c in plan.containers] == ["labctl-bob-cable", "labctl-bob-fred", "labctl-bob-barney",
                                                 "labctl-bob-client"]
    assert plan.claim.name == "labctl-bob.lab"  # a dot: no lab or host name can make this name


def test_docker_sees_only_the_outer_subnet() -> None:
    plan = make_plan(TWO, lab="bob", outer=OUTER)
    assert plan.network.subnet == OUTER and plan.network.internal
    hosts = {c.host: c.address for c in plan.containers}
    assert hosts == {"cable": None, "fred": IPv4Address("10.213.7.2"), "barney": IPv4Address("10.213.7.3"),
                     "client": IPv4Address("10.213.7.4")}
    # the seed's addresses exist only in the hosts' lab interface configuration and names
    files = {f.path: f.content for f in plan.container("fred").files}
    lan = json.loads(files["/etc/labctl/lan.json"])
    assert lan["lab"] == {"ifname": "eth0", "address": "192.168.1.1/24"}
    assert lan["peers"] == ["10.213.7.3", "10.213.7.4"]
    assert plan.container("client").extra_hosts["fscluster"] == "192.168.1.100"


def test_two_labs_of_one_topology_differ_only_in_names_and_outer_subnet() -> None:
    a = make_plan(TWO, lab="a", outer=IPv4Network("10.213.0.0/24"), secret="s" * 40)
    b = make_plan(TWO, lab="b", outer=IPv4Network("10.213.1.0/24"), secret="s" * 40)
    assert {c.name for c in a.containers}.isdisjoint(c.name for c in b.containers)
    ha = {f.path: f.content for f in a.container("fred").files}
    hb = {f.path: f.content for f in b.container("fred").files}
    assert ha["/etc/ha.d/ha.cf"] == hb["/etc/ha.d/ha.cf"]  # the seed's files stay the seed's
    assert ha["/etc/labctl/lan.json"] != hb["/etc/labctl/lan.json"]


def test_capabilities_are_only_what_each_kind_needs() -> None:
    plan = make_plan(TWO, outer=OUTER)
    assert plan.container("fred").cap_add == ("NET_ADMIN", "NET_RAW", "SYS_ADMIN")
    assert plan.container("client").cap_add == ("NET_ADMIN",)
    cable = plan.container("cable")
    assert cable.cap_drop == ("ALL",) and cable.network is None
    assert [p.path for p in plan.container("fred").partitions] == ["/dev/sda1", "/dev/sda2", "/dev/sda3"]


def test_every_container_is_bounded_by_the_topology_limits() -> None:
    plan = make_plan(TWO, outer=OUTER)
    lim = TWO.limits
    assert (plan.container("fred").memory, plan.container("fred").pids) == (lim.node.memory, lim.node.pids)
    assert plan.container("client").memory == lim.client.memory
    assert plan.container("cable").pids == lim.cable.pids
    # defaults fit 50 labs on a 24 GiB machine
    per_lab = sum(c.memory for c in plan.containers)
    assert per_lab * 50 <= 24 << 30


def test_nolock_plan_has_no_lock_server_in_the_group() -> None:
    plan = make_plan(TWO, outer=OUTER, lockproto="nolock")
    text = next(f.content for f in plan.container("barney").files if f.path == "/etc/ha.d/haresources")
    line = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert line == ["fred 192.168.1.100 Filesystem::/dev/sda3::/ogfs::ogfs::hostdata=192.168.1.2 smb"]
    script = next(f.content for f in plan.disk.files if f.path.endswith("format-disk.sh"))
    assert "mkfs.ogfs -p nolock" in script


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="--lab 'Bad_Name'"):
        make_plan(TWO, lab="Bad_Name")
    with pytest.raises(UsageError, match="--lockproto 'dlm'"):
        make_plan(TWO, lockproto="dlm")


def test_plan_as_dict_is_json_without_file_contents() -> None:
    d = make_plan(TRIO, outer=OUTER).as_dict()
    text = json.dumps(d)
    assert "labctl.topology\"" not in text  # the topology text label is left out
    cable = ["cable"] if TRIO.serial else []
    assert [c["host"] for c in d["containers"]] == [*cable, *TRIO.node_names, TRIO.client.name]


def test_overlay_default_is_the_pools_first_subnet() -> None:
    o = overlay_for(TWO)
    assert o.subnet == next(DEFAULT_POOL.subnets(new_prefix=24)) and o.gateway == IPv4Address("10.213.0.1")


@pytest.mark.parametrize(
    "argv, words, lab",
    [
        (["exec", "fred", "--lab", "x", "--", "cmd", "--lab", "y"],
         ["exec", "fred", "--", "cmd", "--lab", "y"], "x"),
        (["--lab=x", "status"], ["status"], "x"),
        (["status", "--json"], ["status", "--json"], None),
        (["exec", "fred", "--", "--lab", "y"], ["exec", "fred", "--", "--lab", "y"], None),
    ],
)
def test_lab_is_taken_anywhere_before_the_double_dash(argv: list[str], words: list[str],
                                                     lab: str | None) -> None:
    assert hoist_lab(argv) == (words, lab)
