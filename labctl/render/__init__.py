"""Render layer: the files each host of a lab gets, as pure functions of the topology model.

``render_lab(topology)`` gives ``{host: {path: RenderedFile}}``; ``write_lab`` writes it under a
directory (``labctl render two-node --out DIR``); ``tar_bytes`` packs one host's files for
Docker's put_archive (modes kept: authkeys must be 0600).
"""

from labctl.render.authkeys import new_secret, render_authkeys
from labctl.render.files import RenderedFile, tar_bytes, write_lab, write_tree
from labctl.render.hacf import render_ha_cf
from labctl.render.haresources import render_haresources, resource_line
from labctl.render.hosts import hosts_entries, render_hosts
from labctl.render.lab import render_client, render_lab, render_node
from labctl.render.ogfscf import render_ogfscf
from labctl.render.smbconf import render_client_smb_conf, render_smb_conf

__all__ = [
    "RenderedFile",
    "hosts_entries",
    "new_secret",
    "render_authkeys",
    "render_client",
    "render_client_smb_conf",
    "render_ha_cf",
    "render_haresources",
    "render_hosts",
    "render_lab",
    "render_node",
    "render_ogfscf",
    "render_smb_conf",
    "resource_line",
    "tar_bytes",
    "write_lab",
    "write_tree",
]
