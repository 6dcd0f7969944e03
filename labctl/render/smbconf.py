"""``/etc/samba/smb.conf``: the guest-writable share of the cluster filesystem (ha-stack.md section 3).

The same file on every node. smbd and nmbd run only where the resource group runs (heartbeat's
``smb`` resource, after the cluster IP and the mount), and bind to the cluster IP alone, so clients
reach the share, and nmbd answers for the cluster name, only through the address that moves.
"""

from __future__ import annotations

from labctl.topology.model import Topology

PATH = "/etc/samba/smb.conf"
CLIENT_PATH = "/etc/samba/smb.conf"


def _section(name: str, settings: list[tuple[str, str] | str]) -> list[str]:
    lines = [f"[{name}]"]
    for item in settings:
        lines.append(f"   # {item}" if isinstance(item, str) else f"   {item[0]} = {item[1]}")
    return lines


def render_smb_conf(topology: Topology) -> str:
    cluster, share = topology.cluster, topology.share
    prefix = topology.network.subnet.prefixlen
    global_settings: list[tuple[str, str] | str] = [
        ("server role", "standalone server"),
        ("workgroup", share.workgroup.upper()),
        ("netbios name", cluster.name.upper()),
        ("server string", f"{cluster.name} (lab {topology.name})"),
        "smbd and nmbd answer on the cluster IP only (127.0.0.1 for local tools; nmbd skips it)",
        ("interfaces", f"127.0.0.1 {cluster.ip}/{prefix}"),
        ("bind interfaces only", "yes"),
        ("smb ports", "445 139"),
        ("disable netbios", "no"),
        ("dns proxy", "no"),
        "guests: unknown users and anonymous sessions map to the guest account",
        ("security", "user"),
        ("map to guest", "Bad User"),
        ("guest account", "nobody"),
        "no leases: a client must not cache writes the server has acknowledged",
        ("smb2 leases", "no"),
        ("load printers", "no"),
        ("printing", "bsd"),
        ("printcap name", "/dev/null"),
        ("disable spoolss", "yes"),
        ("logging", "file"),
        ("log file", "/var/log/samba/log.%m"),
        ("max log size", "1000"),
        ("log level", "1"),
    ]
    share_settings: list[tuple[str, str] | str] = [
        ("comment", share.comment),
        ("path", share.path),
        ("browseable", "yes"),
        ("read only", "no"),
        ("guest ok", "yes"),
        ("force user", share.force_user),
        ("create mask", "0664"),
        ("directory mask", "0775"),
        "a write the client was told succeeded is on the shared disk, so it survives failover",
        ("strict sync", "yes"),
        ("sync always", "yes"),
        ("oplocks", "no"),
        ("level2 oplocks", "no"),
        "locks and share modes stay in Samba (the cluster filesystem has no cluster-wide fcntl locks)",
        ("kernel oplocks", "no"),
        ("kernel share modes", "no"),
        ("posix locking", "no"),
        "no xattrs needed from the filesystem",
        ("store dos attributes", "no"),
        ("ea support", "no"),
        ("map archive", "no"),
        ("nt acl support", "no"),
    ]
    lines = [f"# Samba configuration of lab {topology.name}, rendered by labctl. Check with: testparm -s", ""]
    lines += _section("global", global_settings) + [""] + _section(share.name, share_settings)
    return "\n".join(lines) + "\n"


def render_client_smb_conf(topology: Topology) -> str:
    """The client's smb.conf: just enough for smbclient and nmblookup to run without warnings."""
    lines = [f"# Samba client configuration of lab {topology.name}, rendered by labctl", ""]
    lines += _section(
        "global",
        [
            ("workgroup", topology.share.workgroup.upper()),
            ("netbios name", topology.client.name.upper()[:15]),
            ("client min protocol", "SMB2"),
            ("name resolve order", "host bcast"),
            ("load printers", "no"),
        ],
    )
    return "\n".join(lines) + "\n"
