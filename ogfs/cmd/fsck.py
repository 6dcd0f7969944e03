"""fsck.ogfs: check an ogfs filesystem.  Exit codes are fsck(8)'s.

    -p, -a   preen: a quick read-only sanity check, safe while other nodes mount the device
             (heartbeat's Filesystem agent runs `fsck -t ogfs -p` before every mount)
    -n       full check, change nothing
    -y       full check and repair (only when no node mounts the device)
"""

from __future__ import annotations

import argparse
import sys

from .. import fsck


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fsck.ogfs", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__.split("\n", 2)[2] if __doc__ else None,
                                 epilog="exit: 0 clean, 1 errors corrected, 4 errors left, 8 operational "
                                        "error, 16 usage")
    ap.add_argument("device")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("-p", "-a", dest="preen", action="store_true", help="preen (quick, read-only)")
    mode.add_argument("-n", dest="no", action="store_true", help="check only")
    mode.add_argument("-y", dest="yes", action="store_true", help="repair")
    ap.add_argument("-f", dest="force", action="store_true", help="full check even when preening")
    ap.add_argument("-v", dest="verbose", action="store_true", help="list warnings too")
    ap.add_argument("-t", dest="type", help="type, as fsck(8) passes it (ignored)")
    try:
        a = ap.parse_args(argv)
    except SystemExit as err:
        return 16 if err.code else 0
    try:
        if a.preen and not a.force:
            rep = fsck.preen(a.device)
        else:
            rep = fsck.full(a.device, repair=a.yes)
    except OSError as err:
        print(f"fsck.ogfs: {a.device}: {err.strerror or err}", file=sys.stderr)
        return fsck.OPERATIONAL
    for w in rep.warnings if a.verbose else [w for w in rep.warnings if "journal" in w]:
        print(f"fsck.ogfs: {a.device}: warning: {w}")
    for e in rep.errors[:200]:
        print(f"fsck.ogfs: {a.device}: {e}")
    if len(rep.errors) > 200:
        print(f"fsck.ogfs: {a.device}: ... {len(rep.errors) - 200} more")
    for f in rep.fixed:
        print(f"fsck.ogfs: {a.device}: fixed: {f}")
    code = rep.exit_code
    summary = {0: "clean", 1: "errors corrected", 4: "errors left uncorrected"}[code]
    extra = ""
    if "inodes" in rep.info:
        extra = f", {rep.info['inodes']} inodes, {rep.info['blocks_used']} blocks in use"
    print(f"fsck.ogfs: {a.device}: {summary}{extra}")
    return code
