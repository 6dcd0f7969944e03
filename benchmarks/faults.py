#!/usr/bin/env python3
"""How fast faults go on and off, and how long one `status` look takes.

    python3 benchmarks/faults.py [--runs 10] [--lab bench-faults]

Boots one `two-node` lab (seed profile) and, for each fault kind that is applied and healed in
place, --runs times: apply it through the nemesis, heal it, and time both from the fault's own
record (requested -> since, heal_requested -> healed: what labctl spends, engine included) and as
a user sees it (the `labctl` command's wall time, Python's start included). Faults are held far
below deadtime, so the cluster never reacts and every run starts from the same lab. Then
--runs `status` looks (`collect`: every node's probe and the share in parallel).

Targets (issue 10): apply and heal <= 1 s each, `status` <= 0.5 s. Prints figures, asserts
nothing; the lab is taken down at the end (also on failure or Ctrl-C).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labctl.faults import nemesis  # noqa: E402
from labctl.observe.status import collect  # noqa: E402
from labctl.runtime.lab import Lab  # noqa: E402

# kind, targets, arguments: each healed in place, nothing the cluster notices in a second
CASES: list[tuple[str, list[str], dict[str, object]]] = [
    ("freeze", ["barney"], {}),
    ("partition", ["fred", "barney"], {}),
    ("isolate", ["barney"], {}),
    ("lan", ["barney"], {"loss": 10, "rate": "10mbit"}),
    ("serial-cut", ["fred-barney"], {}),
    ("serial-noise", ["fred-barney"], {"rate": 0.01}),
    ("disk", ["barney"], {"errors": "write"}),
]


def labctl(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "labctl", *args], cwd="/", check=True, capture_output=True,
                   env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return time.monotonic() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(name: str, values: list[float]) -> str:
    med, p99 = statistics.median(values) * 1000, pct(values, 0.99) * 1000
    return f"  {name:30} median {med:7.0f} ms   p99 {p99:7.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--lab", default="bench-faults")
    a = ap.parse_args()
    labctl("down", "--lab", a.lab)
    print(f"booting {a.lab} ...", flush=True)
    labctl("up", "two-node", "--lab", a.lab)
    try:
        lab = Lab.open(a.lab)
        print(f"apply and heal, {a.runs} runs each (from the record: labctl's own time)")
        for kind, targets, args in CASES:
            applied, healed = [], []
            for _ in range(a.runs):
                rec = nemesis.apply(lab, kind, targets, dict(args))
                (done,), failed = nemesis.heal(lab, rec.id)
                assert not failed, failed
                applied.append((rec.since or rec.requested) - rec.requested)
                healed.append((done.healed or 0) - (done.heal_requested or 0))
            print(line(f"{kind} apply", applied))
            print(line(f"{kind} heal", healed))
        cli_apply, cli_heal = [], []
        for _ in range(a.runs):
            cli_apply.append(labctl("partition", "fred", "barney", "--lab", a.lab))
            cli_heal.append(labctl("heal", "all", "--lab", a.lab))
        print("as a user runs it (the labctl command, Python's start included)")
        print(line("labctl partition fred barney", cli_apply))
        print(line("labctl heal all", cli_heal))
        looks = [collect(lab).took for _ in range(a.runs)]
        quick = [collect(lab, share=False).took for _ in range(a.runs)]
        print("status")
        print(line("status (with the share)", looks))
        print(line("status --no-share", quick))
    finally:
        labctl("down", "--lab", a.lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
