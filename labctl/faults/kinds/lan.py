"""The LAN: cut between two hosts (either way or both), one host cut from all, a lossy or slow link.

The lab's LAN is a VXLAN over Docker's internal network (docs/runtime.md, "Lab addresses"), so the
wire between two hosts is the outer network: a cut drops the packets between their *outer*
addresses, which carry every inner frame (unicast, heartbeat's broadcasts replicated to each
peer, ARP, a moved cluster IP). The serial cable is not on it and stays up.

Rules go in the filter table of the hosts' own network namespaces, one chain per fault
(``LF<id>``, its jumps tagged with the fault's id), added and removed with one ``iptables-restore
--noflush`` each: applying is all or nothing, and heal removes exactly that fault's rules. Traffic
from X to Y is dropped where it arrives (Y's INPUT) when Y is a node, else where it leaves (X's
OUTPUT): the client runs no iptables.

Loss uses iptables' ``statistic`` match (random, per packet, each direction); rate a TBF qdisc on
the outer interface (what the host sends). The kernel has no netem, so there is no delay: the verb
says so (docs/faults.md).

A node that reboots gets a fresh namespace: its rules are gone, and heal says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from labctl.errors import LabStateError, UsageError
from labctl.faults.catalogue import (
    Applied,
    Cut,
    FaultError,
    FaultKind,
    need_host,
    need_node,
    need_running,
    refuse_same,
    run,
)
from labctl.faults.record import FaultRecord
from labctl.runtime.lab import Lab


def chain(rec: FaultRecord, hook: str) -> str:
    """``LF<id>I`` / ``LF<id>O``: one chain per hook, so a rule meant for arriving packets is never
    also matched against leaving ones (two loss rules would compound)."""
    return f"LF{rec.id}{hook[0]}"


def _restore(lab: Lab, host: str, text: str, what: str) -> None:
    run(lab, host, ["sh", "-c", 'printf "%s" "$1" | iptables-restore --noflush', "sh", text], what)


def install(lab: Lab, host: str, rec: FaultRecord, rules: list[tuple[str, str]]) -> None:
    """A chain per hook holding ``rules`` (hook, match) and the jumps to them, in one transaction."""
    hooks = sorted({hook for hook, _ in rules})
    lines = ["*filter", *(f":{chain(rec, hook)} - [0:0]" for hook in hooks)]
    lines += [f"-A {chain(rec, hook)} {match} -j DROP" for hook, match in rules]
    lines += [f"-I {hook} 1 -j {chain(rec, hook)}" for hook in hooks]
    _restore(lab, host, "\n".join([*lines, "COMMIT", ""]), f"adding fault {rec.id}'s rules")


def uninstall(lab: Lab, host: str, rec: FaultRecord, hooks: Sequence[str]) -> str:
    state = lab.state(host).status
    if state == "paused":
        raise LabStateError(f"{host} is frozen: its rules of fault {rec.id} can be removed once it is "
                            f"thawed (labctl thaw {host})")
    if state != "running":
        return f"{host} is {state}: its rules went with it"
    if not lab.exec(host, ["iptables", "-S", chain(rec, hooks[0])]).ok:
        return f"{host} has no rules of fault {rec.id} any more (it rebooted)"
    lines = ["*filter"]
    lines += [f"-D {hook} -j {chain(rec, hook)}" for hook in hooks]
    lines += [f"-F {chain(rec, hook)}" for hook in hooks] + [f"-X {chain(rec, hook)}" for hook in hooks]
    _restore(lab, host, "\n".join([*lines, "COMMIT", ""]), f"removing fault {rec.id}'s rules")
    return f"{host}: rules removed"


def outer_ifname(lab: Lab, host: str, address: str) -> str:
    out = run(lab, host, ["ip", "-o", "-4", "addr", "show", "to", f"{address}/32"],
              "finding the outer interface")
    m = re.search(r"^\d+:\s+(\S+)\s+inet ", out, re.M)
    if not m:
        raise FaultError(f"{host}: no interface holds its outer address {address} "
                         f"(ip said: {out.strip()[-200:] or 'nothing'})")
    return m.group(1).split("@")[0]


# --------------------------------------------------------------------------- partition


def directions(rec: FaultRecord) -> list[tuple[str, str]]:
    a, b = rec.targets
    return [(a, b)] if rec.args.get("oneway") else [(a, b), (b, a)]


def _plan(lab: Lab, rec: FaultRecord, pairs: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """host -> rules, for dropping every (src, dst) pair's traffic."""
    overlay = lab.overlay()
    nodes = set(lab.node_names)
    plan: dict[str, list[tuple[str, str]]] = {}
    for src, dst in pairs:
        if dst in nodes:
            plan.setdefault(dst, []).append(("INPUT", f"-s {overlay.address(src)}/32"))
        else:
            plan.setdefault(src, []).append(("OUTPUT", f"-d {overlay.address(dst)}/32"))
    return plan


