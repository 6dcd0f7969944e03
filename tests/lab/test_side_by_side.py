"""Labs side by side with the seed's own addresses (docs/runtime.md, "Lab addresses", "One up per lab").

Three labs of `two-node`, all on 192.168.1.0/24, started at once: each serves, each host reaches
only its own lab's peers, the engine's host gets no route into 192.168.1.0/24, a failover in one lab
leaves the others alone, and `down` of one leaves the others serving. Two concurrent `up`s of one
lab name give one lab and one refusal. Every container is bounded; a disk larger than the engine's
free space is refused with nothing created.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from labrunner import ROOT, Labctl, all_objects, lab_objects, served_by

pytestmark = [pytest.mark.slow, pytest.mark.lab]

LABS = ("t-side-a", "t-side-b", "t-side-c")
RACE = "t-side-race"
SEED_NET = "192.168.1."


def _up_together(lc: Labctl, names: tuple[str, ...]) -> list[tuple[int, str, str]]:
    procs = [lc.popen("up", "two-node", "--lab", n, "--profile", "fast") for n in names]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=900)
        results.append((p.returncode, out, err))
    return results


@pytest.fixture(scope="module")
def three(engine: Any, lc: Labctl) -> Iterator[tuple[str, ...]]:
    for stale in (*LABS, RACE):
        if lab_objects(engine, stale):
            lc("down", "--lab", stale)
    results = _up_together(lc, LABS)
    try:
        for name, (code, out, err) in zip(LABS, results, strict=True):
            assert code == 0, f"up --lab {name} exited {code}:\n{out}\n{err}"
        yield LABS
    finally:
        for name in LABS:
            if lab_objects(engine, name):
                lc("down", "--lab", name, check=False)


def test_three_labs_of_one_topology_serve_side_by_side(three: tuple[str, ...], lc: Labctl) -> None:
    listed = {x["name"]: x for x in json.loads(lc("list", "--json").stdout)["labs"]}
    subnets = set()
    for name in three:
        x = listed[name]
        assert (x["topology"], x["profile"], x["state"], x["holders"]) == ("two-node", "fast", "up", ["fred"])
        subnets.add(x["outer_subnet"])
        st = lc.status(name)
        assert served_by(st, "fred") and st["whole"], st
        assert st["cluster"]["ip"] == "192.168.1.100"
    assert len(subnets) == 3, listed  # each on an outer subnet of its own


def test_the_engines_host_has_no_route_into_the_labs(three: tuple[str, ...]) -> None:
    def ip(*args: str) -> str:
        return subprocess.run(["ip", "-4", *args], capture_output=True, text=True, check=True).stdout

    routes, addrs = ip("route", "show"), ip("-o", "addr", "show")
    assert SEED_NET not in routes, routes
    assert SEED_NET not in addrs, addrs
    got = subprocess.run(["ip", "-4", "route", "get", "192.168.1.1"], capture_output=True, text=True).stdout
    assert "br-" not in got and "docker" not in got, got


def test_each_lab_reaches_only_its_own_peers(three: tuple[str, ...], lc: Labctl) -> None:
    macs = {name: lc.sh(name, "fred", "cat /sys/class/net/eth0/address").strip() for name in three}
    assert len(set(macs.values())) == 3
    for name in three:
        # unicast and ARP on the lab interface; the client sees its own lab's fred, nobody else's
        out = lc.sh(name, "client", "ping -c 1 -W 2 192.168.1.1 >/dev/null && ip neigh show 192.168.1.1")
        assert macs[name] in out, (name, out, macs)
        # MTU: the outer MTU less VXLAN's 50 bytes, and a full-size packet passes unfragmented
        mtu = int(lc.sh(name, "client", "cat /sys/class/net/eth0/mtu"))
        outer = int(lc.sh(name, "client", "cat /sys/class/net/outer0/mtu"))
        assert mtu == outer - 50
        lc.sh(name, "client", f"ping -c 1 -W 2 -M do -s {mtu - 28} 192.168.1.2 >/dev/null")
        # broadcast (heartbeat's medium in other topologies, nmbd here) reaches the lab's hosts
        names = lc.sh(name, "client", "nmblookup -T fscluster 2>&1 || true")
        assert "192.168.1.100" in names, names


def test_a_failover_in_one_lab_leaves_the_others_alone(three: tuple[str, ...], lc: Labctl) -> None:
    a, b, c = three
    lc("fail", "fred", "--lab", b, "--wait", timeout=300)
    st = lc.status(b)
    assert served_by(st, "barney"), st["resources"]
    for other in (a, c):
        st = lc.status(other)
        assert served_by(st, "fred") and st["whole"], (other, st["resources"])
    lc("recover", "fred", "--lab", b, timeout=300)
    assert lc.status(b)["whole"]


def test_down_of_one_lab_leaves_the_others_serving(three: tuple[str, ...], lc: Labctl, engine: Any) -> None:
    a, b, c = three
    lc("down", "--lab", b)
    assert lab_objects(engine, b) == []
    for other in (a, c):
        st = lc.status(other)
        assert served_by(st, "fred") and st["whole"], other


def test_a_second_up_of_a_running_lab_names_the_way_out(three: tuple[str, ...], lc: Labctl, engine: Any,
                                                        tmp_path: Path) -> None:
    # a topology file whose name is a running lab's: up without --lab refuses and says how to name another
    data = yaml.safe_load((ROOT / "topologies" / "two-node.yaml").read_text())
    data["name"] = three[0]
    path = tmp_path / "same.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    before = all_objects(engine)
    res = lc("up", str(path), check=False)
    assert res.returncode == 3, res.stderr
    assert f"lab {three[0]} is already up" in res.stderr and "--lab" in res.stderr, res.stderr
    assert all_objects(engine) == before


def test_two_concurrent_ups_of_one_name_give_one_lab(three: tuple[str, ...], lc: Labctl, engine: Any) -> None:
    try:
        results = _up_together(lc, (RACE, RACE))
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 3], "\n".join(f"--- exit {code}\n{out}\n{err}" for code, out, err in results)
        refused = next(err for code, _, err in results if code == 3)
        assert f"lab {RACE}" in refused, refused
        st = lc.status(RACE)
        assert st["whole"] and served_by(st, "fred")
    finally:
        lc("down", "--lab", RACE, check=False)
    assert lab_objects(engine, RACE) == []


def test_every_container_of_a_lab_is_bounded(three: tuple[str, ...], engine: Any) -> None:
    from labctl.topology import load_topology

    limits = load_topology("two-node").limits
    want = {"node": limits.node, "client": limits.client, "cable": limits.cable}
    seen = set()
    for c in engine.containers.list(all=True, filters={"label": f"labctl.lab={three[0]}"}):
        role = c.labels["labctl.role"]
        hc = c.attrs["HostConfig"]
        assert not hc.get("Privileged") and not hc.get("PortBindings"), c.name
        if role in want:
            assert (hc["Memory"], hc["PidsLimit"]) == (want[role].memory, want[role].pids), c.name
            seen.add(role)
    assert seen == set(want)


def test_a_disk_larger_than_the_engine_has_is_refused(lc: Labctl, engine: Any, tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "topologies" / "two-node.yaml").read_text())
    data["name"] = "t-side-huge"
    data["disk"]["size"] = "64TiB"
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    before = all_objects(engine)
    res = lc("up", str(path), check=False)
    assert res.returncode == 2, (res.stdout, res.stderr)
    text = " ".join(res.stderr.split())
    assert "disk.size: 64TiB is more than the engine has free" in text, text
    assert all_objects(engine) == before
