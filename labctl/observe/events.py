"""``labctl events``: one time-ordered stream of what a lab's hosts logged, and of labctl's faults.

A failover is told by five daemons on two nodes, the serial relay and labctl itself, each in its
own file and format. This reads them all (through the runtime: ``docker cp``, which works on a
node that is down, so a power-cut node's last lines count), parses each line
(observe/logparse.py), adds the fault records (``fault-applied`` at ``since``, ``fault-healed``
at ``healed``) and sorts by time. ``follow`` then keeps going: in each running node a small
follower (FOLLOWER below, python3 and inotify) prints every new line with its file and offset;
when the node stops, what it wrote last is read with ``docker cp``, and when it starts again (an
engine event, no polling) a new follower starts where the old one stopped, so nothing is shown
twice or lost across a restart. New fault records are noticed by the engine's ``extract-to-dir``
event on the lab's claim, where they are kept (runtime/records.py).

Times are wall-clock unix seconds: every container shares the host's clock. Most logs stamp
whole seconds (heartbeat, memexpd, the slot watcher, the serial ends); ogfs stamps milliseconds,
Samba microseconds, the relay's lines take Docker's stamp. Lines of one second keep their file's
order, so within a second the order across files is only as good as the stamps.
"""

from __future__ import annotations

import fnmatch
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labctl.errors import LabStateError

if TYPE_CHECKING:
    from labctl.faults.record import FaultRecord
    from labctl.observe.logparse import Context, Parser
    from labctl.runtime.lab import Lab

SOURCES = ("heartbeat", "memexpd", "ogfs", "slotwatch", "samba", "serial", "labctl")
LOG = "log"


@dataclass(frozen=True)
class Event:
    time: float  # unix seconds, wall clock
    host: str  # a node, the client, or "cable" (the relay)
    source: str  # one of SOURCES
    kind: str  # a short machine word: link-dead, takeover, replayed, fault-applied ... (docs/runtime.md)
    text: str  # the line as the host logged it, trimmed (for labctl: the fault as a command)
    fields: dict[str, Any] = field(default_factory=dict, compare=False)  # what the rule read out

    def as_dict(self) -> dict[str, Any]:
        return {"time": round(self.time, 6), "host": self.host, "source": self.source, "kind": self.kind,
                "text": self.text, "fields": self.fields}


# --------------------------------------------------------------------------- where each node logs

NODE_LOGS: tuple[tuple[str, str], ...] = (  # (glob, source)
    ("/var/log/ha-log", "heartbeat"),
    ("/var/log/memexpd.log", "memexpd"),
    ("/var/log/labctl/memexpd.log", "memexpd"),
    ("/var/log/ogfs/*.log", "ogfs"),
    ("/var/log/labctl/slotwatch.log", "slotwatch"),
    ("/var/log/samba/log.smbd", "samba"),
    ("/var/log/samba/log.nmbd", "samba"),
    ("/var/log/labctl/serial-*.log", "serial"),
)


def source_of(path: str) -> str | None:
    return next((src for pattern, src in NODE_LOGS if fnmatch.fnmatchcase(path, pattern)), None)


def copy_roots() -> list[str]:
    """What ``docker cp`` reads: each file, or the directory of a glob."""
    roots = [pattern.rsplit("/", 1)[0] if "*" in pattern else pattern for pattern, _ in NODE_LOGS]
    return list(dict.fromkeys(roots))


def parser_for(source: str) -> Parser:
    from labctl.observe import logparse as lp

    return {"heartbeat": lp.parse_heartbeat, "memexpd": lp.parse_memexpd, "ogfs": lp.parse_ogfs,
            "slotwatch": lp.parse_slotwatch, "samba": lp.parse_samba, "serial": lp.parse_serial_end}[source]


def _context(host: str, path: str) -> Context:
    from labctl.observe.logparse import Context

    return Context(host, path)


