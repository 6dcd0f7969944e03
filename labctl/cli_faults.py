"""The fault verbs of ``labctl``: parse, call the nemesis (labctl/faults), print. Nothing else.

Every verb names its targets in the topology's terms (nodes, hosts, cables) and takes ``--for
DURATION`` (hold the fault, heal it after DURATION or at Ctrl-C) and ``--json``. Exit codes as for
every verb: 2 a name or option that is wrong (nothing touched), 3 the lab's state does not allow
it (not up, node down, already cut), 1 the fault could not be applied (what was done is undone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labctl.errors import LabctlError

OUT = Console(highlight=False, soft_wrap=True)
ERR = Console(stderr=True, highlight=False, soft_wrap=True)

Verb = Callable[[str, str, str, str], argparse.ArgumentParser]
Opt = Callable[[argparse.ArgumentParser], None]
LabOpt = Callable[[argparse.ArgumentParser, str], None]


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _duration(text: str) -> float:
    from labctl.topology.units import parse_duration_ms

    try:
        return parse_duration_ms(text) / 1000
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None


def _when(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}" if t else "-"


# --------------------------------------------------------------------------- applying


def _targets_args(kind: str, a: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    """What a verb's arguments mean to the nemesis: (targets, args)."""
    if kind == "partition":
        return [a.a, a.b], {"oneway": a.oneway}
    if kind.startswith("serial-"):
        return list(a.cables), ({"rate": a.rate} if kind == "serial-noise" else {})
    if kind == "kill":
        return [a.node], {"process": a.process}
    if kind == "lan":
        return [a.node], {"loss": a.loss, "rate": a.rate, "delay": a.delay}
    if kind == "disk":
        return [a.node], {"errors": a.errors, "after": a.after, "slow": a.slow, "hang": a.hang}
    if kind == "shutdown":
        return [a.node], {"stop_timeout": a.stop_timeout}
    return [a.node], {}


def _first_host(kind: str, targets: list[str]) -> str | None:
    return None if kind.startswith("serial-") else targets[0]


def run_fault(kind: str, a: argparse.Namespace) -> int:
    from labctl import faults
    from labctl.faults.kinds.serial import resolve
    from labctl.runtime.lab import Lab

    targets, args = _targets_args(kind, a)
    lab = Lab.find(a.lab, _first_host(kind, targets))
    if kind.startswith("serial-"):
        targets = list(resolve(lab, targets))
    if kind == "disk" and a.heal:
        records = faults.end(lab, "disk", targets)
        _applied(a, lab, records[0], kind, healed_by_verb=True)
        return 0
    hold = getattr(a, "hold", None)
    rec = faults.apply(lab, kind, targets, args, hold=hold)
    holding = hold is not None and rec.active
    report = _applied(a, lab, rec, kind, healed_by_verb=rec.kind != kind, emit=not holding)
    if not holding:
        return 0
    healed, failed = _hold(a, lab, rec)
    if a.json:
        _emit({**report, **_healed_json(healed, failed)})
    return _print_healed(a, healed, failed, quiet=a.json)


def _applied(a: argparse.Namespace, lab: Any, rec: Any, verb: str, healed_by_verb: bool,
             emit: bool = True) -> dict[str, Any]:
    """Print what was done, then wait when asked (fail and shutdown --wait; recover unless --no-wait);
    the JSON report (printed unless ``emit`` is false: --for prints one report at the end)."""
    report: dict[str, Any] = {"lab": lab.name, "fault": rec.as_dict()}
    if not a.json:
        if healed_by_verb:
            OUT.print(f"[bold]{escape(rec.describe())}[/] (fault {rec.id}) healed: {escape(rec.detail)}")
        else:
            tail = f" · fault {rec.id}: labctl heal {rec.id}" if rec.active else ""
            OUT.print(f"[bold]{escape(rec.describe())}[/]: {escape(rec.detail)} ({rec.took:.1f} s){tail}")
    recovering = verb == "recover"
    wait = getattr(a, "wait", False) or (recovering and not a.no_wait)
    if wait:
        report["waited"] = _wait_after(a, lab, rec, recovering)
    if a.json and emit:
        _emit(report)
    if wait and not report["waited"]["ok"]:
        raise LabctlError(f"{report['waited']['for']}: not within {a.timeout:.0f} s")
    return report


