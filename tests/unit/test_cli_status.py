"""``labctl status`` from probe answers (a fake lab, no engine): holders per resource, links both ways,
split brain, the JSON keys scripts rely on, and how the table shows them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from labctl import cli
from labctl.observe import collect
from labctl.observe.share import ShareProbe
from labctl.render import render_lab
from labctl.runtime.lab import HostState
from labctl.topology import load_topology

TWO = load_topology("two-node")
IP_TOKEN = "192.168.1.100"
FS = "Filesystem::/dev/sda3::/ogfs::ogfs"


def probe(node: str, peer: str, held: bool, links: str = "up", rsc: str = "all") -> dict[str, Any]:
    ip = "192.168.1.1" if node == "fred" else "192.168.1.2"
    tokens = [IP_TOKEN, "memexpd", f"{FS}::hostdata={ip}", "smb"]
    return {
        "node": node,
        "heartbeat": "running",
        "peers": [{"name": peer, "status": "active" if links == "up" else "dead",
                   "links": [{"name": "eth0", "status": links}, {"name": "/dev/ttyS0", "status": links}]}],
        "rscstatus": rsc,
        "resources": [{"token": t, "kind": "x", "held": held} for t in tokens],
    }


class FakeRecords:
    """The lab's fault records (runtime/records.py keeps them in the claim container) in memory."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def put(self, record_id: str, data: bytes) -> None:
        self.files[record_id] = data

    def all(self) -> dict[str, bytes]:
        return dict(self.files)


class FakeLab:
    name = "two-node"
    topology = TWO
    lockproto = "memexp"
    node_names = TWO.node_names
    host_names = (*TWO.node_names, TWO.client.name)

    def __init__(self, probes: dict[str, dict[str, Any] | None], serving: bool = True) -> None:
        self.probes, self.serving = probes, serving
        self.records = FakeRecords()

    def state(self, host: str) -> HostState:
        p = self.probes.get(host, {})
        running = host == "client" or p is not None
        return HostState(host, "node", f"labctl-two-node-{host}", "running" if running else "exited",
                         0 if running else 137)

    def probe_node(self, host: str) -> dict[str, Any] | None:
        return self.probes[host]

    def probe_share(self, write: bool = True) -> ShareProbe:
        return ShareProbe("\\\\fscluster\\ogfs", self.serving, self.serving, "listed and readable")


def test_fred_holding_everything_is_whole_and_settled() -> None:
    st = collect(FakeLab({"fred": probe("fred", "barney", True), "barney": probe("barney", "fred", False)}))
    assert [r.name for r in st.resources] == [IP_TOKEN, "memexpd", FS, "smb"]
    assert all(r.holders == ["fred"] for r in st.resources)
    assert st.links_up() and st.whole and st.settled and not st.split_brain
    assert st.served_by("fred") and not st.served_by("barney")
    d = st.as_dict()
    assert {n["name"] for n in d["nodes"]} == {"fred", "barney"}
    link = d["nodes"][0]["links"][0]
    assert set(link) >= {"peer", "medium", "status"} and link["peer"] == "barney"
    assert {lk["medium"] for lk in d["nodes"][0]["links"]} == {"eth0", "/dev/ttyS0"}
    assert d["resources"][0]["holders"] == ["fred"] and d["share"]["serving"] is True


def test_a_dead_node_and_a_survivor_holding_everything() -> None:
    st = collect(FakeLab({"fred": None, "barney": probe("barney", "fred", True, links="dead")}))
    fred = st.node("fred")
    assert fred.state == "exited" and fred.how_down == "power cut (killed)" and fred.heartbeat == "down"
    assert st.served_by("barney") and not st.whole
    assert not st.links_up()
    seen = {(lk.medium, lk.status) for lk in st.node("barney").links}
    assert seen == {("eth0", "dead"), ("/dev/ttyS0", "dead")}


def test_two_holders_is_split_brain_and_shown_in_red() -> None:
    st = collect(FakeLab({"fred": probe("fred", "barney", True, links="dead"),
                          "barney": probe("barney", "fred", True, links="dead")}))
    assert st.split_brain and all(r.holders == ["fred", "barney"] for r in st.resources)
    assert st.as_dict()["split_brain"] is True
    text = table_text(st, colour=True)
    assert "split brain" in text and "\x1b[1;31m" in text  # bold red


def test_a_missing_link_and_a_transition_are_not_settled() -> None:
    fred = probe("fred", "barney", True, rsc="transition")
    fred["peers"][0]["links"] = [{"name": "eth0", "status": "up"}]  # the serial link is not reported
    st = collect(FakeLab({"fred": fred, "barney": probe("barney", "fred", False)}))
    assert ("/dev/ttyS0", "missing") in {(lk.medium, lk.status) for lk in st.node("fred").links}
    assert not st.whole and not st.settled


