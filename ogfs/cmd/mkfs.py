"""mkfs.ogfs: make an ogfs filesystem (OpenGFS's flags where they exist).

    mkfs.ogfs -p memexp -t /dev/sda1 -j 2 /dev/sda3
"""

from __future__ import annotations

import argparse
import sys

from ..layout import BLOCK
from ..mkfs import LOCKPROTOS, MkfsError, mkfs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="mkfs.ogfs", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Make an ogfs filesystem: a superblock naming the lock protocol and lock table "
                    "(the cidev), one journal per node, resource groups with allocation bitmaps, "
                    "and an empty root directory.",
        epilog="examples:\n"
               "  mkfs.ogfs -p memexp -t /dev/sda1 -j 2 /dev/sda3   # the seed's cluster\n"
               "  mkfs.ogfs -p nolock -j 1 -J 8 /dev/loop0          # one node, no lock server")
    ap.add_argument("device")
    ap.add_argument("-p", dest="lockproto", default="memexp", choices=LOCKPROTOS,
                    help="lock protocol (default memexp)")
    ap.add_argument("-t", dest="locktable", default="",
                    help="lock table: the cluster information device, e.g. /dev/sda1 (memexp)")
    ap.add_argument("-j", dest="journals", type=int, default=2, help="journals, one per node (default 2)")
    ap.add_argument("-J", dest="journal_mb", type=int, default=32, help="journal size in MB (default 32)")
    ap.add_argument("-b", dest="block_size", type=int, default=BLOCK, help="block size (only 4096)")
    ap.add_argument("-r", dest="rgrp_mb", type=int, default=64,
                    help="resource group size in MB (default 64, at most 63 MB is used)")
    ap.add_argument("-O", "-f", dest="force", action="store_true",
                    help="overwrite an existing ogfs filesystem without asking")
    ap.add_argument("-q", dest="quiet", action="store_true", help="quiet")
    a = ap.parse_args(argv)
    if a.block_size != BLOCK:
        print(f"mkfs.ogfs: block size {a.block_size}: only {BLOCK} is supported", file=sys.stderr)
        return 2
    try:
        sb = mkfs(a.device, a.lockproto, a.locktable, a.journals, a.journal_mb, a.rgrp_mb, a.force)
    except MkfsError as e:
        print(f"mkfs.ogfs: {e}", file=sys.stderr)
        return 1
    if not a.quiet:
        mib = sb.total_blocks * BLOCK / (1 << 20)
        print(f"Device:                    {a.device}\n"
              f"Blocksize:                 {BLOCK}\n"
              f"Filesystem Size:           {sb.total_blocks} blocks ({mib:.0f} MiB)\n"
              f"Journals:                  {len(sb.journals)} x {a.journal_mb} MB\n"
              f"Resource Groups:           {sb.rgrp_count}\n"
              f"Locking Protocol:          {sb.lockproto}\n"
              f"Lock Table:                {sb.locktable or '(none)'}\n"
              f"UUID:                      {sb.uuid_str}\n"
              f"\nAll Done")
    return 0
