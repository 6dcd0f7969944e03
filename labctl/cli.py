"""The ``labctl`` command: one small function per verb (parse, call one layer, print, exit code).

Exit codes: 0 done; 1 something failed (the engine, an image build, a lab that did not come up);
2 bad input (a topology, a name, an option: nothing was created); 3 the lab is not in a state that
allows it (already up, not up, node already down); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labctl.errors import LabctlError

OUT = Console(highlight=False, soft_wrap=True)
ERR = Console(stderr=True, highlight=False, soft_wrap=True)

SESSION = r"""
a session (the 2003 recipe: fred and barney share \\fscluster\ogfs):
  labctl up two-node            build the images if missing, boot the lab, wait until the share serves
  labctl status                 nodes, heartbeat links both ways, who holds each resource, the share
  labctl exec client -- smbclient //fscluster/ogfs -N -c 'put /etc/os-release hello.txt'
  labctl fail fred              power cut: barney takes everything over after heartbeat's deadtime
  labctl status                 barney holds every resource; the share serves again
  labctl recover fred           power back: fred boots, rejoins and (auto_failback on) takes it back
  labctl down                   remove everything the lab created

topologies: `two-node` (the seed) and `trio` ship with labctl; a path to a .yaml file works too
(format: docs/topology.md). Exit codes: 0 ok, 1 failure, 2 bad input (nothing created),
3 wrong lab state (already up, not up, ...), 130 interrupted.
"""


# --------------------------------------------------------------------------- helpers


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _load(ref: str, profile: str | None) -> Any:
    from labctl.topology import load_topology

    try:
        return load_topology(ref, profile)
    except KeyError:
        raise _bad(f"--profile {profile!r}: the topology has no such profile") from None


def _bad(message: str) -> LabctlError:
    from labctl.errors import UsageError

    return UsageError(message)


class _BuildView:
    """Image build progress: a spinner with the current step, a line per finished image."""

    def __init__(self, status: Any) -> None:
        self.status = status

    def __call__(self, kind: str, line: str) -> None:
        if line.startswith(("building ", "built ")):
            ERR.print(f"[cyan]image[/] {escape(line)}")
        elif line.startswith("Step ") or line.startswith("$ mmdebstrap") or "importing" in line:
            self.status.update(f"building the {kind} image: {escape(line[:100])}")


def _progress(status: Any) -> Any:
    from labctl.runtime.teardown import Progress

    return Progress(
        build=_BuildView(status),
        step=lambda text: ERR.print(f"[green]•[/] {escape(text)}"),
        wait=lambda text: status.update(escape(text[:160])),
    )


# --------------------------------------------------------------------------- verbs


def cmd_up(a: argparse.Namespace) -> int:
    from labctl import lifecycle

    topology = _load(a.topology, a.profile)
    name = a.lab or topology.name
    pool = lifecycle.subnet_pool(a.pool)
    started = time.monotonic()
    with ERR.status(f"lab {name}: checking the engine and the images") as status:
        result = lifecycle.up(
            topology,
            lab=a.lab,
            lockproto=a.lockproto,
            pool=pool,
            no_cache=a.no_cache,
            keep_on_failure=a.keep_on_failure,
            serve_timeout=a.timeout,
            progress=_progress(status),
        )
    total = time.monotonic() - started
    if a.json:
        _emit_json(
            {
                "lab": result.lab,
                "topology": a.topology,
                "profile": topology.heartbeat.name,
                "images": result.images,
                "seconds": {"total": round(total, 1), "images": round(result.seconds_images, 1),
                            "serving_after_boot": round(result.seconds_serving, 1)},
                "share": {"unc": result.share.unc, "serving": result.share.serving},
                "outer_subnet": str(result.plan.network.subnet),
            }
        )
        return 0
    OUT.print(
        f"[bold green]lab {result.lab} is up[/] in {total:.0f} s ({result.seconds_images:.0f} s images, "
        f"{result.seconds_serving:.0f} s boot until the share served): "
        f"{escape(result.share.unc)} serves from {topology.preferred_node.name}."
    )
    from labctl.runtime.lab import Lab

    alone = result.lab == topology.name and Lab.names() == [result.lab]
    flag = "" if alone else f" --lab {result.lab}"
    first = topology.preferred_node.name
    OUT.print(f"next: labctl status{flag} · labctl fail {first}{flag} · labctl down{flag}")
    return 0


def _colour(value: str, good: Sequence[str] = ("up", "running", "active"), bad: Sequence[str] = ()) -> str:
    if value in good:
        return f"[green]{escape(value)}[/]"
    if value in bad or value in ("dead", "down", "stopped", "exited", "missing", "absent"):
        return f"[red]{escape(value)}[/]"
    return f"[yellow]{escape(value)}[/]"


def print_status(st: Any) -> None:
    OUT.print(
        f"[bold]lab {st.lab}[/] ({escape(st.topology)}, profile {st.profile}, "
        f"lock protocol {st.lockproto}) · "
        f"cluster {st.cluster['name']} {st.cluster['ip']} · probed in {st.took:.1f} s"
    )
    nodes = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("node", "address", "container", "heartbeat", "links to peers", "holds"):
        nodes.add_column(col, no_wrap=col in ("node", "address"))
    for n in st.nodes:
        state = _colour(n.state)
        if n.how_down:
            state += f"\n[dim]{escape(n.how_down)}[/]"
        if n.withdrawn:
            state += "\n[bold red]mount withdrawn[/]"
        links = "\n".join(f"{lk.peer} {lk.medium} {_colour(lk.status)}"
                          + (f" [magenta](cut: {lk.cut_by})[/]" if lk.cut_by else "")
                          for lk in n.links) or "-"
        # heartbeat tracks what it holds only with auto_failback on/off; in legacy mode rscstatus
        # says "none" on the node that holds everything (docs/images.md), so it is left out
        show_rsc = n.rscstatus and st.auto_failback != "legacy"
        hb = _colour(n.heartbeat) + (f"\n[dim]rsc {escape(n.rscstatus)}[/]" if show_rsc else "")
        if n.error:
            hb += f"\n[red]{escape(n.error[:80])}[/]"
        holds = "\n".join(escape(h) for h in n.holds) or "-"
        nodes.add_row(n.name, n.ip, state, hb, links, holds)
    OUT.print(nodes)
    res = Table(box=None, pad_edge=False, header_style="bold")
    res.add_column("resource")
    res.add_column("holder(s)")
    for r in st.resources:
        if len(r.holders) > 1:
            who = f"[bold red]{', '.join(r.holders)} (split brain!)[/]"
        elif not r.holders:
            who = "[yellow]nobody[/]"
        else:
            who = f"[green]{r.holders[0]}[/]"
        res.add_row(escape(r.name), who)
    OUT.print(res)
    if st.share is not None:
        mark = "[green]serving[/]" if st.share.serving else "[red]not serving[/]"
        detail = escape(st.share.detail)
        OUT.print(f"share {escape(st.share.unc)} (from {st.client.name}): {mark} [dim]{detail}[/]")
    if st.split_brain:
        verdict = "[bold red]SPLIT BRAIN[/]: a resource has two holders"
    elif st.whole:
        pending = "" if st.settled else " [yellow](a resource transition is under way)[/]"
        verdict = "[green]whole[/]" + pending
    else:
        verdict = "[yellow]degraded[/]"
    OUT.print(f"cluster: {verdict}" + (" [dim](share not checked)[/]" if st.share is None else ""))
    for n in st.nodes:
        if n.withdrawn:
            OUT.print(f"[bold red]{escape(n.name)}'s mount is withdrawn[/]: {escape(n.withdrawn)}")
        for took in n.took:
            mark = "[bold yellow]" if "UNFENCED" in took else "[dim]"
            OUT.print(f"{mark}{escape(n.name)}'s mount: {escape(took)}[/]")
    for f in st.faults:
        state = "in effect" if f["since"] else "being applied?"
        OUT.print(f"[magenta]fault {f['id']}[/] {escape(f['command'])} ({state}): labctl heal {f['id']}")


def cmd_status(a: argparse.Namespace) -> int:
    from labctl.observe import collect
    from labctl.runtime.lab import Lab

    lab = Lab.find(a.lab)
    st = collect(lab, share=not a.no_share)
    if a.json:
        _emit_json(st.as_dict())
    else:
        print_status(st)
    return 0


def cmd_logs(a: argparse.Namespace) -> int:
    from labctl.observe import log_paths
    from labctl.runtime.lab import Lab

    lab = Lab.find(a.lab, a.host)
    role = lab.role_of(a.host)
    if a.what and role != "node":
        raise _bad(f"--what applies to nodes; {a.host} is the client (without --what: its output)")
    if a.what:
        chunks = lab.file_logs(a.host, log_paths(lab.topology, a.host, a.what, a.follow), a.follow, a.tail)
    else:
        chunks = lab.docker_logs(a.host, a.follow, a.tail)
    out = sys.stdout.buffer
    try:
        for chunk in chunks:
            out.write(chunk)
            out.flush()
    except BrokenPipeError:
        return 0
    return 0


def cmd_exec(a: argparse.Namespace) -> int:
    from labctl.runtime.lab import Lab

    argv = list(a.cmd)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise _bad("exec: no command given (labctl exec HOST -- CMD ARGS...)")
    lab = Lab.find(a.lab, a.host)
    lab.role_of(a.host)
    return lab.run_attached(a.host, argv, tty=a.tty, interactive=a.interactive)


def cmd_shell(a: argparse.Namespace) -> int:
    from labctl.runtime.lab import Lab

    lab = Lab.find(a.lab, a.host)
    lab.role_of(a.host)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    return lab.run_attached(a.host, ["bash", "-l"] if tty else ["sh"], tty=tty, interactive=True)


def cmd_render(a: argparse.Namespace) -> int:
    from labctl import lifecycle
    from labctl.plan import make_plan
    from labctl.render import new_secret, render_lab, write_lab
    from labctl.render.lan import overlay_for

    topology = _load(a.topology, a.profile)
    out = Path(a.out)
    pool = lifecycle.subnet_pool(a.pool)
    subnet = next(pool.subnets(new_prefix=24))
    secret = new_secret()
    plan = make_plan(topology, lab=a.lab, lockproto=a.lockproto, outer=subnet, secret=secret)
    # the plan's files plus each host's /etc/hosts (up gives it as Docker's extra_hosts: Docker owns
    # a container's /etc/hosts), to read and diff
    rendered = render_lab(topology, secret, lockproto=a.lockproto, overlay=overlay_for(topology, subnet))
    written = write_lab(rendered, out)
    plan_path = out / "plan.json"
    plan_path.write_text(json.dumps(plan.as_dict(), indent=2) + "\n", encoding="utf-8")
    written.append(plan_path)
    if a.json:
        _emit_json({"topology": a.topology, "out": str(out), "files": [str(p) for p in written]})
        return 0
    for path in written:
        OUT.print(str(path))
    extra = ", the power switch" if topology.cluster.stomith == "labctl" else ""
    OUT.print(f"[dim]{len(written)} files for {len(topology.nodes)} nodes, the client, the cable{extra} and "
              f"the disk helper of {topology.name} (profile {topology.heartbeat.name}, lock protocol "
              f"{a.lockproto}); "
              "plan.json is every network, volume and container up creates (the outer subnet is the "
              "pool's first: up takes the first free one); authkeys has a fresh secret[/]")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from ipaddress import IPv4Network

    from labctl.export.compose import (
        DEFAULT_SUBNET,
        PLACEHOLDER_SECRET,
        compose_project,
        differences,
        write_export,
    )
    from labctl.render.authkeys import new_secret, render_authkeys

    topology = _load(a.topology, a.profile)
    try:
        subnet = IPv4Network(a.subnet) if a.subnet else DEFAULT_SUBNET
    except ValueError as exc:
        raise _bad(f"--subnet {a.subnet!r}: {exc}") from None
    if subnet.prefixlen != 24 or not subnet.is_private:
        raise _bad(f"--subnet {subnet}: a private /24 (the lab's outer network)")
    secret = new_secret() if a.secret == "random" else (a.secret or PLACEHOLDER_SECRET)
    try:
        render_authkeys(secret)
    except ValueError as exc:
        raise _bad(f"--secret: {exc}") from None
    files = compose_project(topology, lab=a.lab, lockproto=a.lockproto, subnet=subnet, secret=secret)
    out = Path(a.out)
    if a.check:
        problems = differences(files, out)
        if a.json:
            _emit_json({"out": str(out), "current": not problems, "differences": problems})
        else:
            for line in problems:
                OUT.print(escape(line))
            OUT.print(f"{out}: " + ("[green]as a fresh export[/]" if not problems else
                                    f"[red]{len(problems)} differences from a fresh export[/]"))
        return 0 if not problems else 1
    written = write_export(files, out)
    if a.json:
        _emit_json({"topology": a.topology, "out": str(out), "files": [str(p) for p in written]})
        return 0
    OUT.print(f"wrote {len(written)} files to {escape(str(out))}: docker-compose.yml and files/ of lab "
              f"{a.lab or topology.name} (outer {subnet}); labctl build makes its images, then: cd "
              f"{escape(str(out))} && docker-compose up -d")
    return 0


def cmd_build(a: argparse.Namespace) -> int:
    from labctl.runtime import engine, images

    client = engine.connect()
    with ERR.status("checking the images") as status:
        tags = images.ensure_images(client, _BuildView(status), a.no_cache)
    if a.json:
        _emit_json(tags)
    else:
        for kind, tag in tags.items():
            OUT.print(f"{kind:6} {tag}")
    return 0


def cmd_down(a: argparse.Namespace) -> int:
    from labctl import lifecycle
    from labctl.runtime.lab import Lab

    name = a.lab
    if name is None:
        names = Lab.names()
        if not names:
            if a.json:
                _emit_json({"lab": None, "removed": {}})
            else:
                OUT.print("no lab on this engine: nothing to remove")
            return 0
        if len(names) > 1:
            raise _bad(f"several labs exist ({', '.join(names)}): say which with --lab NAME")
        name = names[0]
    with ERR.status(f"removing lab {name}") as status:
        progress = _progress(status)
        progress.step = (lambda text: None) if a.json else progress.step
        result = lifecycle.down(name, progress)
    if a.json:
        _emit_json({"lab": name, "removed": {"containers": result.containers, "networks": result.networks,
                                             "volumes": result.volumes, "loop_devices": result.loops}})
    elif result.nothing:
        OUT.print(f"lab {name}: nothing to remove")
    else:
        OUT.print(f"[bold]lab {name} removed[/]: {len(result.containers)} containers, {len(result.networks)} "
                  f"network(s), {len(result.volumes)} volumes, {len(result.loops)} loop devices")
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    from labctl.observe.labs import lab_summaries

    labs = lab_summaries()
    if a.json:
        _emit_json({"labs": [x.as_dict() for x in labs]})
        return 0
    if not labs:
        OUT.print("no lab on this engine (labctl up TOPOLOGY)")
        return 0
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ("lab", "topology", "profile", "lock", "state", "nodes", "holder", "outer subnet")
    for col in columns:
        table.add_column(col)
    for x in labs:
        # running nodes by name (green), the others with their state: "fred(exited) barney"
        nodes = " ".join(f"[green]{escape(n)}[/]" if s == "running"
                         else _colour(s).replace(escape(s), escape(f"{n}({s})"), 1)
                         for n, s in x.nodes.items()) or "-"
        if len(x.holders) > 1:
            holder = f"[bold red]{', '.join(x.holders)} (split brain!)[/]"
        else:
            holder = x.holders[0] if x.holders else "[yellow]nobody[/]"
        state = _colour(x.state, good=("up",), bad=("down", "incomplete"))
        table.add_row(x.name, x.topology or "?", x.profile, x.lockproto, state, nodes, holder, x.outer_subnet)
    OUT.print(table)
    return 0


# --------------------------------------------------------------------------- the parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("labctl")
    except PackageNotFoundError:
        return "(source checkout)"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=100)


def build_parser() -> argparse.ArgumentParser:
    from labctl.observe import LOG_SOURCES
    from labctl.render.disk import LOCKPROTOS

    p = argparse.ArgumentParser(
        prog="labctl",
        formatter_class=_Formatter,
        description="A Docker lab of the 2003 OpenGFS failover recipe: two nodes watched by Linux-HA "
        "heartbeat over a LAN and a serial cable, one resource group (cluster IP, lock server, "
        "OpenGFS mount, Samba) that moves to the survivor when a node dies.",
        epilog=SESSION,
    )
    p.add_argument("--version", action="version", version=f"labctl {_version()}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    def verb(name: str, help_: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description, epilog=epilog,
                              formatter_class=_Formatter)

    def lab_opt(q: argparse.ArgumentParser, default: str) -> None:
        q.add_argument("--lab", metavar="NAME", help=f"the lab's name (default: {default})")

    def pool_opt(q: argparse.ArgumentParser) -> None:
        q.add_argument("--pool", metavar="CIDR",
                       help="private network the lab's outer /24 is taken from (default: $LABCTL_POOL, "
                       "else 10.213.0.0/16). Docker only sees the outer subnet; the topology's own "
                       "addresses exist only inside the lab's hosts")

    def json_opt(q: argparse.ArgumentParser) -> None:
        q.add_argument("--json", action="store_true", help="print one JSON object for scripts")

    q = verb(
        "up",
        "build missing images, boot a lab, return when the share serves",
        "Create a lab from a topology and boot it: the images (built when missing, progress shown), an "
        "internal LAN, the shared disk (a sparse file in a volume, one loop device per partition, the "
        "OpenGFS cidev and filesystem made on it), the serial cable, the nodes and the client. Then the "
        "seed's steps 8-9: nothing mounted, no lock server running, heartbeat started on both nodes; the "
        "resource group comes up on the preferred node. Returns when the client lists the share and can "
        "write to it. Anything that fails, or Ctrl-C, removes everything this up created.",
        "examples:\n  labctl up two-node\n  labctl up two-node --profile fast --lab quick\n"
        "  labctl up ./my-lab.yaml\n"
        "  labctl up two-node --lab bob   # beside the first: the same addresses, its own LAN",
    )
    q.add_argument("topology", help="a shipped topology (two-node, trio) or a path to a .yaml file")
    lab_opt(q, "the topology's name")
    q.add_argument("--profile", help="heartbeat timing profile of the topology (e.g. fast: ~1 s detection)")
    q.add_argument("--lockproto", choices=LOCKPROTOS, default="memexp",
                   help="OpenGFS lock protocol of the new filesystem: memexp (the seed: the memexpd lock "
                   "server is a resource of the group) or nolock (no lock server: only one node mounts "
                   "at a time anyway under haresources; memexpd leaves the group). Default: memexp")
    q.add_argument("--no-cache", action="store_true",
                   help="rebuild the node and client images without the cache")
    pool_opt(q)
    q.add_argument("--timeout", type=float, metavar="S",
                   help="seconds to wait for the share to serve (default: initdead + deadtime + 150)")
    q.add_argument("--keep-on-failure", action="store_true",
                   help="when the lab does not come up, keep it to look at (labctl down removes it)")
    json_opt(q)
    q.set_defaults(func=cmd_up)

    q = verb(
        "status",
        "nodes, heartbeat links both ways, who holds each resource, the share",
        "One read-only snapshot: per node the container's state and heartbeat's view of every link to "
        "every peer (cl_status: LAN and serial); per resource of the haresources line the node(s) "
        "holding it (ResourceManager's own test; two holders is split brain, shown in red); the share as "
        "the client sees it (smbclient -L and a directory listing).",
        "JSON keys: lab, nodes[].name/.state/.heartbeat/.links[].peer/.medium/.status/.holds, "
        "resources[].name/.kind/.holders, share.serving/.unc/.detail, split_brain, whole",
    )
    lab_opt(q, "the only lab on the engine")
    q.add_argument("--no-share", action="store_true", help="skip the client's share check (faster)")
    json_opt(q)
    q.set_defaults(func=cmd_status)

    from labctl.cli_faults import add_parsers as fault_parsers

    fault_parsers(verb, lab_opt, json_opt)

    from labctl.cli_events import add_parser as events_parser

    events_parser(sub, verb, lab_opt, json_opt)

    q = verb(
        "logs",
        "a node's log (heartbeat, memexpd, ogfs, samba, serial)",
        "Without --what: the container's output (labctl-init shows heartbeat's log and the lab's own logs "
        "there). With --what: that daemon's log files inside the node, readable even when the node is down.",
        "sources:\n" + "\n".join(f"  {k:10} {v}" for k, v in LOG_SOURCES.items())
        + "\nexamples:\n  labctl logs barney --what heartbeat -n 50\n  labctl logs fred -f",
    )
    q.add_argument("host", help="a node, or the client")
    lab_opt(q, "the only lab with that host")
    q.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    q.add_argument("-n", "--tail", type=int, metavar="N", help="only the last N lines")
    q.add_argument("--what", choices=sorted(LOG_SOURCES), help="one daemon's log")
    q.set_defaults(func=cmd_logs)

    q = verb(
        "exec",
        "run a command in a node or the client",
        "Run CMD in a host of the lab (docker exec); its exit code is labctl's.",
        "examples:\n  labctl exec fred -- cl_status rscstatus\n"
        "  labctl exec client -- smbclient //fscluster/ogfs -N -c ls\n"
        "  echo hi | labctl exec -i client -- sh -c 'cat > /tmp/hi'",
    )
    q.add_argument("host", help="a node, or the client")
    lab_opt(q, "the only lab with that host")
    q.add_argument("-i", "--interactive", action="store_true", help="pass stdin to the command")
    q.add_argument("-t", "--tty", action="store_true", help="give the command a terminal")
    q.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    q.set_defaults(func=cmd_exec)

    q = verb("shell", "an interactive shell in a node or the client",
             "bash in a host of the lab, with a terminal when labctl has one.",
             "example:\n  labctl shell barney")
    q.add_argument("host", help="a node, or the client")
    lab_opt(q, "the only lab with that host")
    q.set_defaults(func=cmd_shell)

    q = verb(
        "render",
        "write the files a lab's hosts get, to read or diff",
        "Render every host's configuration (ogfscf.cf, ha.cf, haresources, authkeys, smb.conf, hosts) "
        "into DIR/<host>/etc/... Needs no Docker engine.",
        "example:\n  labctl render two-node --out /tmp/two-node\n"
        "  diff -r /tmp/two-node/fred /tmp/two-node/barney",
    )
    q.add_argument("topology", help="a shipped topology or a path to a .yaml file")
    q.add_argument("--out", required=True, metavar="DIR", help="where to write (created if missing)")
    q.add_argument("--profile", help="heartbeat timing profile")
    lab_opt(q, "the topology's name")
    q.add_argument("--lockproto", choices=LOCKPROTOS, default="memexp",
                   help="as for up: nolock renders the group without memexpd")
    pool_opt(q)
    json_opt(q)
    q.set_defaults(func=cmd_render)

    q = verb(
        "export",
        "write a lab as a docker-compose project (compose/two-node/ is one)",
        "Write the lab's plan (the one up applies) as a compose project for docker-compose 1.29: "
        "docker-compose.yml and files/, the rendered files of every container. A disk service makes, "
        "attaches and detaches the loop devices; the nodes make their partitions from its list. The "
        "export is reproducible: a fixed outer /24 (compose cannot pick a free one), a fixed "
        "placeholder heartbeat secret unless --secret is given. Needs no Docker engine.",
        "example:\n  labctl export compose two-node --out compose/two-node\n"
        "  cd compose/two-node && docker-compose up -d && labctl status --lab two-node\n"
        "  labctl export compose two-node --out compose/two-node --check   # exit 1 if it drifted",
    )
    q.add_argument("format", choices=["compose"], help="what to write (compose: docker-compose 1.29)")
    q.add_argument("topology", help="a shipped topology or a path to a .yaml file")
    q.add_argument("--out", required=True, metavar="DIR",
                   help="where to write (a new or empty directory, or an earlier export: its files/ is "
                   "replaced)")
    lab_opt(q, "the topology's name; LABCTL_LAB in the compose environment overrides it")
    q.add_argument("--profile", help="heartbeat timing profile")
    q.add_argument("--lockproto", choices=LOCKPROTOS, default="memexp", help="as for up")
    q.add_argument("--subnet", metavar="CIDR",
                   help="the outer /24, fixed in the file (default 10.213.255.0/24: the default pool's last)")
    q.add_argument("--secret", metavar="TEXT",
                   help="heartbeat's authkeys secret (default: a fixed placeholder, so the export is "
                   "reproducible; 'random' makes a fresh one)")
    q.add_argument("--check", action="store_true",
                   help="write nothing: exit 1 if DIR differs from a fresh export (content, executable bits)")
    json_opt(q)
    q.set_defaults(func=cmd_export)

    q = verb("list", "the labs on this engine: state, who holds the group",
             "Every lab on the engine (found by its labels): its topology, profile, lock protocol, state "
             "(up: every host running; degraded: a node is down; down; incomplete: an up is under way or "
             "was interrupted), each node's container state, the node(s) holding the cluster IP and the "
             "outer subnet Docker sees. Labs of one topology run side by side under different --lab names.",
             "example:\n  labctl up two-node --lab alice && labctl up two-node --lab bob && labctl list\n"
             "JSON: labs[].name/.topology/.profile/.lockproto/.state/.nodes/.client/.holders/.outer_subnet")
    json_opt(q)
    q.set_defaults(func=cmd_list)

    q = verb("build", "build the node and client images (only what is missing)",
             "Build labctl/base, labctl/node and labctl/client, tagged by a hash of their sources. `up` does "
             "this by itself; `build` is for doing it ahead of time.")
    q.add_argument("--no-cache", action="store_true", help="rebuild node and client without the cache")
    json_opt(q)
    q.set_defaults(func=cmd_build)

    q = verb("down", "remove everything a lab created",
             "Remove every container, loop device, volume and network labelled with the lab, and nothing "
             "else. Works from any directory, and after an up that was killed.")
    lab_opt(q, "the only lab on the engine")
    json_opt(q)
    q.set_defaults(func=cmd_down)
    return p


def _report(verb: str, text: str) -> None:
    lines = text.splitlines() or [text]
    ERR.print(f"[red]labctl {verb}:[/] {escape(lines[0])}")
    for line in lines[1:]:
        ERR.print(escape(line))


def hoist_lab(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """``--lab NAME`` (or ``--lab=NAME``) wherever it stands before ``--``: taken out of ``argv`` so
    ``labctl --lab x exec fred -- cmd`` and ``labctl exec fred --lab x -- cmd`` mean the same, and
    the command after ``--`` is never searched (its own ``--lab`` stays its own)."""
    out: list[str] = []
    lab: str | None = None
    it = iter(range(len(argv)))
    args = list(argv)
    for i in it:
        arg = args[i]
        if arg == "--":
            out += args[i:]
            break
        if arg == "--lab" and i + 1 < len(args):
            lab = args[i + 1]
            next(it, None)
        elif arg.startswith("--lab="):
            lab = arg.split("=", 1)[1]
        else:
            out.append(arg)
    return out, lab


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words, lab = hoist_lab(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(words)
    if lab is not None:
        if not hasattr(args, "lab"):
            parser.error(f"labctl {args.verb} takes no --lab")
        args.lab = lab
    try:
        return int(args.func(args))
    except LabctlError as exc:
        _report(args.verb, str(exc) or type(exc).__name__)
        return exc.exit_code
    except Exception as exc:
        # The engine's client library raises its own errors (docker.errors, requests, urllib3) where
        # a call was not wrapped: say what the engine answered, with the type so it can be found,
        # rather than a traceback. Anything else is a bug in labctl and keeps its traceback.
        if type(exc).__module__.split(".")[0] not in ("docker", "requests", "urllib3"):
            raise
        _report(args.verb, f"the Docker engine answered {type(exc).__name__}: {exc}")
        return 1
    except KeyboardInterrupt:
        ERR.print(f"[yellow]labctl {args.verb}: interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