def test_group_on_the_other_node_is_whole_but_not_settled_with_auto_failback() -> None:
    st = collect(FakeLab({"fred": probe("fred", "barney", False), "barney": probe("barney", "fred", True)}))
    assert st.whole and not st.settled  # fred will take it back (auto_failback legacy)


@pytest.mark.parametrize(("failback", "shown"), [("legacy", False), ("on", True)])
def test_rscstatus_is_shown_only_where_heartbeat_keeps_it(failback: str, shown: bool) -> None:
    st = collect(FakeLab({"fred": probe("fred", "barney", True, rsc="none"),
                          "barney": probe("barney", "fred", False, rsc="none")}))
    st.auto_failback = failback  # legacy: "none" even on the holder (docs/images.md)
    assert st.as_dict()["nodes"][0]["rscstatus"] == "none"  # scripts still get heartbeat's word
    assert ("rsc none" in table_text(st)) is shown


def table_text(st: Any, colour: bool = False) -> str:
    """What `labctl status` prints for `st`."""
    buf = io.StringIO()
    old = cli.OUT
    cli.OUT = Console(file=buf, force_terminal=colour, width=160)
    try:
        cli.print_status(st)
    finally:
        cli.OUT = old
    return buf.getvalue()


def test_share_not_serving_is_not_whole() -> None:
    st = collect(FakeLab({"fred": probe("fred", "barney", True), "barney": probe("barney", "fred", False)},
                         serving=False))
    assert not st.whole and not st.served_by("fred")


@pytest.mark.parametrize("node", ["fred", "barney"])
def test_nolock_leaves_memexpd_out_of_the_group(node: str) -> None:
    files = render_lab(TWO, "k" * 40, lockproto="nolock")[node]
    text = files["/etc/ha.d/haresources"].content
    line = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert len(line) == 1 and "memexpd" not in line[0].split()
    assert line[0].startswith(f"fred {IP_TOKEN} Filesystem::/dev/sda3::/ogfs::ogfs::hostdata=")
    assert "nolock" in text


def test_links_a_fault_cuts_are_marked_with_its_id_on_the_side_that_stops_hearing() -> None:
    from labctl.faults.record import FaultRecord

    lab = FakeLab({"fred": probe("fred", "barney", True), "barney": probe("barney", "fred", False)})
    oneway = FaultRecord("abc123", "partition", ("fred", "barney"), {"oneway": True}, 1.0, since=2.0)
    healed = FaultRecord("def456", "serial-cut", ("fred-barney",), {}, 1.0, since=2.0, healed=3.0)
    for rec in (oneway, healed):
        lab.records.put(rec.id, rec.to_json())
    st = collect(lab)
    cut = {(n.name, lk.medium): lk.cut_by for n in st.nodes for lk in n.links}
    # fred -> barney is cut: barney stops hearing fred on the LAN; fred still hears barney
    assert cut == {("barney", "eth0"): "abc123", ("barney", "/dev/ttyS0"): "",
                   ("fred", "eth0"): "", ("fred", "/dev/ttyS0"): ""}
    assert [f["id"] for f in st.as_dict()["faults"]] == ["abc123"]


TAKEN = ("journal 0 taken by 192.168.1.2 (cid 1) at 23:05:21, UNFENCED: judged dead by its disk "
         "heartbeat alone, nobody powered it off")


def test_a_withdrawn_mount_is_not_whole_and_an_unfenced_replay_is_reported() -> None:
    fred = probe("fred", "barney", True)
    fred["mounts"] = [{"mountpoint": "/ogfs", "withdrawn": f"fenced: {TAKEN}", "fences": []}]
    barney = probe("barney", "fred", False)
    barney["mounts"] = [{"mountpoint": "/ogfs", "withdrawn": None, "fences": [TAKEN]}]
    st = collect(FakeLab({"fred": fred, "barney": barney}))
    assert st.node("fred").withdrawn.startswith("fenced: journal 0 taken by 192.168.1.2")
    assert not st.whole  # every resource on fred, the share lists: but fred's mount writes nothing
    assert st.unfenced == [f"barney: {TAKEN}"] and st.as_dict()["unfenced"] == st.unfenced
    buf = io.StringIO()
    old = cli.OUT
    cli.OUT = Console(file=buf, width=100, color_system=None)
    try:
        cli.print_status(st)
    finally:
        cli.OUT = old
    text = buf.getvalue()
    assert "mount withdrawn" in text and "fred's mount is withdrawn: fenced: journal 0 taken by" in text
    assert "barney's mount: journal 0 taken by 192.168.1.2 (cid 1)" in text and "UNFENCED" in text


def test_a_paused_node_is_frozen_not_shut_down() -> None:
    lab = FakeLab({"fred": None, "barney": probe("barney", "fred", True, links="dead")})
    lab.state = lambda host: HostState(host, "node", f"labctl-two-node-{host}",  # type: ignore[method-assign]
                                       "paused" if host == "fred" else "running", 0)
    st = collect(lab)
    assert st.node("fred").how_down == "frozen (cgroup freezer)" and st.node("fred").heartbeat == "frozen"
