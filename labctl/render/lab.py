"""Everything each host of a lab gets: pure functions from the topology model to file contents.

Hosts are the nodes and the client; the serial cable's relay (``cable``) and the disk helper
(``disk``) get their files here too, so ``labctl render`` writes every file ``up`` copies anywhere.
"""

from __future__ import annotations

from labctl.render import authkeys, disk, hacf, haresources, hosts, lan, ogfscf, serial, smbconf, switch
from labctl.render.assets import program
from labctl.render.files import RenderedFile
from labctl.topology.model import Node, Topology

CABLE = "cable"  # render_lab's key for the relay's files (and its container's name suffix)
DISK = "disk"  # render_lab's key for the disk helper's files
FORMAT_SCRIPT_PATH = "/usr/local/lib/labctl/format-disk.sh"


def _node(topology: Topology, node: Node | str) -> Node:
    if isinstance(node, str):
        return topology.node(node)
    if node not in topology.nodes:
        raise KeyError(node.name)
    return node


def _lan(topology: Topology, overlay: lan.Overlay | None, host: str) -> dict[str, RenderedFile]:
    return lan.render_lan_files(topology, overlay or lan.overlay_for(topology), host,
                                program("labctl-lan", lan.PROGRAM_PATH))


def render_node(topology: Topology, node: Node | str, secret: str, *, lockproto: str = "memexp",
                overlay: lan.Overlay | None = None) -> dict[str, RenderedFile]:
    """The files of one node, keyed by their path in the container.

    ``secret`` is the lab's heartbeat key (``new_secret()``): the same for every node of a lab.
    """
    n = _node(topology, node)
    files = [
        RenderedFile(ogfscf.PATH, ogfscf.render_ogfscf(topology, overlay)),
        RenderedFile(hacf.PATH, hacf.render_ha_cf(topology, n)),
        RenderedFile(haresources.PATH, haresources.render_haresources(topology, n, lockproto)),
        RenderedFile(authkeys.PATH, authkeys.render_authkeys(secret), authkeys.MODE),
        RenderedFile(smbconf.PATH, smbconf.render_smb_conf(topology)),
        RenderedFile(hosts.PATH, hosts.render_hosts(topology)),
    ]
    out = {f.path: f for f in files}
    out.update(_lan(topology, overlay, n.name))
    out.update(serial.render_serial_files(topology, n, program("labctl-serial-end", serial.END_PATH)))
    return out


def render_client(topology: Topology, overlay: lan.Overlay | None = None) -> dict[str, RenderedFile]:
    """The files of the client container."""
    files = [
        RenderedFile(hosts.PATH, hosts.render_hosts(topology)),
        RenderedFile(smbconf.CLIENT_PATH, smbconf.render_client_smb_conf(topology)),
    ]
    out = {f.path: f for f in files}
    out.update(_lan(topology, overlay, topology.client.name))
    return out


def render_cable() -> dict[str, RenderedFile]:
    """The relay container's program (its cables are its command-line arguments)."""
    f = program("labctl-cable", serial.RELAY_PATH)
    return {f.path: f}


def render_switch() -> dict[str, RenderedFile]:
    """The power switch's program (its plugs are its command-line arguments)."""
    f = program("labctl-switch", switch.PROGRAM_PATH)
    return {f.path: f}


def render_disk(topology: Topology, lockproto: str = "memexp",
                overlay: lan.Overlay | None = None) -> dict[str, RenderedFile]:
    """What the disk helper gets: the cluster information to write and the script that formats."""
    files = [
        RenderedFile(disk.OGFSCF_PATH, ogfscf.render_ogfscf(topology, overlay)),
        RenderedFile(FORMAT_SCRIPT_PATH, disk.render_format_script(topology, lockproto), 0o755),
    ]
    return {f.path: f for f in files}


def render_lab(topology: Topology, secret: str | None = None, *, lockproto: str = "memexp",
               overlay: lan.Overlay | None = None) -> dict[str, dict[str, RenderedFile]]:
    """Every host's files, keyed by host name (nodes, then the client, then ``cable`` when the lab
    has a serial cable, ``switch`` when its STOMITH method is ``labctl``, then ``disk``); a fresh
    heartbeat secret unless given."""
    key = authkeys.new_secret() if secret is None else secret
    rendered = {node.name: render_node(topology, node, key, lockproto=lockproto, overlay=overlay)
                for node in topology.nodes}
    rendered[topology.client.name] = render_client(topology, overlay)
    if topology.serial:
        rendered[CABLE] = render_cable()
    if switch.enabled(topology):
        rendered[switch.SWITCH] = render_switch()
    rendered[DISK] = render_disk(topology, lockproto, overlay)
    return rendered
