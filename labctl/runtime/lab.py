"""A lab on the engine: ``up`` as one transaction, ``down`` by labels, and a handle on a running lab.

``up`` is one transaction: when anything fails or the user interrupts it (Ctrl-C, SIGTERM) it
removes everything it created; it returns only when the share serves. Every object carries the
lab's label from the moment the engine creates it and ``up`` refuses to run when any object of the
lab exists, so "what this up created" is exactly "what carries the lab's label": the undo removes
by label (like ``down``) and cannot miss an object whose creation was interrupted halfway. ``down`` finds
the lab's objects through their ``labctl.lab`` label alone, so it works from any directory, after
a crash, and after an ``up`` that was killed with SIGKILL; it touches nothing else.

``Lab`` is a running lab found through its labels (the topology text travels in the labels of its
node and client containers): the faults and observe layers act through it and never see Docker.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from labctl.errors import LabctlError, TopologyError
from labctl.render import render_lab
from labctl.render.ogfscf import render_ogfscf
from labctl.runtime import disk, images, network, nodes, serial
from labctl.runtime.engine import (
    LABEL_HOST,
    LABEL_LAB,
    LABEL_LOCKPROTO,
    LABEL_PROFILE,
    LABEL_ROLE,
    LABEL_SOURCE,
    LABEL_TOPOLOGY,
    EngineError,
    ExecResult,
    LabObjects,
    LabStateError,
    connect,
    exec_in,
    lab_filter,
    lab_names,
    lab_objects,
    read_file,
    remove_container,
    security_options,
)
from labctl.topology import parse_topology
from labctl.topology.model import Topology, lab_name_problem

LOCKPROTOS = disk.LOCKPROTOS


class UsageError(LabctlError):
    """Bad input on the command line (a lab or node name that does not exist...): exit code 2."""

    exit_code = 2


# --------------------------------------------------------------------------- progress


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


# --------------------------------------------------------------------------- share probe


@dataclass(frozen=True)
class ShareProbe:
    """What the client sees of ``\\\\<cluster>\\<share>``: listed by ``smbclient -L``, and usable:
    writable (``up``'s check) or readable (``status``'s read-only check)."""

    unc: str
    listed: bool
    usable: bool
    detail: str
    wrote: bool = False

    @property
    def serving(self) -> bool:
        return self.listed and self.usable


def share_probe_script(topology: Topology, write: bool = True) -> str:
    """A client-side shell script: ``smbclient -L`` must list the share, then either a write (put and
    delete a probe file) or, read-only, a directory listing must work. Prints LISTED and
    WRITABLE/READABLE, or what failed."""
    cluster, share = topology.cluster.name, topology.share.name
    probe = f".labctl-probe-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    lines = [
        f"out=$(timeout 20 smbclient -L //{cluster} -N -g -t 5 2>&1); rc=$?",
        f'if ! printf "%s\\n" "$out" | grep -q "^Disk|{share}|"; then',
        '  echo "LIST $rc"; printf "%s\\n" "$out" | tail -n 3; exit 0',
        "fi",
        "echo LISTED",
    ]
    if write:
        command, ok = f"put /etc/hostname {probe}; del {probe}", "WRITABLE"
    else:
        command, ok = "ls", "READABLE"
    lines += [
        f"out=$(timeout 20 smbclient //{cluster}/{share} -N -t 5 -c '{command}' 2>&1); rc=$?",
        f'if [ $rc -eq 0 ] && ! printf "%s\\n" "$out" | grep -q NT_STATUS; then echo {ok}; '
        'else echo "FAILED $rc"; printf "%s\\n" "$out" | tail -n 3; fi',
    ]
    return "\n".join(lines) + "\n"


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
            c = self.client.containers.get(nodes.container_name(self.name, host))
        except docker.errors.NotFound:
            return None
        return c if c.labels.get(LABEL_LAB) == self.name else None

    def _running(self, host: str) -> Container:
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist (lab {self.name} is incomplete)")
        c.reload()
        if c.status != "running":
            raise LabStateError(f"{host} is not running ({c.status}): labctl recover {host}")
        return c

    def state(self, host: str) -> HostState:
        role = self.role_of(host)
        c = self.container(host)
        if c is None:
            return HostState(host, role, nodes.container_name(self.name, host), "absent")
        try:
            c.reload()
        except docker.errors.NotFound:
            return HostState(host, role, nodes.container_name(self.name, host), "absent")
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

    def stop(self, host: str, timeout: float = nodes.STOP_TIMEOUT) -> int:
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
        script = serial.asset("labctl-probe").decode()
        res = exec_in(c, ["python3", "-c", script], timeout=60)
        if not res.ok:
            return {"error": res.output.strip()[-500:] or f"probe exited {res.code}"}
        try:
            return dict(json.loads(res.output.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {"error": res.output.strip()[-500:]}

    def probe_share(self, write: bool = True) -> ShareProbe:
        t = self.topology
        unc = f"\\\\{t.cluster.name}\\{t.share.name}"
        c = self.container(t.client.name)
        if c is None:
            return ShareProbe(unc, False, False, "the client container does not exist", write)
        c.reload()
        if c.status != "running":
            return ShareProbe(unc, False, False, f"the client is {c.status}", write)
        res = exec_in(c, ["sh", "-c", share_probe_script(t, write)], timeout=60)
        lines = res.output.strip().splitlines()
        listed = "LISTED" in lines
        usable = ("WRITABLE" if write else "READABLE") in lines
        if listed and usable:
            detail = "listed and writable" if write else "listed and readable"
        elif not listed:
            detail = f"not listed by smbclient -L //{t.cluster.name}: " + " ".join(lines[1:])[-300:]
        else:
            what = "a write" if write else "a directory listing"
            detail = f"listed, but {what} failed: " + " ".join(lines[lines.index("LISTED") + 2 :])[-300:]
        return ShareProbe(unc, listed, usable, detail.strip(), wrote=write)

    def docker_logs(self, host: str, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        c = self.container(host)
        if c is None:
            raise LabStateError(f"{host}: its container does not exist")
        kw: dict[str, Any] = {"stdout": True, "stderr": True, "tail": tail if tail is not None else "all"}
        if follow:
            yield from c.logs(stream=True, follow=True, **kw)
        else:
            yield c.logs(**kw)

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

    def run_attached(self, host: str, argv: list[str], tty: bool, interactive: bool) -> int:
        """``docker exec [-i] [-t]``: the command's exit code."""
        c = self._running(host)
        return _attach_exec(self.client, c, argv, tty, interactive)


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


