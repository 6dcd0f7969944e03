"""Containers from plan specs: the one place a lab's containers are created, whatever their kind.

The spec is complete (plan/kinds/); the engine adds only what it alone knows: image tags, the loop
device of each partition, and ``apparmor=unconfined`` on engines that confine containers with
AppArmor (docker-default denies mount(2), which FUSE and ogfs-modload need). The low-level API is
used because the high-level ``create`` has no ``stop_timeout``, and ``docker stop fred`` typed by
hand must give heartbeat as long as ``labctl shutdown`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from labctl.plan.model import ContainerSpec, ImageKind
from labctl.runtime.engine import EngineError, put_files


def create(
    client: docker.DockerClient,
    spec: ContainerSpec,
    tags: Mapping[ImageKind, str],
    loops: Mapping[str, str] | None = None,
    security_opt: list[str] | None = None,
    engine_socket: str | None = None,
) -> Container:
    """Create ``spec`` (not started) and copy its files in.  ``engine_socket`` is the engine's
    own socket on its host, for a spec that asks for it (the power switch)."""
    api = client.api
    devices = list(spec.devices)
    for part in spec.partitions:
        if loops is None or part.partition not in loops:
            raise EngineError(f"{spec.name}: no loop device for partition {part.partition}")
        devices.append(f"{loops[part.partition]}:{part.path}:rwm")
    binds = {m.volume: {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in spec.mounts}
    if spec.engine_socket is not None:
        if engine_socket is None:
            raise EngineError(f"{spec.name}: needs the engine's socket, and none was given")
        binds[engine_socket] = {"bind": spec.engine_socket, "mode": "rw"}
    host_config: dict[str, Any] = {
        "cap_add": list(spec.cap_add) or None,
        "cap_drop": list(spec.cap_drop) or None,
        "devices": devices or None,
        "tmpfs": dict(spec.tmpfs) or None,
        "binds": binds or None,
        "extra_hosts": dict(spec.extra_hosts) or None,
        "mem_limit": spec.memory,
        "memswap_limit": spec.memory,  # no swap on top: a lab that outgrows its limit says so
        "pids_limit": spec.pids,
        "network_mode": spec.network or "none",
        "security_opt": (security_opt or None) if spec.role in ("node", "client") else None,
    }
    kwargs: dict[str, Any] = {}
    if spec.network is not None:
        endpoint = api.create_endpoint_config(ipv4_address=str(spec.address) if spec.address else None)
        kwargs["networking_config"] = api.create_networking_config({spec.network: endpoint})
    try:
        created = api.create_container(
            tags[spec.image],
            name=spec.name,
            hostname=spec.hostname,
            labels=spec.labels,
            entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
            command=list(spec.command) if spec.command is not None else None,
            host_config=api.create_host_config(**host_config),
            stop_signal=spec.stop_signal,
            stop_timeout=spec.stop_timeout,
            detach=True,
            **kwargs,
        )
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot create {spec.role} {spec.host} ({spec.name}): {exc.explanation or exc}") \
            from None
    container = client.containers.get(created["Id"])
    if spec.files or spec.dirs:
        put_files(container, {f.path: (f.data, f.mode) for f in spec.files}, dirs=spec.dirs)
    return container