def _wait_after(a: argparse.Namespace, lab: Any, rec: Any, recovering: bool) -> dict[str, Any]:
    from labctl.observe import wait_until

    node = rec.targets[0]
    survivors = [n for n in lab.node_names if n != node]
    cond: Callable[[Any], bool]
    if recovering:
        what = "the cluster to be whole again"

        def cond(s: Any) -> bool:
            return bool(s.settled)
    else:
        what = f"{', '.join(survivors)} to hold every resource and serve the share"

        def cond(s: Any) -> bool:
            return len(survivors) == 1 and bool(s.served_by(survivors[0]))

    start = (rec.healed or rec.since) if recovering else rec.since
    with ERR.status(f"waiting for {what}") as status:
        ok, st = wait_until(lab, cond, a.timeout,
                            on_poll=lambda s: status.update(f"waiting for {what}: {_brief(s)}"))
    seconds = round(time.time() - (start or time.time()), 1)
    if not a.json:
        if ok:
            verb = "recover" if recovering else rec.kind
            OUT.print(f"{what}: [green]done[/] {seconds:.1f} s after the {verb}")
        else:
            from labctl.cli import print_status

            print_status(st)
    return {"for": what, "ok": ok, "seconds": seconds, "status": st.as_dict()}


def _brief(s: Any) -> str:
    nodes = ", ".join(f"{n.name} {n.state}/{n.heartbeat}" for n in s.nodes)
    res = ", ".join(f"{r.kind}:{'+'.join(r.holders) or '-'}" for r in s.resources)
    share = "serving" if s.share and s.share.serving else "not serving"
    return f"{nodes}; {res}; share {share}"


def _hold(a: argparse.Namespace, lab: Any, rec: Any) -> tuple[list[Any], list[tuple[Any, Exception]]]:
    """Keep ``rec`` until its ``until`` (the user asked for that long: a deadline, not a poll), or
    until Ctrl-C; then heal it."""
    from labctl import faults

    if not a.json:
        ERR.print(f"holding fault {rec.id} until {_when(rec.until)} (Ctrl-C heals it now)")
    try:
        time.sleep(max(0.0, (rec.until or time.time()) - time.time()))
    except KeyboardInterrupt:
        if not a.json:
            ERR.print("[yellow]interrupted: healing now[/]")
    return faults.heal(lab, rec.id)


def _healed_json(healed: list[Any], failed: list[tuple[Any, Exception]]) -> dict[str, Any]:
    return {"healed": [r.as_dict() for r in healed],
            "failed": [{"fault": r.as_dict(), "error": str(e)} for r, e in failed]}


# --------------------------------------------------------------------------- faults and heal


def cmd_faults(a: argparse.Namespace) -> int:
    from labctl import faults
    from labctl.runtime.lab import Lab

    lab = Lab.find(a.lab)
    chosen = faults.records(lab) if a.all else faults.active(lab)
    if a.json:
        _emit({"lab": lab.name, "faults": [r.as_dict() for r in chosen]})
        return 0
    if not chosen:
        OUT.print(f"lab {lab.name}: no fault is active" + ("" if a.all else " (--all: the history)"))
        return 0
    t = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("id", "fault", "in effect since", "healed", "what"):
        t.add_column(col)
    for r in chosen:
        state = _when(r.healed) if r.healed else ("[red]active[/]" if r.since else "[yellow]applying?[/]")
        if r.active and r.until:
            state += f"\n[dim]heals at {_when(r.until)}[/]"
        t.add_row(r.id, escape(r.describe()), _when(r.since), state, escape(r.detail))
    OUT.print(t)
    return 0


def cmd_heal(a: argparse.Namespace) -> int:
    from labctl import faults
    from labctl.runtime.lab import Lab

    lab = Lab.find(a.lab)
    healed, failed = faults.heal(lab, a.which)
    if not healed and not failed and not a.json and not a.wait:
        OUT.print(f"lab {lab.name}: no fault is active")
        return 0
    code = _print_healed(a, healed, failed, quiet=a.wait and a.json)
    if a.wait:
        waited = _wait_whole(a, lab)
        if a.json:
            _emit({**_healed_json(healed, failed), "waited": waited})
        if not waited["ok"]:
            raise LabctlError(f"{waited['for']}: not within {a.timeout:.0f} s")
    return code


def _wait_whole(a: argparse.Namespace, lab: Any) -> dict[str, Any]:
    from labctl.observe import wait_until

    what = "the cluster to be whole again"
    started = time.time()
    with ERR.status(f"waiting for {what}") as status:
        ok, st = wait_until(lab, lambda s: bool(s.settled), a.timeout,
                            on_poll=lambda s: status.update(f"waiting for {what}: {_brief(s)}"))
    seconds = round(time.time() - started, 1)
    if not a.json:
        if ok:
            OUT.print(f"{what}: [green]done[/] in {seconds:.1f} s")
        else:
            from labctl.cli import print_status

            print_status(st)
    return {"for": what, "ok": ok, "seconds": seconds, "status": st.as_dict()}


