"""``labctl events``: parse the options, call observe/events.py, print. Nothing else.

Kept out of cli.py so the verb is one import and one call there. Prints one line per event,
``HH:MM:SS.mmm host source kind text`` (local time, like ``labctl faults``), coloured by source;
``--json`` prints one object (``{"lab", "events": [...]}``), or with ``--follow`` one event object
per line (JSON Lines: a stream has no end to close an array at).
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

OUT = Console(highlight=False, soft_wrap=True)

COLOURS = {"heartbeat": "cyan", "memexpd": "magenta", "ogfs": "green", "slotwatch": "green4",
           "samba": "blue", "serial": "yellow", "labctl": "bold red"}


def _when(t: float) -> str:
    ms = round(t * 1000)
    return time.strftime("%H:%M:%S", time.localtime(ms // 1000)) + f".{ms % 1000:03d}"


def line(ev: Any) -> str:
    """One event as rich markup: ``14:28:45.000 barney  heartbeat node-dead        ...``."""
    colour = COLOURS.get(ev.source, "white")
    text = escape(ev.text)
    return (f"[dim]{_when(ev.time)}[/] {escape(ev.host):<7} [{colour}]{ev.source:<9} "
            f"{escape(ev.kind):<16}[/] {text}")


def cmd_events(a: argparse.Namespace) -> int:
    from labctl.errors import UsageError
    from labctl.observe.events import follow_events, parse_since, read_events
    from labctl.runtime.lab import Lab

    try:
        since = parse_since(a.since) if a.since else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    lab = Lab.find(a.lab)
    try:
        if not a.follow:
            events = read_events(lab, since, a.all)
            if a.json:
                _write(json.dumps({"lab": lab.name, "events": [ev.as_dict() for ev in events]}, indent=2))
            else:
                for ev in events:
                    OUT.print(line(ev))
            return 0
        for ev in follow_events(lab, since, a.all):
            if a.json:
                _write(json.dumps(ev.as_dict()))
            else:
                OUT.print(line(ev))
                OUT.file.flush()
    except KeyboardInterrupt:
        return 0  # the way to stop --follow
    except BrokenPipeError:
        return 0  # | head
    return 0


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


Verb = Callable[[str, str, str, str], argparse.ArgumentParser]
Opt = Callable[[argparse.ArgumentParser], None]
LabOpt = Callable[[argparse.ArgumentParser, str], None]


def add_parser(sub: Any, verb: Verb, lab_opt: LabOpt, json_opt: Opt) -> argparse.ArgumentParser:
    """The ``events`` verb, made with cli.py's own helpers (``sub``, the subparsers, is not needed
    beyond them)."""
    q = verb(
        "events",
        "one time-ordered stream of what the lab's hosts logged, and labctl's faults",
        "Every node's heartbeat, memexpd, ogfs, slot watcher, Samba and serial-end logs, the serial "
        "relay's output and labctl's fault records, parsed (a kind per line: link-dead, node-dead, "
        "takeover, acquire, replayed, mounted, refused, plugged, fault-applied, ...) and merged in "
        "time order. A node that is down is read too (its files, through docker cp). --follow keeps "
        "printing new events as they are written, across node restarts, until Ctrl-C. Times are the "
        "hosts' own stamps: whole seconds for heartbeat and memexpd, so within a second the order "
        "across files is approximate.",
        "examples:\n  labctl events\n  labctl events --follow\n  labctl events --since 5m --json\n"
        "  labctl events --all --since 14:28   # unrecognised lines too (kind log)\n"
        "JSON: {lab, events[].{time, host, source, kind, text, fields}}; with --follow one event a line",
    )
    lab_opt(q, "the only lab on the engine")
    q.add_argument("-f", "--follow", action="store_true", help="keep printing new events until Ctrl-C")
    q.add_argument("--since", metavar="T",
                   help="only events from T on: unix seconds, a time ago (90s, 5m, 2h), a clock time "
                   "today (14:28:36) or a date and time (2026-12-02T14:28:36, local unless Z)")
    q.add_argument("--all", action="store_true",
                   help="also the lines no rule recognises (kind log); without it only recognised events")
    json_opt(q)
    q.set_defaults(func=cmd_events)
    return q
