"""``down``: remove every object labelled with the lab, and nothing else; the claim goes last.

Objects are found through their ``labctl.lab`` label alone, so ``down`` works from any directory,
after a crash, and after an ``up`` that was killed with SIGKILL. The loop devices are detached by a
helper of the image named on the disk volume (rebuilt if it is gone). The claim is removed last,
so a new ``up`` of the same name cannot start while the old lab is still half there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors

from labctl.plan.names import LABEL_HELPER_IMAGE, LABEL_ROLE
from labctl.runtime import disk, images
from labctl.runtime.engine import EngineError, lab_objects, remove_container


@dataclass
class Progress:
    """Callbacks ``up`` and ``down`` report through; every one is optional."""

    build: Callable[[str, str], None] | None = None  # (image kind, build output line)
    step: Callable[[str], None] | None = None  # "created network labctl-two-node-lan"
    wait: Callable[[str], None] | None = None  # "waiting for \\fscluster\ogfs: ..."

    def say(self, text: str) -> None:
        if self.step:
            self.step(text)

    def waiting(self, text: str) -> None:
        if self.wait:
            self.wait(text)


@dataclass
class DownResult:
    lab: str
    containers: list[str]
    networks: list[str]
    volumes: list[str]
    loops: list[str]

    @property
    def nothing(self) -> bool:
        return not (self.containers or self.networks or self.volumes or self.loops)


def remove_lab(client: docker.DockerClient, name: str, progress: Progress) -> DownResult:
    objs = lab_objects(client, name)
    result = DownResult(name, [], [], [], [])
    if objs.empty:
        return result
    claims = [c for c in objs.containers if c.labels.get(LABEL_ROLE) == "lab"]
    for c in objs.containers:
        if c not in claims:
            remove_container(c)
            result.containers.append(c.name)
            progress.say(f"removed container {c.name}")
    for v in objs.volumes:
        labels = v.attrs.get("Labels") or {}
        if labels.get(LABEL_ROLE) != "disk":
            continue
        image = labels.get(LABEL_HELPER_IMAGE, "")
        if not image or not _image_exists(client, image):
            progress.say("the helper image is gone: building the node image to detach the loop devices")
            image = images.ensure_images(client, progress.build)["node"]
        detached = disk.detach_loops(client, name, v.name, image)
        result.loops += detached
        if detached:
            progress.say(f"detached {', '.join(detached)}")
    for v in objs.volumes:
        with contextlib.suppress(docker.errors.NotFound):
            v.remove(force=True)
        result.volumes.append(v.name)
        progress.say(f"removed volume {v.name}")
    for n in objs.networks:
        with contextlib.suppress(docker.errors.NotFound):
            n.remove()
        result.networks.append(n.name)
        progress.say(f"removed network {n.name}")
    for c in claims:
        remove_container(c)
        result.containers.append(c.name)
    left = lab_objects(client, name)
    if not left.empty:
        raise EngineError(f"lab {name}: these objects are still there after down: {left.describe()}")
    return result


def _image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True
