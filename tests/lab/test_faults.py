"""The fault catalogue against a real two-node lab: each fault, what the cluster does about it (from
`status --json`), and `heal all` giving a whole cluster back.

One lab (module fixture) is shared: each test starts from a settled cluster (`settled_lab` heals
what a failed test left and powers back a node that fenced itself) and ends with `heal all --wait`.
Waits are on conditions (heartbeat's own link and node views), never on the clock, except where the
fault *is* a length of time (`--for`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from labrunner import ROOT, Labctl, holders, read_back, served_by, wait_for, write_files

pytestmark = pytest.mark.slow

LAB = "faults"
DEADTIME = 10.0  # the seed profile of two-node (topologies/two-node.yaml)
UNC = "\\\\fscluster\\ogfs"


@pytest.fixture(scope="module")
def lab(engine: Any, lc: Labctl) -> Iterator[str]:
    lc("down", "--lab", LAB, check=False)
    lc("up", "two-node", "--lab", LAB, timeout=900)
    yield LAB
    lc("down", "--lab", LAB, check=False)


@pytest.fixture
def settled_lab(lab: str, lc: Labctl) -> str:
    lc("heal", "all", "--lab", lab, check=False)
    for node in lc.status(lab)["nodes"]:
        if node["state"] != "running":
            lc("recover", "--lab", lab, node["name"], "--no-wait", check=False)
    wait_for(lambda: lc.status(lab)["settled"], 240, "the lab to settle before the test")
    return lab


def faults(lc: Labctl, lab: str) -> list[dict[str, Any]]:
    return list(json.loads(lc("faults", "--lab", lab, "--json").stdout)["faults"])


def apply(lc: Labctl, lab: str, *verb: str) -> dict[str, Any]:
    out = json.loads(lc(*verb, "--lab", lab, "--json").stdout)
    return dict(out["fault"])


def heal_all(lc: Labctl, lab: str) -> dict[str, Any]:
    """`heal all --wait`: the lab must be whole and settled again by healing alone. After a split
    brain that means heartbeat's own restart on one side, which the nodes survive (labctl-init
    adopts the new master: docs/faults.md)."""
    out = json.loads(lc("heal", "all", "--lab", lab, "--wait", "--timeout", "240", "--json",
                        timeout=300).stdout)
    st = out["waited"]["status"]
    assert_whole(st)
    return dict(out)


def assert_whole(st: dict[str, Any]) -> None:
    assert st["whole"] and not st["split_brain"] and not st["faults"], st
    assert all(lk["status"] == "up" and not lk["cut_by"] for n in st["nodes"] for lk in n["links"])


def events(lc: Labctl, lab: str, since: float) -> list[dict[str, Any]]:
    out = json.loads(lc("events", "--lab", lab, "--since", f"{since:.3f}", "--json").stdout)
    return list(out["events"])


def seen(lc: Labctl, lab: str, since: float, host: str, source: str, kind: str) -> Any:
    """The first event of that host, source and kind since ``since``, or None."""
    return next((e for e in events(lc, lab, since)
                 if (e["host"], e["source"], e["kind"]) == (host, source, kind)), None)


def link(st: dict[str, Any], node: str, medium: str) -> dict[str, Any]:
    view = next(n for n in st["nodes"] if n["name"] == node)
    return dict(next(lk for lk in view["links"] if lk["medium"] == medium))


def group_on(st: dict[str, Any]) -> set[str]:
    return {h for hs in holders(st).values() for h in hs}


# --------------------------------------------------------------------------- bad input


def test_bad_names_exit_2_and_touch_nothing(settled_lab: str, lc: Labctl) -> None:
    for args, names in ((["freeze", "wilma"], "fred, barney"),
                        (["partition", "fred", "dino"], "fred, barney, client"),
                        (["kill", "fred", "cron"], "memexpd"),
                        (["serial", "cut", "fred-wilma"], "fred-barney"),
                        (["lan", "fred", "--delay", "20"], "netem"),
                        (["lan", "fred", "--loss", "250"], "percentage"),
                        (["disk", "fred", "--errors", "write", "--after", "-1"], "--after"),
                        (["heal", "beef00"], "no fault")):
        res = lc(*args, "--lab", settled_lab, check=False)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert names in res.stderr, (args, res.stderr)
    assert faults(lc, settled_lab) == []


def test_a_fault_on_a_lab_that_is_not_up_exits_3(settled_lab: str, lc: Labctl) -> None:
    res = lc("freeze", "fred", "--lab", "no-such-lab", check=False)
    assert res.returncode == 3 and "no lab named" in res.stderr, res.stderr
    rec = apply(lc, settled_lab, "freeze", "barney")
    again = lc("freeze", "barney", "--lab", settled_lab, check=False)
    assert again.returncode == 3 and "frozen" in again.stderr, again.stderr
    inside = lc("partition", "barney", "client", "--lab", settled_lab, check=False)
    assert inside.returncode == 3 and "thaw" in inside.stderr, inside.stderr
    assert [f["id"] for f in faults(lc, settled_lab)] == [rec["id"]]
    lc("thaw", "barney", "--lab", settled_lab)
    assert faults(lc, settled_lab) == []


# --------------------------------------------------------------------------- the LAN


def test_partition_alone_cuts_the_lan_both_ways_and_nothing_fails_over(settled_lab: str,
                                                                        lc: Labctl) -> None:
    rec = apply(lc, settled_lab, "partition", "fred", "barney")
    assert rec["since"] >= rec["requested"] and rec["active"]

    def lan_dead() -> Any:
        st = lc.status(settled_lab)
        return all(link(st, n, "eth0")["status"] == "dead" for n in ("fred", "barney")) and st

    st = wait_for(lan_dead, 3 * DEADTIME, "heartbeat to see eth0 dead from both sides")
    for node in ("fred", "barney"):
        assert link(st, node, "eth0")["cut_by"] == rec["id"]
        assert link(st, node, "/dev/ttyS0")["status"] == "up"
    assert served_by(st, "fred"), holders(st)  # the serial cable carries heartbeat: no failover
    assert [f["id"] for f in st["faults"]] == [rec["id"]]
    heal_all(lc, settled_lab)


def test_oneway_partition_deafens_one_side_only(settled_lab: str, lc: Labctl) -> None:
    rec = apply(lc, settled_lab, "partition", "fred", "barney", "--oneway")
    st = wait_for(lambda: (s := lc.status(settled_lab)) and link(s, "barney", "eth0")["status"] == "dead"
                  and s, 3 * DEADTIME, "barney to stop hearing fred on eth0")
    assert link(st, "barney", "eth0")["cut_by"] == rec["id"]
    assert link(st, "fred", "eth0") == {**link(st, "fred", "eth0"), "status": "up", "cut_by": ""}
    heal_all(lc, settled_lab)


def test_lan_loss_below_what_deadtime_tolerates_fails_nothing_over(settled_lab: str, lc: Labctl) -> None:
    # with the serial cable cut the LAN is heartbeat's only channel: 25 % loss each way for twice
    # deadtime must not make a node dead (10 keepalives lost in a row is 0.44^10, about 1e-4)
    apply(lc, settled_lab, "serial", "cut")
    rec = apply(lc, settled_lab, "lan", "barney", "--loss", "25", "--rate", "2mbit")
    assert "25" in rec["detail"] and "2mbit" in rec["detail"]
    rules = lc.sh(settled_lab, "barney", "iptables -S; tc qdisc show")
    assert "statistic" in rules and "tbf" in rules
    end = time.monotonic() + 2 * DEADTIME  # "nothing happens" is watched for a length of time
    while time.monotonic() < end:
        st = lc.status(settled_lab)
        assert served_by(st, "fred") and not st["split_brain"], holders(st)
        assert all(n["heartbeat"] == "running" for n in st["nodes"])
        assert all(link(st, n, "eth0")["status"] == "up" for n in ("fred", "barney"))
    heal_all(lc, settled_lab)
    assert "statistic" not in lc.sh(settled_lab, "barney", "iptables -S")


# --------------------------------------------------------------------------- freeze


def test_freeze_shorter_than_deadtime_changes_nothing(settled_lab: str, lc: Labctl) -> None:
    short = f"{DEADTIME / 3:.1f}s"
    out = json.loads(lc("freeze", "fred", "--for", short, "--lab", settled_lab, "--json").stdout)
    assert out["healed"][0]["kind"] == "freeze"
    st = lc.status(settled_lab)
    assert served_by(st, "fred") and st["whole"], holders(st)


def test_freeze_longer_than_deadtime_barney_takes_over(settled_lab: str, lc: Labctl) -> None:
    rec = apply(lc, settled_lab, "freeze", "fred")
    st = wait_for(lambda: (s := lc.status(settled_lab)) and "barney" in group_on(s) and s,
                  6 * DEADTIME, "barney to take the group from the frozen fred")
    fred = next(n for n in st["nodes"] if n["name"] == "fred")
    assert fred["state"] == "paused" and fred["heartbeat"] == "frozen"
    assert [f["id"] for f in st["faults"]] == [rec["id"]]
    wait_for(lambda: served_by(lc.status(settled_lab), "barney"), 120, "barney to serve the share")
    # thawed, fred finds that barney took its journal: its mount withdraws and it reboots itself
    # (docs/fencing.md; tests/lab/test_fencing.py checks that it wrote nothing)
    lc("thaw", "fred", "--lab", settled_lab)
    st = wait_for(lambda: (s := lc.status(settled_lab)) and node_state(s, "fred") == "exited" and s, 60,
                  "the thawed fred to fence itself")
    assert next(n for n in st["nodes"] if n["name"] == "fred")["how_down"] == "self-fenced (reboot)"
    lc("recover", "fred", "--lab", settled_lab, timeout=300)
    heal_all(lc, settled_lab)


def node_state(st: dict[str, Any], name: str) -> str:
    return str(next(n for n in st["nodes"] if n["name"] == name)["state"])


# --------------------------------------------------------------------------- serial


def test_serial_cut_alone_no_failover_then_restore(settled_lab: str, lc: Labctl) -> None:
    rec = apply(lc, settled_lab, "serial", "cut", "barney-fred")
    assert rec["targets"] == ["fred-barney"]
    # the relay's control is an abstract socket of the cable container: a node, which mounts the
    # cable's directory, cannot reach it to plug or unplug anything
    probe = ("import socket; s = socket.socket(socket.AF_UNIX); "
             "s.connect('\\0labctl-cable-ctl:/cable')")
    reached = lc("exec", "--lab", settled_lab, "fred", "--", "python3", "-c", probe, check=False)
    assert reached.returncode != 0 and "ConnectionRefusedError" in reached.stderr, reached

    def serial_dead() -> Any:
        st = lc.status(settled_lab)
        return all(link(st, n, "/dev/ttyS0")["status"] == "dead" for n in ("fred", "barney")) and st

    st = wait_for(serial_dead, 3 * DEADTIME, "heartbeat to see the serial link dead both ways")
    assert all(link(st, n, "/dev/ttyS0")["cut_by"] == rec["id"] for n in ("fred", "barney"))
    assert served_by(st, "fred") and all(link(st, n, "eth0")["status"] == "up" for n in ("fred", "barney"))
    again = lc("serial", "cut", "--lab", settled_lab, check=False)
    assert again.returncode == 3, again.stderr
    lc("serial", "restore", "--lab", settled_lab)
    wait_for(lambda: all(link(s, n, "/dev/ttyS0")["status"] == "up"
                         for s in [lc.status(settled_lab)] for n in ("fred", "barney")),
             3 * DEADTIME, "the serial link up again")
    heal_all(lc, settled_lab)


def test_partition_and_serial_cut_is_split_brain_and_status_flags_it(settled_lab: str,
                                                                       lc: Labctl) -> None:
    sums = write_files(lc, settled_lab, "client", UNC, "split")  # written before the cut
    apply(lc, settled_lab, "serial", "cut")

    def two_holders() -> Any:
        st = lc.status(settled_lab)
        both = {r["kind"]: r["holders"] for r in st["resources"]}
        pair = ["barney", "fred"]
        return sorted(both["IPaddr"]) == pair and sorted(both["memexpd"]) == pair and st["split_brain"] and st

    cut = apply(lc, settled_lab, "partition", "fred", "barney")
    st = wait_for(two_holders, 6 * DEADTIME, "both nodes to hold the cluster IP and memexpd")
    mount = next(r for r in st["resources"] if r["kind"] == "Filesystem")
    assert mount["holders"] == ["fred"], mount  # barney's mount is refused: fred's disk heartbeat beats
    refused = wait_for(lambda: seen(lc, settled_lab, cut["since"], "barney", "ogfs", "refused"), 120,
                       "barney's ogfs mount to be refused, in the events")
    assert "still writes its disk heartbeat" in refused["text"], refused
    heal_all(lc, settled_lab)  # ends whole by itself: both nodes up, one holder each, serving
    assert read_back(lc, settled_lab, "client", UNC, "split", sums) == sums


# --------------------------------------------------------------------------- processes


def test_kill_memexpd_on_the_holder_status_shows_it_down(settled_lab: str, lc: Labctl) -> None:
    rec = apply(lc, settled_lab, "kill", "fred", "memexpd")
    assert rec["command"] == "kill fred memexpd" and rec["active"]
    st = lc.status(settled_lab)
    res = {r["kind"]: r["holders"] for r in st["resources"]}
    assert res["memexpd"] == [] and res["IPaddr"] == ["fred"], res  # nobody watches it: no failover
    again = lc("kill", "fred", "memexpd", "--lab", settled_lab, check=False)
    assert again.returncode == 3 and "no memexpd runs" in again.stderr
    # the mount notices within milliseconds, often before pkill's exec has returned (rec["since"])
    noticed = wait_for(lambda: seen(lc, settled_lab, rec["requested"], "fred", "ogfs", "lockserver-lost"),
                       60, "fred's mount to notice, in the events")
    assert noticed["time"] <= rec["since"] + 30, noticed
    applied = seen(lc, settled_lab, rec["requested"] - 1, "fred", "labctl", "fault-applied")
    assert applied and applied["text"] == "kill fred memexpd", applied
    heal_all(lc, settled_lab)  # heal power-cycles fred


# --------------------------------------------------------------------------- records


def test_records_are_the_labs_own_and_seen_from_anywhere(settled_lab: str, lc: Labctl,
                                                          tmp_path: Path) -> None:
    rec = apply(lc, settled_lab, "partition", "barney", "client", "--oneway")
    other = Labctl(tmp_path)  # another process, another directory
    seen = json.loads(other("faults", "--lab", settled_lab, "--json").stdout)["faults"]
    assert [f["id"] for f in seen] == [rec["id"]]
    # the client runs no iptables: what barney sends it is dropped in barney's OUTPUT
    assert "-d " in lc.sh(settled_lab, "barney", "iptables -S")
    other("heal", rec["id"], "--lab", settled_lab)
    history = json.loads(lc("faults", "--all", "--lab", settled_lab, "--json").stdout)["faults"]
    mine = next(f for f in history if f["id"] == rec["id"])
    assert mine["healed"] >= mine["heal_requested"] >= mine["since"] >= mine["requested"]
    assert lc("heal", rec["id"], "--lab", settled_lab, check=False).returncode == 3


# --------------------------------------------------------------------------- planned moves


@pytest.fixture(scope="module")
def nice_lab(engine: Any, lc: Labctl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """two-node with auto_failback on: heartbeat does planned moves only with nice_failback."""
    data = yaml.safe_load((ROOT / "topologies" / "two-node.yaml").read_text())
    data["heartbeat"]["auto_failback"] = "on"
    path = tmp_path_factory.mktemp("nice") / "two-node-nice.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    name = "faults-nice"
    lc("down", "--lab", name, check=False)
    lc("up", str(path), "--lab", name, timeout=900)
    yield name
    lc("down", "--lab", name, check=False)


def test_standby_moves_the_group_without_anyone_declared_dead(nice_lab: str, lab: str,
                                                              lc: Labctl) -> None:
    refused = lc("standby", "fred", "--lab", lab, check=False)  # the seed's legacy mode ignores it
    assert refused.returncode == 3 and "auto_failback" in refused.stderr, refused.stderr
    wait_for(lambda: served_by(lc.status(nice_lab), "fred"), 120, "fred to serve in the nice lab")
    rec = apply(lc, nice_lab, "standby", "fred")
    assert rec["healed"] == rec["since"]  # one-shot: the move is the effect
    st = wait_for(lambda: (s := lc.status(nice_lab)) and served_by(s, "barney") and s, 120,
                  "barney to hold the group after fred's standby")
    assert all(n["state"] == "running" and n["heartbeat"] == "running" for n in st["nodes"])
    # a planned move, not a failover: nobody waited for deadtime to call fred dead
    log = lc.sh(nice_lab, "barney", "cat /var/log/ha-log")
    assert "Status update for node fred: status dead" not in log and "node fred: is dead" not in log
    lc("takeover", "fred", "--lab", nice_lab)
    wait_for(lambda: served_by(lc.status(nice_lab), "fred"), 120, "fred to take the group back")


# --------------------------------------------------------------------------- the disk


def test_disk_errors_for_fred_alone_withdraw_his_mount_and_barney_reads_it_whole(
        settled_lab: str, lc: Labctl) -> None:
    put = "cd /tmp && head -c 200000 /dev/urandom > {n} && sha256sum {n} | cut -d' ' -f1 && " \
          "smbclient //fscluster/ogfs -N -c 'put {n}'"
    before = lc.sh(settled_lab, "client", put.format(n="before.bin")).split()[0]
    lc.sh(settled_lab, "fred", "sync /ogfs/before.bin")  # fsync: the file is in fred's journal
    rec = apply(lc, settled_lab, "disk", "fred", "--errors", "write")
    assert lc.sh(settled_lab, "barney", "ogfs_tool diskfault show").strip() == "null"  # fred's alone
    lc("exec", "--lab", settled_lab, "client", "--", "sh", "-c", put.format(n="after.bin"), check=False)
    wait_for(lambda: "withdrawn: " in lc.sh(settled_lab, "fred", "cat /var/log/ogfs/*.log"), 30,
             "fred's mount to withdraw")
    refused = lc("exec", "--lab", settled_lab, "fred", "--", "sh", "-c", "echo x > /ogfs/probe", check=False)
    assert refused.returncode != 0 and "Input/output error" in refused.stderr + refused.stdout, refused
    lc("fail", "--lab", settled_lab, "fred")  # barney takes over: its own I/O never failed
    wait_for(lambda: served_by(lc.status(settled_lab), "barney"), 120, "barney to serve the share")
    got = lc.sh(settled_lab, "client", "cd /tmp && rm -f b && smbclient //fscluster/ogfs -N "
                "-c 'get before.bin b' >/dev/null && sha256sum b | cut -d' ' -f1").strip()
    assert got == before
    healed = json.loads(lc("heal", rec["id"], "--lab", settled_lab, "--json").stdout)["healed"][0]
    assert "went with its /run" in healed["detail"]  # fred is down: its control file is gone
    heal_all(lc, settled_lab)
