"""A lab on an engine labctl reaches only through DOCKER_HOST, and that engine through a docker
context: nothing of labctl may touch the engine on the machine it runs on.

A second dockerd runs beside the first (tests/lab/second_engine.py: its own socket, data root,
exec root, network namespace and bridge), loaded with the lab images from the first engine. Then:

1. ``labctl up two-node --lab remote --profile fast`` with DOCKER_HOST set to the second engine in
   labctl's environment only, from a directory that is not the repository: ``status --json`` shows
   the share serving and fred holding every resource, the lab's objects are on the second engine,
   and the first engine never sees an object of lab ``remote`` (its event stream is watched for the
   whole test, and its objects are listed at every step); ``down --lab remote`` leaves the second
   engine as it was loaded (no container, volume, lab network or loop device).
2. A docker context made with the docker CLI in a temporary DOCKER_CONFIG, pointing at the second
   engine: ``labctl.runtime.context.client_from_environment`` reaches it (DockerRootDir is the
   second data root), by DOCKER_CONTEXT and by config.json's currentContext; DOCKER_HOST still wins.
   (labctl's own verbs follow once engine.connect() calls client_from_environment.)

The lab images the sources call for are built on the first engine if it lacks them (the second
engine has no way out of its namespace, so it cannot build); images carry no lab label.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from second_engine import SecondEngine

pytestmark = [pytest.mark.slow, pytest.mark.lab]

ROOT = Path(__file__).resolve().parents[2]
LAB = "remote"
LABEL = f"labctl.lab={LAB}"
PREFIX = f"labctl-{LAB}-"


class Labctl:
    """``python -m labctl`` from a directory that is not the repository, on the engine ``host``."""

    def __init__(self, cwd: Path, host: str) -> None:
        self.cwd = cwd
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY",
                                                                 "DOCKER_CERT_PATH")}
        # The outer PYTHONPATH is kept behind the repository's (a shim there can show the test fail).
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self.env = {**env, "PYTHONPATH": path, "DOCKER_HOST": host}

    def __call__(self, *args: str, timeout: float = 600, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "labctl", *args], cwd=self.cwd, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"labctl {' '.join(args)} exited {res.returncode}:\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res


def lab_objects(client: docker.DockerClient, lab: str = LAB) -> list[str]:
    flt = {"label": [f"labctl.lab={lab}"]}
    return ([f"container {c.name}" for c in client.containers.list(all=True, filters=flt)]
            + [f"network {n.name}" for n in client.networks.list(filters=flt)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=flt)])


class FirstEngineWatch:
    """Every event on the first engine that concerns lab ``remote``: a container carrying its label,
    or a network or volume of its name (the engine's events give networks and volumes no labels; a
    volume's name is its event's ID).
    The stream is opened before the test acts and read in a thread until ``close``. Other work on the
    first engine shows up in the stream too and is ignored."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.seen: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._closing = False
        # ``since``: events the engine logged between this call and the subscription are replayed.
        self._stream = client.events(since=int(time.time()) - 1, decode=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for ev in self._stream:
                actor = ev.get("Actor") or {}
                attrs = actor.get("Attributes") or {}
                # containers: their labels and name; networks: name; volumes: the ID is the name
                name = str(attrs.get("name") or (actor.get("ID") if ev.get("Type") == "volume" else ""))
                if attrs.get("labctl.lab") == LAB or name.startswith(PREFIX):
                    self.seen.append(ev)
        except Exception as exc:  # noqa: BLE001 - closing the stream may end the loop with an error
            if not self._closing:
                self.errors.append(repr(exc))

    def close(self) -> None:
        self._closing = True
        self._stream.close()
        self._thread.join(timeout=10)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def first() -> Iterator[docker.DockerClient]:
    try:
        client = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=300)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"no Docker engine answers on the default socket (CI starts one: .ci/run): {exc}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def tags(first: docker.DockerClient) -> list[str]:
    from labctl.runtime.images import ensure_images, missing_images

    missing = missing_images(first, ROOT)
    started = time.monotonic()
    if missing:
        print(f"\nbuilding {', '.join(missing)} on the first engine, to load into the second")
    wanted = ensure_images(first, root=ROOT)
    if missing:
        print(f"built in {time.monotonic() - started:.0f} s")
    return [wanted["base"], wanted["node"], wanted["client"]]


@pytest.fixture(scope="module")
def second(first: docker.DockerClient, tags: list[str]) -> Iterator[SecondEngine]:
    assert not lab_objects(first), f"the first engine already has a lab {LAB}: {lab_objects(first)}"
    with SecondEngine(images=tags, first=first) as engine:
        print(f"\nsecond engine {engine.host} (netns {engine.netns}, bridge {engine.bridge} {engine.subnet}):"
              f" answered {engine.timings['start']:.2f} s after start, images loaded in"
              f" {engine.timings['load']:.1f} s")
        yield engine
    stop = engine.timings.get("stop", float("nan"))
    print(f"second engine stopped in {stop:.1f} s; the first engine as it was")


# --------------------------------------------------------------------------- 1. DOCKER_HOST


def lab_loops(client: docker.DockerClient) -> list[str]:
    """The loop devices mapped into the lab's nodes."""
    loops: set[str] = set()
    for c in client.containers.list(all=True, filters={"label": [LABEL, "labctl.role=node"]}):
        for dev in c.attrs["HostConfig"].get("Devices") or []:
            if dev["PathOnHost"].startswith("/dev/loop"):
                loops.add(dev["PathOnHost"])
    return sorted(loops)


