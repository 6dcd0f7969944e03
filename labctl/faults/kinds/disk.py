"""The shared disk fails for one node only; the other keeps it.

The kernel here has no device-mapper, so the fault is injected in ogfs's own block layer: each
node's ogfs (mount daemon, fsck, slot watcher) reads a control file in that node only
(``ogfs_tool diskfault``, docs/ogfs.md "Injected disk faults"), so fred's reads or writes fail
while barney's reach the same loop device untouched. The control file is in the node's /run, a
tmpfs: a reboot of the node (``fail`` then ``recover``, a heal of ``kill``) ends the fault with it,
and heal of a fault on a node that is down has nothing left to clear.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from labctl.errors import LabStateError, UsageError
from labctl.faults.catalogue import Applied, FaultKind, need_node, need_running, refuse_same, run
from labctl.faults.record import FaultRecord
from labctl.runtime.lab import Lab

ERRORS = ("read", "write", "all")


def _words(rec: FaultRecord) -> list[str]:
    a = rec.args
    if a.get("errors"):
        return ["--errors", str(a["errors"])] + (["--after", str(int(a["after"]))] if a.get("after") else [])
    if a.get("slow"):
        return ["--slow", str(int(a["slow"]))]
    return ["--hang"]


class Disk(FaultKind):
    name = "disk"
    summary = "the shared disk fails for one node: --errors read|write|all [--after N], --slow MS, --hang"

    def check(self, lab: Lab, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        node = need_node(lab, rec.targets[0])
        a = rec.args
        chosen = [k for k in ("errors", "slow", "hang") if a.get(k)]
        if len(chosen) != 1:
            raise UsageError("disk: give exactly one of --errors KIND, --slow MS, --hang (or --heal)")
        if a.get("errors") and a["errors"] not in ERRORS:
            raise UsageError(f"--errors {a['errors']!r}: one of {', '.join(ERRORS)}")
        if a.get("after") is not None and (not a.get("errors") or int(a["after"]) < 0):
            raise UsageError("--after N: with --errors, N >= 0 I/Os let through first")
        if a.get("slow") is not None and a.get("slow") and int(a["slow"]) <= 0:
            raise UsageError(f"--slow {a['slow']}: milliseconds, above 0")
        need_running(lab, node)
        refuse_same(active, rec, f"{node}'s disk is failing")

    def apply(self, lab: Lab, rec: FaultRecord) -> Applied:
        node = rec.targets[0]
        run(lab, node, ["ogfs_tool", "diskfault", "set", *_words(rec)], "ogfs_tool diskfault set")
        return Applied(f"{node}'s view of the shared disk: {' '.join(_words(rec)).lstrip('-')}")

    def heal(self, lab: Lab, rec: FaultRecord) -> str:
        node = rec.targets[0]
        state = lab.state(node)
        if state.status == "paused":
            raise LabStateError(f"{node} is frozen: labctl thaw {node} first")
        if state.status != "running" or state.started_at > _iso(rec.since):
            return f"{node} rebooted or is down: the fault went with its /run"
        run(lab, node, ["ogfs_tool", "diskfault", "clear"], "ogfs_tool diskfault clear")
        return f"{node}'s disk healthy again"


def _iso(t: float | None) -> str:
    """A record's time as Docker writes StartedAt (RFC 3339, UTC), for comparing the two."""
    return datetime.datetime.fromtimestamp(t or 0, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
