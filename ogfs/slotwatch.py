"""ogfs_slotwatch: watch every disk-heartbeat slot on the cidev, all the time, from boot.

A first mounter (and a fresh memexpd) must know that the other nodes' slots have stopped moving
before it replays their journals (ogfs.slots).  Watching a slot only when it is needed costs 1.5
slot intervals at the worst moment: during a failover, after heartbeat's deadtime has already been
waited.  So every node runs this watcher from boot, like Red Hat's qdiskd reads the quorum disk
all the time: it reads every slot several times per slot interval and records, per CID, the slot
exactly as read and the CLOCK_MONOTONIC time it first read it so.  `unchanged_since` then answers
"since when has this slot looked exactly like this?" at once.

Why the answer can be trusted without trusting the watcher's freshness: every slot write carries
a new wall-clock stamp (time_ns) and a higher counter, so if the slot on the disk *now* equals the
one the watcher first read at time T, nobody wrote it between T and now.  The watcher being dead
or slow only makes T later (safe), never earlier.  Its state file is bound to this boot (boot_id)
and to the device (its device number, or inode for a file).

State file: /run/ogfs/slotwatch/<key>.json (written whole, then renamed)::

    {"boot_id": "...", "pid": 123, "device": "/dev/sda1", "period": 0.5,
     "slots": {"0": {"since": 812.25, "slot": [state, incarnation, counter, time_ns]}}}

Usage::

    ogfs_slotwatch [-c /etc/ogfscf.cf | -d CIDEV] [--daemon --log FILE] [--period SECONDS]

Runs on the nodes: standard library only.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Callable
from typing import Any

from . import cidev, config, slots

STATE_DIR = "/run/ogfs/slotwatch"
DEFAULT_CONFIG = "/etc/ogfscf.cf"
MAX_PERIOD = 0.5  # seconds between reads of every slot, at most
READS_PER_INTERVAL = 4  # ... and at least this many reads per slot interval


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def device_key(path: str) -> str:
    """A name for the device that does not depend on the path used to reach it."""
    st = os.stat(path)
    if stat.S_ISBLK(st.st_mode):
        return f"b{os.major(st.st_rdev)}_{os.minor(st.st_rdev)}"
    return f"f{st.st_dev}_{st.st_ino}"


def state_path(cidev_path: str, state_dir: str = STATE_DIR) -> str:
    return os.path.join(state_dir, device_key(cidev_path) + ".json")


def _fingerprint(s: slots.Slot) -> list[int]:
    return [s.state, s.incarnation, s.counter, s.time_ns]


def unchanged_since(cidev_path: str, slot: slots.Slot, state_dir: str = STATE_DIR) -> float | None:
    """The CLOCK_MONOTONIC time since which the watcher has seen `slot` (just read from the disk)
    exactly as it is, or None when no watcher of this boot and device has seen it so."""
    try:
        with open(state_path(cidev_path, state_dir)) as f:
            state = json.load(f)
        seen = state["slots"].get(str(slot.cid))
        if state.get("boot_id") != _boot_id() or seen is None:
            return None
        if seen["slot"] != _fingerprint(slot):
            return None
        return float(seen["since"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def check_slots(cidev_path: str, my_cid: int, cids: list[int], log: logging.Logger) -> list[slots.Slot]:
    """The other nodes still writing their disk heartbeat (slots.live_others, helped by this
    node's watcher when one runs); logs why each of the others counts as dead."""
    since = functools.partial(unchanged_since, cidev_path)
    mounted = slots.live_others(cidev_path, my_cid, cids, wait=False)
    frozen = {s.cid: slots.frozen_for(s, since) for s in mounted}
    alive = slots.live_others(cidev_path, my_cid, cids, unchanged_since=since)
    for s in mounted:
        if any(a.cid == s.cid for a in alive):
            continue
        seen = frozen[s.cid]
        how = (f"ogfs_slotwatch has seen it frozen for {seen:.1f} s" if seen is not None
               else "it did not move while we watched")
        log.info("cid %d (%s): its disk heartbeat slot says %s but %s: dead", s.cid, s.hostdata,
                 slots.STATE_NAMES.get(s.state, s.state), how)
    return alive


class Watcher:
    """Reads the slots of `cids` and keeps the state file up to date."""

    def __init__(self, cidev_path: str, cids: list[int], state_dir: str = STATE_DIR,
                 period: float | None = None) -> None:
        self.cidev = cidev_path
        self.cids = cids
        self.path = state_path(cidev_path, state_dir)
        self.fixed_period = period
        self.seen: dict[int, dict[str, Any]] = {}
        self.boot_id = _boot_id()
        os.makedirs(state_dir, exist_ok=True)

    def period(self) -> float:
        if self.fixed_period is not None:
            return self.fixed_period
        intervals = [s["interval_ms"] / 1000 for s in self.seen.values() if s["interval_ms"] > 0]
        return min([MAX_PERIOD, *(i / READS_PER_INTERVAL for i in intervals)])

    def scan(self) -> list[str]:
        """Read every slot once; return what changed in a way worth a log line."""
        news = []
        now = time.monotonic()
        for cid in self.cids:
            s = slots.read_slot(self.cidev, cid)
            if s is None:
                self.seen.pop(cid, None)
                continue
            fp = _fingerprint(s)
            old = self.seen.get(cid)
            if old is None or old["slot"] != fp:
                if old is None or old["slot"][0] != s.state:
                    news.append(f"cid {cid} ({s.hostdata or '?'}): {slots.STATE_NAMES.get(s.state, s.state)}")
                self.seen[cid] = {"since": now, "slot": fp, "interval_ms": s.interval_ms}
        self.save()
        return news

    def save(self) -> None:
        seen = {str(cid): {"since": v["since"], "slot": v["slot"]} for cid, v in self.seen.items()}
        state = {"boot_id": self.boot_id, "pid": os.getpid(), "device": self.cidev,
                 "period": self.period(), "slots": seen}
        tmp = f"{self.path}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.path)

    def run(self, say: Callable[[str], None] = print) -> None:
        """Until SIGTERM or SIGINT; then the state file goes (its claims would stay true, but a
        stopped watcher should leave nothing behind)."""
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                for line in self.scan():
                    say(line)
                time.sleep(self.period())
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _cidev_of(args: argparse.Namespace) -> str:
    if args.cidev:
        return args.cidev
    with open(args.config) as f:
        return config.parse(f.read(), source=args.config).cidev


def _daemonize(logpath: str) -> None:
    """Fork twice; the caller (a boot hook) returns at once, the watcher lives on."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.makedirs(os.path.dirname(os.path.abspath(logpath)), exist_ok=True)
    out = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.chdir("/")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ogfs_slotwatch", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="ogfscf.cf naming the cidev")
    src.add_argument("-d", "--cidev", help="the cidev itself")
    ap.add_argument("--state-dir", default=STATE_DIR)
    ap.add_argument("--period", type=float, help="seconds between reads (default: from the slots)")
    ap.add_argument("--daemon", action="store_true", help="run in the background")
    ap.add_argument("--log", default="/var/log/ogfs/slotwatch.log", help="the log, with --daemon")
    args = ap.parse_args(argv)
    try:
        dev = _cidev_of(args)
    except (OSError, config.ConfigError) as e:
        print(f"ogfs_slotwatch: {e}", file=sys.stderr)
        return 1
    if args.daemon:
        _daemonize(args.log)

    def say(line: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ogfs_slotwatch[{os.getpid()}]: {line}", flush=True)

    waiting = False
    while True:  # the cidev may not be written yet (ogfsconf runs after boot on real machines)
        try:
            cids = [n.cid for n in cidev.read_config(dev).nodes]
            break
        except cidev.CidevError as e:
            if not waiting:
                say(f"waiting for the cidev: {e}")
            waiting = True
            time.sleep(1)
    say(f"watching the disk heartbeats of cids {', '.join(map(str, cids))} on {dev}")
    try:
        Watcher(dev, cids, args.state_dir, args.period).run(say)
    except KeyboardInterrupt:
        return 0
    return 0
