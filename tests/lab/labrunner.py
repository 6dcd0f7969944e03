"""What the lab tests share: running `labctl` as a user does, and reading a lab's status and objects.

Tests reach lab addresses only from the lab's client container (`labctl exec client -- ...`).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support import wait_for as poll

ROOT = Path(__file__).resolve().parents[2]
wait_for = functools.partial(poll, interval=0.5)  # each look runs docker exec: not too often


class Labctl:
    """Runs `python -m labctl` from a directory that is not the repository."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def __call__(self, *args: str, timeout: float = 600, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "labctl", *args], cwd=self.cwd, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"labctl {' '.join(args)} exited {res.returncode}:\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def popen(self, *args: str) -> subprocess.Popen[str]:
        # As at a terminal: SIGINT is Ctrl-C. A shell starts background jobs (`.ci/run &`) with
        # SIGINT ignored, and a child inherits that; Python then installs no KeyboardInterrupt.
        return subprocess.Popen([sys.executable, "-m", "labctl", *args], cwd=self.cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def status(self, lab: str) -> dict[str, Any]:
        return dict(json.loads(self("status", "--lab", lab, "--json").stdout))

    def sh(self, lab: str, host: str, script: str, check: bool = True) -> str:
        return self("exec", "--lab", lab, host, "--", "sh", "-c", script, check=check).stdout


def holders(st: dict[str, Any]) -> dict[str, list[str]]:
    return {r["name"]: r["holders"] for r in st["resources"]}


def served_by(st: dict[str, Any], node: str) -> bool:
    return bool(st["resources"]) and all(h == [node] for h in holders(st).values()) and st["share"]["serving"]


def links_both_ways(st: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(n["name"], lk["peer"], lk["medium"], lk["status"]) for n in st["nodes"] for lk in n["links"]}


def all_objects(client: Any) -> set[str]:
    return ({f"c:{c.id}" for c in client.containers.list(all=True)}
            | {f"n:{n.id}" for n in client.networks.list()}
            | {f"v:{v.name}" for v in client.volumes.list()})


def lab_object_ids(client: Any, lab: str) -> set[str]:
    flt = {"label": [f"labctl.lab={lab}"]}
    return ({f"c:{c.id}" for c in client.containers.list(all=True, filters=flt)}
            | {f"n:{n.id}" for n in client.networks.list(filters=flt)}
            | {f"v:{v.name}" for v in client.volumes.list(filters=flt)})


def lab_objects(client: Any, lab: str) -> list[str]:
    flt = {"label": [f"labctl.lab={lab}"]}
    return ([c.name for c in client.containers.list(all=True, filters=flt)]
            + [n.name for n in client.networks.list(filters=flt)]
            + [v.name for v in client.volumes.list(filters=flt)])


def lab_loops(client: Any, lab: str) -> list[str]:
    """The loop devices mapped into the lab's nodes (from the containers' device mappings)."""
    loops: set[str] = set()
    for c in client.containers.list(all=True, filters={"label": [f"labctl.lab={lab}", "labctl.role=node"]}):
        for dev in c.attrs["HostConfig"].get("Devices") or []:
            if dev["PathOnHost"].startswith("/dev/loop"):
                loops.add(dev["PathOnHost"])
    return sorted(loops)


def backing_files(client: Any, image: str, loops: list[str]) -> dict[str, str]:
    """The backing file of each of ``loops`` that has one (read from sysfs in a throwaway container)."""
    if not loops:
        return {}
    names = " ".join(p.rsplit("/", 1)[1] for p in loops)
    out = client.containers.run(image, entrypoint=["sh", "-c", f"for l in {names}; do "
                                "[ -e /sys/block/$l/loop/backing_file ] && "
                                "echo /dev/$l $(cat /sys/block/$l/loop/backing_file); done; true"],
                                remove=True, network_mode="none", labels={"labctl.lab": "t-probe"})
    return dict(line.split(" ", 1) for line in out.decode().splitlines() if " " in line)


def bound_loops(client: Any, image: str, loops: dict[str, str]) -> list[str]:
    """Which of ``loops`` (device -> the backing file the lab gave it) are still bound to that file.
    A device another process took meanwhile (this machine's other tests use loop devices too) is
    not the lab's any more."""
    now = backing_files(client, image, list(loops))
    return [dev for dev, backing in loops.items() if now.get(dev) == backing]


def write_files(lc: Labctl, lab: str, client: str, unc: str, tag: str) -> dict[str, str]:
    """Files of several sizes written to the share from the client; their sha256 as the client had them."""
    sizes = {f"{tag}-empty.bin": 0, f"{tag}-small.txt": 13, f"{tag}-4k.bin": 4096, f"{tag}-big.bin": 3 << 20}
    script = ["set -e", "mkdir -p /tmp/out && cd /tmp/out"]
    for name, size in sizes.items():
        script.append(f"head -c {size} /dev/urandom > {name}")
    server, share = unc.strip("\\").split("\\")
    puts = "; ".join(f"put {name}" for name in sizes)
    script.append(f"smbclient //{server}/{share} -N -t 10 -c 'mkdir {tag}; cd {tag}; {puts}' 2>&1")
    script.append("sha256sum " + " ".join(sizes))
    out = lc.sh(lab, client, "\n".join(script))
    assert "NT_STATUS" not in out, out
    sums = {line.split()[1]: line.split()[0] for line in out.splitlines() if len(line.split()) == 2
            and len(line.split()[0]) == 64}
    assert set(sums) == set(sizes), out
    return sums


def read_back(lc: Labctl, lab: str, client: str, unc: str, tag: str, sums: dict[str, str]) -> dict[str, str]:
    server, share = unc.strip("\\").split("\\")
    gets = "; ".join(f"get {name}" for name in sums)
    script = (f"rm -rf /tmp/back && mkdir -p /tmp/back && cd /tmp/back && "
              f"smbclient //{server}/{share} -N -t 10 -c 'cd {tag}; {gets}' >/dev/null 2>&1; "
              f"sha256sum {' '.join(sums)} 2>/dev/null; true")
    out = lc.sh(lab, client, script)
    return {line.split()[1]: line.split()[0] for line in out.splitlines() if len(line.split()) == 2}


def failover(lc: Labctl, lab: str, kind: str, victim: str, survivor: str, client: str, unc: str) -> float:
    """Write, fault, wait for the survivor to serve, read back; returns seconds until it served."""
    tag = f"{kind}-{int(time.time())}"
    sums = write_files(lc, lab, client, unc, tag)
    started = time.monotonic()
    lc(kind, "--lab", lab, victim)
    st = wait_for(lambda: (s := lc.status(lab)) and served_by(s, survivor) and s, 120,
                  f"{survivor} to hold every resource after {kind} {victim}")
    took = time.monotonic() - started
    victim_view = next(n for n in st["nodes"] if n["name"] == victim)
    assert victim_view["state"] == "exited", victim_view
    assert victim_view["exit_code"] == (137 if kind == "fail" else 0), victim_view
    assert not st["split_brain"]
    got = wait_for(lambda: (b := read_back(lc, lab, client, unc, tag, sums)) == sums and b, 60,
                   "every file to read back byte for byte")
    assert got == sums
    return took


def recover(lc: Labctl, lab: str, node: str) -> dict[str, Any]:
    lc("recover", "--lab", lab, node, timeout=300)
    st = lc.status(lab)
    assert all(n["state"] == "running" and n["heartbeat"] == "running" for n in st["nodes"]), st["nodes"]
    assert all(len(h) == 1 for h in holders(st).values()), holders(st)
    assert len({h[0] for h in holders(st).values()}) == 1
    assert st["whole"] and st["share"]["serving"]
    return st
