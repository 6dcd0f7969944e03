"""The Docker engine as the lab sees it: the connection, object names and labels, exec helpers.

Everything a lab creates carries ``labctl.lab=<lab>`` and ``labctl.role=<role>``; those labels are
the single source of truth for what exists, so ``down`` and ``status`` work from any directory and
after a crash. Only ``labctl.runtime`` imports ``docker``.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network
from docker.models.volumes import Volume

from labctl.errors import LabctlError, LabStateError
from labctl.plan.model import Role
from labctl.plan.names import LABEL_LAB, LABEL_ROLE
from labctl.runtime.context import client_from_environment

__all__ = ["EngineError", "LabStateError"]  # LabStateError: raised by the runtime, defined with the others

class EngineError(LabctlError):
    """The Docker engine cannot be reached or refused something (exit code 1)."""


# --------------------------------------------------------------------------- names and labels


def lab_filter(lab: str, role: Role | None = None) -> dict[str, Any]:
    wanted = [f"{LABEL_LAB}={lab}"]
    if role is not None:
        wanted.append(f"{LABEL_ROLE}={role}")
    return {"label": wanted}


# --------------------------------------------------------------------------- the connection


def connect() -> docker.DockerClient:
    """A client for the engine ``DOCKER_HOST``, else the docker context, names (runtime/context.py);
    pinged once."""
    try:
        client = client_from_environment(timeout=120)
        client.ping()
    except (docker.errors.DockerException, LabctlError, OSError) as exc:
        raise EngineError(
            f"no Docker engine answers ({_short(exc)}): start one, or point DOCKER_HOST at one "
            "(e.g. DOCKER_HOST=ssh://user@host) or choose a docker context (DOCKER_CONTEXT=NAME)"
        ) from None
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- what a lab has


@dataclass
class LabObjects:
    """Every object that carries ``labctl.lab=<lab>``."""

    containers: list[Container]
    networks: list[Network]
    volumes: list[Volume]

    @property
    def empty(self) -> bool:
        return not (self.containers or self.networks or self.volumes)

    def describe(self) -> str:
        parts = []
        if self.containers:
            parts.append("containers " + ", ".join(sorted(c.name for c in self.containers)))
        if self.networks:
            parts.append("networks " + ", ".join(sorted(n.name for n in self.networks)))
        if self.volumes:
            parts.append("volumes " + ", ".join(sorted(v.name for v in self.volumes)))
        return "; ".join(parts) or "nothing"


def lab_objects(client: docker.DockerClient, lab: str) -> LabObjects:
    flt = lab_filter(lab)
    return LabObjects(
        containers=client.containers.list(all=True, filters=flt),
        networks=client.networks.list(filters=flt),
        volumes=client.volumes.list(filters=flt),
    )


def lab_names(client: docker.DockerClient) -> list[str]:
    """Names of every lab with at least one object on this engine, sorted."""
    found: set[str] = set()
    flt = {"label": [LABEL_LAB]}
    for c in client.containers.list(all=True, filters=flt):
        found.add(c.labels.get(LABEL_LAB, ""))
    for n in client.networks.list(filters=flt):
        found.add((n.attrs.get("Labels") or {}).get(LABEL_LAB, ""))
    for v in client.volumes.list(filters=flt):
        found.add((v.attrs.get("Labels") or {}).get(LABEL_LAB, ""))
    found.discard("")
    return sorted(found)


# --------------------------------------------------------------------------- containers


@dataclass(frozen=True)
class ExecResult:
    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def exec_in(container: Container, argv: list[str], timeout: float | None = 30) -> ExecResult:
    """Run ``argv`` in a running container (stdout and stderr together); ``timeout`` seconds at most,
    enforced inside the container with coreutils' ``timeout`` (exit 124 when it fires)."""
    cmd = (["timeout", "-k", "2", f"{timeout:g}"] + argv) if timeout else argv
    try:
        code, out = container.exec_run(cmd, demux=False)
    except docker.errors.APIError as exc:
        return ExecResult(126, f"docker exec failed: {_short(exc)}")
    return ExecResult(int(code if code is not None else 1), (out or b"").decode("utf-8", "replace"))


def put_files(container: Container, files: Mapping[str, tuple[bytes, int]], dirs: Iterable[str] = ()) -> None:
    """Copy files (path -> (content, mode)) and empty directories into a created container."""
    buf = io.BytesIO()
    stamp = int(time.time())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            info = tarfile.TarInfo(d.strip("/"))
            info.type = tarfile.DIRTYPE
            info.mode, info.mtime = 0o755, stamp
            tar.addfile(info)
        for path, (data, mode) in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, stamp
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    if not container.put_archive("/", buf.getvalue()):
        raise EngineError(f"{container.name}: copying files into the container failed")


def read_file(container: Container, path: str, limit: int = 64 << 20) -> bytes | None:
    """A file's content from a container, running or stopped (``docker cp``); None if absent."""
    try:
        stream, stat = container.get_archive(path)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError:
        return None
    buf = io.BytesIO()
    for chunk in stream:
        buf.write(chunk)
        if buf.tell() > limit + (1 << 20):
            break
    buf.seek(0)
    try:
        with tarfile.open(fileobj=buf) as tar:
            for member in tar:
                if member.isfile():
                    fh = tar.extractfile(member)
                    return fh.read() if fh else None
    except tarfile.TarError:
        return None
    return None


def wait_exit(container: Container, timeout: float) -> int:
    """Wait for a container to stop; its exit code. Raises EngineError after ``timeout`` s."""
    try:
        result = container.wait(timeout=timeout)
    except Exception as exc:  # requests' ReadTimeout/ConnectionError
        raise EngineError(f"{container.name} did not finish within {timeout:.0f} s ({_short(exc)})") from None
    return int(result.get("StatusCode", 1))


def remove_container(container: Container) -> None:
    try:
        container.remove(force=True, v=False)
    except docker.errors.NotFound:
        pass


def security_options(client: docker.DockerClient) -> list[str]:
    """``apparmor=unconfined`` on engines that confine containers with AppArmor: docker-default denies
    mount(2), which FUSE and ogfs-modload need (ha-stack.md section 6). Nothing elsewhere."""
    try:
        opts = client.info().get("SecurityOptions") or []
    except docker.errors.APIError:
        return []
    return ["apparmor=unconfined"] if any("name=apparmor" in str(o) for o in opts) else []
