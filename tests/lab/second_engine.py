"""A second Docker engine beside the first, for tests that must prove labctl reaches an engine only
through ``DOCKER_HOST`` or a docker context.

    with SecondEngine(images=["labctl/base:...", ...]) as second:
        env = {**os.environ, "DOCKER_HOST": second.host}     # unix:///run/<name>/docker.sock
        second.client                                        # an SDK client for it
        second.data_root                                     # what its info()["DockerRootDir"] says

What it starts, and why (each point measured on a Debian 12 VM, dockerd 20.10, iptables-nft,
cgroup v1, br_netfilter loaded):

- Its own socket, ``--data-root``, ``--exec-root`` (which also holds its own managed containerd),
  ``--pidfile`` and ``--config-file`` (an empty one: the host's /etc/docker/daemon.json is the
  first engine's), and ``--cgroup-parent /<name>`` so its containers' cgroups sit apart from the
  first engine's ``/docker/...`` (removed on exit).
- **Its own network namespace.** Both daemons manage the same DOCKER* iptables chains, and a
  daemon starting with iptables on begins by removing them (libnetwork's ``removeIPChains``):
  measured by starting a dockerd in a scratch namespace holding a copy of the host's rules plus a
  fake lab network's isolation DROP and a published port's DNAT: all three were gone once it
  answered, replaced by rules for its own bridge only. In the host namespace that would strip the
  first engine's internal networks of the rules that keep them internal (until the first engine
  restarts and strips the second's in turn). ``--iptables=false`` in the host namespace does not
  fight, but then nothing accepts the second engine's bridged traffic: with br_netfilter and the
  FORWARD policy DROP the first engine sets, two containers on one of its internal networks could
  not ping each other (measured: 100 % loss, the policy's DROP counter rising). A namespace of its
  own gives the second daemon its own netfilter tables, its own ``ip_forward`` and
  ``bridge-nf-call-iptables``, and routes that cannot collide with the first engine's subnets
  (labs on both engines may use 192.168.1.0/24). The daemon runs under ``nsenter --net`` and
  ``unshare --mount`` with a sysfs of its namespace on /sys (``/sys/class/net`` must show its
  interfaces) and the host's cgroup mounts moved back under it (``ip netns exec`` remounts /sys
  too but loses them: "Devices cgroup isn't mounted"). Its mounts (overlay, volumes) stay in that
  private mount namespace. The namespace has no uplink, so nothing a lab on it sends can leave
  the machine; it also means the engine cannot pull or build anything that needs the network,
  hence the images are loaded from the first engine.
- **Its own bridge** (``ip link add <name> type bridge`` with an address on a private /24 that no
  network of the first engine and no host route uses, ``--bridge <name>``), deleted on exit. A
  second daemon started in the host namespace with ``--bridge=none`` removed the first engine's
  docker0 when it stopped, after which the first engine could not build; inside the namespace
  there is no docker0 to remove, and the explicit bridge keeps it so if the namespace is dropped.

On exit: containers left on the second engine are removed (every object there is the test's), loop
devices backed by files in its data root detached, the daemon stopped (SIGTERM to its pid, waited
for), processes it left behind ended by pid, the bridge, namespace, cgroups, data root and run
directory removed; then the first engine is checked to be as it was (docker0 present if it was,
its docker0 iptables rules still there, it answers and runs a container) and AssertionError is
raised if not.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import docker
import docker.errors

# Run as the namespace's PID-1-less "init": a fresh sysfs (of the new network namespace, since the
# mounting process is in it) on /sys, with the cgroup mounts carried over first.
_WRAP = """set -e
mkdir -p "$1/cgroup"
mount --rbind /sys/fs/cgroup "$1/cgroup"
mount -t sysfs sysfs /sys
mount --move "$1/cgroup" /sys/fs/cgroup
rmdir "$1/cgroup"
shift
exec "$@"
"""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {res.returncode}: {res.stderr.strip()}")
    return res


def _poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def _docker0_rules() -> set[str]:
    """The host namespace's iptables rules that name docker0 (the first engine's default bridge)."""
    out = _run("iptables-save", check=False).stdout
    return {line for line in out.splitlines() if "docker0" in line and line.startswith("-A")}


def _link_exists(name: str, netns: str | None = None) -> bool:
    argv = ["ip"] + (["-n", netns] if netns else []) + ["link", "show", name]
    return _run(*argv, check=False).returncode == 0


def _free_subnet(first: docker.DockerClient) -> ipaddress.IPv4Network:
    """A /24 in 10.254.0.0/16 that no network of the first engine and no host route uses (outside
    labctl's default lab pool, 10.213.0.0/16, so the bridge takes no lab's subnet on either engine)."""
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for net in first.networks.list():
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                used.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    for route in json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(dst, strict=False))
    for candidate in ipaddress.ip_network("10.254.0.0/16").subnets(new_prefix=24):
        if not any(candidate.overlaps(u) for u in used if u.version == 4):
            return candidate  # type: ignore[return-value]
    raise RuntimeError("no free /24 in 10.254.0.0/16 for the second engine's bridge")


class SecondEngine:
    """A second dockerd in a network namespace of its own (see the module docstring)."""

    def __init__(self, images: Iterable[str] = (), name: str | None = None,
                 first: docker.DockerClient | None = None, start_timeout: float = 60,
                 stop_timeout: float = 60) -> None:
        self.name = name or f"lc2-{secrets.token_hex(3)}"
        self.images = list(images)
        self.run_dir = Path("/run") / self.name
        self.data_root = Path("/var/lib") / self.name
        self.sock = self.run_dir / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.netns = self.name
        self.bridge = f"{self.name}-br"[:15]
        self.cgroup_parent = f"/{self.name}"
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self._first_given = first
        self.first: docker.DockerClient | None = None
        self.client: docker.DockerClient | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.subnet: ipaddress.IPv4Network | None = None
        self.timings: dict[str, float] = {}
        self._before: dict[str, Any] = {}
        self._made: list[str] = []  # what exists, for cleanup in reverse

    # ----------------------------------------------------------------- context manager

    def __enter__(self) -> SecondEngine:
        try:
            self.start()
            self.load_images(self.images)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        problems = self.stop()
        if problems and exc is None:
            raise AssertionError("second engine cleanup: " + "; ".join(problems))
        if problems:
            print("second engine cleanup: " + "; ".join(problems))

    # ----------------------------------------------------------------- start

    def start(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("a second dockerd needs root")
        dockerd = shutil.which("dockerd")
        if not dockerd:
            raise RuntimeError("no dockerd on PATH")
        self.first = self._first_given or docker.from_env(timeout=120)
        self.first.ping()
        self._before = {"docker0": _link_exists("docker0"), "docker0_rules": _docker0_rules()}
        if self.run_dir.exists() or self.data_root.exists() or Path(f"/run/netns/{self.netns}").exists():
            raise RuntimeError(f"{self.name}: run dir, data root or netns already exists")
        self.subnet = _free_subnet(self.first)
        gateway = next(self.subnet.hosts())

        self.run_dir.mkdir(mode=0o700)
        self._made.append("run_dir")
        self.data_root.mkdir(mode=0o711)
        self._made.append("data_root")
        (self.run_dir / "daemon.json").write_text("{}\n")
        (self.run_dir / "wrap.sh").write_text(_WRAP)

        _run("ip", "netns", "add", self.netns)
        self._made.append("netns")
        _run("ip", "-n", self.netns, "link", "set", "lo", "up")
        _run("ip", "-n", self.netns, "link", "add", self.bridge, "type", "bridge")
        self._made.append("bridge")
        _run("ip", "-n", self.netns, "addr", "add", f"{gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _run("ip", "-n", self.netns, "link", "set", self.bridge, "up")

        argv = [
            "nsenter", f"--net=/run/netns/{self.netns}",
            "unshare", "--mount", "--propagation", "private",
            "sh", str(self.run_dir / "wrap.sh"), str(self.run_dir),
            dockerd,
            "--config-file", str(self.run_dir / "daemon.json"),
            "--host", self.host,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.run_dir / "exec"),
            "--pidfile", str(self.run_dir / "docker.pid"),
            "--bridge", self.bridge,
            "--cgroup-parent", self.cgroup_parent,
        ]
        started = time.monotonic()
        log = open(self.run_dir / "dockerd.log", "wb")  # noqa: SIM115 - the daemon keeps it
        # nsenter, unshare and sh all exec: the child's pid is dockerd's.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self._made.append("daemon")

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}:\n{self.log_tail()}")
            try:  # the SDK asks the server's API version as it is made: made once it answers
                self.client = self.client or docker.DockerClient(base_url=self.host, timeout=120)
                return bool(self.client.ping())
            except (docker.errors.DockerException, OSError, ValueError):
                return False  # requests' ConnectionError while the socket is not there yet

        _poll(answers, self.start_timeout, f"the second dockerd on {self.host}")
        self.timings["start"] = time.monotonic() - started
        assert self.client is not None
        root = self.client.info()["DockerRootDir"]
        if root != str(self.data_root):
            raise RuntimeError(f"{self.host} answers with DockerRootDir {root}, not {self.data_root}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.run_dir / "dockerd.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ----------------------------------------------------------------- images

    def load_images(self, refs: Iterable[str]) -> None:
        """``docker save`` each of ``refs`` on the first engine, streamed into ``docker load`` here
        (tags kept). Layers already loaded (a node image's base) are skipped by the engine."""
        assert self.first is not None and self.client is not None
        started = time.monotonic()
        for ref in refs:
            image = self.first.images.get(ref)  # ImageNotFound names the tag
            stream = image.save(chunk_size=1 << 20, named=ref)
            self.client.images.load(stream)
            got = self.client.images.get(ref)
            if got.id != image.id:
                raise RuntimeError(f"{ref}: loaded as {got.id}, the first engine has {image.id}")
        self.timings["load"] = time.monotonic() - started

    # ----------------------------------------------------------------- stop

    def stop(self) -> list[str]:
        """Undo everything; returns what went wrong (empty when the first engine is as it was)."""
        problems: list[str] = []

        def step(what: str, fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep cleaning
                problems.append(f"{what}: {exc}")

        if "daemon" in self._made:
            step("remove containers", self._remove_containers)
        if "data_root" in self._made:
            step("detach loop devices", self._detach_loops)
        if "daemon" in self._made:
            step("stop dockerd", self._stop_daemon)
            step("leftover processes", self._kill_leftovers)
        if "bridge" in self._made:
            step("delete bridge", lambda: _run("ip", "-n", self.netns, "link", "del", self.bridge))
        if "netns" in self._made:
            step("delete netns", lambda: _run("ip", "netns", "del", self.netns))
        step("cgroups", self._remove_cgroups)
        if "data_root" in self._made:
            step("data root", lambda: shutil.rmtree(self.data_root))
        if "run_dir" in self._made:
            step("run dir", lambda: shutil.rmtree(self.run_dir))
        self._made.clear()
        if self.first is not None and self._before:
            step("first engine", lambda: problems.extend(self._check_first()))
            self._before = {}
        return problems

    def _remove_containers(self) -> None:
        if self.client is None:
            return
        with contextlib.suppress(docker.errors.DockerException, OSError):
            if not self.client.ping():
                return
        for c in self.client.containers.list(all=True):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)

    def _detach_loops(self) -> None:
        """Loop devices bound to a file in the data root (a lab's disk image that no ``down``
        detached): found by the file's device and inode (``losetup -j``), as labctl does."""
        if not self.data_root.exists():
            return
        for path in self.data_root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            for line in _run("losetup", "-j", str(path), check=False).stdout.splitlines():
                dev = line.split(":", 1)[0]
                if dev.startswith("/dev/loop"):
                    _run("losetup", "-d", dev)

    def _stop_daemon(self) -> None:
        started = time.monotonic()
        if self.client is not None:
            self.client.close()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            raise RuntimeError(f"dockerd ignored SIGTERM for {self.stop_timeout:.0f} s: killed") from None
        finally:
            self.timings["stop"] = time.monotonic() - started

    def _ours(self) -> list[int]:
        """Processes whose command line names this engine's run directory (containerd, shims)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(self.run_dir) + "/" in cmd or cmd.rstrip().endswith(str(self.run_dir)):
                found.append(int(entry.name))
        return found

    def _kill_leftovers(self) -> None:
        left = self._ours()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if left:
            _poll(lambda: not self._ours(), 30, "leftover processes to end")
            raise RuntimeError(f"processes left after dockerd stopped, killed: {left}")

    def _remove_cgroups(self) -> None:
        base = Path("/sys/fs/cgroup")
        tops = [base / self.name] + [d / self.name for d in base.iterdir() if d.is_dir()]
        for top in tops:
            if not top.is_dir():
                continue
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                d.rmdir()
            top.rmdir()

    def _check_first(self) -> list[str]:
        assert self.first is not None
        problems = []
        if self._before.get("docker0") and not _link_exists("docker0"):
            problems.append("the first engine's docker0 is gone")
        lost = self._before.get("docker0_rules", set()) - _docker0_rules()
        if lost:
            problems.append(f"the first engine's docker0 iptables rules are gone: {sorted(lost)}")
        if _link_exists(self.bridge):
            problems.append(f"{self.bridge} exists in the host namespace")
        try:
            self.first.ping()
            probe = self.images[0] if self.images else "labctl/base"
            self.first.containers.run(probe, entrypoint=["true"], network_mode="none", remove=True,
                                      labels={"labctl.test": "second-engine-probe"})
        except docker.errors.DockerException as exc:
            problems.append(f"the first engine cannot run a container: {exc}")
        return problems
