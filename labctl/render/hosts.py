"""``/etc/hosts``: every node, the client, and the cluster name -> cluster IP."""

from __future__ import annotations

from labctl.topology.model import Topology

PATH = "/etc/hosts"


def hosts_entries(topology: Topology) -> list[tuple[str, str]]:
    """(name, address) pairs, e.g. for Docker's ``extra_hosts`` instead of writing the file."""
    return [(name, str(ip)) for name, ip in topology.hosts()]


def render_hosts(topology: Topology) -> str:
    """A complete hosts file (loopback lines included), safe to replace the container's."""
    lines = [
        f"# hosts of lab {topology.name}, rendered by labctl",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    lines += [f"{ip}\t{name}" for name, ip in hosts_entries(topology)]
    return "\n".join(lines) + "\n"
