"""ogfs_tool: look at an ogfs filesystem, as gfs_tool does for GFS.

    ogfs_tool df MOUNTPOINT|DEVICE      space, inodes, journals, locking
    ogfs_tool journals DEVICE|MOUNTPOINT  each journal: clean or dirty, transactions to replay
    ogfs_tool getsb DEVICE|MOUNTPOINT     the superblock
    ogfs_tool counters MOUNTPOINT         the daemon's counters (commits, checkpoints, ...)
    ogfs_tool mount MOUNTPOINT            the mount: withdrawn (why), its disk lease, journals it took
    ogfs_tool lockdump [MOUNTPOINT|DEVICE]  memexpd's lock storage: holders, waiters, frozen locks
    ogfs_tool nodes [MOUNTPOINT|DEVICE]     memexpd's view of the nodes: live, expired, STOMITH, ...
    ogfs_tool stomith-ack NODE            tell memexpd that NODE (its IP or CID) has been reset
    ogfs_tool diskfault set|clear|show    make this node's view of the disk fail (lab only)
The lockdump, nodes and stomith-ack find memexpd through the cidev: -d CIDEV, or -c CONFIG (its
cidev: key; default /etc/ogfscf.cf), or the lock table of the ogfs filesystem named.
Add --json for a machine-readable answer.  `ogfs_tool diskfault -h` says more.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

from .. import cidev, config, diskfault, journal, mountopts
from ..blockdev import Device
from ..layout import BLOCK, SB_BLOCK, Superblock, unpack_rgrp, unpack_rindex
from ..memexp import protocol

DEFAULT_CONFIG = "/etc/ogfscf.cf"


class ToolError(Exception):
    pass


def device_of(target: str) -> tuple[str, str | None]:
    """(device, mount point or None) for a device path or an ogfs mount point."""
    real = os.path.realpath(target)
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if fstype == "fuse.ogfs" and real in (mnt, os.path.realpath(dev)):
                return dev, mnt
    if os.path.isdir(target):
        raise ToolError(f"{target}: not an ogfs mount point")
    if not os.path.exists(target):
        raise ToolError(f"{target}: no such device or mount point")
    return target, None


def ask_daemon(mountpoint: str, req: str = "info") -> dict[str, Any]:
    path = mountopts.run_paths(mountpoint).sock
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(req.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        raise ToolError(f"{mountpoint}: the ogfs daemon does not answer on {path} ({e.strerror})") from None
    return json.loads(buf)


def mount_state(target: str) -> dict[str, Any]:
    """What the daemon of a mount says of itself: its journal, withdrawn or not and why, its
    disk lease, and the journals it took from other nodes (docs/ogfs.md, "Fencing")."""
    _dev, mnt = device_of(target)
    if mnt is None:
        raise ToolError(f"{target}: not an ogfs mount point")
    info = ask_daemon(mnt)
    keys = ("mountpoint", "device", "jid", "hostdata", "lockproto", "first", "withdrawn", "lease", "fences")
    return {k: info.get(k) for k in keys}


def print_mount(st: dict[str, Any]) -> None:
    print(f"{st['mountpoint']}: {st['device']}, journal {st['jid']}, lockproto {st['lockproto']}"
          + (", first mounter" if st.get("first") else ""))
    print(f"  withdrawn: {st['withdrawn']}" if st.get("withdrawn") else "  writing")
    lease = st.get("lease")
    if lease:
        print(f"  disk lease: mount {lease['mount_id']}, {lease['renewals']} renewal(s)"
              + (f", FENCED: {lease['fenced']}" if lease.get("fenced") else ""))
    for f in st.get("fences") or []:
        print(f"  took {f['text']}")


def read_sb(dev: Device) -> Superblock:
    try:
        return Superblock.unpack(dev.read(SB_BLOCK))
    except Exception as e:  # noqa: BLE001
        raise ToolError(f"{dev.path}: no ogfs filesystem ({e})") from None


def getsb(target: str) -> dict[str, Any]:
    devpath, _ = device_of(target)
    dev = Device(devpath, readonly=True)
    try:
        sb = read_sb(dev)
        return {"device": devpath, "uuid": sb.uuid_str, "block_size": sb.block_size,
                "total_blocks": sb.total_blocks, "lockproto": sb.lockproto, "locktable": sb.locktable,
                "root_inode": sb.root, "rindex_start": sb.rindex_start, "resource_groups": sb.rgrp_count,
                "journals": [{"jid": i, "start": j.start, "blocks": j.length}
                             for i, j in enumerate(sb.journals)]}
    finally:
        dev.close()


def journals(target: str) -> list[dict[str, Any]]:
    devpath, _ = device_of(target)
    dev = Device(devpath, readonly=True)
    try:
        sb = read_sb(dev)
        out = []
        for jid, region in enumerate(sb.journals):
            state, n = journal.journal_state(dev, region, jid, sb.uuid)
            out.append({"jid": jid, "state": state, "transactions": n,
                        "size_mb": region.length * BLOCK // (1 << 20)})
        return out
    finally:
        dev.close()


def df(target: str) -> dict[str, Any]:
    devpath, mnt = device_of(target)
    dev = Device(devpath, readonly=True)
    try:
        sb = read_sb(dev)
        ri = unpack_rindex([dev.read(sb.rindex_start + i) for i in range(sb.rindex_blocks)], sb.rgrp_count)
        total = free = dinodes = 0
        for e in ri:
            _gen, f, d, _u, _bm = unpack_rgrp(dev.read(e.header))
            total, free, dinodes = total + e.data_count, free + f, dinodes + d
    finally:
        dev.close()
    out: dict[str, Any] = {"device": devpath, "mountpoint": mnt, "block_size": BLOCK,
                           "lockproto": sb.lockproto, "locktable": sb.locktable,
                           "journals": len(sb.journals), "resource_groups": sb.rgrp_count,
                           "data_blocks": total, "free_blocks": free, "used_blocks": total - free,
                           "inodes": dinodes}
    if mnt:
        info = ask_daemon(mnt)
        st = info["statfs"]  # the daemon's live view includes what is not committed yet
        out.update(free_blocks=st["bfree"], used_blocks=st["blocks"] - st["bfree"],
                   mounted_host_data=f"jid={info['jid']}:hostdata={info['hostdata'] or ''}")
    return out


def print_df(d: dict[str, Any]) -> None:
    pct = 100 * d["used_blocks"] // max(d["data_blocks"], 1)
    print(f"{d['mountpoint'] or d['device']}:\n"
          f"  SB lock proto = \"{d['lockproto']}\"\n"
          f"  SB lock table = \"{d['locktable']}\"\n"
          f"  Block size = {d['block_size']}\n"
          f"  Journals = {d['journals']}\n"
          f"  Resource Groups = {d['resource_groups']}\n"
          + (f"  Mounted host data = \"{d['mounted_host_data']}\"\n" if d.get("mounted_host_data") else "")
          + f"\n  Type           Total          Used           Free           use%\n"
          f"  ------------------------------------------------------------------\n"
          f"  data           {d['data_blocks']:<15}{d['used_blocks']:<15}{d['free_blocks']:<15}{pct}%\n"
          f"  inodes         {d['inodes']}")


# -- memexpd: lockdump, nodes, stomith-ack ---------------------------------------------------------

def cluster_config(config_path: str | None, cidev_path: str | None,
                   target: str | None) -> config.ClusterConfig:
    """The cluster config on the cidev: -d, else the lock table of the filesystem named, else the
    cidev: of the config file (-c, default /etc/ogfscf.cf)."""
    if cidev_path is None and target is not None:
        devpath, _ = device_of(target)
        dev = Device(devpath, readonly=True)
        try:
            sb = read_sb(dev)
        finally:
            dev.close()
        if sb.lockproto != "memexp":
            raise ToolError(f"{target}: lock protocol {sb.lockproto}: there is no lock server")
        cidev_path = sb.locktable
    if cidev_path is None:
        path = config_path or DEFAULT_CONFIG
        try:
            with open(path) as f:
                cidev_path = config.parse(f.read(), source=path).cidev
        except OSError as e:
            raise ToolError(f"{path}: {e.strerror} (name the cidev with -d)") from None
        except config.ConfigError as e:
            raise ToolError(str(e)) from None
    try:
        return cidev.read_config(cidev_path)
    except cidev.CidevError as e:
        raise ToolError(str(e)) from None


def ask_memexpd(cfg: config.ClusterConfig, op: str, **fields: Any) -> dict[str, Any]:
    """One request to memexpd on lockdev (no HELLO: STATUS and STOMITH_ACK need none)."""
    try:
        with socket.create_connection((cfg.lockdev_ip, cfg.lockdev_port), timeout=10) as s:
            protocol.send(s, op, **fields)
            reply = protocol.recv(s)
    except (OSError, ConnectionError) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise ToolError(f"memexpd at {cfg.lockdev} does not answer ({why}): is the memexpd resource "
                        "running on the cluster IP?") from None
    except protocol.ProtocolError as e:
        raise ToolError(f"memexpd at {cfg.lockdev}: {e}") from None
    if reply.get("op") == "ERROR":
        raise ToolError(f"memexpd: {reply.get('reason')}")
    reply.pop("v", None)
    return reply


def memexpd_status(cfg: config.ClusterConfig) -> dict[str, Any]:
    st = ask_memexpd(cfg, "STATUS")
    st.pop("op", None)
    return st


def stomith_ack(cfg: config.ClusterConfig, who: str) -> dict[str, Any]:
    node = cfg.node_by_ip(who) or (cfg.node_by_cid(int(who)) if who.isdigit() else None)
    if node is None:
        known = ", ".join(f"{n.ip} (cid {n.cid})" for n in cfg.nodes)
        raise ToolError(f"{who} is not a node of the cidev (nodes: {known})")
    reply = ask_memexpd(cfg, "STOMITH_ACK", node=node.ip)
    return {"node": node.ip, "cid": node.cid, "acked": reply.get("op") == "ACKED"}


def _header(st: dict[str, Any]) -> str:
    grace = f"grace period: {st['grace_left']:g} s left" if st.get("grace") else "grace period over"
    return f"memexpd {st['lockdev']}  epoch {st['epoch']}  timeout {st['timeout']} s  {grace}"


def print_nodes(st: dict[str, Any]) -> None:
    print(_header(st))
    print(f"  {'CID':<4}{'IP':<17}{'State':<18}{'Mounted':<9}{'Silent':<9}{'STOMITH':<10}Note")
    for n in st["nodes"]:
        silent = f"{n['silent']:.1f} s" if n.get("silent") is not None else "-"
        note = []
        if st.get("first_mounter") == n["cid"]:
            note.append("first mounter, recovering journals")
        if n["cid"] in st.get("mount_queue", []):
            note.append("waits to mount")
        if n["journal"] == "stomith_wait":
            note.append(f"reset it, then: ogfs_tool stomith-ack {n['ip']}")
        elif n["journal"] == "recovering":
            rec = next((m["ip"] for m in st["nodes"] if m["cid"] == n["recoverer"]), n["recoverer"])
            note.append(f"journal {n['jid']} being recovered by {rec}")
        elif n["journal"] == "recovery_pending":
            note.append(f"journal {n['jid']} waits for the next mounter")
        if n["state"] == "live" and not n.get("connected"):
            note.append("lock connection down")
        print(f"  {n['cid']:<4}{n['ip']:<17}{n['state']:<18}{'yes' if n['mounted'] else 'no':<9}"
              f"{silent:<9}{n['stomith']:<10}{'; '.join(note)}")


def print_lockdump(st: dict[str, Any]) -> None:
    print(_header(st))
    print(f"  {len(st['locks'])} lock(s) in storage")
    for lock in st["locks"]:
        print(f"Lock {lock['lock']}  ({lock['name'][0]}, {lock['name'][1]})")
        for h in lock["holders"]:
            noexp = "  NOEXP" if h["noexp"] else ""
            print(f"  Holder  node {h['ip']} (cid {h['cid']})  {h['state']}{noexp}")
        for f in lock["frozen"]:
            print(f"  Frozen  node {f['ip']} (cid {f['cid']})  {f['state']}  "
                  f"(expired: until journal {f['cid']} is recovered)")
        for w in lock["waiters"]:
            print(f"  Waiter  node {w['ip']} (cid {w['cid']})  {w['state']}  id {w['id']}  "
                  f"flags {w['flags']}")


# -- diskfault: the lab's injected disk faults (ogfs/diskfault.py) -------------------------------

def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is negative")
    return n


def diskfault_main(argv: list[str]) -> int:
    """ogfs_tool diskfault: write, remove or print this node's fault control file.  Bad
    arguments exit 2 (argparse's usage error), as for the other actions."""
    ap = argparse.ArgumentParser(
        prog="ogfs_tool diskfault", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Make the shared disk fail for this node only.  Every ogfs program here (the mount\n"
                    f"daemon, fsck, mkfs, ogfs_tool) looks at the control file {diskfault.DEFAULT_PATH}\n"
                    f"(OGFS_DISKFAULT names another) at most {diskfault.POLL:g} s late.  A write error\n"
                    "withdraws a mount: it writes nothing more, and writes and fsync fail with EIO\n"
                    "until a remount (docs/ogfs.md, \"Injected disk faults\").",
        epilog="examples:\n  ogfs_tool diskfault set --device /dev/sda3 --errors write --after 10\n"
               "  ogfs_tool diskfault set --slow 200\n  ogfs_tool diskfault clear")
    sub = ap.add_subparsers(dest="what", required=True, metavar="set|clear|show")
    st = sub.add_parser("set", help="inject a fault (replaces the one there was)")
    st.add_argument("--device", default="*", help="the device it applies to (default: every one)")
    kind = st.add_mutually_exclusive_group(required=True)
    kind.add_argument("--errors", choices=diskfault.ERRORS, help="fail these I/Os with EIO")
    kind.add_argument("--slow", type=_count, metavar="MS", help="delay every I/O by MS milliseconds")
    kind.add_argument("--hang", action="store_true", help="block every I/O until cleared")
    st.add_argument("--after", type=_count, default=0, metavar="N",
                    help="with --errors: let N more such I/Os through first (default 0)")
    sub.add_parser("clear", help="remove the fault: the disk is healthy again")
    sub.add_parser("show", help="print the fault (JSON; null when the disk is healthy)")
    a = ap.parse_args(argv)
    try:
        if a.what == "set":
            if a.after and a.errors is None:
                st.error("--after goes with --errors")
            if a.device != "*" and not a.device.startswith("/"):
                st.error(f"--device {a.device}: give the device's absolute path (or '*')")
            if a.slow == 0:
                st.error("--slow 0 slows nothing: use `ogfs_tool diskfault clear`")
            fault = diskfault.Fault(device=a.device, errors=a.errors, after=a.after,
                                    slow_ms=a.slow or 0, hang=a.hang)
            path = diskfault.save(fault)
            print(f"ogfs_tool: disk fault set in {path}: {fault.to_json()}", file=sys.stderr)
        elif a.what == "clear":
            if not diskfault.clear():
                print(f"ogfs_tool: no disk fault was set ({diskfault.control_path()})", file=sys.stderr)
        else:
            shown = diskfault.load()
            print(shown.to_json() if shown is not None else "null")
    except diskfault.FaultError as e:
        print(f"ogfs_tool: {diskfault.control_path()}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"ogfs_tool: {e.filename or diskfault.control_path()}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diskfault"]:  # its own grammar (set/clear/show and their options)
        return diskfault_main(argv[1:])
    ap = argparse.ArgumentParser(prog="ogfs_tool", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__.split("\n", 2)[2] if __doc__ else None)
    ap.add_argument("action", choices=["df", "journals", "getsb", "counters", "mount", "lockdump",
                                       "nodes", "stomith-ack", "diskfault"])
    ap.add_argument("target", nargs="?", help="mount point or device (stomith-ack: the node's IP or CID)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("-c", dest="config", metavar="CONFIG",
                     help=f"lockdump/nodes/stomith-ack: cluster config file (default {DEFAULT_CONFIG})")
    src.add_argument("-d", dest="cidev", metavar="CIDEV", help="lockdump/nodes/stomith-ack: the cidev")
    a = ap.parse_args(argv)
    if a.action == "diskfault":  # only reached with options before it
        ap.error("diskfault comes first: ogfs_tool diskfault set|clear|show ...")
    if a.target is None and a.action not in ("lockdump", "nodes"):
        ap.error(f"{a.action} needs " + ("the node's IP or CID" if a.action == "stomith-ack"
                                         else "a mount point or device"))
    try:
        if a.action in ("lockdump", "nodes"):
            st = memexpd_status(cluster_config(a.config, a.cidev, a.target))
            res: Any = st if a.action == "lockdump" else st["nodes"]
            if not a.json:
                (print_lockdump if a.action == "lockdump" else print_nodes)(st)
        elif a.action == "stomith-ack":
            res = stomith_ack(cluster_config(a.config, a.cidev, None), a.target)
            if not a.json:
                print(f"memexpd: STOMITH of node {res['node']} (cid {res['cid']}) acknowledged; "
                      "its journal goes to recovery")
        elif a.action == "df":
            res = df(a.target)
            if not a.json:
                print_df(res)
        elif a.action == "journals":
            res = journals(a.target)
            if not a.json:
                for j in res:
                    extra = f", {j['transactions']} transaction(s) to replay" if j["transactions"] else ""
                    print(f"journal {j['jid']}: {j['state']} ({j['size_mb']} MB){extra}")
        elif a.action == "getsb":
            res = getsb(a.target)
            if not a.json:
                for k, v in res.items():
                    print(f"  {k} = {v}")
        elif a.action == "mount":
            res = mount_state(a.target)
            if not a.json:
                print_mount(res)
        else:
            _dev, mnt = device_of(a.target)
            if mnt is None:
                raise ToolError(f"{a.target}: counters need a mount point")
            res = ask_daemon(mnt)["counters"]
            if not a.json:
                for k, v in res.items():
                    print(f"  {k:<20} {v}")
    except ToolError as e:
        print(f"ogfs_tool: {e}", file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(res, indent=2))
    return 0
