"""The share as the client sees it: ``smbclient -L`` must list it, then a write or a listing works.

``up`` asks for a write (put and delete a probe file): the share serves only when a client can
change it. ``status`` asks read-only (a directory listing), since looking must change nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from labctl.topology.model import Topology


@dataclass(frozen=True)
class ShareProbe:
    """What the client sees of ``\\\\<cluster>\\<share>``: listed by ``smbclient -L``, and usable:
    writable (``up``'s check) or readable (``status``'s read-only check)."""

    unc: str
    listed: bool
    usable: bool
    detail: str
    wrote: bool = False

    @property
    def serving(self) -> bool:
        return self.listed and self.usable


def unc(topology: Topology) -> str:
    return f"\\\\{topology.cluster.name}\\{topology.share.name}"


def share_probe_script(topology: Topology, write: bool = True) -> str:
    """A client-side shell script: prints LISTED and WRITABLE/READABLE, or what failed."""
    cluster, share = topology.cluster.name, topology.share.name
    probe = f".labctl-probe-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    lines = [
        f"out=$(timeout 20 smbclient -L //{cluster} -N -g -t 5 2>&1); rc=$?",
        f'if ! printf "%s\\n" "$out" | grep -q "^Disk|{share}|"; then',
        '  echo "LIST $rc"; printf "%s\\n" "$out" | tail -n 3; exit 0',
        "fi",
        "echo LISTED",
    ]
    if write:
        command, ok = f"put /etc/hostname {probe}; del {probe}", "WRITABLE"
    else:
        command, ok = "ls", "READABLE"
    lines += [
        f"out=$(timeout 20 smbclient //{cluster}/{share} -N -t 5 -c '{command}' 2>&1); rc=$?",
        f'if [ $rc -eq 0 ] && ! printf "%s\\n" "$out" | grep -q NT_STATUS; then echo {ok}; '
        'else echo "FAILED $rc"; printf "%s\\n" "$out" | tail -n 3; fi',
    ]
    return "\n".join(lines) + "\n"


def parse_share_probe(topology: Topology, output: str, write: bool) -> ShareProbe:
    lines = output.strip().splitlines()
    listed = "LISTED" in lines
    usable = ("WRITABLE" if write else "READABLE") in lines
    if listed and usable:
        detail = "listed and writable" if write else "listed and readable"
    elif not listed:
        detail = f"not listed by smbclient -L //{topology.cluster.name}: " + " ".join(lines[1:])[-300:]
    else:
        what = "a write" if write else "a directory listing"
        detail = f"listed, but {what} failed: " + " ".join(lines[lines.index("LISTED") + 2 :])[-300:]
    return ShareProbe(unc(topology), listed, usable, detail.strip(), wrote=write)
