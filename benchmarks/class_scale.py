#!/usr/bin/env python3
"""A class on one server: N labs of `two-node` side by side, each with the seed's own addresses.

    python3 benchmarks/class_scale.py [--sizes 10,25,50,75,100] [--parallel 4] [--profile seed]
                                      [--serial-sample 5] [--idle 20] [--prefix class]

For each N in --sizes (stopping at the first N the machine refuses):

up        grow the class to N labs: `labctl up two-node --lab <prefix>-<i>` for the labs the last
          size did not have, --parallel at a time (labctl's own criterion: each returns when its
          share serves), beside the ones already running.  Wall time and median per lab.
          The first size also times --serial-sample labs one by one (each up alone) for the
          per-lab figure without contention.
memory    every lab container's memory as `docker stats` counts it (usage less inactive page
          cache), summed, divided by N.
idle CPU  every lab container's CPU time (cgroup cpuacct usage, from `docker stats`) over --idle
          seconds with nothing happening but heartbeat, the slot watchers and Samba: % of one
          core per lab.
outage    in one lab, a probe in its client puts/gets a file every 100 ms (the probe of
          lab_failover.py) while `labctl fail fred` kills the node: the client-observed gap, with
          the N - 1 other labs idling.  Target: within deadtime + 2 s.

Every lab is taken down at the end (also on failure or Ctrl-C).  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import docker  # noqa: E402
from lab_failover import (  # noqa: E402  # noqa: E402
    PROBE,
    PROBE_PATH,
    STEADY_AFTER,
    BenchError,
    Labctl,
    one_outage,
    running_for,
    served_by,
    wait_for,
)

from labctl.topology import load_topology  # noqa: E402

MB = 1_000_000


def lab_names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:03d}" for i in range(n)]


def up_many(names: list[str], profile: str, parallel: int) -> tuple[float, list[float], list[str]]:
    """Bring ``names`` up, ``parallel`` at a time: (wall seconds, per-lab seconds, failures)."""
    def one(name: str) -> tuple[float, str | None]:
        lc = Labctl(name)
        t0 = time.monotonic()
        res = lc("up", "two-node", "--lab", name, "--profile", profile, timeout=1800, check=False)
        took = time.monotonic() - t0
        return took, None if res.returncode == 0 else f"{name}: exit {res.returncode}: {res.stderr[-400:]}"

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        results = list(pool.map(one, names))
    return time.monotonic() - t0, [r[0] for r in results], [r[1] for r in results if r[1]]


def down_all(prefix: str) -> None:
    listed = Labctl(prefix).json("list")["labs"]
    names = [x["name"] for x in listed if x["name"].startswith(prefix + "-")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: Labctl(n)("down", "--lab", n, check=False, timeout=900), names))


def _stats(engine: docker.DockerClient, prefix: str) -> list[dict[str, Any]]:
    """One stats sample of every running container of the class, read in parallel: ``one_shot`` skips
    the engine's second sample (a second each), which would make 400 containers take minutes."""
    mine = [c for c in engine.containers.list(filters={"label": "labctl.lab"})
            if c.labels.get("labctl.lab", "").startswith(prefix + "-")]
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda c: c.stats(stream=False, one_shot=True), mine))


def cpu_seconds(engine: docker.DockerClient, prefix: str) -> float:
    return sum(s["cpu_stats"]["cpu_usage"]["total_usage"] for s in _stats(engine, prefix)) / 1e9


def class_memory(engine: docker.DockerClient, prefix: str) -> float:
    """Bytes in use as `docker stats` counts them (usage less inactive page cache), summed."""
    total = 0
    for s in _stats(engine, prefix):
        m = s.get("memory_stats", {})
        usage, st = m.get("usage", 0), m.get("stats", {})
        inactive = st.get("total_inactive_file", st.get("inactive_file", 0))
        total += usage - inactive if inactive < usage else usage
    return total


def outage_in(name: str, profile: str) -> dict[str, Any]:
    t = load_topology("two-node", profile)
    lc = Labctl(name)
    lc("exec", "-i", "--lab", name, "client", "--", "sh", "-c", f"cat > {PROBE_PATH}", input=PROBE)

    def settled() -> bool:
        st = lc.json("status", "--lab", name)
        fred = next(n for n in st["nodes"] if n["name"] == "fred")
        return served_by(st, "fred") and bool(st["settled"]) and running_for(fred) >= STEADY_AFTER

    wait_for(settled, 600, f"{name}: fred to serve, settled")
    o = one_outage(lc, "fred", "barney", t.cluster.name, t.share.name, 3.0)
    o["deadtime"] = t.heartbeat.deadtime_ms / 1000
    return o


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,25,50,75,100")
    ap.add_argument("--parallel", type=int, default=4, help="ups at once (default 4)")
    ap.add_argument("--profile", default="seed")
    ap.add_argument("--serial-sample", type=int, default=5, help="labs timed one by one at the first size")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measurement")
    ap.add_argument("--prefix", default="class")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    engine = docker.from_env()
    def on_term(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    rows: list[dict[str, Any]] = []
    code = 0
    try:
        Labctl("build")("build", timeout=1800)
        down_all(a.prefix)
        serial_each: list[float] = []
        running: list[str] = []
        for size in sizes:
            names = lab_names(a.prefix, size)
            row: dict[str, Any] = {"labs": size}
            if size == sizes[0] and a.serial_sample:
                for n in names[: a.serial_sample]:
                    t0 = time.monotonic()
                    Labctl(n)("up", "two-node", "--lab", n, "--profile", a.profile, timeout=1800)
                    serial_each.append(time.monotonic() - t0)
                row["one_by_one_s"] = statistics.median(serial_each)
                for n in names[: a.serial_sample]:
                    Labctl(n)("down", "--lab", n, timeout=900)
            # the class grows: labs of the last size keep running, the new ones join them
            wall, each, failures = up_many(names[len(running):], a.profile, a.parallel)
            running = names
            row.update(up_wall_s=wall, up_each_median_s=statistics.median(each), failures=failures)
            print(f"[{size}] up {wall:.0f} s ({statistics.median(each):.1f} s median per up, "
                  f"{a.parallel} at a time); {len(failures)} failed", file=sys.stderr)
            if failures:
                row["stopped_by"] = failures[0]
                rows.append(row)
                print(f"[{size}] the machine refused: {failures[0]}", file=sys.stderr)
                break
            row["memory_per_lab_mb"] = class_memory(engine, a.prefix) / size / MB
            c0, t0 = cpu_seconds(engine, a.prefix), time.monotonic()
            time.sleep(a.idle)  # the measurement window itself: nothing to wait for
            c1, t1 = cpu_seconds(engine, a.prefix), time.monotonic()
            row["idle_cpu_pct_per_lab"] = 100 * (c1 - c0) / (t1 - t0) / size
            o = outage_in(names[size // 2], a.profile)
            row.update(outage_s=o["outage"], served_after_kill_s=o["served_after_kill"],
                       target_s=o["deadtime"] + 2)
            print(f"[{size}] {row['memory_per_lab_mb']:.0f} MB/lab, idle CPU "
                  f"{row['idle_cpu_pct_per_lab']:.2f} % of a core/lab, outage {o['outage']:.1f} s "
                  f"(target {o['deadtime'] + 2:.0f} s)", file=sys.stderr)
            rows.append(row)
    except KeyboardInterrupt:
        code = 130
    except (BenchError, subprocess.TimeoutExpired, docker.errors.DockerException) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        down_all(a.prefix)
    print(json.dumps({"profile": a.profile, "parallel": a.parallel, "rows": rows}, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
