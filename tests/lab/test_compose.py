"""compose/two-node/ under Debian's docker-compose 1.29: `up -d` boots a lab whose share serves,
labctl's verbs see it, and `down -v` removes all of it, the loop devices behind its disk included.

The checked-in copy is used as it is (copied to a scratch directory), under lab name t-compose
(LABCTL_LAB in its .env) so it never meets a lab of another test or a user's two-node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labrunner import ROOT, Labctl, wait_for

from labctl.export.compose import COMPOSE_FILE, DEFAULT_SUBNET
from labctl.runtime.images import ImageSet

pytestmark = [pytest.mark.slow, pytest.mark.lab]

LAB = "t-compose"
PROJECT = "t-compose"
CHECKED_IN = ROOT / "compose" / "two-node"
SHARE = "//fscluster/ogfs"
SERVE_TIMEOUT = 180.0


def compose(cwd: Path, *args: str, timeout: float = 300, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["docker-compose", "-p", PROJECT, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, "COMPOSE_INTERACTIVE_NO_CLI": "1"})
    if check and res.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)} exited {res.returncode}:\n"
                             f"{res.stdout}\n{res.stderr}")
    return res


def objects(engine: Any) -> list[str]:
    """Everything of the lab or of the compose project, by either label."""
    found: set[str] = set()
    for flt in ({"label": [f"labctl.lab={LAB}"]}, {"label": [f"com.docker.compose.project={PROJECT}"]}):
        found |= {f"container {c.name}" for c in engine.containers.list(all=True, filters=flt)}
        found |= {f"network {n.name}" for n in engine.networks.list(filters=flt)}
        found |= {f"volume {v.name}" for v in engine.volumes.list(filters=flt)}
    return sorted(found)


def loops_backed_by(fd: int) -> list[str]:
    """Loop devices whose backing file is the open file ``fd`` (matched by device and inode: the file
    may be deleted by then; holding it open keeps its inode from being reused)."""
    st = os.fstat(fd)
    want = (f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}", str(st.st_ino))
    out = subprocess.run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-MAJ:MIN,BACK-INO"],
                         capture_output=True, text=True, check=True).stdout
    return [f[0] for f in (line.split() for line in out.splitlines()) if len(f) == 3 and (f[1], f[2]) == want]


def subnets(network: Any) -> list[dict[str, str]]:
    return list((network.attrs.get("IPAM") or {}).get("Config") or [])


@pytest.fixture
def project_dir(tmp_path: Path, engine: Any, lc: Labctl) -> Iterator[Path]:
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed (.ci/run installs it: apt-get install docker-compose)")
    tags = ImageSet.compute().as_dict()
    text = (CHECKED_IN / COMPOSE_FILE).read_text(encoding="utf-8")
    assert all(tag in text for tag in tags.values()), ("compose/two-node names other images than this "
                                                       "tree's: labctl export compose two-node --out "
                                                       "compose/two-node")
    lc("build", timeout=1800)  # the images it names (compose cannot build them)
    if objects(engine):
        lc("down", "--lab", LAB, check=False)  # what a killed run of this test left
    taken = [n.name for n in engine.networks.list()
             if any(c.get("Subnet") == str(DEFAULT_SUBNET) for c in subnets(n))]
    assert not taken, f"{DEFAULT_SUBNET} (the export's fixed outer subnet) is taken by {taken}"
    work = tmp_path / "two-node"
    shutil.copytree(CHECKED_IN, work)
    (work / ".env").write_text(f"LABCTL_LAB={LAB}\n")
    try:
        yield work
    finally:
        if objects(engine):
            compose(work, "down", "-v", check=False)
            lc("down", "--lab", LAB, check=False)


def labs(lc: Labctl) -> list[dict[str, Any]]:
    """`labctl list --json`, looked at again when it fails: it lists containers, then inspects each,
    and a container another test removes in between makes that look fail (404)."""
    for _ in range(4):
        res = lc("list", "--json", check=False)
        if res.returncode == 0:
            return list(json.loads(res.stdout)["labs"])
        assert "404 Client Error" in res.stderr, res.stderr
    raise AssertionError(f"labctl list --json kept failing:\n{res.stderr}")


def share_works(work: Path) -> bool:
    script = "put /etc/hostname from-compose.txt; ls from-compose.txt; del from-compose.txt"
    res = compose(work, "exec", "-T", "client", "smbclient", SHARE, "-N", "-c", script, timeout=60,
                  check=False)
    out = res.stdout + res.stderr
    return res.returncode == 0 and "putting file" in out and "from-compose.txt" in res.stdout


def test_compose_up_serves_and_down_removes_everything(project_dir: Path, engine: Any, lc: Labctl) -> None:
    work = project_dir
    started = time.monotonic()
    compose(work, "up", "-d")
    t_up = time.monotonic() - started
    wait_for(lambda: share_works(work), SERVE_TIMEOUT, f"{SHARE} to list and take a write from the client")
    t_serving = time.monotonic() - started

    # labctl's verbs find it by its labels
    st = json.loads(lc("status", "--lab", LAB, "--json").stdout)
    assert st["share"]["serving"] and st["whole"], st
    assert [n["name"] for n in st["nodes"]] == ["fred", "barney"]
    listed = {x["name"]: x for x in labs(lc)}
    assert listed[LAB]["state"] == "up" and listed[LAB]["topology"] == "two-node"
    assert listed[LAB]["outer_subnet"] == str(DEFAULT_SUBNET)

    # one loop device per partition, shared by both nodes
    loops = subprocess.run(["docker", "exec", f"labctl-{LAB}-disk", "cat", "/disk/loops"],
                           capture_output=True, text=True, check=True).stdout.split("\n")
    by_part = {f[0]: (f[1], f[2]) for f in (line.split() for line in loops) if len(f) == 3}
    assert set(by_part) == {"sda1", "sda2", "sda3"}
    for node in ("fred", "barney"):
        seen = subprocess.run(["docker", "exec", f"labctl-{LAB}-{node}", "stat", "-c", "%n %t:%T",
                               "/dev/sda1", "/dev/sda2", "/dev/sda3"], capture_output=True, text=True,
                              check=True).stdout.split("\n")
        got = {line.split()[0][5:]: line.split()[1] for line in seen if line}
        assert got == {p: ":".join(f"{int(x):x}" for x in mm.split(":")) for p, (_d, mm) in by_part.items()}
    image = Path(engine.volumes.get(f"labctl-{LAB}-disk").attrs["Mountpoint"]) / "disk.img"
    fd = os.open(image, os.O_RDONLY)
    try:
        attached = loops_backed_by(fd)
        assert sorted(attached) == sorted(d for d, _mm in by_part.values())
        started = time.monotonic()
        compose(work, "down", "-v", timeout=600)
        t_down = time.monotonic() - started
        left = loops_backed_by(fd)
    finally:
        os.close(fd)
    assert left == [], f"loop devices still attached to the lab's disk image after down -v: {left}"
    assert objects(engine) == []
    print(f"\ncompose: up -d {t_up:.1f} s, share serving {t_serving:.1f} s after up started, "
          f"down -v {t_down:.1f} s")