def _apply_plan(lab: Lab, rec: FaultRecord, plan: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    done: list[str] = []
    try:
        for host, rules in plan.items():
            install(lab, host, rec, rules)
            done.append(host)
    except BaseException:
        for host in done:
            uninstall(lab, host, rec, sorted({h for h, _ in plan[host]}))
        raise
    return {"hosts": {host: sorted({h for h, _ in rules}) for host, rules in plan.items()}}


def _heal_plan(lab: Lab, rec: FaultRecord) -> str:
    hosts: dict[str, list[str]] = rec.undo.get("hosts", {})
    return "; ".join(uninstall(lab, host, rec, hooks) for host, hooks in hosts.items()) or "nothing to undo"


class Partition(FaultKind):
    name = "partition"
    summary = "cut the LAN between two hosts (both ways, or --oneway from the first to the second)"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        a, b = (need_host(lab, t) for t in rec.targets)
        if a == b:
            raise UsageError(f"partition {a} {b}: two different hosts")
        if a not in lab.node_names and b not in lab.node_names:
            raise UsageError(f"partition {a} {b}: one of the two must be a node")
        for host in _plan(lab, rec, directions(rec)):
            need_running(lab, host)
        mine = {(s, d) for s, d in directions(rec)}
        for other in active:
            if other.kind == "partition" and mine & set(directions(other)):
                raise LabStateError(f"{a} and {b} are cut already (fault {other.id}: {other.describe()})")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        undo = _apply_plan(lab, rec, _plan(lab, rec, directions(rec)))
        how = f"{rec.targets[0]} -> {rec.targets[1]} only" if rec.args.get("oneway") else "both ways"
        a, b = rec.targets
        return Applied(f"LAN cut between {a} and {b} ({how}); serial untouched", undo)

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        return _heal_plan(lab, rec)

    def cuts(self, lab: Lab, rec: FaultRecord) -> set[Cut]:
        return {Cut(s, d, "lan") for s, d in directions(rec)}


class Isolate(FaultKind):
    name = "isolate"
    summary = "cut one node from every other host of the LAN (the serial cable stays up)"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        need_running(lab, need_node(lab, rec.targets[0]))
        refuse_same(active, rec, f"{rec.targets[0]} is isolated")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        subnet = str(lab.overlay().subnet)
        node = rec.targets[0]
        undo = _apply_plan(lab, rec, {node: [("INPUT", f"-s {subnet}"), ("OUTPUT", f"-d {subnet}")]})
        return Applied(f"{node} cut from every host of the LAN; serial untouched", undo)

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        return _heal_plan(lab, rec)

    def cuts(self, lab: Lab, rec: FaultRecord) -> set[Cut]:
        node = rec.targets[0]
        others = [h for h in lab.host_names if h != node]
        return {Cut(node, o, "lan") for o in others} | {Cut(o, node, "lan") for o in others}


# --------------------------------------------------------------------------- a poor link

RATE = re.compile(r"^\d+(\.\d+)?(bit|kbit|mbit|gbit)$")


class LossyLan(FaultKind):
    name = "lan"
    summary = "a lossy (--loss PCT) or slow (--rate RATE) LAN for one node"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        node = need_node(lab, rec.targets[0])
        loss, rate, delay = rec.args.get("loss"), rec.args.get("rate"), rec.args.get("delay")
        if delay:
            raise UsageError("--delay: this kernel has no netem (sch_netem), the only qdisc that delays "
                             "packets; loss and rate work (docs/faults.md)")
        if loss is None and rate is None:
            raise UsageError("lan: give --loss PCT and/or --rate RATE")
        if loss is not None and not 0 < float(loss) <= 100:
            raise UsageError(f"--loss {loss}: a percentage above 0, at most 100")
        if rate is not None and not RATE.match(str(rate)):
            raise UsageError(f"--rate {rate!r}: a rate like 64kbit, 1mbit (tc's units)")
        need_running(lab, node)
        refuse_same(active, rec, f"{node}'s LAN is degraded")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        node = rec.targets[0]
        overlay = lab.overlay()
        undo: dict[str, Any] = {}
        said = []
        loss, rate = rec.args.get("loss"), rec.args.get("rate")
        if loss is not None:
            p = f"{float(loss) / 100:.4f}"
            stat = f"-m statistic --mode random --probability {p}"
            subnet = str(overlay.subnet)
            rules = [("INPUT", f"-s {subnet} {stat}"), ("OUTPUT", f"-d {subnet} {stat}")]
            undo = _apply_plan(lab, rec, {node: rules})
            said.append(f"{loss} % of packets lost each way")
        if rate is not None:
            dev = outer_ifname(lab, node, str(overlay.address(node)))
            try:
                run(lab, node, ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", str(rate),
                                "burst", "16kb", "latency", "200ms"], "adding a TBF qdisc")
            except FaultError:
                if loss is not None:
                    _heal_plan(lab, rec.with_(undo=undo))
                raise
            undo["tbf"] = dev
            said.append(f"what {node} sends limited to {rate}")
        return Applied(f"{node}'s LAN: " + ", ".join(said), undo)

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        node = rec.targets[0]
        said = [_heal_plan(lab, rec)] if rec.undo.get("hosts") else []
        dev = rec.undo.get("tbf")
        if dev:
            if lab.state(node).status != "running":
                said.append(f"{node} is down: its qdisc went with it")
            else:
                res = lab.exec(node, ["tc", "qdisc", "del", "dev", dev, "root"])
                said.append("rate limit removed" if res.ok else f"no rate limit left ({res.output.strip()})")
        return "; ".join(said) or "nothing to undo"