def _attach_exec(client: docker.DockerClient, c: Container, argv: list[str], tty: bool,
                 interactive: bool) -> int:
    api = client.api
    exec_id = api.exec_create(c.id, argv, stdin=interactive, tty=tty, stdout=True, stderr=True)["Id"]
    sock_io = api.exec_start(exec_id, socket=True, tty=tty)
    raw: socket.socket = getattr(sock_io, "_sock", sock_io)
    restore: Callable[[], None] | None = None
    if tty and sys.stdin.isatty():
        import termios
        import tty as ttymod

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        ttymod.setraw(fd)
        restore = lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)  # noqa: E731

        def resize(*_: object) -> None:
            with contextlib.suppress(Exception):
                cols, rows = os.get_terminal_size(sys.stdout.fileno())
                api.exec_resize(exec_id, height=rows, width=cols)

        resize()
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGWINCH, resize)

    def pump_stdin() -> None:
        try:
            while True:
                r, _, _ = select.select([sys.stdin.fileno()], [], [], 0.5)
                if not r:
                    continue
                data = os.read(sys.stdin.fileno(), 4096)
                if not data:
                    break
                raw.sendall(data)
        except OSError:
            return
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)

    if interactive:
        threading.Thread(target=pump_stdin, daemon=True).start()
    try:
        out, err = sys.stdout.buffer, sys.stderr.buffer
        pending = b""
        while True:
            try:
                data = raw.recv(65536)
            except OSError:
                break
            if not data:
                break
            if tty:
                out.write(data)
                out.flush()
                continue
            pending += data
            while len(pending) >= 8:
                kind, size = pending[0], struct.unpack(">I", pending[4:8])[0]
                if len(pending) < 8 + size:
                    break
                (err if kind == 2 else out).write(pending[8 : 8 + size])
                (err if kind == 2 else out).flush()
                pending = pending[8 + size :]
    finally:
        if restore is not None:
            restore()
        with contextlib.suppress(OSError):
            raw.close()
    for _ in range(50):
        info = api.exec_inspect(exec_id)
        if not info.get("Running"):
            return int(info.get("ExitCode") or 0)
        time.sleep(0.1)
    return int(api.exec_inspect(exec_id).get("ExitCode") or 0)


