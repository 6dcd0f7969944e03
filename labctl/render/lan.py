"""The lab interface of every host: ``/etc/labctl/lan.json`` for ``labctl-lan``, and the node hook.

Docker sees a lab's LAN as an internal network on an *outer* subnet that labctl picks free on the
engine; the topology's addresses live only on a VXLAN inside the lab's hosts (docs/runtime.md,
"Lab addresses"). This module decides the outer addressing of a lab (``Overlay``: gateway first,
then the nodes, then the client, in topology order, then the power switch of a lab with STOMITH
``labctl``, which is on the outer network only) and renders what ``labctl-lan`` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from labctl.render.files import RenderedFile
from labctl.topology.model import Topology

CONF_PATH = "/etc/labctl/lan.json"
PROGRAM_PATH = "/usr/local/lib/labctl/labctl-lan"
HOOK_PATH = "/etc/labctl/pre-heartbeat.d/00-lan"  # first: heartbeat and the serial end need no LAN,
# but the hooks after it (and heartbeat itself) expect eth0 to exist
OUTER_IFNAME = "outer0"  # Docker's interface, renamed when it has the lab interface's name
VNI = 4242  # the same in every lab: labs are apart because their outer networks are
VXLAN_PORT = 4789  # IANA's VXLAN port

#: Where outer subnets come from unless the user names another pool (``up --pool``,
#: ``LABCTL_POOL``): a /16 gives 256 labs of one /24 each.
DEFAULT_POOL = IPv4Network("10.213.0.0/16")
OUTER_PREFIX = 24


@dataclass(frozen=True)
class Overlay:
    """A lab's outer network: its subnet, gateway and each host's address on it."""

    subnet: IPv4Network
    gateway: IPv4Address
    addresses: tuple[tuple[str, IPv4Address], ...]  # (host, outer address), nodes then client
    # The power switch's address (STOMITH labctl, docs/fencing.md): not a VXLAN peer, no lab address.
    switch: IPv4Address | None = None

    def address(self, host: str) -> IPv4Address:
        for name, addr in self.addresses:
            if name == host:
                return addr
        raise KeyError(host)


def overlay_for(topology: Topology, subnet: IPv4Network | None = None) -> Overlay:
    """The outer addressing of ``topology`` on ``subnet`` (default: the pool's first /24)."""
    net = subnet or next(DEFAULT_POOL.subnets(new_prefix=OUTER_PREFIX))
    hosts = [*topology.node_names, topology.client.name]
    switch = topology.cluster.stomith == "labctl"
    usable = list(net.hosts())
    if len(usable) < len(hosts) + 1 + switch:
        raise ValueError(f"outer subnet {net} is too small for {len(hosts) + switch} hosts and a gateway")
    return Overlay(net, usable[0], tuple(zip(hosts, usable[1:], strict=False)),
                   usable[len(hosts) + 1] if switch else None)


def lab_address(topology: Topology, host: str) -> str:
    ip = topology.client.ip if host == topology.client.name else topology.node(host).ip
    return f"{ip}/{topology.subnet.prefixlen}"


def render_lan_conf(topology: Topology, overlay: Overlay, host: str) -> str:
    conf = {
        "outer": {"address": str(overlay.address(host)), "ifname": OUTER_IFNAME},
        "lab": {"ifname": topology.network.interface, "address": lab_address(topology, host)},
        "vni": VNI,
        "port": VXLAN_PORT,
        "peers": [str(a) for name, a in overlay.addresses if name != host],
    }
    return json.dumps(conf, indent=2) + "\n"


NODE_HOOK = f"""\
#!/bin/sh
# labctl: the lab interface before heartbeat starts (docs/runtime.md, "Lab addresses").
exec {PROGRAM_PATH} {CONF_PATH}
"""


def render_lan_files(topology: Topology, overlay: Overlay, host: str, program: RenderedFile
                     ) -> dict[str, RenderedFile]:
    """lan.json and the program for any host; nodes also get the pre-heartbeat hook that runs it."""
    files = [RenderedFile(CONF_PATH, render_lan_conf(topology, overlay, host)), program]
    if host in topology.node_names:
        files.append(RenderedFile(HOOK_PATH, NODE_HOOK, 0o755))
    return {f.path: f for f in files}
