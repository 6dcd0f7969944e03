#!/usr/bin/env python3
"""What the lab's power switch costs a failover: the client's outage with STOMITH labctl against
STOMITH manual (the seed's), docs/fencing.md.

    python3 benchmarks/fence_outage.py [--runs 5] [--profiles seed,fast] [--fault freeze|fail]
                                       [--lab bench-fence]

For each profile, two labs of two-node one after the other, the same but for `cluster.stomith`:
manual (barney replays fred's journal unfenced, judged dead by its disk heartbeat) and labctl
(barney's first mount has the switch power fred off and waits for its OK before the replay).
In each, lab_failover.py's client probe (an SMB put/get/compare every 100 ms) runs while the
preferred node is frozen (`--fault freeze`, the default: the failure fencing is for) or killed
(`--fault fail`); the outage is the probe's, measured as lab_failover.py measures it. After each
run: heal the fault (a frozen fred thaws and fences itself with manual; the switch already
powered it off with labctl), `labctl recover` it, wait until the lab is settled.

Target: the switch costs at most 1 s of outage (median with the switch - median without <= 1 s).
Prints medians and maxima; asserts nothing on time.  The lab is taken down at the end, on failure
and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lab_failover as lf  # noqa: E402

from labctl.topology import load_topology  # noqa: E402

STOMITHS = ("manual", "labctl")


def topology_file(stomith: str, where: Path) -> Path:
    data = yaml.safe_load((lf.ROOT / "topologies" / "two-node.yaml").read_text())
    data["cluster"]["stomith"] = stomith
    path = where / f"two-node-{stomith}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def runs_of(lc: lf.Labctl, topo_path: Path, profile: str, runs: int, fault: str,
            op_timeout: float) -> list[dict[str, Any]]:
    t = load_topology(str(topo_path), profile)
    victim = t.preferred_node.name
    survivor = next(n.name for n in t.nodes if n.name != victim)
    lc("up", str(topo_path), "--lab", lc.lab, "--profile", profile, timeout=1800)
    lc("exec", "-i", "--lab", lc.lab, "client", "--", "sh", "-c", f"cat > {lf.PROBE_PATH}", input=lf.PROBE)

    def settled() -> bool:
        st = lc.json("status", "--lab", lc.lab)
        node = next(n for n in st["nodes"] if n["name"] == victim)
        return lf.served_by(st, victim) and bool(st["settled"]) and lf.running_for(node) >= lf.STEADY_AFTER

    out = []
    for r in range(runs):
        lf.wait_for(settled, 300, f"{victim} to serve, the lab settled")
        o = lf.one_outage(lc, victim, survivor, t.cluster.name, t.share.name, op_timeout, fault)
        out.append(o)
        print(f"[{profile}, stomith {t.cluster.stomith}] run {r + 1}: outage {o['outage']:.2f} s, served "
              f"{o['served_after_kill']:.2f} s after the {fault}", file=sys.stderr)
        lc("heal", "all", "--lab", lc.lab, timeout=300)
        lf.wait_for(lambda: next(n for n in lc.json("status", "--lab", lc.lab)["nodes"]
                                 if n["name"] == victim)["state"] != "paused", 120, f"{victim} thawed")
        st = lc.json("status", "--lab", lc.lab)
        if next(n for n in st["nodes"] if n["name"] == victim)["state"] != "running":
            lc("recover", "--lab", lc.lab, victim, "--timeout", "300", timeout=400)
        else:  # it was not fenced in time to go down by itself: a power cycle, as an operator would
            lc("fail", "--lab", lc.lab, victim)
            lc("recover", "--lab", lc.lab, victim, "--timeout", "300", timeout=400)
    lc("down", "--lab", lc.lab, timeout=600)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profiles", default="seed,fast")
    ap.add_argument("--fault", choices=("freeze", "fail"), default="freeze")
    ap.add_argument("--lab", default="bench-fence")
    ap.add_argument("--op-timeout", type=float, default=3.0)
    a = ap.parse_args()
    lc = lf.Labctl(a.lab)
    tmp = Path(tempfile.mkdtemp(prefix="fence-bench-"))
    res: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    lc("down", "--lab", a.lab, timeout=600)
    code = 0
    try:
        lc("build", "--json", timeout=1800)
        for profile in [p.strip() for p in a.profiles.split(",") if p.strip()]:
            for stomith in STOMITHS:
                res[(profile, stomith)] = runs_of(lc, topology_file(stomith, tmp), profile, a.runs, a.fault,
                                                  a.op_timeout)
    except KeyboardInterrupt:
        print("interrupted: taking the lab down", file=sys.stderr)
        code = 130
    except (lf.BenchError, subprocess.TimeoutExpired) as e:
        print(f"failed: {e}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        lc("down", "--lab", a.lab, check=False, timeout=600)
    print(f"two-node, fault {a.fault}, outage as the client saw it (median / max of the runs)")
    for profile in dict.fromkeys(p for p, _ in res):
        med = {}
        for stomith in STOMITHS:
            runs = res.get((profile, stomith), [])
            if not runs:
                continue
            outs = [r["outage"] for r in runs]
            med[stomith] = statistics.median(outs)
            print(f"  {profile:5} stomith {stomith:6}: {med[stomith]:.2f} s / {max(outs):.2f} s "
                  f"({len(runs)} runs: {', '.join(f'{x:.2f}' for x in outs)})")
        if len(med) == 2:
            cost = med["labctl"] - med["manual"]
            print(f"  {profile:5} the switch costs {cost:+.2f} s (target <= 1 s: {cost / 1.0:.0%})")
    return code


if __name__ == "__main__":
    sys.exit(main())
