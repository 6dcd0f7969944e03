"""What one log line of a lab host means: its time, and a short machine word for what happened.

Pure functions, one per source, each reading exactly one format (named in its comment, with a
line captured from a real lab); no Docker, no files. ``labctl events`` (observe/events.py) feeds
them every line of every log it reads. A parser returns an Event when it can place the line in
time, with kind ``log`` when it does not recognise what the line says (``events --all`` shows
those), and None when it cannot (no timestamp, nothing before it to borrow one from). It never
raises on what a log holds: a log is input from programs that crash mid-line.

Times are unix seconds (UTC): every daemon in a lab writes local time, and every lab container
runs in UTC (``/etc/localtime -> Etc/UTC``, measured). heartbeat's own lines carry no year; it is
the one that puts the line at most a day after ``Context.ref`` (now, when reading a live lab).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from labctl.observe.events import Event

LOG = "log"  # the kind of a line no rule recognises


@dataclass
class Context:
    """What a parser knows beyond the line: whose log it is, and what earlier lines said."""

    host: str
    path: str = ""
    ref: float = 0.0  # unix time the yearless stamps are placed before (0: now)
    last: float | None = None  # the time of the previous line that had one
    daemon: str = ""  # samba: whose last record header this was (smbd, nmbd)

    def now(self) -> float:
        return self.ref or time.time()


Rule = tuple[re.Pattern[str], str]


def _rules(*pairs: tuple[str, str]) -> list[Rule]:
    return [(re.compile(pattern), kind) for pattern, kind in pairs]


def _value(name: str, text: str | None) -> Any:
    if name == "first":
        return text is not None
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def _classify(rules: list[Rule], message: str) -> tuple[str, dict[str, Any]] | None:
    """The first rule that matches ``message``: (its kind, the named groups as fields)."""
    for pattern, kind in rules:
        m = pattern.search(message)
        if m:
            fields = {k: _value(k, v) for k, v in m.groupdict().items()}
            fields = {k: v for k, v in fields.items() if v is not None}
            # a group that names the kind (link-{state}) is in the kind, not in the fields too
            return kind.format(**fields), {k: v for k, v in fields.items() if f"{{{k}}}" not in kind}
    return None


def _utc(y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str = "") -> float | None:
    if not (1970 <= y < 10000 and 1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        return None
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + (float(f"0.{frac}") if frac else 0.0)


def _event(ctx: Context, when: float | None, source: str, rules: list[Rule], message: str,
           line: str, level: str = "") -> Event | None:
    if when is None:
        return None
    ctx.last = when
    found = _classify(rules, message)
    fields: dict[str, Any] = {}
    if found is None:
        kind = "error" if level.lower() in ("error", "crit") else LOG
    else:
        kind, fields = found
    return Event(when, ctx.host, source, kind, line.strip(), fields)


# --------------------------------------------------------------------------- heartbeat

HEARTBEAT = _rules(
    (r"^Link (?P<peer>[^:\s]+):(?P<medium>\S+) (?P<state>up|dead)\.", "link-{state}"),
    (r"^node (?P<node>\S+): is dead", "node-dead"),
    (r"^Status update for node (?P<node>\S+): status (?P<status>[a-z]+)$", "node-{status}"),
    (r"^Local status now set to: '(?P<status>[a-z]+)'", "local-{status}"),
    (r"^Resources being acquired from (?P<node>\S+)\.", "takeover"),
    (r"^Taking over resource group (?P<group>\S+)", "takeover-group"),
    (r"^mach_down takeover complete for node (?P<node>\S+)\.", "takeover-done"),
    (r"^Acquiring resource group: (?P<owner>\S+) (?P<resources>.+)$", "acquire"),
    (r"^Local Resource acquisition completed", "acquired"),
    (r"^Initial resource acquisition complete \((?P<how>[^)]*)\)", "acquired"),
    (r"^Releasing resource group: (?P<owner>\S+) (?P<resources>.+)$", "release"),
    (r"^All HA resources relinquished", "released"),
    (r"^Giving up all HA resources", "release-all"),
    (r"^Giving up resources due to failure of (?P<resource>\S+)", "giving-up"),
    (r"^Running /etc/ha\.d/+resource\.d/(?P<resource>\S+) +(?:(?P<args>.*?) +)?(?P<op>start|stop)$",
     "resource-{op}"),
    (r"^Return code (?P<code>\d+) from /etc/ha\.d/+resource\.d/(?P<resource>\S+)", "resource-failed"),
    (r"^Cluster node (?P<node>\S+) returning after partition", "partition-return"),
    (r"^Late heartbeat: Node (?P<node>\S+): interval (?P<interval_ms>\d+) ms", "late-heartbeat"),
    (r"^Heartbeat restart on node (?P<node>\S+)", "node-restart"),
    (r"^Heartbeat restart triggered", "restart"),
    (r"^Received shutdown notice from '(?P<node>[^']+)'", "peer-shutdown"),
    (r"^Heartbeat shutdown in progress", "shutdown"),
    (r"^(?P<node>\S+) Heartbeat shutdown complete", "shutdown-done"),
    (r"^Configuration validated\. Starting heartbeat (?P<version>\S+)", "started"),
    (r"^Standby mode only implemented when nice_failback on", "standby-refused"),
    (r"^(?P<node>\S+) wants to go standby \[(?P<which>\w+)\]", "standby"),
    (r"^Going standby \[(?P<which>\w+)\]", "standby"),
    (r"^Local standby process completed \[(?P<which>\w+)\]", "standby-done"),
    (r"^Standby resource acquisition done \[(?P<which>\w+)\]", "standby-acquired"),
    (r"^Standby in progress- new request from (?P<node>\S+) ignored", "standby-ignored"),
    (r"^standby: acquire \[(?P<which>\w+)\] resources from (?P<node>\S+)", "takeover"),
    (r"^give up all HA resources \(standby\)", "release-all"),
    (r"^all HA resource release completed", "released"),
    (r"^all HA resource acquisition completed", "acquired"),
    (r"^(?P<count>\d+) lost packet\(s\) for \[(?P<node>[^\]]+)\]", "lost-packets"),
)

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                        "Oct", "Nov", "Dec"), 1)}
_HB_SYSLOG = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) +(?P<d>\d{1,2}) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d) "
                        r"\S+ [\w.-]+: \[\d+\]: (?:(?P<level>[A-Za-z]+): )?(?P<msg>.*)$")
_HB_SCRIPT = re.compile(r"^(?P<y>\d{4})/(?P<mo>\d\d)/(?P<d>\d\d)_(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d) +"
                        r"\S+?\([^)]*\)\[\d+\]: +(?:(?P<level>[A-Za-z]+): +)?(?P<msg>.*)$")
_HB_PREFIXED = re.compile(r"^[\w.-]+\[\d+\]: (?P<y>\d{4})/(?P<mo>\d\d)/(?P<d>\d\d)_(?P<h>\d\d):(?P<mi>\d\d):"
                          r"(?P<s>\d\d) (?:(?P<level>[A-Za-z]+): )?(?P<msg>.*)$")


def _yearless(ctx: Context, mon: str, d: int, h: int, mi: int, s: int) -> float | None:
    """The year that puts ``mon d h:mi:s`` at most a day after ``ctx.ref``."""
    month = _MONTHS.get(mon)
    if month is None:
        return None
    ref = ctx.now()
    year = time.gmtime(ref).tm_year
    for y in (year + 1, year, year - 1):
        t = _utc(y, month, d, h, mi, s)
        if t is not None and t <= ref + 86400:
            return t
    return None


def parse_heartbeat(line: str, ctx: Context) -> Event | None:
    """/var/log/ha-log, three formats in one file:

    heartbeat itself (cl_log, syslog style, no year)::
        Dec 02 14:28:45 barney heartbeat: [82]: WARN: node fred: is dead
    the scripts heartbeat runs (ResourceManager, harc, mach_down, resource agents; ha_log)::
        2026/12/02_14:28:45  ResourceManager(default)[721]:    info: Acquiring resource group: fred ...
    and the form heartbeat 2 and some builds write (kept for them)::
        heartbeat[123]: 2026/12/02_13:55:01 info: Link fred:eth0 dead.
    """
    m = _HB_SYSLOG.match(line)
    if m:
        when = _yearless(ctx, m["mon"], int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]))
        return _event(ctx, when, "heartbeat", HEARTBEAT, m["msg"].strip(), line, m["level"] or "")
    m = _HB_SCRIPT.match(line) or _HB_PREFIXED.match(line)
    if m:
        when = _utc(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]))
        return _event(ctx, when, "heartbeat", HEARTBEAT, m["msg"].strip(), line, m["level"] or "")
    return _event(ctx, ctx.last, "heartbeat", [], "", line) if line.strip() else None


# --------------------------------------------------------------------------- memexpd

_NODE = r"node (?P<node>[\d.]+) \(cid (?P<cid>\d+)\)"
MEMEXPD = _rules(
    (r"^memexpd started: epoch (?P<epoch>\d+)", "started"),
    (r"^memexpd exits \((?P<code>-?\d+)\)", "exited"),
    (r"^(?P<signal>SIG[A-Z]+): stopping", "stopping"),
    (rf"^{_NODE} logged in", "login"),
    (rf"^{_NODE} expired: no heartbeat for (?P<seconds>\d+) s", "expired"),
    (rf"^{_NODE} restarted: that counts as its STOMITH", "stomith-ack"),
    (rf"^{_NODE} restarted \(new incarnation\)", "restarted"),
    (rf"^STOMITH of {_NODE} acknowledged", "stomith-ack"),
    (r"^STOMITH_ACK for (?P<node>\S+) from \S+ refused", "stomith-ack-refused"),
    (r"^STOMITH manual: reset (?P<node>[^,\s]+), then run", "stomith-wait"),
    (r"^STOMITH labctl: powering (?P<node>\S+) \(cid (?P<cid>\d+)\) off: power switch (?P<switch>\S+), "
     r"plug (?P<plug>\S+)", "power-off"),
    (r"^STOMITH labctl of (?P<node>\S+) failed: (?P<reason>.*)", "power-off-failed"),
    (rf"^STOMITH of {_NODE} done: the power switch says", "stomith-done"),
    (rf"^still waiting for the STOMITH of {_NODE}", "stomith-wait"),
    (rf"^STOMITH none: {_NODE} is NOT fenced", "stomith-none"),
    (r"^journal (?P<jid>\d+) \((?P<node>[^)]+)\) recovered by node (?P<by>\S+)", "recovery-done"),
    (r"^recovery of journal (?P<jid>\d+) \((?P<node>[^)]+)\) requested from node (?P<by>\S+)", "recovery"),
    (r"^journal (?P<jid>\d+) \((?P<node>[^)]+)\) waits for recovery", "recovery-pending"),
    (r"^node (?P<by>\S+) \(cid \d+\) gave up recovering journal (?P<jid>\d+)", "recovery-failed"),
    (r"^grace period over \((?P<why>[^)]*)\)", "grace-over"),
    (r"^disk heartbeats: nodes that may reclaim locks: (?P<reclaimers>.*)$", "grace"),
    (rf"^mount of {_NODE} waits: (?P<why>.*)$", "mount-wait"),
    (rf"^{_NODE} mounts journal (?P<jid>\d+)(?P<first> as first mounter)?", "mount"),
    (rf"^first mounter {_NODE}: others may mount", "others-may-mount"),
    (rf"^{_NODE} unmounted", "unmount"),
    (r"^cid (?P<cid>\d+) \((?P<node>[^)]+)\): its disk heartbeat slot says \w+ but .*: dead", "slot-dead"),
    (rf"^lock connection of {_NODE} closed", "disconnect"),
    (rf"^callback connection to {_NODE} on port (?P<port>\d+)", "callback"),
    (rf"^callback connection to {_NODE} lost", "callback-lost"),
)

_DAEMON = re.compile(r"^(?P<y>\d{4})-(?P<mo>\d\d)-(?P<d>\d\d) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
                     r"(?:,(?P<ms>\d{3}))? (?:(?P<prog>[\w.-]+)(?:\[\d+\])?: )?(?P<msg>.*)$")


def _daemon_line(line: str, ctx: Context, source: str, rules: list[Rule], progs: tuple[str, ...]
                 ) -> Event | None:
    """``YYYY-MM-DD HH:MM:SS[,mmm] [prog[pid]: ]message``: the form of labctl's and ogfs's own daemons."""
    m = _DAEMON.match(line)
    if not m or (m["prog"] or "") not in progs:
        return _event(ctx, ctx.last, source, [], "", line) if line.strip() else None
    when = _utc(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]), m["ms"] or "")
    msg = m["msg"].strip()
    level = ""
    for prefix in ("warning: ", "error: "):
        if msg.startswith(prefix):
            level, msg = prefix[:-2], msg[len(prefix):]
    return _event(ctx, when, source, rules, msg, line, level)


def parse_memexpd(line: str, ctx: Context) -> Event | None:
    """/var/log/memexpd.log (ogfs/cmd/memexpd.py's formatter; warnings and errors say so)::
        2026-12-02 14:28:46 memexpd[938]: node 192.168.1.2 (cid 1) mounts journal 1 as first mounter
        2026-12-02 14:30:44 memexpd[4876]: warning: callback connection to node ... lost; reconnecting
    and /var/log/labctl/memexpd.log, its stdout and stderr (tracebacks: kind log, or nothing)."""
    return _daemon_line(line, ctx, "memexpd", MEMEXPD, ("memexpd",))


# --------------------------------------------------------------------------- ogfs and the slot watcher

OGFS = _rules(
    (r"^mounted (?P<device>\S+) on (?P<mountpoint>\S+): jid=(?P<jid>\d+), lockproto=(?P<lockproto>\w+)"
     r"(?P<first>, first mounter)?", "mounted"),
    (r"^jid=(?P<jid>\d+): Replaying journal\.\.\. replayed (?P<transactions>\d+) transaction", "replayed"),
    (r"^jid=(?P<jid>\d+): Trying to acquire journal lock", "replaying"),
    (r"^unmounted (?P<mountpoint>\S+): journal (?P<jid>\d+) clean", "unmounted"),
    (r"^unmounted (?P<mountpoint>\S+): withdrawn, journal (?P<jid>\d+) left dirty", "unmounted-dirty"),
    (r"^mount failed: (?P<reason>refusing .*)$", "refused"),
    (r"^mount failed: (?P<reason>.*)$", "mount-failed"),
    (r"^daemon failed", "mount-failed"),
    # the moment of the withdraw; the "withdrawn: ..." lines after it (the dropped commit, the dirty
    # unmount) are its consequences, kind log
    (r"^withdrawn: (?P<device>[^\s:]+): (?P<reason>.*?); this node writes nothing more", "withdrawn"),
    (r"^(?P<reason>.*); withdrawing: operations fail with EIO", "withdrawn"),
    (r"^cid (?P<cid>\d+) \((?P<node>[^)]+)\): its disk heartbeat slot says \w+ but .*: dead", "slot-dead"),
    # fencing before a replay (docs/fencing.md): the power-off, and the record written on the cidev
    (r"^fence: powering (?P<node>\S+) \(cid (?P<cid>\d+)\) off: power switch (?P<switch>\S+), "
     r"plug (?P<plug>\S+)", "power-off"),
    (r"^fence: (?P<node>\S+) \(cid (?P<cid>\d+)\) has STOMITH method '(?P<method>[^']*)': nothing powers",
     "unfenced-replay"),
    (r"^fence: journal (?P<jid>\d+) taken by (?P<by>\S+) \(cid \d+\) at \S+, (?P<how>UNFENCED)\b", "fence"),
    (r"^fence: journal (?P<jid>\d+) taken by (?P<by>\S+) \(cid \d+\) at \S+, (?P<how>[^(]*?) \(", "fence"),
    (r"^(?P<mountpoint>/\S*): (?P<reason>journal \d+ taken by .*); rebooting \(self-fence\)", "self-fence"),
    (r"^lost the lock server memexpd at (?P<server>\S+) ", "lockserver-lost"),
    (r"^lock server back \(epoch (?P<epoch>\d+)\): reclaimed (?P<locks>\d+)", "lockserver-back"),
    (r"^memexpd asks this node to recover journal (?P<jid>\d+)", "recover-request"),
    (r"^memexpd refused our reclaim", "reclaim-refused"),
    (r"^disk fault injected on (?P<device>\S+):", "disk-fault"),
    (r"^disk fault on (?P<device>\S+) cleared", "disk-fault-cleared"),
)

SLOTWATCH = _rules(
    (r"^watching the disk heartbeats of cids (?P<cids>[\d, ]+) on (?P<device>\S+)", "started"),
    (r"^cid (?P<cid>\d+) \((?P<node>[^)]*)\): (?P<state>mounted|mounting|unmounted)$", "slot-{state}"),
)


def parse_ogfs(line: str, ctx: Context) -> Event | None:
    """/var/log/ogfs/*.log, the mount daemon (ogfs/daemon.py: logging's asctime, milliseconds)::
        2026-12-02 14:28:46,933 ogfsd[1137]: jid=0: Replaying journal... replayed 2 transaction(s); Done"""
    return _daemon_line(line, ctx, "ogfs", OGFS, ("ogfsd", "ogfs-fenced"))


def parse_slotwatch(line: str, ctx: Context) -> Event | None:
    """/var/log/labctl/slotwatch.log (ogfs/slotwatch.py; the slot states of every node it watches)::
        2026-12-02 14:28:47 ogfs_slotwatch[21]: cid 1 (192.168.1.2): mounted"""
    return _daemon_line(line, ctx, "slotwatch", SLOTWATCH, ("ogfs_slotwatch",))


# --------------------------------------------------------------------------- the serial cable

SERIAL_END = _rules(
    (r"^(?P<device>/dev/\S+) -> (?P<pty>/dev/\S+), cable socket (?P<socket>\S+)", "started"),
    (r"^cable connected \((?P<socket>[^)]+)\)", "plugged"),
    (r"^cable lost", "unplugged"),
    (r"^no cable at (?P<socket>\S+) ", "unplugged"),
)

_CABLE = r"^cable (?P<cable>\d+) \([^)]*\): "
RELAY = _rules(
    (_CABLE + r"(?P<node>\S+) plugged in$", "plugged"),
    (_CABLE + r"(?P<node>\S+) unplugged", "unplugged"),
    (_CABLE + r"(?P<node>\S+) reconnected", "reconnected"),
    (_CABLE + r"cut by labctl", "cut"),
    (_CABLE + r"restored", "restored"),
    (_CABLE + r"noise (?P<rate>[\d.e+-]+)$", "noise"),
    (_CABLE + r"listening on", "started"),
)


def parse_serial_end(line: str, ctx: Context) -> Event | None:
    """/var/log/labctl/serial-<tty>.log, a node's end of a cable (runtime/assets/labctl-serial-end)::
        2026-12-02 14:29:13 cable connected (/var/lib/labctl/cable/0-fred.sock)"""
    return _daemon_line(line, ctx, "serial", SERIAL_END, ("",))


SWITCH = _rules(
    (r"^lab \S+: listening on (?P<listen>\S+)", "started"),
    (r"^plug (?P<plug>\d+) \((?P<container>[^)]+)\): OFF from (?P<peer>\S+): powering off \(it was "
     r"(?P<was>\w+)\)", "power-off"),
    (r"^plug (?P<plug>\d+) \((?P<container>[^)]+)\): OFF from (?P<peer>\S+): already off", "powered-off"),
    (r"^plug (?P<plug>\d+) \((?P<container>[^)]+)\): off$", "powered-off"),
    (r"^refused a connection from (?P<peer>[\d.]+)", "refused"),
    (r"^bad request from (?P<peer>[\d.]+)", "bad-request"),
    (r"^(?P<verb>OFF|STATUS) (?P<plug>\d+) from (?P<peer>\S+) failed: (?P<reason>.*)", "power-off-failed"),
)


def parse_switch(line: str, ctx: Context) -> Event | None:
    """The power switch's output (runtime/assets/labctl-switch), read like the relay's::
        2026-12-02T14:28:36.134201Z 2026-12-02 14:28:36 labctl-switch[1]: plug 1 (labctl-x-fred): off"""
    stamp = docker_stamp(line.split(" ", 1)[0])
    if stamp is not None:
        line = line.split(" ", 1)[1] if " " in line else ""
    ev = _daemon_line(line, ctx, "switch", SWITCH, ("labctl-switch",))
    return replace(ev, time=stamp) if ev is not None and stamp is not None else ev


def parse_relay(line: str, ctx: Context) -> Event | None:
    """The cable container's output (runtime/assets/labctl-cable; docs/runtime.md fixes the words)::
        2026-12-02 14:28:36 labctl-cable: cable 0 (fred <-> barney, 19200 baud): fred unplugged (its ...)
    read with ``docker logs -t``, so Docker's stamp of the write comes first
    (``2026-12-02T14:28:36.134201Z ``): the event takes that time (the relay's own has seconds only)
    and the text is the relay's line."""
    stamp = docker_stamp(line.split(" ", 1)[0])
    if stamp is not None:
        line = line.split(" ", 1)[1] if " " in line else ""
    ev = _daemon_line(line, ctx, "serial", RELAY, ("labctl-cable",))
    return replace(ev, time=stamp) if ev is not None and stamp is not None else ev


_STAMP = re.compile(r"^(?P<y>\d{4})-(?P<mo>\d\d)-(?P<d>\d\d)T(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
                    r"(?:\.(?P<frac>\d{1,9}))?Z$")


def docker_stamp(word: str) -> float | None:
    """Docker's RFC 3339 stamp of a log line (``2026-12-02T14:28:36.134201352Z``), in unix seconds."""
    m = _STAMP.match(word)
    if not m:
        return None
    return _utc(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]),
                m["frac"] or "")


# --------------------------------------------------------------------------- samba

SAMBA = _rules(
    (r"^(?P<daemon>smbd|nmbd) version (?P<version>\S+) started", "started"),
    (r"^Got SIG(?P<signal>[A-Z]+): going down", "stopped"),
    (r"^Samba name server (?P<name>\S+) is now a local master browser", "master-browser"),
)
_SAMBA_HEADER = re.compile(r"^\[(?P<y>\d{4})/(?P<mo>\d\d)/(?P<d>\d\d) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
                           r"(?:\.(?P<us>\d+))?, *\d+[^\]]*\] +(?P<where>\S+)")


def parse_samba(line: str, ctx: Context) -> Event | None:
    """/var/log/samba/log.smbd and log.nmbd: a header line with the time and the source file, then
    the message, indented, on the lines after it (Samba 4.17's DEBUG format)::
        [2026/12/02 14:29:35.221791,  0] ../../source3/nmbd/nmbd.c:59(terminate)
          Got SIGTERM: going down...
    The header gives no event; each message line is one, at its header's time. smbd logs nothing
    when it stops; nmbd does (above). heartbeat's ``resource-stop`` of smb is the other sign."""
    m = _SAMBA_HEADER.match(line)
    if m:
        ctx.last = _utc(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]),
                        m["us"] or "")
        where = m["where"]
        ctx.daemon = next((d for d in ("smbd", "nmbd") if f"/{d}/" in where), "")
        return None
    if not line.strip() or ctx.last is None:
        return None
    ev = _event(ctx, ctx.last, "samba", SAMBA, line.strip(), line)
    if ev is not None and ev.kind != LOG and "daemon" not in ev.fields and ctx.daemon:
        ev.fields["daemon"] = ctx.daemon
    return ev


Parser = Callable[[str, Context], Event | None]
