"""ogfs_tool: look at an ogfs filesystem, as gfs_tool does for GFS.

    ogfs_tool df MOUNTPOINT|DEVICE      space, inodes, journals, locking
    ogfs_tool journals DEVICE|MOUNTPOINT  each journal: clean or dirty, transactions to replay
    ogfs_tool getsb DEVICE|MOUNTPOINT     the superblock
    ogfs_tool counters MOUNTPOINT         the daemon's counters (commits, checkpoints, ...)
Add --json for a machine-readable answer.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

from .. import journal, mountopts
from ..blockdev import Device
from ..layout import BLOCK, SB_BLOCK, Superblock, unpack_rgrp, unpack_rindex


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ogfs_tool", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__.split("\n", 2)[2] if __doc__ else None)
    ap.add_argument("action", choices=["df", "journals", "getsb", "counters"])
    ap.add_argument("target", help="mount point or device")
    ap.add_argument("--json", action="store_true", help="print JSON")
    a = ap.parse_args(argv)
    try:
        if a.action == "df":
            res: Any = df(a.target)
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
