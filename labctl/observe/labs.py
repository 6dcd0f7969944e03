"""``labctl list``: every lab on the engine, its state, and which node holds the cluster address.

Quick on purpose (a trainer lists 20 labs): the engine's labels give the labs and their hosts'
states; one ``ip -4 -o addr`` per running node (in parallel) says who holds the cluster IP, the
group's first resource. The full picture is ``labctl status --lab NAME``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from labctl.errors import LabctlError
from labctl.runtime.lab import Lab, LabRecord, lab_records


@dataclass
class LabSummary:
    name: str
    topology: str
    profile: str
    lockproto: str
    state: str  # up, degraded, down, incomplete
    nodes: dict[str, str]
    client: str
    holders: list[str]  # nodes holding the cluster IP (two: split brain)
    outer_subnet: str
    created: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _state(rec: LabRecord) -> str:
    nodes = [s for h, s in rec.hosts.items() if rec.roles.get(h) == "node"]
    if not nodes:
        return "incomplete"
    if all(s == "running" for s in rec.hosts.values()):
        return "up"
    if any(s == "running" for s in nodes):
        return "degraded"
    return "down"


def lab_summaries() -> list[LabSummary]:
    records = lab_records()
    out: list[LabSummary] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(rec, pool.submit(_cluster_ip_holders, rec)) for rec in records]
        for rec, fut in futures:
            nodes = {h: s for h, s in rec.hosts.items() if rec.roles.get(h) == "node"}
            client = next((s for h, s in rec.hosts.items() if rec.roles.get(h) == "client"), "absent")
            out.append(LabSummary(rec.name, rec.topology, rec.profile, rec.lockproto, _state(rec), nodes,
                                  client, fut.result(), rec.outer_subnet, rec.created))
    return out


def _cluster_ip_holders(rec: LabRecord) -> list[str]:
    running = [h for h, s in rec.hosts.items() if rec.roles.get(h) == "node" and s == "running"]
    if not running:
        return []
    try:
        lab = Lab.open(rec.name)
    except LabctlError:
        return []
    ip = str(lab.topology.cluster.ip)
    iface = lab.topology.network.interface
    held = []
    for node in running:
        try:
            res = lab.exec(node, ["ip", "-4", "-o", "addr", "show", "dev", iface], timeout=10)
        except LabctlError:  # it stopped since the record was read
            continue
        if res.ok and any(f" {ip}/" in line for line in res.output.splitlines()):
            held.append(node)
    return held
