"""``labctl status``: the lab as its nodes, heartbeat and the client see it, right now.

Per node: the container's state and heartbeat's view of every link to every peer (``cl_status
hblinkstatus``: LAN and serial). Per resource of the haresources line: which nodes hold it, by
heartbeat's own test (``ResourceManager status``: the text of the resource script's status, G17);
two holders is split brain. The share: what ``smbclient`` on the client sees (read-only: listed
and its root listable). Every probe runs in parallel; nothing is changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from labctl import faults
from labctl.faults import Cut
from labctl.observe.share import ShareProbe
from labctl.render import resource_line
from labctl.runtime.lab import HostState, Lab


@dataclass
class LinkView:
    peer: str
    medium: str  # eth0, /dev/ttyS0 (heartbeat's link names)
    kind: str  # lan, serial
    status: str  # up, dead (cl_status), or unknown / missing
    cut_by: str = ""  # the id of the labctl fault that stops the peer's traffic to this node here


@dataclass
class NodeView:
    name: str
    ip: str
    state: str  # running, exited, absent, ...
    exit_code: int | None
    since: str  # StartedAt when running, FinishedAt otherwise
    heartbeat: str  # running, stopped, down (container not running), unknown
    peers: dict[str, str] = field(default_factory=dict)  # peer -> cl_status nodestatus
    links: list[LinkView] = field(default_factory=list)
    rscstatus: str = ""  # cl_status rscstatus: all, local, foreign, none, transition
    holds: list[str] = field(default_factory=list)
    # Its ogfs mount (docs/fencing.md): why it is withdrawn, if it is; the journals it took from
    # other nodes, each as ogfs says it ("journal 0 taken by ... at ..., UNFENCED: ...").
    withdrawn: str = ""
    took: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def how_down(self) -> str:
        if self.state == "running":
            return ""
        if self.state == "paused":
            return "frozen (cgroup freezer)"
        if self.exit_code == 137:
            return "power cut (killed)"
        if self.exit_code == 0:
            return "shut down cleanly"
        if self.exit_code == 100:
            return "self-fenced (reboot)"
        return f"exit code {self.exit_code}" if self.exit_code is not None else ""


@dataclass
class ResourceView:
    name: str  # the haresources token (hostdata= left out: it differs per node)
    kind: str  # IPaddr, memexpd, Filesystem, smb
    holders: list[str]

    @property
    def split_brain(self) -> bool:
        return len(self.holders) > 1


@dataclass
class ShareView:
    unc: str
    serving: bool
    listed: bool
    detail: str


@dataclass
class ClientView:
    name: str
    ip: str
    state: str


@dataclass
class LabStatus:
    lab: str
    topology: str
    profile: str
    lockproto: str
    cluster: dict[str, str]
    preferred: str
    auto_failback: str
    nodes: list[NodeView]
    resources: list[ResourceView]
    share: ShareView | None
    client: ClientView
    taken_at: float
    took: float
    faults: list[dict[str, Any]] = field(default_factory=list)  # active fault records (faults/record.py)

    def node(self, name: str) -> NodeView:
        return next(n for n in self.nodes if n.name == name)

    @property
    def holders(self) -> set[str]:
        return {h for r in self.resources for h in r.holders}

    @property
    def split_brain(self) -> bool:
        return any(r.split_brain for r in self.resources)

    @property
    def unfenced(self) -> list[str]:
        """Journals taken from a node nobody powered off (STOMITH manual), as the taker says."""
        return [f"{n.name}: {t}" for n in self.nodes for t in n.took if "UNFENCED" in t]

    def links_up(self, nodes: list[str] | None = None) -> bool:
        """Every link of every (given) node to every peer is up, seen from each side."""
        chosen = [n for n in self.nodes if nodes is None or n.name in nodes]
        return bool(chosen) and all(n.links and all(lk.status == "up" for lk in n.links) for n in chosen)

    def served_by(self, node: str) -> bool:
        """Every resource held by ``node`` alone, and the share serving."""
        return all(r.holders == [node] for r in self.resources) and bool(self.share and self.share.serving)

    @property
    def whole(self) -> bool:
        """Both nodes up with heartbeat, every link up both ways, one holder per resource, no
        mount withdrawn, and the share serving (when it was checked)."""
        return (
            all(n.state == "running" and n.heartbeat == "running" and not n.withdrawn for n in self.nodes)
            and self.links_up()
            and all(len(r.holders) == 1 for r in self.resources)
            and len(self.holders) == 1
            and (self.share is None or self.share.serving)
        )

    @property
    def settled(self) -> bool:
        """Whole, no node in a resource transition, and the group where heartbeat will leave it: on
        the preferred node when auto_failback is on or legacy (a rejoining preferred node takes it back)."""
        if not self.whole or any(n.rscstatus == "transition" for n in self.nodes):
            return False
        return not (self.auto_failback in ("on", "legacy") and self.holders != {self.preferred})

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for n, node in zip(out["nodes"], self.nodes, strict=True):
            n["how_down"] = node.how_down
        for r, res in zip(out["resources"], self.resources, strict=True):
            r["split_brain"] = res.split_brain
        out["split_brain"] = self.split_brain
        out["unfenced"] = self.unfenced
        out["whole"] = self.whole
        out["settled"] = self.settled
        return out


def _canonical(token: str) -> str:
    """A resource's name without node-specific arguments (the seed's hostdata=<node ip>)."""
    return "::".join(part for part in token.split("::") if not part.startswith("hostdata="))


def _expected_tokens(lab: Lab) -> list[str]:
    t = lab.topology
    return resource_line(t, t.preferred_node, lab.lockproto).split()[1:]


def _kind(token: str) -> str:
    first = token.split("::", 1)[0]
    return "IPaddr" if first.replace(".", "").isdigit() else first


def _expected_links(lab: Lab, node: str) -> list[tuple[str, str, str]]:
    t = lab.topology
    out = []
    for peer in t.peers(node):
        out.append((peer.name, t.network.interface, "lan"))
        for cable in t.cables_of(node):
            if peer.name in cable.ends:
                out.append((peer.name, cable.device, "serial"))
    return out


def _node_view(lab: Lab, name: str, st: HostState, probe: dict[str, Any] | None,
               cuts: dict[Cut, str]) -> NodeView:
    ip = str(lab.topology.node(name).ip)
    since = st.started_at if st.running else st.finished_at
    hb = "unknown" if st.running else "frozen" if st.status == "paused" else "down"
    view = NodeView(name, ip, st.status, st.exit_code, since, hb)
    if probe is None:
        return view
    if "error" in probe:
        view.error = str(probe["error"])
        return view
    view.heartbeat = str(probe.get("heartbeat", "unknown"))
    view.rscstatus = str(probe.get("rscstatus", ""))
    reported: dict[tuple[str, str], str] = {}
    for peer in probe.get("peers", []):
        view.peers[str(peer["name"])] = str(peer.get("status", ""))
        for link in peer.get("links", []):
            reported[(str(peer["name"]), str(link["name"]))] = str(link.get("status", "unknown"))
    if view.heartbeat == "running":
        for peer, medium, kind in _expected_links(lab, name):
            view.links.append(LinkView(peer, medium, kind, reported.pop((peer, medium), "missing"),
                                       cuts.get(Cut(peer, name, kind), "")))
        for (peer, medium), status in sorted(reported.items()):
            view.links.append(LinkView(peer, medium, "other", status))
    view.holds = [_canonical(r["token"]) for r in probe.get("resources", []) if r.get("held")]
    for m in probe.get("mounts", []):
        if m.get("withdrawn"):
            view.withdrawn = str(m["withdrawn"])
        view.took += [str(t) for t in m.get("fences", [])]
    return view


def collect(lab: Lab, share: bool = True) -> LabStatus:
    """One snapshot of the lab (about a second: every node and the client are probed in parallel)."""
    started = time.time()
    t = lab.topology
    hosts = list(t.node_names)
    with ThreadPoolExecutor(max_workers=len(hosts) + 3) as pool:
        states = {h: pool.submit(lab.state, h) for h in [*hosts, t.client.name]}
        probes = {h: pool.submit(lab.probe_node, h) for h in hosts}
        share_f = pool.submit(lab.probe_share, False) if share else None
        active = faults.active(lab)
        cut = faults.cuts(lab, active)
        node_views = [_node_view(lab, h, states[h].result(), probes[h].result(), cut) for h in hosts]
        share_probe: ShareProbe | None = share_f.result() if share_f else None
        client_state = states[t.client.name].result()
    resources = []
    for token in _expected_tokens(lab):
        name = _canonical(token)
        resources.append(ResourceView(name, _kind(token), [n.name for n in node_views if name in n.holds]))
    return LabStatus(
        lab=lab.name,
        topology=str(t.source.name if t.source else t.name),
        profile=t.heartbeat.name,
        lockproto=lab.lockproto,
        cluster={"name": t.cluster.name, "ip": str(t.cluster.ip)},
        preferred=t.preferred_node.name,
        auto_failback=t.heartbeat.auto_failback,
        nodes=node_views,
        resources=resources,
        share=ShareView(share_probe.unc, share_probe.serving, share_probe.listed, share_probe.detail)
        if share_probe
        else None,
        client=ClientView(t.client.name, str(t.client.ip), client_state.status),
        taken_at=started,
        took=time.time() - started,
        faults=[r.as_dict() for r in active],
    )


def wait_until(
    lab: Lab,
    condition: Callable[[LabStatus], bool],
    timeout: float,
    on_poll: Callable[[LabStatus], None] | None = None,
    interval: float = 0.5,
) -> tuple[bool, LabStatus]:
    """Poll ``collect`` until ``condition`` holds or ``timeout`` passes: (held, last status)."""
    deadline = time.monotonic() + timeout
    while True:
        status = collect(lab)
        if on_poll:
            on_poll(status)
        if condition(status):
            return True, status
        if time.monotonic() >= deadline:
            return False, status
        time.sleep(interval)
