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

import contextlib

import docker
import docker.errors
from docker.models.volumes import Volume

from labctl.plan.model import DiskSpec, VolumeSpec
from labctl.plan.names import LABEL_HELPER_IMAGE, labels, object_name
from labctl.render.disk import DISK_MOUNT, IMAGE_PATH, LOOPS_FILE
from labctl.runtime.engine import EngineError, put_files, remove_container, wait_exit

HELPER_TIMEOUT = 300.0

LOOP_RULES = ["b 7:* rwm", "c 10:237 rwm"]


def create_volume(client: docker.DockerClient, spec: VolumeSpec, helper_image: str) -> Volume:
    """A volume of the plan; the disk's also names the image that can detach its loops (``down``
    needs it even when the images have changed since)."""
    extra = {LABEL_HELPER_IMAGE: helper_image} if spec.role == "disk" else {}
    return client.volumes.create(spec.name, labels={**spec.labels, **extra})


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
        mem_limit=256 << 20,  # mkfs.ogfs of a large disk is the biggest job; 256 MiB is plenty
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


def attach_and_format(client: docker.DockerClient, lab: str, disk: DiskSpec, image: str) -> dict[str, str]:
    """Create the image, attach its partitions, write the cidev and make the filesystem with the
    plan's files (render/disk.py). Returns ``{partition name: /dev/loopN}``."""
    output = run_helper(
        client,
        lab,
        image,
        "disk",
        f"sh {disk.script}",
        volume=disk.volume,
        files={f.path: (f.data, f.mode) for f in disk.files},
        loop_access=True,
    )
    loops: dict[str, str] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "loop":
            loops[fields[1]] = fields[2]
    missing = [p for p in disk.partitions if p not in loops]
    if missing:
        raise EngineError(f"the disk helper attached no loop device for {', '.join(missing)}:\n{output}")
    return loops


def free_space(client: docker.DockerClient, lab: str, image: str) -> int | None:
    """Bytes free where the engine keeps its volumes (its data root, seen from a throwaway helper on
    the engine's host, so a remote engine answers for its own disk); None if it cannot tell."""
    root = str(client.info().get("DockerRootDir") or "/var/lib/docker")
    name = object_name(lab, "helper-df")
    try:
        out = client.containers.run(image, entrypoint=["df", "-B1", "--output=avail", "/data"], command=[],
                                    name=name, labels=labels(lab, "helper"), network_mode="none",
                                    volumes={root: {"bind": "/data", "mode": "ro"}}, remove=True,
                                    mem_limit=32 << 20)
    except docker.errors.DockerException:
        with contextlib.suppress(docker.errors.DockerException):
            client.containers.get(name).remove(force=True)
        return None
    lines = out.decode("utf-8", "replace").split()
    return int(lines[-1]) if lines and lines[-1].isdigit() else None


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


def detach_loops(client: docker.DockerClient, lab: str, volume: str, image: str) -> list[str]:
    """Detach every loop device backed by the lab's disk image; the devices detached."""
    output = run_helper(client, lab, image, "detach", DETACH_SCRIPT, volume=volume,
                        loop_access=True, timeout=120)
    return [line.split()[1] for line in output.splitlines() if line.startswith("detached ")]



