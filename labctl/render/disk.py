"""The shared disk's script: what the disk helper runs to make the image, attach it and format it.

``truncate`` a sparse image, one ``losetup --offset --sizelimit`` per partition (``losetup -P`` makes
no partition nodes inside containers), each recorded in the loops file as it is attached, then the
seed's step 2: ``ogfsconf`` writes the cluster information device and ``mkfs.ogfs`` the filesystem
(docs/runtime.md, "The disk"). Prints ``loop <partition> <device>`` lines for the runtime to read.
"""

from __future__ import annotations

from labctl.topology.model import Topology

DISK_MOUNT = "/disk"  # the disk volume, in the helper
IMAGE_PATH = f"{DISK_MOUNT}/disk.img"
LOOPS_FILE = f"{DISK_MOUNT}/loops"
OGFSCF_PATH = "/etc/ogfscf.cf"  # where the helper gets the rendered ogfscf.cf
LOCKPROTOS = ("memexp", "nolock")
JOURNAL_MB = 32


def render_format_script(topology: Topology, lockproto: str) -> str:
    if lockproto not in LOCKPROTOS:
        raise ValueError(f"lockproto {lockproto!r}")
    disk = topology.disk
    lines = [
        "set -eu",
        f"img={IMAGE_PATH}",
        f"truncate -s {disk.size} \"$img\"",
        f": >{LOOPS_FILE}",
    ]
    for part in disk.partitions:
        lines += [
            f"dev=$(losetup --find --show --offset {part.start} --sizelimit {part.size} \"$img\")",
            f"echo \"{part.name} $dev\" >>{LOOPS_FILE}",
            f"echo \"loop {part.name} $dev\"",
            f"eval loop_{part.name}=$dev",
        ]
    cidev, data = disk.cidev, disk.datadev
    journals = len(topology.nodes)
    lines += [
        # the seed's step 2: the cluster information device, then the filesystem on the data partition
        f"ogfsconf -c {OGFSCF_PATH} -d \"$loop_{cidev.name}\"",
        f"mkfs.ogfs -p {lockproto} -t {cidev.path} -j {journals} -J {JOURNAL_MB} -O \"$loop_{data.name}\"",
    ]
    return "\n".join(lines) + "\n"
