"""Fencing in real labs (docs/fencing.md): fred frozen longer than deadtime while it writes, barney
takes over and writes, then fred thaws.

* STOMITH manual (the seed's): barney replays fred's journal unfenced, and says so in status and the
  events; fred wakes up with its disk lease run out, its renewal finds the fence, and its mount
  withdraws before one block reaches the disk; its fenced hook reboots it.  `recover` makes the
  cluster whole.
* STOMITH labctl: barney's first mount has the lab's power switch power fred off, and replays only
  once the switch confirmed.

"Fred wrote nothing" is checked on the device itself: barney is frozen too while fred thaws, so no
node of the lab can write, and every block of the data partition is hashed before and after,
through the loop device on this host (the lab tests run beside their engine).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from labrunner import ROOT, Labctl, served_by, wait_for

pytestmark = pytest.mark.slow

FRED_IP, BARNEY_IP = "192.168.1.1", "192.168.1.2"
# A writer on fred itself (its own /ogfs, not through Samba): a numbered file, fsync'd, forever.
WRITER = ("nohup sh -c 'i=0; while :; do i=$((i+1)); head -c 20000 /dev/urandom > /ogfs/w$i || exit; "
          "sync /ogfs/w$i; echo $i > /tmp/writer.n; done' >/dev/null 2>&1 &")


def _up(lc: Labctl, name: str, topology: str) -> None:
    lc("down", "--lab", name, check=False)
    lc("up", topology, "--lab", name, "--profile", "fast", timeout=900)


@pytest.fixture(scope="module")
def manual_lab(engine: Any, lc: Labctl) -> Iterator[str]:
    _up(lc, "fence-manual", "two-node")
    yield "fence-manual"
    lc("down", "--lab", "fence-manual", check=False)


@pytest.fixture(scope="module")
def switch_lab(engine: Any, lc: Labctl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = yaml.safe_load((ROOT / "topologies" / "two-node.yaml").read_text())
    data["cluster"]["stomith"] = "labctl"
    path = tmp_path_factory.mktemp("switch") / "two-node-switch.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _up(lc, "fence-switch", str(path))
    yield "fence-switch"
    lc("down", "--lab", "fence-switch", check=False)


def node_view(st: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(next(n for n in st["nodes"] if n["name"] == name))


def events(lc: Labctl, lab: str, since: float) -> list[dict[str, Any]]:
    return list(json.loads(lc("events", "--lab", lab, "--since", f"{since:.3f}", "--json").stdout)["events"])


def first(evs: list[dict[str, Any]], host: str, source: str, kind: str) -> dict[str, Any] | None:
    return next((e for e in evs if (e["host"], e["source"], e["kind"]) == (host, source, kind)), None)


def freeze_fred_while_writing(lc: Labctl, lab: str) -> float:
    """The writer runs on fred; fred freezes; barney serves.  Returns when fred froze."""
    wait_for(lambda: lc.status(lab)["settled"], 240, "the lab to settle")
    lc.sh(lab, "fred", WRITER)
    wait_for(lambda: int(lc.sh(lab, "fred", "cat /tmp/writer.n 2>/dev/null || echo 0") or 0) >= 30, 60,
             "fred's writer to have written 30 files")
    frozen = time.time()
    lc("freeze", "fred", "--lab", lab)
    wait_for(lambda: served_by(lc.status(lab), "barney"), 120, "barney to serve while fred is frozen")
    return frozen


def barney_writes(lc: Labctl, lab: str) -> dict[str, str]:
    """20 files written on barney's own mount, fsync'd; their sha256 by name."""
    out = lc.sh(lab, "barney", "set -e; cd /ogfs; for i in $(seq 1 20); do head -c 30000 /dev/urandom > b$i; "
                "sync b$i; done; sha256sum b*")
    sums = {ln.split()[1]: ln.split()[0] for ln in out.splitlines() if len(ln.split()) == 2}
    assert len(sums) == 20, out
    return sums


def sums_on(lc: Labctl, lab: str, node: str, names: list[str]) -> dict[str, str]:
    """sha256 of /ogfs/NAME on ``node``, for the names it can read now."""
    out = lc.sh(lab, node, "cd /ogfs 2>/dev/null && sha256sum " + " ".join(names) + " 2>/dev/null; true")
    return {ln.split()[1]: ln.split()[0] for ln in out.splitlines() if len(ln.split()) == 2}


def data_loop_device(engine: Any, lab: str) -> str:
    """The host's loop device behind fred's /dev/sda3 (the data partition)."""
    c = engine.containers.get(f"labctl-{lab}-fred")
    devs = c.attrs["HostConfig"]["Devices"] or []
    return str(next(d["PathOnHost"] for d in devs if d["PathInContainer"] == "/dev/sda3"))


def block_hashes(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        return [hashlib.sha1(b).digest() for b in iter(lambda: f.read(4096), b"")]


def fsck_clean(lc: Labctl, lab: str, node: str) -> None:
    res = lc("exec", "--lab", lab, node, "--", "fsck.ogfs", "-n", "/dev/sda3", check=False)
    assert res.returncode == 0 and "clean" in res.stdout, res.stdout + res.stderr


def test_manual_a_thawed_fred_writes_nothing_withdraws_and_fences_itself(
        manual_lab: str, lc: Labctl, engine: Any) -> None:
    lab = manual_lab
    frozen = freeze_fred_while_writing(lc, lab)
    st = lc.status(lab)
    assert st["unfenced"] and f"journal 0 taken by {BARNEY_IP} (cid 1)" in st["unfenced"][0], st["unfenced"]
    evs = events(lc, lab, frozen)
    assert first(evs, "barney", "ogfs", "unfenced-replay"), [e["kind"] for e in evs if e["host"] == "barney"]
    mine = barney_writes(lc, lab)
    fsck_clean(lc, lab, "barney")

    lc("freeze", "barney", "--lab", lab)  # from here on no node of the lab may write but fred
    device = data_loop_device(engine, lab)
    before = block_hashes(device)
    thawed = time.time()
    lc("thaw", "fred", "--lab", lab)
    fenced = wait_for(lambda: node_view(s := lc.status(lab), "fred")["state"] == "exited" and s, 60,
                      "fred to fence itself once it woke up fenced")
    assert node_view(fenced, "fred")["how_down"] == "self-fenced (reboot)", node_view(fenced, "fred")
    assert block_hashes(device) == before, "fred wrote to the data partition after it thawed"
    evs = events(lc, lab, thawed)
    withdrawn = first(evs, "fred", "ogfs", "withdrawn")
    assert withdrawn and withdrawn["fields"]["reason"].startswith(
        f"fenced: journal 0 taken by {BARNEY_IP} (cid 1)"), withdrawn
    assert first(evs, "fred", "ogfs", "self-fence"), [e for e in evs if e["host"] == "fred"]

    lc("thaw", "barney", "--lab", lab)
    # barney may give the group up once more as it wakes (heartbeat restarts when it hears fred's
    # last heartbeats, sent while barney was frozen: docs/fencing.md), then takes it again
    wait_for(lambda: served_by(lc.status(lab), "barney") and sums_on(lc, lab, "barney", list(mine)) == mine,
             120, "barney to serve with fred down, its files intact")
    fsck_clean(lc, lab, "barney")
    lc("recover", "fred", "--lab", lab, timeout=300)
    st = wait_for(lambda: (s := lc.status(lab)) and s["whole"] and s, 120, "the cluster to be whole")
    assert not st["split_brain"] and all(not n["withdrawn"] for n in st["nodes"])


def test_switch_powers_the_frozen_fred_off_before_barney_replays(
        switch_lab: str, lc: Labctl, engine: Any) -> None:
    lab = switch_lab
    frozen = freeze_fred_while_writing(lc, lab)
    st = lc.status(lab)
    fred = node_view(st, "fred")
    assert fred["state"] == "exited" and fred["exit_code"] == 137, fred  # the switch killed it, frozen
    assert not st["unfenced"]
    took = node_view(st, "barney")["took"]
    assert took and "powered off by the lab's power switch (plug 1)" in took[0], took
    evs = events(lc, lab, frozen)
    off = first(evs, "switch", "switch", "powered-off")
    asked = first(evs, "barney", "ogfs", "power-off")
    replayed = first(evs, "barney", "ogfs", "replayed")
    assert off and asked and replayed, [(e["host"], e["kind"]) for e in evs]
    assert off["fields"]["plug"] == 1 and off["fields"]["container"] == f"labctl-{lab}-fred"
    assert asked["time"] <= off["time"] <= replayed["time"], (asked, off, replayed)
    mine = barney_writes(lc, lab)
    fsck_clean(lc, lab, "barney")
    # the freeze's record is healed by the power-off; recover boots fred and the group goes home
    lc("heal", "all", "--lab", lab)
    lc("recover", "fred", "--lab", lab, timeout=300)
    st = wait_for(lambda: (s := lc.status(lab)) and s["whole"] and s, 120, "the cluster to be whole")
    assert sums_on(lc, lab, "fred", list(mine)) == mine


def test_the_switch_is_confined_to_its_lab(switch_lab: str, lc: Labctl, engine: Any) -> None:
    """No capability, nothing published, the engine socket its only mount besides its program; it
    answers only the lab's nodes: the client cannot power anything off."""
    c = engine.containers.get(f"labctl-{switch_lab}-switch")
    hc = c.attrs["HostConfig"]
    assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"] and not hc["Privileged"]
    assert not hc["PortBindings"] and not c.attrs["NetworkSettings"]["Ports"]
    assert [m["Destination"] for m in c.attrs["Mounts"]] == ["/run/labctl/engine.sock"]
    addr = c.attrs["NetworkSettings"]["Networks"][f"labctl-{switch_lab}-lan"]["IPAddress"]
    probe = (f"import socket; s = socket.create_connection(('{addr}', 7000), 5); s.sendall(b'OFF 1\\n'); "
             "print(repr(s.recv(100)))")
    out = lc("exec", "--lab", switch_lab, "client", "--", "python3", "-c", probe, check=False)
    assert "b''" in out.stdout, out.stdout + out.stderr  # closed without a word
    assert node_view(lc.status(switch_lab), "fred")["state"] == "running"
    log = c.logs().decode()
    assert "refused a connection from" in log


def test_down_removes_the_switch(switch_lab: str, lc: Labctl, engine: Any) -> None:
    lc("down", "--lab", switch_lab)
    left = engine.containers.list(all=True, filters={"label": f"labctl.lab={switch_lab}"})
    assert left == []
