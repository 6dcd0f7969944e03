"""The shared disk: a sparse image in a lab volume, one loop device per partition, mapped into nodes.

Everything goes through the engine, so a remote engine (``DOCKER_HOST=ssh://...``) works and the
host needs no tools: a short-lived **helper** container (the node image: it has losetup and the
ogfs commands) with ``CAP_SYS_ADMIN``, the engine host's ``/dev`` and the device-cgroup rules for
loop devices (``b 7:* rwm``, ``c 10:237 rwm`` for /dev/loop-control)

1. creates ``/disk/disk.img`` (``truncate``: sparse, the topology's size),
2. attaches one loop device per partition with ``--offset``/``--sizelimit`` (``losetup -P`` makes no
   partition nodes inside containers), appending each to ``/disk/loops`` as it goes,
3. does the seed's step 2 on them: ``ogfsconf -c /etc/ogfscf.cf -d <cidev loop>`` writes the cluster
   information device, ``mkfs.ogfs -p <lockproto> -t <cidev> -j <nodes> <data loop>`` the filesystem.

Nodes then get ``/dev/loopN`` mapped as ``/dev/sda1``, ``/dev/sda3``, ... (every partition,
the external-journal one included: it is on the seed's disk even though ogfs keeps its journals
inside the data partition). Detaching finds the loops by the image's inode (``losetup -j``), not by
a remembered list, so it also cleans up after an ``up`` that was killed between two ``losetup``.
"""

from __future__ import annotations

import docker
import docker.errors
from docker.models.volumes import Volume

from labctl.runtime.engine import (
    LABEL_HELPER_IMAGE,
    EngineError,
    labels,
    object_name,
    put_files,
    remove_container,
    wait_exit,
)
from labctl.topology.model import Topology

DISK_MOUNT = "/disk"
IMAGE_PATH = f"{DISK_MOUNT}/disk.img"
LOOPS_FILE = f"{DISK_MOUNT}/loops"
LOCKPROTOS = ("memexp", "nolock")
JOURNAL_MB = 32
HELPER_TIMEOUT = 300.0

LOOP_RULES = ["b 7:* rwm", "c 10:237 rwm"]


def disk_volume_name(lab: str) -> str:
    return object_name(lab, "disk")


def create_disk_volume(client: docker.DockerClient, lab: str, helper_image: str) -> Volume:
    return client.volumes.create(
        disk_volume_name(lab),
        labels=labels(lab, "disk", **{LABEL_HELPER_IMAGE: helper_image}),
    )


def run_helper(
    client: docker.DockerClient,
    lab: str,
    image: str,
    purpose: str,
    script: str,
    *,
    volume: str,
    files: dict[str, tuple[bytes, int]] | None = None,
    loop_access: bool = False,
    devices: list[str] | None = None,
    timeout: float = HELPER_TIMEOUT,
) -> str:
    """Run ``sh -c script`` in a short-lived helper container; its output. Raises EngineError on a
    non-zero exit. The container is removed whatever happens (also on KeyboardInterrupt)."""
    name = object_name(lab, f"helper-{purpose}")
    try:
        stale = client.containers.get(name)
        if stale.labels.get("labctl.lab") == lab:
            remove_container(stale)
    except docker.errors.NotFound:
        pass
    kwargs: dict[str, object] = {}
    if loop_access:
        kwargs.update(
            cap_add=["SYS_ADMIN"],
            volumes={volume: {"bind": DISK_MOUNT, "mode": "rw"}, "/dev": {"bind": "/dev", "mode": "rw"}},
            device_cgroup_rules=LOOP_RULES,
        )
    else:
        kwargs.update(volumes={volume: {"bind": DISK_MOUNT, "mode": "rw"}})
    if devices:
        kwargs["devices"] = devices
    container = client.containers.create(
        image,
        entrypoint=["sh", "-c", script],
        command=[],
        name=name,
        labels=labels(lab, "helper"),
        network_mode="none",
        **kwargs,
    )
    try:
        if files:
            put_files(container, files)
        container.start()
        code = wait_exit(container, timeout)
        output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        remove_container(container)
    if code != 0:
        tail = "\n  ".join(output.strip().splitlines()[-15:])
        raise EngineError(f"the {purpose} helper failed with status {code}:\n  {tail}")
    return output


def _format_script(topology: Topology, lockproto: str) -> str:
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
        f"ogfsconf -c /etc/ogfscf.cf -d \"$loop_{cidev.name}\"",
        f"mkfs.ogfs -p {lockproto} -t {cidev.path} -j {journals} -J {JOURNAL_MB} -O \"$loop_{data.name}\"",
    ]
    return "\n".join(lines) + "\n"


def attach_and_format(
    client: docker.DockerClient,
    lab: str,
    topology: Topology,
    image: str,
    ogfscf: str,
    lockproto: str = "memexp",
) -> dict[str, str]:
    """Create the image, attach its partitions, write the cidev and make the filesystem.
    Returns ``{partition name: /dev/loopN}``."""
    if lockproto not in LOCKPROTOS:
        raise ValueError(f"lockproto {lockproto!r}")
    output = run_helper(
        client,
        lab,
        image,
        "disk",
        _format_script(topology, lockproto),
        volume=disk_volume_name(lab),
        files={"/etc/ogfscf.cf": (ogfscf.encode(), 0o644)},
        loop_access=True,
    )
    loops: dict[str, str] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "loop":
            loops[fields[1]] = fields[2]
    missing = [p.name for p in topology.disk.partitions if p.name not in loops]
    if missing:
        raise EngineError(f"the disk helper attached no loop device for {', '.join(missing)}:\n{output}")
    return loops


DETACH_SCRIPT = f"""\
set -u
img={IMAGE_PATH}
[ -e "$img" ] || exit 0
for dev in $(losetup --list --noheadings --output NAME --associated "$img"); do
    losetup --detach "$dev" && echo "detached $dev"
done
left=$(losetup --list --noheadings --output NAME --associated "$img")
if [ -n "$left" ]; then echo "still attached: $left"; exit 1; fi
rm -f {LOOPS_FILE}
"""


def detach_loops(client: docker.DockerClient, lab: str, image: str) -> list[str]:
    """Detach every loop device backed by the lab's disk image; the devices detached."""
    output = run_helper(client, lab, image, "detach", DETACH_SCRIPT, volume=disk_volume_name(lab),
                        loop_access=True, timeout=120)
    return [line.split()[1] for line in output.splitlines() if line.startswith("detached ")]


def partition_devices(topology: Topology, loops: dict[str, str]) -> list[str]:
    """Docker device mappings: ``/dev/loopN:/dev/sdaK:rwm`` for every partition."""
    return [f"{loops[p.name]}:{p.path}:rwm" for p in topology.disk.partitions]