# The follower, run with ``python3 -c`` in a running node: argv[1] is {"globs": [...], "offsets":
# {path: bytes already read}}. It prints one JSON object a line: {"p": path, "o": offset after the
# line, "l": the line} or {"p": path, "reset": true} (the file shrank: read again from 0). It wakes
# on inotify events of the files' directories (select with a 5 s backstop; polling every 0.25 s
# where inotify is missing) and exits at EOF on stdin: when labctl closes the exec's connection.
FOLLOWER = r"""
import ctypes, glob, json, os, select, sys
spec = json.loads(sys.argv[1])
offsets = {p: int(o) for p, o in spec["offsets"].items()}
dirs = sorted({os.path.dirname(g) for g in spec["globs"]})
try:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
except (OSError, AttributeError):
    fd = -1
watched = set()
def watch():
    for d in dirs:
        if fd >= 0 and d not in watched and os.path.isdir(d):
            if libc.inotify_add_watch(fd, d.encode(), 0x2 | 0x8 | 0x80 | 0x100) >= 0:
                watched.add(d)
def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
def scan():
    for g in spec["globs"]:
        for p in sorted(glob.glob(g)):
            try:
                size = os.path.getsize(p)
            except OSError:
                continue
            off = offsets.get(p, 0)
            if size < off:
                off = offsets[p] = 0
                say({"p": p, "reset": True})
            if size == off:
                continue
            with open(p, "rb") as f:
                f.seek(off)
                data = f.read(size - off)
            for line in data[:data.rfind(b"\n") + 1].split(b"\n")[:-1]:
                off += len(line) + 1
                say({"p": p, "o": off, "l": line.decode("utf-8", "replace")})
            offsets[p] = off
    sys.stdout.flush()
while True:
    watch()
    scan()
    r, _, _ = select.select([0] + ([fd] if fd >= 0 else []), [], [], 5.0 if watched else 0.25)
    if 0 in r and not os.read(0, 4096):
        break
    if fd >= 0 and fd in r:
        try:
            os.read(fd, 65536)
        except BlockingIOError:
            pass
"""


class FileLog:
    """One log file of one host: how much of it has been read, and its parser's context."""

    def __init__(self, host: str, path: str, source: str) -> None:
        self.offset = 0
        self.parse = parser_for(source)
        self.ctx = _context(host, path)

    def line(self, text: str) -> Event | None:
        try:
            return self.parse(text, self.ctx)
        except Exception:  # noqa: BLE001 - a parser bug must not end the stream; the line is lost
            return None

    def whole(self, data: bytes) -> list[Event]:
        """The file's content (``docker cp``): the events of the complete lines not read yet."""
        if len(data) < self.offset:
            self.offset = 0
        chunk = data[self.offset:]
        chunk = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(chunk)
        found = (self.line(raw.decode("utf-8", "replace")) for raw in chunk.split(b"\n")[:-1])
        return [ev for ev in found if ev is not None]


class NodeLogs:
    """Every log of one node, read whole (``docker cp``) or followed while it runs."""

    def __init__(self, lab: Lab, host: str) -> None:
        self.lab, self.host = lab, host
        self.files: dict[str, FileLog] = {}

    def _file(self, path: str) -> FileLog | None:
        if path not in self.files:
            source = source_of(path)
            if source is None:
                return None
            self.files[path] = FileLog(self.host, path, source)
        return self.files[path]

    def read(self) -> list[Event]:
        out: list[Event] = []
        for root in copy_roots():
            for path, data in self.lab.read_tree(self.host, root):
                f = self._file(path)
                if f is not None:
                    out += f.whole(data)
        return out

    def follow(self, emit: Callable[[list[Event]], None]) -> None:
        """Until the node stops (or its follower ends): each new line, as it is written."""
        spec = {"globs": [g for g, _ in NODE_LOGS], "offsets": {p: f.offset for p, f in self.files.items()}}
        pending = b""
        for chunk in self.lab.exec_stream(self.host, ["python3", "-c", FOLLOWER, json.dumps(spec)]):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            batch = [ev for ev in map(self._followed, lines) if ev is not None]
            if batch:
                emit(batch)

    def _followed(self, raw: bytes) -> Event | None:
        try:
            rec = json.loads(raw)
            f = self._file(str(rec["p"]))
        except (ValueError, KeyError, TypeError):
            return None
        if f is None:
            return None
        if rec.get("reset"):
            f.offset = 0
            return None
        end = int(rec.get("o", 0))
        if end <= f.offset:
            return None  # read already (by docker cp before this follower started)
        f.offset = end
        return f.line(str(rec.get("l", "")))