def _print_healed(a: argparse.Namespace, healed: list[Any], failed: list[tuple[Any, Exception]],
                  quiet: bool = False) -> int:
    if quiet:
        pass
    elif a.json:
        _emit(_healed_json(healed, failed))
    else:
        for r in healed:
            said = r.detail.rsplit("; healed: ", 1)[-1]
            OUT.print(f"[green]healed[/] {r.id} [bold]{escape(r.describe())}[/]: {escape(said)}")
        for r, e in failed:
            ERR.print(f"[red]not healed[/] {r.id} {escape(r.describe())}: {escape(str(e))}")
    if failed:
        codes = {getattr(e, "exit_code", 1) for _, e in failed}
        return 3 if codes == {3} else 1
    return 0


# --------------------------------------------------------------------------- the parser


def add_parsers(verb: Verb, lab_opt: LabOpt, json_opt: Opt) -> None:
    from labctl.faults.kinds import KINDS
    from labctl.faults.kinds.process import PROCESSES

    def common(q: argparse.ArgumentParser, kind: str, hold: bool = True) -> None:
        lab_opt(q, "the only lab with that host")
        if hold:
            q.add_argument("--for", dest="hold", type=_duration, metavar="DURATION",
                           help="hold the fault this long (30s, 500ms), then heal it; "
                           "Ctrl-C heals it at once")
        json_opt(q)
        q.set_defaults(func=lambda a: run_fault(kind, a))

    def node_verb(kind: str, epilog: str, hold: bool = True) -> argparse.ArgumentParser:
        q = verb(kind, KINDS[kind].summary, (KINDS[kind].__doc__ or KINDS[kind].summary).strip(),
                 epilog)
        q.add_argument("node", help="a node of the lab (fred, barney in two-node)")
        common(q, kind, hold)
        return q

    def waits(q: argparse.ArgumentParser, default_wait: bool) -> None:
        if default_wait:
            q.add_argument("--no-wait", action="store_true", help="return once the container runs")
        else:
            q.add_argument("--wait", action="store_true",
                           help="wait until the peer holds every resource and the share serves; "
                           "print the time")
        q.add_argument("--timeout", type=float, default=180.0, metavar="S",
                       help="how long to wait (default 180)")

    q = node_verb("fail", "docker kill: the node dies at once, releasing nothing. Its peer declares it "
                  "dead after heartbeat's deadtime and takes the group over.\n"
                  "example:\n  labctl fail fred --wait")
    waits(q, False)
    q = node_verb("shutdown", "The seed's step 11: heartbeat stops the group (smb, the mount, memexpd, "
                  "the IP) and tells its peer, which takes over without waiting for deadtime.\n"
                  "example:\n  labctl shutdown fred --wait")
    waits(q, False)
    q.add_argument("--stop-timeout", type=float, metavar="S",
                   help="seconds heartbeat gets to release before SIGKILL (default 120)")
    q = node_verb("recover", "Power back for a node cut or shut down (heals that fault) or down for any "
                  "other reason. Waits until the cluster is whole again unless --no-wait.\n"
                  "example:\n  labctl recover fred", hold=False)
    waits(q, True)

    node_verb("freeze", "A freeze longer than deadtime: the peer takes over while the frozen node still "
              "holds everything. Shorter: nothing happens.\nexamples:\n  labctl freeze fred --for 20s\n"
              "  labctl freeze fred; labctl status; labctl thaw fred")
    node_verb("thaw", "example:\n  labctl thaw fred", hold=False)

    q = verb("partition", KINDS["partition"].summary,
             "Drop the LAN traffic between two hosts of the lab (nodes or the client): both ways, or with "
             "--oneway only what A sends to B. The serial cable stays up: heartbeat still hears its peer "
             "there, so no failover; add `labctl serial cut` for split brain.",
             "examples:\n  labctl partition fred barney\n  labctl partition fred client --oneway --for 30s")
    q.add_argument("a", metavar="A", help="a host (node or client)")
    q.add_argument("b", metavar="B", help="another host")
    q.add_argument("--oneway", action="store_true", help="cut only what A sends to B")
    common(q, "partition")
    node_verb("isolate", "example:\n  labctl isolate barney --for 60s")

    q = verb("lan", KINDS["lan"].summary,
             "Degrade one node's LAN: --loss drops that share of packets in each direction (iptables "
             "statistic), --rate limits what the node sends (tc TBF). --delay is refused: this kernel "
             "has no netem.",
             "examples:\n  labctl lan barney --loss 20 --for 60s\n  labctl lan fred --rate 256kbit")
    q.add_argument("node", help="a node of the lab")
    q.add_argument("--loss", type=float, metavar="PCT", help="percent of packets lost, each way")
    q.add_argument("--rate", metavar="RATE", help="what the node may send: 64kbit, 1mbit, ...")
    q.add_argument("--delay", type=float, metavar="MS", help="not possible here (no netem): refused")
    common(q, "lan")

    q = verb("serial", "the serial cable: cut, restore, noise",
             "The null-modem cable heartbeat uses beside the LAN. cut: unplugged (both ends hear "
             "silence, never EOF); restore: plugged back in and clean; noise: each byte replaced by a "
             "random one with probability --rate. CABLE: fred-barney (its ends, either order) or its "
             "index in the topology; without one, every cable of the lab.",
             "examples:\n  labctl serial cut\n  labctl serial noise --rate 0.05 --for 30s\n"
             "  labctl serial restore")
    ss = q.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, kind in (("cut", "serial-cut"), ("restore", "serial-restore"), ("noise", "serial-noise")):
        r = ss.add_parser(action, help=KINDS[kind].summary, description=KINDS[kind].summary)
        r.add_argument("cables", nargs="*", metavar="CABLE", help="fred-barney, or the cable's index")
        if action == "noise":
            r.add_argument("--rate", type=float, required=True, metavar="R",
                           help="fraction of bytes garbled, above 0 and at most 1")
        common(r, kind, hold=action != "restore")

    q = verb("kill", KINDS["kill"].summary,
             "SIGKILL one daemon. heartbeat (haresources mode) does not watch resources: a killed "
             "memexpd or smbd stays dead and nobody fails over. Healing the fault power-cycles the node.",
             "examples:\n  labctl kill fred memexpd\n  labctl kill barney heartbeat")
    q.add_argument("node", help="a node of the lab")
    q.add_argument("process", choices=sorted(PROCESSES), metavar="PROCESS",
                   help="one of: " + ", ".join(PROCESSES))
    common(q, "kill")

    q = verb("disk", KINDS["disk"].summary,
             "The shared disk fails for this node only (injected in ogfs's block layer: the kernel has no "
             "device-mapper); the other node's I/O is untouched. --heal makes it healthy again.",
             "examples:\n  labctl disk fred --errors write\n  labctl disk fred --errors read --after 100\n"
             "  labctl disk fred --slow 50 --for 60s\n  labctl disk fred --heal")
    q.add_argument("node", help="a node of the lab")
    how = q.add_mutually_exclusive_group(required=True)
    how.add_argument("--errors", choices=["read", "write", "all"], help="I/O of that kind fails (EIO)")
    how.add_argument("--slow", type=int, metavar="MS", help="every I/O waits MS milliseconds first")
    how.add_argument("--hang", action="store_true", help="every I/O blocks until healed")
    how.add_argument("--heal", action="store_true", help="end this node's disk fault")
    q.add_argument("--after", type=int, metavar="N", help="with --errors: let N more I/Os through first")
    common(q, "disk")

    node_verb("standby", "A planned move: the group leaves this node at once, no deadtime.\n"
              "example:\n  labctl standby fred", hold=False)
    node_verb("takeover", "example:\n  labctl takeover barney", hold=False)
    node_verb("stomith-ack", "The seed's STOMITH: manual step: make sure the node is down, then say so, "
              "and memexpd lets the survivors recover its journal.\nexample:\n  labctl fail fred; "
              "labctl stomith-ack fred", hold=False)

    q = verb("faults", "the lab's active faults (--all: every fault ever applied)",
             "Faults labctl applied to the lab and has not healed, from the lab's own records: any "
             "process in any directory sees the same ones. A fault shown as `applying?` was interrupted "
             "while it was applied: heal undoes whatever of it took effect.",
             "JSON: faults[].id/.kind/.targets/.args/.requested/.since/.healed/.active/.command/.detail")
    lab_opt(q, "the only lab on the engine")
    q.add_argument("--all", action="store_true", help="healed faults too: the lab's fault history")
    json_opt(q)
    q.set_defaults(func=cmd_faults)

    q = verb("heal", "undo one fault (its id) or all of them",
             "Undo an active fault, or every one of them, newest first: thaw, plug back, take rules out, "
             "power back on. One that cannot be healed (its node is frozen) is reported, the others go on.",
             "examples:\n  labctl heal all\n  labctl heal 3fa2c1")
    q.add_argument("which", metavar="ID|all", help="a fault's id (labctl faults), or all")
    q.add_argument("--wait", action="store_true",
                   help="then wait until the cluster is whole and settled (both nodes up, every link up, "
                   "one holder per resource, the share serving)")
    q.add_argument("--timeout", type=float, default=180.0, metavar="S", help="how long to wait (default 180)")
    lab_opt(q, "the only lab on the engine")
    json_opt(q)
    q.set_defaults(func=cmd_heal)