def still_bound(disk: tuple[int, int], loops: list[str]) -> list[str]:
    """Which of ``loops`` are bound to the file with (st_dev, st_ino) ``disk``: by device and inode,
    since the backing file's name in sysfs is relative to a mount the host does not see
    (``/disk.img``), and another process may take a freed loop device meanwhile."""
    argv = ["losetup", "--list", "--json", "--output", "NAME,BACK-INO,BACK-MAJ:MIN"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    devices = json.loads(out)["loopdevices"] if out.strip() else []
    want = (disk[1], f"{os.major(disk[0])}:{os.minor(disk[0])}")
    return sorted(d["name"] for d in devices  # maj:min comes padded with blanks
                  if d["name"] in loops and (d["back-ino"], str(d["back-maj:min"]).strip()) == want)


def test_a_lab_through_docker_host_never_touches_the_first_engine(
    first: docker.DockerClient, second: SecondEngine, tmp_path: Path
) -> None:
    assert second.client is not None
    far = second.client
    lc = Labctl(tmp_path, second.host)
    loaded = {"images": sorted(t for i in far.images.list() for t in i.tags),
              "networks": sorted(n.name for n in far.networks.list())}
    assert not lab_objects(far)

    watch = FirstEngineWatch(first)
    try:
        try:
            started = time.monotonic()
            up = lc("up", "two-node", "--lab", LAB, "--profile", "fast", timeout=900, check=False)
            took = time.monotonic() - started
            assert not lab_objects(first), lab_objects(first)
            # The second engine has no way out of its namespace: a build there fails. It only
            # builds when the sources changed after the images were loaded (other work in the tree).
            assert "building" not in up.stderr, f"up built images on the second engine:\n{up.stderr}"
            assert up.returncode == 0, f"up exited {up.returncode}:\n{up.stdout}\n{up.stderr}"

            st = json.loads(lc("status", "--lab", LAB, "--json").stdout)
            assert st["lab"] == LAB and st["profile"] == "fast"
            assert st["share"]["serving"] is True, st["share"]
            holders = {r["name"]: r["holders"] for r in st["resources"]}
            assert holders and all(h == ["fred"] for h in holders.values()), holders
            assert all(n["state"] == "running" for n in st["nodes"]), [n["state"] for n in st["nodes"]]

            on_second = lab_objects(far)
            for name in ("container labctl-remote-fred", "container labctl-remote-barney",
                         "container labctl-remote-client", "network labctl-remote-lan",
                         "volume labctl-remote-disk"):
                assert name in on_second, (name, on_second)
            assert not lab_objects(first), lab_objects(first)
            disk_file = Path(far.volumes.get("labctl-remote-disk").attrs["Mountpoint"]) / "disk.img"
            assert str(disk_file).startswith(str(second.data_root)), disk_file
            disk = (disk_file.stat().st_dev, disk_file.stat().st_ino)
            loops = lab_loops(far)
            assert loops and still_bound(disk, loops) == loops, (loops, still_bound(disk, loops))
            print(f"\nup two-node on the second engine: {took:.1f} s; status took {st.get('took')};"
                  f" loops {loops}")
        finally:
            started = time.monotonic()
            down = lc("down", "--lab", LAB, check=False)
            print(f"down: {time.monotonic() - started:.1f} s")
        assert down.returncode == 0, f"down exited {down.returncode}:\n{down.stdout}\n{down.stderr}"

        assert not lab_objects(far), lab_objects(far)
        assert far.containers.list(all=True) == []
        assert far.volumes.list() == []
        assert sorted(n.name for n in far.networks.list()) == loaded["networks"]
        assert sorted(t for i in far.images.list() for t in i.tags) == loaded["images"]
        assert still_bound(disk, loops) == [], f"loop devices left bound to the lab's disk: {loops}"
        assert not lab_objects(first), lab_objects(first)
    finally:
        watch.close()
    assert watch.errors == [], f"the first engine's event stream broke: {watch.errors}"
    assert watch.seen == [], f"the first engine saw lab {LAB}: {watch.seen}"


# --------------------------------------------------------------------------- 2. a docker context


def test_a_docker_context_reaches_the_second_engine(
    first: docker.DockerClient, second: SecondEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labctl.runtime.context import client_from_environment, engine_endpoint

    cli = shutil.which("docker")
    assert cli, "the docker CLI (docker.io) makes the context as a user would"
    config = tmp_path / "docker-config"
    config.mkdir()
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    subprocess.run([cli, "context", "create", "labctl-remote", "--docker", f"host={second.host}"],
                   check=True, capture_output=True, text=True, timeout=60)
    first_root = first.info()["DockerRootDir"]
    assert first_root != str(second.data_root)

    monkeypatch.setenv("DOCKER_CONTEXT", "labctl-remote")
    assert engine_endpoint()["source"] == "context"
    client = client_from_environment(timeout=30)
    try:
        assert client.info()["DockerRootDir"] == str(second.data_root)
    finally:
        client.close()

    monkeypatch.delenv("DOCKER_CONTEXT")
    subprocess.run([cli, "context", "use", "labctl-remote"], check=True, capture_output=True, text=True,
                   timeout=60)
    client = client_from_environment(timeout=30)
    try:
        assert client.info()["DockerRootDir"] == str(second.data_root)
    finally:
        client.close()

    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")  # DOCKER_HOST beats the context
    client = client_from_environment(timeout=30)
    try:
        assert client.info()["DockerRootDir"] == first_root
    finally:
        client.close()
