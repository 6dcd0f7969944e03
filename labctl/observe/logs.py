"""Where each daemon of a node logs (``labctl logs NODE --what ...``)."""

from __future__ import annotations

from labctl.topology.model import Topology

# What -> what it is. Without --what: the container's own output (labctl-init copies heartbeat's
# log and /var/log/labctl/*.log there, each line prefixed with its file's name).
LOG_SOURCES: dict[str, str] = {
    "heartbeat": "heartbeat's log (/var/log/ha-log)",
    "memexpd": "the lock server's log (/var/log/memexpd.log) and output (/var/log/labctl/memexpd.log)",
    "ogfs": "the ogfs mount daemon's log (/var/log/ogfs/), the slot watcher's (/var/log/labctl/)",
    "samba": "smbd and nmbd (/var/log/samba/)",
    "serial": "the node's ends of the serial cables (/var/log/labctl/serial-*.log)",
}


def log_paths(topology: Topology, node: str, what: str, follow: bool = False) -> list[str]:
    """The files (or, without ``follow``, directories) that hold log ``what`` of ``node``."""
    if what == "heartbeat":
        return ["/var/log/ha-log"]
    if what == "memexpd":
        return ["/var/log/memexpd.log", "/var/log/labctl/memexpd.log"]
    if what == "ogfs":
        return ["/var/log/ogfs/*.log" if follow else "/var/log/ogfs", "/var/log/labctl/slotwatch.log"]
    if what == "samba":
        return ["/var/log/samba/log.smbd", "/var/log/samba/log.nmbd"] if follow else ["/var/log/samba"]
    if what == "serial":
        ttys = [c.device.rsplit("/", 1)[-1] for c in topology.cables_of(node)]
        return [f"/var/log/labctl/serial-{t}.log" for t in ttys]
    raise KeyError(what)