class RelayLogs:
    """A helper container's output, with Docker's stamps (``docker logs -t``): the serial cable
    relay's (``cable``), or the power switch's (``switch``)."""

    def __init__(self, lab: Lab, host: str = "cable") -> None:
        from labctl.observe.logparse import parse_relay, parse_switch

        self.lab = lab
        self.host = host
        self.parse = parse_switch if host == "switch" else parse_relay
        self.ctx = _context(host, "docker logs")
        self.last = 0.0  # Docker's stamp of the last line read

    def _lines(self, data: bytes) -> list[Event]:
        from labctl.observe.logparse import docker_stamp

        out = []
        for raw in data.decode("utf-8", "replace").splitlines():
            stamp = docker_stamp(raw.split(" ", 1)[0])
            if stamp is None or stamp <= self.last:
                continue
            self.last = stamp
            try:
                ev = self.parse(raw, self.ctx)
            except Exception:  # noqa: BLE001 - as FileLog.line
                ev = None
            if ev is not None:
                out.append(ev)
        return out

    def read(self) -> list[Event]:
        return self._lines(b"".join(self.lab.relay_logs(host=self.host)))

    def follow(self, emit: Callable[[list[Event]], None]) -> None:
        pending = b""
        for chunk in self.lab.relay_logs(follow=True, since=int(self.last) or None, host=self.host):
            pending += chunk
            done, _, pending = pending.rpartition(b"\n")
            batch = self._lines(done)
            if batch:
                emit(batch)


# --------------------------------------------------------------------------- labctl's own records


def fault_events(records: Iterable[FaultRecord]) -> list[Event]:
    """``fault-applied`` at each record's ``since``, ``fault-healed`` at its ``healed``, and
    ``fault-failed`` at the end of an apply that failed (it never took effect). The host is the
    first target; a serial cable's faults (targets like ``fred-barney``) are the relay's."""
    out = []
    for r in records:
        host = "cable" if r.kind.startswith("serial") else (r.targets[0] if r.targets else "")
        fields = {"id": r.id, "fault": r.kind, "targets": list(r.targets)}
        if r.since is None and r.healed is not None:
            out.append(Event(float(r.healed), host, "labctl", "fault-failed",
                             f"{r.describe()}: {r.detail}", dict(fields)))
            continue
        for kind, when in (("fault-applied", r.since), ("fault-healed", r.healed)):
            if when is not None:
                out.append(Event(float(when), host, "labctl", kind, r.describe(), dict(fields)))
    return out


def _records(lab: Lab) -> list[FaultRecord]:
    from labctl.faults.record import FaultRecord

    out = []
    for data in lab.records.all().values():
        try:
            out.append(FaultRecord.from_json(data))
        except (ValueError, TypeError):
            continue  # a record being written by another labctl, or by a newer one
    return out


