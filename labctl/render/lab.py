"""Everything one host of a lab gets: pure functions from the topology model to file contents."""

from __future__ import annotations

from labctl.render import authkeys, hacf, haresources, hosts, ogfscf, smbconf
from labctl.render.files import RenderedFile
from labctl.topology.model import Node, Topology


def _node(topology: Topology, node: Node | str) -> Node:
    if isinstance(node, str):
        return topology.node(node)
    if node not in topology.nodes:
        raise KeyError(node.name)
    return node


def render_node(topology: Topology, node: Node | str, secret: str) -> dict[str, RenderedFile]:
    """The files of one node, keyed by their path in the container.

    ``secret`` is the lab's heartbeat key (``new_secret()``): the same for every node of a lab.
    """
    n = _node(topology, node)
    files = [
        RenderedFile(ogfscf.PATH, ogfscf.render_ogfscf(topology)),
        RenderedFile(hacf.PATH, hacf.render_ha_cf(topology, n)),
        RenderedFile(haresources.PATH, haresources.render_haresources(topology, n)),
        RenderedFile(authkeys.PATH, authkeys.render_authkeys(secret), authkeys.MODE),
        RenderedFile(smbconf.PATH, smbconf.render_smb_conf(topology)),
        RenderedFile(hosts.PATH, hosts.render_hosts(topology)),
    ]
    return {f.path: f for f in files}


def render_client(topology: Topology) -> dict[str, RenderedFile]:
    """The files of the client container."""
    files = [
        RenderedFile(hosts.PATH, hosts.render_hosts(topology)),
        RenderedFile(smbconf.CLIENT_PATH, smbconf.render_client_smb_conf(topology)),
    ]
    return {f.path: f for f in files}


def render_lab(topology: Topology, secret: str | None = None) -> dict[str, dict[str, RenderedFile]]:
    """Every host's files, keyed by host name (nodes, then the client); a fresh secret unless given."""
    key = authkeys.new_secret() if secret is None else secret
    rendered = {node.name: render_node(topology, node, key) for node in topology.nodes}
    rendered[topology.client.name] = render_client(topology)
    return rendered
