"""``/etc/ha.d/ha.cf``: heartbeat 3.0.6 in haresources mode, LAN (ucast) and serial media.

Directive order matters to heartbeat's parser (config.c): timings come before the ``node`` lines
(a node's dead time is fixed when it is added), ``baud`` before every medium line (and only once),
``udpport`` before ``ucast``.
"""

from __future__ import annotations

from labctl.topology.model import Node, Topology
from labctl.topology.units import format_ms

PATH = "/etc/ha.d/ha.cf"
LOGFILE = "/var/log/ha-log"
DEBUGFILE = "/var/log/ha-debug"


def render_ha_cf(topology: Topology, node: Node) -> str:
    timing = topology.heartbeat
    options = topology.heartbeat_options
    cables = topology.cables_of(node)
    lines = [
        f"# heartbeat configuration of node {node.name} in lab {topology.name} (timing profile "
        f"{timing.name}), rendered by labctl.",
        "# Order matters: timings before node lines, baud before any medium, udpport before ucast.",
        # Files, not syslog: containers have no syslog daemon and heartbeat -f closes stdout (G10).
        f"logfile {LOGFILE}",
        f"debugfile {DEBUGFILE}",
        "logfacility none",
        "use_logd no",
        f"keepalive {format_ms(timing.keepalive_ms)}",
        f"warntime {format_ms(timing.warntime_ms)}",
        f"deadtime {format_ms(timing.deadtime_ms)}",
        f"initdead {format_ms(timing.initdead_ms)}",
        f"realtime {'on' if options.realtime else 'off'}",
    ]
    if cables:
        # The loader guarantees one baud rate per node; heartbeat refuses a second baud line.
        lines.append(f"baud {cables[0].baud}")
    lines.append(f"udpport {options.udpport}")
    lines += [f"ucast {topology.network.interface} {peer.ip}" for peer in topology.peers(node)]
    lines += [f"serial {cable.device}" for cable in cables]
    lines.append(f"auto_failback {timing.auto_failback}")
    lines += [f"node {n.name}" for n in topology.nodes]
    lines += [
        # A UUID from the node name: nothing to keep in /var/lib/heartbeat, no shared UUID (G9).
        "uuidfrom nodename",
        "crm off",
    ]
    return "\n".join(lines) + "\n"