# --------------------------------------------------------------------------- the stream


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: unix seconds (``1796221716.5``), a time ago (``90s``, ``5m``, ``2h``, ``1d``),
    a clock time today (``14:28``, ``14:28:36``; yesterday's if that is still to come) or a date
    and time (``2026-12-02T14:28:36``, ``2026-12-02 14:28``; a ``Z`` or offset, else local time)."""
    import datetime as dt
    import re
    import time

    now = time.time() if now is None else now
    text = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h|d)", text)
    if m:
        return now - float(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    m = re.fullmatch(r"(\d{1,2}):(\d\d)(?::(\d\d(?:\.\d+)?))?", text)
    try:
        if m:
            day = dt.datetime.fromtimestamp(now).replace(hour=int(m[1]), minute=int(m[2]), second=0,
                                                         microsecond=0)
            when = day.timestamp() + float(m[3] or 0)
            return when - 86400 if when > now else when
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time (1796221716, 90s, 5m, 14:28, 2026-12-02T14:28:36)") \
            from None
    return parsed.timestamp()


def keep(ev: Event, since: float | None, everything: bool) -> bool:
    return (everything or ev.kind != LOG) and (since is None or ev.time >= since)


def by_time(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda ev: ev.time)  # stable: a file's lines of one second keep their order


class Events:
    """The readers of one lab: every node's files, the relay's output, the fault records."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.nodes = {host: NodeLogs(lab, host) for host in lab.node_names}
        self.relay = RelayLogs(lab)
        self.switch = RelayLogs(lab, "switch") if lab.topology.cluster.stomith == "labctl" else None
        self.faults: set[tuple[str, str]] = set()  # (record id, kind) shown already

    def new_faults(self) -> list[Event]:
        fresh = [ev for ev in fault_events(_records(self.lab))
                 if (ev.fields["id"], ev.kind) not in self.faults]
        self.faults |= {(ev.fields["id"], ev.kind) for ev in fresh}
        return fresh

    def read(self) -> list[Event]:
        """Everything logged so far, in time order (the hosts read side by side: each is a few
        engine round trips)."""
        from concurrent.futures import ThreadPoolExecutor

        readers: list[Callable[[], list[Event]]] = [self.relay.read, self.new_faults]
        if self.switch is not None:
            readers.append(self.switch.read)
        readers += [logs.read for logs in self.nodes.values()]
        with ThreadPoolExecutor(len(readers)) as pool:
            found = list(pool.map(lambda read: read(), readers))
        return by_time(ev for part in found for ev in part)


def read_events(lab: Lab, since: float | None = None, everything: bool = False) -> list[Event]:
    return [ev for ev in Events(lab).read() if keep(ev, since, everything)]


WATCHED = ("start", "unpause", "extract-to-dir", "destroy")


def follow_events(lab: Lab, since: float | None = None, everything: bool = False) -> Iterator[Event]:
    """What ``read_events`` gives, then each new event as its line is written, until the lab is
    taken down (its claim is removed) or the caller stops."""
    engine = lab.watch(WATCHED)  # first: a start after this point is not missed
    ev_all = Events(lab)
    out: queue.Queue[list[Event] | BaseException | None] = queue.Queue()
    started = {host: threading.Event() for host in (*ev_all.nodes, "cable", "switch")}
    records = threading.Event()

    def on_engine() -> None:
        for host, action, _ in engine:
            if host == "lab":
                if action == "extract-to-dir":
                    records.set()
                elif action == "destroy":
                    out.put(None)
                    return
            elif host in started and action in ("start", "unpause"):
                started[host].set()

    def keep_following(host: str, reader: NodeLogs | RelayLogs, running: Callable[[], bool]) -> None:
        while True:
            started[host].clear()
            try:
                reader.follow(out.put)  # until the host stops: an exec, or docker logs -f
            except LabStateError:
                pass  # it is not running (any more)
            out.put(reader.read())  # what it wrote just before it stopped
            if running():  # the follower ended on its own: again, at most once a second
                started[host].wait(1.0)
            else:
                started[host].wait()  # set by a start after the clear above: none is missed

    def on_records() -> None:
        while True:
            records.wait()
            records.clear()
            out.put(ev_all.new_faults())

    def guarded(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
        def run() -> None:
            try:
                fn(*args)
            except LabStateError:
                return  # its container went away: the lab is being taken down
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                out.put(exc)

        return run

    history = ev_all.read()
    yield from (ev for ev in history if keep(ev, since, everything))
    workers = [guarded(on_engine), guarded(on_records),
               guarded(keep_following, "cable", ev_all.relay, lambda: False)]  # logs -f ends at its stop
    if ev_all.switch is not None:
        workers.append(guarded(keep_following, "switch", ev_all.switch, lambda: False))
    for host, logs in ev_all.nodes.items():
        workers.append(guarded(keep_following, host, logs, lambda h=host: lab.state(h).running))
    for work in workers:
        threading.Thread(target=work, daemon=True).start()
    while True:
        item = out.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield from (ev for ev in by_time(item) if keep(ev, since, everything))

