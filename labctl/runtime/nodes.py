"""Node and client containers.

A node (fred, barney) is a container of the node image whose PID 1 is labctl-init: it lives while
heartbeat runs and dies with it. It gets

- hostname = node name (heartbeat's node name, G12), a static address on the lab's LAN, the lab's
  host names through Docker's ``extra_hosts`` (Docker owns /etc/hosts in a container);
- the capabilities it needs on top of Docker's defaults: NET_ADMIN (the cluster IP, iptables),
  NET_RAW (send_arp, ping: a default, named to say so), SYS_ADMIN (FUSE mounts, the
  /proc/filesystems bind of ogfs-modload, blockdev); never privileged mode;
- /dev/fuse and the shared disk's loop devices as /dev/sda1, /dev/sda2, ...;
- a tmpfs on /run (pidfiles, tty locks and FIFOs die with the node: G6), the cable volume;
- the rendered files (ogfscf.cf, ha.cf, haresources, authkeys 0600, smb.conf), the serial end and
  its hook, copied in before the first start;
- no restart policy: a node that was killed stays down until ``labctl recover``.

The client is a plain container of the client image (smbclient), no capabilities added.
"""

from __future__ import annotations

import docker
import docker.errors
from docker.models.containers import Container

from labctl.render import hosts_entries
from labctl.render.files import RenderedFile
from labctl.runtime import serial
from labctl.runtime.engine import (
    LABEL_HOST,
    LABEL_LOCKPROTO,
    LABEL_PROFILE,
    LABEL_SOURCE,
    LABEL_TOPOLOGY,
    EngineError,
    Role,
    labels,
    object_name,
    put_files,
)
from labctl.topology.model import Topology

NODE_CAPS = ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]
STOP_TIMEOUT = 120  # seconds docker stop waits for heartbeat to release the group before SIGKILL
SKIPPED_FILES = {"/etc/hosts"}  # Docker writes a container's /etc/hosts; extra_hosts adds ours


def container_name(lab: str, host: str) -> str:
    return object_name(lab, host)


def _files(rendered: dict[str, RenderedFile]) -> dict[str, tuple[bytes, int]]:
    return {path: (f.data, f.mode) for path, f in rendered.items() if path not in SKIPPED_FILES}


def host_labels(lab: str, role: Role, host: str, topology_text: str, source: str, profile: str,
                lockproto: str) -> dict[str, str]:
    return labels(
        lab,
        role,
        **{
            LABEL_HOST: host,
            LABEL_TOPOLOGY: topology_text,
            LABEL_SOURCE: source,
            LABEL_PROFILE: profile,
            LABEL_LOCKPROTO: lockproto,
        },
    )


def _endpoint(client: docker.DockerClient, ip: str) -> object:
    return client.api.create_endpoint_config(ipv4_address=ip)


def create_node(
    client: docker.DockerClient,
    lab: str,
    topology: Topology,
    node_name: str,
    image: str,
    network: str,
    devices: list[str],
    files: dict[str, RenderedFile],
    host_label_values: dict[str, str],
    security_opt: list[str],
) -> Container:
    node = topology.node(node_name)
    api = client.api
    # The low-level API: the high-level create() has no stop_timeout, and `docker stop fred` typed
    # by hand must give heartbeat as long as `labctl shutdown` does.
    host_config = api.create_host_config(
        extra_hosts={name: ip for name, ip in hosts_entries(topology) if name != node.name},
        cap_add=NODE_CAPS,
        devices=["/dev/fuse:/dev/fuse:rwm", *devices],
        tmpfs={"/run": "rw,nosuid,nodev,mode=0755"},
        binds={serial.cable_volume_name(lab): {"bind": serial.NODE_SOCKET_DIR, "mode": "rw"}},
        security_opt=security_opt or None,
        network_mode=network,
    )
    try:
        created = api.create_container(
            image,
            name=container_name(lab, node.name),
            hostname=node.name,
            labels=host_label_values,
            host_config=host_config,
            networking_config=api.create_networking_config({network: _endpoint(client, str(node.ip))}),
            stop_signal="SIGTERM",
            stop_timeout=STOP_TIMEOUT,
            detach=True,
        )
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot create node {node.name}: {exc.explanation or exc}") from None
    container = client.containers.get(created["Id"])
    payload = _files(files)
    payload.update(serial.node_files(topology, node))
    put_files(container, payload, dirs=[topology.share.path])
    return container


def create_client(
    client: docker.DockerClient,
    lab: str,
    topology: Topology,
    image: str,
    network: str,
    files: dict[str, RenderedFile],
    host_label_values: dict[str, str],
) -> Container:
    who = topology.client
    try:
        container = client.containers.create(
            image,
            name=container_name(lab, who.name),
            hostname=who.name,
            labels=host_label_values,
            network=network,
            networking_config={network: _endpoint(client, str(who.ip))},
            extra_hosts={name: ip for name, ip in hosts_entries(topology) if name != who.name},
            stop_signal="SIGTERM",
            detach=True,
        )
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot create the client {who.name}: {exc.explanation or exc}") from None
    put_files(container, _files(files))
    return container
