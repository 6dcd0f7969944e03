"""A running lab, found on the engine through its labels: the handle faults and observe act through.

The topology's text travels in the labels of the lab's claim and of its node and client containers,
so ``Lab.open`` rebuilds the model from the engine alone: every verb after ``up`` works from any
directory and does not care whether the file changed since. Nothing above the runtime sees Docker.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from labctl.errors import LabctlError, LabStateError, TopologyError, UsageError
from labctl.observe.share import ShareProbe
from labctl.plan.kinds.node import STOP_TIMEOUT
from labctl.plan.names import (
    LABEL_HOST,
    LABEL_LAB,
    LABEL_LOCKPROTO,
    LABEL_OUTER,
    LABEL_PROFILE,
    LABEL_ROLE,
    LABEL_SOURCE,
    LABEL_TOPOLOGY,
    claim_name,
    object_name,
)
from labctl.render.assets import asset_bytes
from labctl.render.lan import Overlay, overlay_for
from labctl.runtime.attach import attach_exec
from labctl.runtime.engine import EngineError, ExecResult, connect, exec_in, lab_names, lab_objects, read_file
from labctl.runtime.records import RecordStore
from labctl.topology import parse_topology
from labctl.topology.model import Topology, lab_name_problem


def check_lab_name(name: str) -> None:
    problem = lab_name_problem(name)
    if problem:
        raise UsageError(f"--lab {name!r}: {problem}")


# --------------------------------------------------------------------------- a lab that exists


@dataclass(frozen=True)
class HostState:
    """A container of the lab as Docker reports it."""

    name: str
    role: str
    container: str
    status: str  # running, exited, created, paused, restarting, absent
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"


class Lab:
    """A lab found on the engine through its labels."""

    def __init__(self, client: docker.DockerClient, name: str, topology: Topology, lockproto: str) -> None:
        self.client = client
        self.name = name
        self.topology = topology
        self.lockproto = lockproto

    # ---- finding labs

    @classmethod
    def open(cls, name: str, client: docker.DockerClient | None = None) -> Lab:
        client = client or connect()
        holders = client.containers.list(all=True, filters={"label": [f"{LABEL_LAB}={name}", LABEL_TOPOLOGY]})
        if not holders:
            objs = lab_objects(client, name)
            if objs.empty:
                known = lab_names(client)
                raise LabStateError(
                    f"no lab named {name!r} on this engine"
                    + (f" (labs: {', '.join(known)})" if known else " (no lab is up: labctl up TOPOLOGY)")
                )
            raise LabStateError(
                f"lab {name!r} is incomplete ({objs.describe()}): an up was interrupted or failed; "
                f"labctl down --lab {name} removes what is left"
            )
        lbl = holders[0].labels
        text = lbl.get(LABEL_TOPOLOGY, "")
        source = lbl.get(LABEL_SOURCE, f"{name}.yaml")
        try:
            topology = parse_topology(text, Path(source), lbl.get(LABEL_PROFILE) or None, shown=source)
        except TopologyError as exc:
            raise LabctlError(f"lab {name}: the topology in its labels does not load any more: {exc}") \
                from None
        return cls(client, name, topology, lbl.get(LABEL_LOCKPROTO, "memexp"))

    @staticmethod
    def names(client: docker.DockerClient | None = None) -> list[str]:
        return lab_names(client or connect())

    @classmethod
    def find(cls, lab: str | None = None, host: str | None = None) -> Lab:
        """The lab ``lab``; without a name, the only lab (having host ``host``, if given)."""
        if lab is not None:
            check_lab_name(lab)
        client = connect()
        if lab is not None:
            return cls.open(lab, client)
        known = lab_names(client)
        if not known:
            raise LabStateError("no lab is up on this engine (labctl up TOPOLOGY)")
        if host is not None and len(known) > 1:
            having = []
            for name in known:
                flt = {"label": [f"{LABEL_LAB}={name}", f"{LABEL_HOST}={host}"]}
                if client.containers.list(all=True, filters=flt):
                    having.append(name)
            if len(having) == 1:
                return cls.open(having[0], client)
            if not having:
                raise UsageError(f"no lab has a host named {host!r} (labs: {', '.join(known)})")
            known = having
        if len(known) > 1:
            raise UsageError(f"several labs are up ({', '.join(known)}): say which with --lab NAME")
        return cls.open(known[0], client)

    # ---- hosts

    @property
    def node_names(self) -> tuple[str, ...]:
        return self.topology.node_names

    @property
    def host_names(self) -> tuple[str, ...]:
        return (*self.topology.node_names, self.topology.client.name)

    def role_of(self, host: str) -> str:
        if host in self.topology.node_names:
            return "node"
        if host == self.topology.client.name:
            return "client"
        raise UsageError(
            f"lab {self.name} has no host {host!r} (nodes: {', '.join(self.node_names)}; "
            f"client: {self.topology.client.name})"
        )

    def container(self, host: str) -> Container | None:
        self.role_of(host)
        try:
            c = self.client.containers.get(object_name(self.name, host))
        except docker.errors.NotFound:
            return None
        return c if c.labels.get(LABEL_LAB) == self.name else None

    def _running(self, host: str) -> Container:
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist (lab {self.name} is incomplete)")
        c.reload()
        if c.status == "paused":
            raise LabStateError(f"{host} is frozen: labctl thaw {host}")
        if c.status != "running":
            raise LabStateError(f"{host} is not running ({c.status}): labctl recover {host}")
        return c

    def state(self, host: str) -> HostState:
        role = self.role_of(host)
        c = self.container(host)
        if c is None:
            return HostState(host, role, object_name(self.name, host), "absent")
        try:
            c.reload()
        except docker.errors.NotFound:
            return HostState(host, role, object_name(self.name, host), "absent")
        st = c.attrs.get("State") or {}
        return HostState(
            host,
            role,
            c.name,
            str(st.get("Status", c.status)),
            int(st["ExitCode"]) if st.get("ExitCode") is not None else None,
            str(st.get("StartedAt", "")),
            str(st.get("FinishedAt", "")),
        )

    # ---- power

    def kill(self, host: str) -> None:
        c = self._running(host)
        try:
            c.kill()
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot kill {host}: {exc.explanation or exc}") from None

    def stop(self, host: str, timeout: float = STOP_TIMEOUT) -> int:
        c = self._running(host)
        try:
            c.stop(timeout=int(timeout))
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot stop {host}: {exc.explanation or exc}") from None
        c.reload()
        return int((c.attrs.get("State") or {}).get("ExitCode", -1))

    def start(self, host: str) -> None:
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist (lab {self.name} is incomplete)")
        c.reload()
        if c.status == "running":
            raise LabStateError(f"{host} is already running")
        if c.status == "paused":
            c.unpause()
            return
        try:
            c.start()
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot start {host}: {exc.explanation or exc}") from None

    def pause(self, host: str) -> None:
        """Freeze every process of ``host`` (the cgroup freezer, ``docker pause``)."""
        c = self._running(host)
        try:
            c.pause()
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot freeze {host}: {exc.explanation or exc}") from None

    def unpause(self, host: str) -> None:
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist (lab {self.name} is incomplete)")
        c.reload()
        if c.status != "paused":
            raise LabStateError(f"{host} is not frozen ({c.status})")
        try:
            c.unpause()
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot thaw {host}: {exc.explanation or exc}") from None

    def restart(self, host: str, timeout: float = STOP_TIMEOUT) -> None:
        """A reboot: a clean stop (heartbeat gives its resources up), then a start."""
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist (lab {self.name} is incomplete)")
        try:
            c.restart(timeout=int(timeout))
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot restart {host}: {exc.explanation or exc}") from None

    # ---- the lab's own objects

    @property
    def records(self) -> RecordStore:
        return RecordStore(self.client, self.name)

    def overlay(self) -> Overlay:
        """The lab's outer addressing (each host's address on the Docker network under the LAN)."""
        try:
            claim = self.client.containers.get(claim_name(self.name))
            subnet = IPv4Network(claim.labels[LABEL_OUTER])
        except (docker.errors.NotFound, KeyError, ValueError):
            raise LabStateError(f"lab {self.name}: its claim has no outer subnet (an older labctl made "
                                f"it, or a down is under way): labctl down --lab {self.name}") from None
        return overlay_for(self.topology, subnet)

    def cable_exec(self, argv: list[str], timeout: float | None = 30) -> ExecResult:
        """Run ``argv`` in the lab's serial cable relay (its container has no shell users)."""
        try:
            c = self.client.containers.get(object_name(self.name, "cable"))
        except docker.errors.NotFound:
            raise LabStateError(f"lab {self.name} has no cable container") from None
        if c.status != "running":
            raise LabStateError(f"lab {self.name}: the cable relay is {c.status}")
        return exec_in(c, argv, timeout)

    # ---- looking inside

    def exec(self, host: str, argv: list[str], timeout: float | None = 30) -> ExecResult:
        return exec_in(self._running(host), argv, timeout)

    def probe_node(self, host: str) -> dict[str, Any] | None:
        """The node's own view (heartbeat links, resources it holds), or None if it is not running."""
        c = self.container(host)
        if c is None:
            return None
        with contextlib.suppress(docker.errors.NotFound):
            c.reload()
        if c.status != "running":
            return None
        script = asset_bytes("labctl-probe").decode()
        res = exec_in(c, ["python3", "-c", script], timeout=60)
        if not res.ok:
            return {"error": res.output.strip()[-500:] or f"probe exited {res.code}"}
        try:
            return dict(json.loads(res.output.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {"error": res.output.strip()[-500:]}

    def probe_share(self, write: bool = True) -> ShareProbe:
        """The share from the client (observe/share.py): writable, or read-only for ``status``."""
        from labctl.observe.share import parse_share_probe, share_probe_script, unc

        t = self.topology
        c = self.container(t.client.name)
        if c is None:
            return ShareProbe(unc(t), False, False, "the client container does not exist", write)
        with contextlib.suppress(docker.errors.NotFound):
            c.reload()
        if c.status != "running":
            return ShareProbe(unc(t), False, False, f"the client is {c.status}", write)
        res = exec_in(c, ["sh", "-c", share_probe_script(t, write)], timeout=60)
        return parse_share_probe(t, res.output, write)

    def docker_logs(self, host: str, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist")
        kw: dict[str, Any] = {"stdout": True, "stderr": True, "tail": tail if tail is not None else "all"}
        try:
            if follow:
                yield from c.logs(stream=True, follow=True, **kw)
            else:
                yield c.logs(**kw)
        except docker.errors.NotFound:
            raise LabStateError(f"{host}: its container went away") from None
        except docker.errors.APIError as exc:
            raise EngineError(f"{host}: cannot read its output: {exc.explanation or exc}") from None

    def file_logs(self, host: str, paths: list[str], follow: bool = False, tail: int | None = None
                  ) -> Iterator[bytes]:
        """Log files inside a host: read through ``docker cp`` (works on a dead node too), or followed
        with ``tail -F`` in a running one."""
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist")
        c.reload()
        if follow:
            if c.status != "running":
                raise LabStateError(f"{host} is not running: -f needs a running host (without -f the "
                                    "files of a stopped host are shown)")
            n = str(tail) if tail is not None else "+1"
            script = f"exec tail -q -n {n} -F {' '.join(paths)} 2>/dev/null"
            exec_id = self.client.api.exec_create(c.id, ["sh", "-c", script], stdout=True, stderr=True)["Id"]
            yield from self.client.api.exec_start(exec_id, stream=True)
            return
        for path in paths:
            for name, data in _read_tree(c, path):
                lines = data.splitlines(keepends=True)
                if tail is not None:
                    lines = lines[-tail:] if tail > 0 else []
                if len(paths) > 1 or name != path:
                    yield f"==> {name} <==\n".encode()
                yield b"".join(lines)

    def read_file(self, host: str, path: str) -> bytes | None:
        c = self.container(host)
        return read_file(c, path) if c is not None else None

    # ---- for labctl events (observe/events.py)

    def read_tree(self, host: str, path: str) -> list[tuple[str, bytes]]:
        """Every regular file at ``path`` (a file or a directory) in a host, as (its path, its
        bytes), through ``docker cp``: a stopped host's files too. Nothing there: []."""
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist")
        return _read_tree(c, path)

    def exec_stream(self, host: str, argv: list[str]) -> Iterator[bytes]:
        """``argv``'s stdout in a running host, chunk by chunk as it comes. Ends when the command
        exits or the host stops. The command's stdin is this stream's connection: closing the
        stream, or this process ending, gives it EOF (a follower that exits then leaves nothing)."""
        c = self._running(host)
        api = self.client.api
        try:
            exec_id = api.exec_create(c.id, argv, stdin=True, stdout=True, stderr=False)["Id"]
            stream = api.exec_start(exec_id, stream=True)
        except docker.errors.APIError as exc:
            raise EngineError(f"{host}: cannot run {argv[0]}: {exc.explanation or exc}") from None
        try:
            yield from stream
        except (OSError, docker.errors.APIError):
            return  # the host went down under the stream: the same as its end
        finally:
            stream.close()

    def relay_logs(self, follow: bool = False, since: float | None = None, host: str = "cable"
                   ) -> Iterator[bytes]:
        """The output of the serial cable relay (or of ``host``, another helper: the power switch)
        (``docker logs -t``: each line after Docker's RFC 3339 timestamp), from ``since`` (unix
        seconds) if given; with ``follow``, until it stops."""
        try:
            c = self.client.containers.get(object_name(self.name, host))
            kw: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": True}
            if since is not None:
                kw["since"] = since
            if follow:
                yield from c.logs(stream=True, follow=True, **kw)
            else:
                yield c.logs(**kw)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineError(f"the {host} container: cannot read its output: "
                              f"{exc.explanation or exc}") from None

    def watch(self, actions: tuple[str, ...]) -> Iterator[tuple[str, str, float]]:
        """The engine's ``actions`` (start, die, extract-to-dir, destroy, ...) on the lab's
        containers from now on, as (host, action, unix time); host is the container's
        ``labctl.host`` label, else its role (``cable``; ``lab`` for the claim, which holds the fault
        records). Subscribed when this returns, so nothing after the call is missed."""
        flt = {"type": "container", "label": f"{LABEL_LAB}={self.name}", "event": list(actions)}
        try:
            stream = self.client.events(decode=True, filters=flt)
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot watch the engine's events: {exc.explanation or exc}") from None

        def each() -> Iterator[tuple[str, str, float]]:
            try:
                for ev in stream:
                    attrs = (ev.get("Actor") or {}).get("Attributes") or {}
                    host = attrs.get(LABEL_HOST) or attrs.get(LABEL_ROLE, "")
                    yield str(host), str(ev.get("Action", "")), int(ev.get("timeNano", 0)) / 1e9
            except (OSError, docker.errors.APIError):
                return
            finally:
                stream.close()

        return each()

    def run_attached(self, host: str, argv: list[str], tty: bool, interactive: bool) -> int:
        """``docker exec [-i] [-t]``: the command's exit code."""
        return attach_exec(self.client, self._running(host), argv, tty, interactive)


def _read_tree(container: Container, path: str) -> list[tuple[str, bytes]]:
    """Every regular file at ``path`` (a file or a directory) in a container, running or not."""
    import io
    import tarfile

    try:
        stream, _ = container.get_archive(path)
    except docker.errors.APIError:
        return []
    buf = io.BytesIO(b"".join(stream))
    out: list[tuple[str, bytes]] = []
    base = path.rstrip("/").rsplit("/", 1)[0]
    with contextlib.suppress(tarfile.TarError), tarfile.open(fileobj=buf) as tar:
        for member in tar:
            if member.isfile():
                fh = tar.extractfile(member)
                if fh is not None:
                    out.append((f"{base}/{member.name}", fh.read()))
    return sorted(out)




# --------------------------------------------------------------------------- every lab on the engine


@dataclass(frozen=True)
class LabRecord:
    """What the engine holds of one lab: its record labels, its hosts' states, its outer subnet."""

    name: str
    topology: str  # the topology's name (from its text), or "" when the lab has no record
    source: str
    profile: str
    lockproto: str
    created: str
    outer_subnet: str
    hosts: dict[str, str]  # host -> container status (running, exited, paused...)
    roles: dict[str, str]  # host -> node / client


def lab_records(client: docker.DockerClient | None = None) -> list[LabRecord]:
    """Every lab with an object on this engine, sorted by name (labels only: no exec)."""
    client = client or connect()
    out = []
    for name in lab_names(client):
        for _attempt in range(5):
            try:
                out.append(_record(client, name))
                break
            except docker.errors.NotFound:
                continue  # an object went away between the list and its inspect (a down under way)
    return out


def _record(client: docker.DockerClient, name: str) -> LabRecord:
    """One lab's record; NotFound when one of its objects goes away meanwhile."""
    objs = lab_objects(client, name)
    hosts, roles, record = {}, {}, {}
    created = ""
    for c in objs.containers:
        role = c.labels.get(LABEL_ROLE, "")
        if role == "lab":
            record = c.labels
            created = str(c.attrs.get("Created", ""))[:19]
        elif role in ("node", "client"):
            host = c.labels.get(LABEL_HOST, c.name)
            hosts[host], roles[host] = c.status, role
            record = record or c.labels
    subnet = ""
    for n in objs.networks:
        cfg = (n.attrs.get("IPAM") or {}).get("Config") or []
        subnet = next((str(x.get("Subnet")) for x in cfg if x.get("Subnet")), subnet)
    text = record.get(LABEL_TOPOLOGY, "")
    topo = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("name:")), "")
    return LabRecord(name, topo, record.get(LABEL_SOURCE, ""), record.get(LABEL_PROFILE, ""),
                     record.get(LABEL_LOCKPROTO, ""), created, subnet, dict(sorted(hosts.items())), roles)