# --------------------------------------------------------------------------- up


class _Interrupted(KeyboardInterrupt):
    """SIGTERM during ``up``: handled like Ctrl-C (undo, then exit)."""


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM raises like Ctrl-C while ``up`` works (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(_sig: int, _frame: object) -> None:
        raise _Interrupted()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """While undoing: a second Ctrl-C or SIGTERM must not stop the cleanup halfway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {s: signal.signal(s, lambda sig, _f: got.append(sig)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclass
class UpResult:
    lab: str
    topology: Topology
    images: dict[images.ImageKind, str]
    seconds_images: float
    seconds_boot: float
    seconds_serving: float
    share: ShareProbe


def default_serve_timeout(topology: Topology) -> float:
    """Initdead (a lone node waits that long for its peer) plus takeover and image-build slack."""
    return topology.heartbeat.initdead_ms / 1000 + topology.heartbeat.deadtime_ms / 1000 + 150


def check_lab_name(name: str) -> None:
    problem = lab_name_problem(name)
    if problem:
        raise UsageError(f"--lab {name!r}: {problem}")


def up(
    topology: Topology,
    *,
    lab: str | None = None,
    lockproto: str = "memexp",
    no_cache: bool = False,
    keep_on_failure: bool = False,
    serve_timeout: float | None = None,
    progress: Progress | None = None,
) -> UpResult:
    """Build missing images, create the lab, boot it and wait until the share serves.

    Everything created is undone if anything fails or the user interrupts (unless
    ``keep_on_failure``, for debugging). Raises ``LabStateError`` (exit 3) if the lab exists or its
    subnet is taken, ``UsageError`` (exit 2) for a bad lab name or lock protocol.
    """
    progress = progress or Progress()
    name = lab or topology.name
    check_lab_name(name)
    if lockproto not in LOCKPROTOS:
        raise UsageError(f"--lockproto {lockproto!r}: choose one of {', '.join(LOCKPROTOS)}")
    if topology.source is None:
        raise ValueError("up needs a topology loaded from a file (its text goes into the lab's labels)")
    text = topology.source.read_text(encoding="utf-8")
    client = connect()
    existing = lab_objects(client, name)
    if not existing.empty:
        running = [c.name for c in existing.containers if c.status == "running"]
        if running:
            raise LabStateError(f"lab {name} is already up ({', '.join(sorted(running))} running): "
                                f"labctl status --lab {name}, or labctl down --lab {name} first")
        raise LabStateError(f"lab {name} already exists ({existing.describe()}): "
                            f"labctl down --lab {name} first")
    clashes = network.subnet_conflicts(client, topology.subnet)
    if clashes:
        raise LabStateError(f"subnet {topology.subnet} of {name} overlaps {', '.join(clashes)}: "
                            "labs side by side need distinct subnets (another topology, or down the "
                            "other lab)")
    taken = [n for n in (nodes.container_name(name, h) for h in (*topology.node_names, topology.client.name))
             if client.containers.list(all=True, filters={"name": f"^/?{n}$"})]
    if taken:
        raise LabStateError(f"containers named {', '.join(taken)} exist and are not lab {name}'s")

    started = time.monotonic()
    tags = images.ensure_images(client, progress.build, no_cache)
    t_images = time.monotonic() - started
    boot_started = time.monotonic()
    try:
        with _signals_raise():
            rendered = render_lab(topology)
            net = network.create_lan(client, name, topology)
            progress.say(f"created network {net.name} ({topology.subnet}, internal)")
            disk.create_disk_volume(client, name, tags["node"])
            serial.create_cable_volume(client, name)
            loops = disk.attach_and_format(client, name, topology, tags["node"], render_ogfscf(topology),
                                           lockproto)
            progress.say(
                "attached the disk: "
                + ", ".join(f"{p.path}={loops[p.name]}" for p in topology.disk.partitions)
                + f"; made the cidev and an ogfs filesystem (lock protocol {lockproto})"
            )
            if topology.serial:
                cable = serial.create_cable(client, name, topology, tags["base"])
                cable.start()
                progress.say(f"started the serial cable {cable.name} (no network; "
                             + ", ".join(f"{c.a}<->{c.b} at {c.baud} baud" for c in topology.serial) + ")")

            source = str(topology.source)
            sec = security_options(client)
            devices = disk.partition_devices(topology, loops)
            node_files = {n.name: rendered[n.name] for n in topology.nodes}
            if lockproto == "nolock":
                node_files = {k: _without_lock_server(v) for k, v in node_files.items()}
            node_containers = []
            for node in topology.nodes:
                hl = nodes.host_labels(name, "node", node.name, text, source, topology.heartbeat.name,
                                       lockproto)
                node_containers.append(nodes.create_node(client, name, topology, node.name, tags["node"],
                                                         net.name, devices, node_files[node.name], hl, sec))
            who = topology.client
            hl = nodes.host_labels(name, "client", who.name, text, source, topology.heartbeat.name, lockproto)
            client_c = nodes.create_client(client, name, topology, tags["client"], net.name,
                                           rendered[who.name], hl)
            # The seed's step 9: heartbeat on both nodes, started together.
            for c in node_containers:
                c.start()
            client_c.start()
            progress.say("started " + ", ".join(f"{n.name} ({n.ip})" for n in topology.nodes)
                         + f" and the client {who.name} ({who.ip})")
            t_boot = time.monotonic() - boot_started
            handle = Lab(client, name, topology, lockproto)
            probe = wait_serving(handle, serve_timeout or default_serve_timeout(topology), progress)
    except BaseException as exc:
        if keep_on_failure and not isinstance(exc, KeyboardInterrupt):
            progress.say(f"kept what was created (--keep-on-failure): labctl down --lab {name} removes it")
            raise
        with _signals_held():
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            progress.say(f"up {why}: removing what it created")
            errors = _undo(client, name, progress)
        if errors:
            raise EngineError(f"up {why}, and undoing it left errors:\n  " + "\n  ".join(errors)
                              + f"\n(original error: {exc})") from exc
        raise
    return UpResult(name, topology, tags, t_images, t_boot, time.monotonic() - boot_started, probe)


def _without_lock_server(files: dict[str, Any]) -> dict[str, Any]:
    """lockproto nolock: a filesystem without a lock server; the group has no memexpd resource."""
    from labctl.render.files import RenderedFile

    out = dict(files)
    path = "/etc/ha.d/haresources"
    f = out[path]
    lines = [
        " ".join(t for t in line.split() if t != "memexpd") if line and not line.startswith("#") else line
        for line in f.content.splitlines()
    ]
    lines.insert(0, "# lockproto nolock (labctl up --lockproto nolock): no lock server in the group.")
    out[path] = RenderedFile(path, "\n".join(lines) + "\n", f.mode)
    return out


def _undo(client: docker.DockerClient, name: str, progress: Progress) -> list[str]:
    """Remove everything an interrupted or failed ``up`` created.

    ``up`` refuses to start when any object of the lab exists, so every object labelled with the
    lab is this up's: removing them by label (``down``) cannot miss one whose creation was
    interrupted between the engine's answer and the code that would have recorded it. A create
    abandoned in flight can still land a moment later, hence the second look."""
    errors: list[str] = []
    for _ in range(3):
        try:
            _down(client, name, progress)
        except Exception as exc:  # noqa: BLE001 - report it, try again
            errors.append(str(exc))
        time.sleep(0.5)
        left = lab_objects(client, name)
        if left.empty:
            return []
    return [*errors, f"still there: {left.describe()}"]


def wait_serving(lab: Lab, timeout: float, progress: Progress) -> ShareProbe:
    """Poll until the client lists the share and can write to it; EngineError with the nodes' last
    log lines when ``timeout`` passes or a node dies first."""
    deadline = time.monotonic() + timeout
    t = lab.topology
    last = ShareProbe("", False, False, "not probed yet")
    while True:
        for node in t.node_names:
            st = lab.state(node)
            if st.status not in ("running", "created"):
                raise EngineError(f"{node} stopped while the lab booted (status {st.status}, exit code "
                                  f"{st.exit_code}):\n{_last_lines(lab, node)}")
        last = lab.probe_share()
        if last.serving:
            return last
        for node in t.node_names:
            failure = _group_failure(lab, node)
            if failure:
                raise EngineError(f"{node} could not start the resource group, so {last.unc} will not "
                                  f"serve (heartbeat gives it up and hands it around, G19):\n{failure}")
        phase = _phase(lab)
        progress.waiting(f"waiting for {last.unc or 'the share'}: {phase}")
        if time.monotonic() >= deadline:
            logs = "\n".join(_last_lines(lab, n) for n in t.node_names)
            raise EngineError(f"the share {last.unc} did not serve within {timeout:.0f} s ({last.detail}); "
                              f"{phase}\n{logs}")
        time.sleep(1.0)


GROUP_FAILURE = "Giving up resources due to failure of"


def _group_failure(lab: Lab, node: str) -> str:
    """The log lines around heartbeat giving up the group on ``node`` (a resource failed to start)."""
    try:
        text = b"".join(lab.docker_logs(node, tail=400)).decode("utf-8", "replace")
    except LabctlError:
        return ""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if GROUP_FAILURE in line:
            context = [x for x in lines[max(0, i - 12) : i + 1] if "ResourceManager" in x or "ERROR" in x
                       or "CRIT" in x or ": " in x.split(" ", 1)[0]]
            return "\n".join("  " + x for x in context[-12:])
    return ""


def _phase(lab: Lab) -> str:
    parts = []
    for node in lab.node_names:
        p = lab.probe_node(node)
        if not p:
            parts.append(f"{node} down")
            continue
        if "error" in p:
            parts.append(f"{node}: {p['error'][:80]}")
            continue
        held = [r["kind"] for r in p.get("resources", []) if r.get("held")]
        parts.append(f"{node}: heartbeat {p.get('heartbeat')}, holds {', '.join(held) or 'nothing'}")
    return "; ".join(parts)


def _last_lines(lab: Lab, host: str, n: int = 20) -> str:
    try:
        data = b"".join(lab.docker_logs(host, tail=n)).decode("utf-8", "replace")
    except LabctlError:
        return f"--- {host}: no container"
    return f"--- last lines of {host}:\n" + "\n".join("  " + line for line in data.splitlines())


# --------------------------------------------------------------------------- down


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


def down(name: str, progress: Progress | None = None) -> DownResult:
    """Remove every container, loop device, volume and network labelled ``labctl.lab=<name>``."""
    progress = progress or Progress()
    check_lab_name(name)
    return _down(connect(), name, progress)


def _down(client: docker.DockerClient, name: str, progress: Progress) -> DownResult:
    objs = lab_objects(client, name)
    result = DownResult(name, [], [], [], [])
    if objs.empty:
        return result
    for c in objs.containers:
        remove_container(c)
        result.containers.append(c.name)
        progress.say(f"removed container {c.name}")
    disk_volumes = [v for v in objs.volumes if (v.attrs.get("Labels") or {}).get(LABEL_ROLE) == "disk"]
    for v in disk_volumes:
        image = (v.attrs.get("Labels") or {}).get("labctl.helper.image", "")
        if not image or not _image_exists(client, image):
            progress.say("the helper image is gone: building the node image to detach the loop devices")
            image = images.ensure_images(client, progress.build)["node"]
        result.loops += disk.detach_loops(client, name, image)
        if result.loops:
            progress.say(f"detached {', '.join(result.loops)}")
    for v in objs.volumes:
        try:
            v.remove(force=True)
        except docker.errors.NotFound:
            pass
        result.volumes.append(v.name)
        progress.say(f"removed volume {v.name}")
    for n in objs.networks:
        try:
            n.remove()
        except docker.errors.NotFound:
            pass
        result.networks.append(n.name)
        progress.say(f"removed network {n.name}")
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


def objects(name: str) -> LabObjects:
    """Every object of lab ``name`` (for tests and ``status`` of a broken lab)."""
    return lab_objects(connect(), name)


__all__ = [
    "DownResult",
    "HostState",
    "Lab",
    "LabStateError",
    "Progress",
    "ShareProbe",
    "UpResult",
    "UsageError",
    "down",
    "lab_filter",
    "objects",
    "up",
    "wait_serving",
]
