#!/usr/bin/env python3
"""The lab as a user meets it: warm up, cold build, client-observed outage at a power cut, memory.

    python3 benchmarks/lab_failover.py [--runs 5] [--quick] [--cold] [--profiles seed,fast]
                                       [--topology two-node] [--lab bench-failover]

Everything goes through the labctl CLI (python -m labctl), as tests/lab/test_lab.py drives it;
nothing here talks to the lab's addresses from the host.

warm up   `labctl up` with the images present, until the share serves (labctl's own criterion:
          the client lists the share and writes to it), one per profile.  Target <= 10 s.
cold      (--cold) `labctl build --no-cache`: node and client images rebuilt without Docker's
          layer cache (the base image is kept: labctl makes it only when missing).
outage    a probe copied into the client container (python3 + smbclient) starts an SMB operation
          every 100 ms (at most 10 in flight, each killed after 3 s): put a file, get it back,
          compare, delete it.  With it running, `labctl fail <preferred node>` (docker kill); the
          probe stops once the share has served without a failure for 5 s.  The outage is the gap
          between the last operation that succeeded before the first failed one and the first one
          that succeeded after it (completion times; both operations take the same ~0.1-0.3 s, so
          the gap is how long a client retrying every 100 ms could not write and read back).
          Also "served after the kill": that first success measured from the kill.  Then
          `labctl recover` (waits until the lab is settled, the group back on the preferred node)
          and the next run.  Targets: seed profile <= deadtime + 2 s, fast profile <= 3 s.
memory    the lab's containers, summed as `docker stats --no-stream` shows them (usage minus
          inactive page cache), after `up` and after the last recover: the larger.  Target <= 300 MB.

--runs N outage runs per profile (default 5); --quick is --runs 1.  The lab is always taken down
at the end, on failure and on Ctrl-C too.  Prints medians and maxima; asserts nothing on time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker  # noqa: E402

from labctl.topology import load_topology  # noqa: E402

MB = 1_000_000
PROBE_PATH = "/tmp/outage_probe.py"
# heartbeat advertises deadtime + 2 s for the first 5 s after it starts (heartbeat.c: hb_add_deadtime
# then hb_pop_deadtime), so a node killed sooner is declared dead 2 s late. The outage is measured
# on a node that has run longer than that: the steady state, not the boot.
STEADY_AFTER = 7.0

# Runs in the client container (Debian 12's python3; smbclient).  Prints "READY" once operations
# succeed, then one "RESULT <json>" line: every operation as [start, end, ok, detail].
PROBE = r'''
import json, os, re, subprocess, sys, threading, time

server, share = sys.argv[1], sys.argv[2]
interval, op_timeout, inflight = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
settle, deadline = float(sys.argv[6]), time.time() + float(sys.argv[7])
work = "/tmp/outage-probe-%d" % os.getpid()
os.makedirs(work, exist_ok=True)
ops, lock, slots = [], threading.Lock(), threading.BoundedSemaphore(inflight)


def operation(i):
    name = "outage-%d-%d" % (os.getpid(), i)
    src, got = os.path.join(work, name), os.path.join(work, name + ".got")
    payload = ("%d %.6f\n" % (i, time.time())).encode() * 32
    with open(src, "wb") as f:
        f.write(payload)
    start = time.time()
    ok, detail = False, ""
    try:
        r = subprocess.run(["smbclient", "//%s/%s" % (server, share), "-N", "-t", str(int(op_timeout)),
                            "-c", "put %s %s; get %s %s; del %s" % (src, name, name, got, name)],
                           capture_output=True, text=True, timeout=op_timeout)
        text = r.stdout + r.stderr
        if r.returncode != 0 or "NT_STATUS" in text:
            status = re.search(r"NT_STATUS_[A-Z_]+", text)
            detail = status.group(0) if status else " ".join(text.split())[-120:] or "exit %d" % r.returncode
        elif not os.path.exists(got) or open(got, "rb").read() != payload:
            detail = "read back differs"
        else:
            ok = True
    except subprocess.TimeoutExpired:
        detail = "no answer within %g s" % op_timeout
    except OSError as e:
        detail = str(e)
    end = time.time()
    for p in (src, got):
        try:
            os.unlink(p)
        except OSError:
            pass
    with lock:
        ops.append([start, end, ok, detail])
    slots.release()


def finished():
    with lock:
        done = sorted(ops, key=lambda o: o[1])
    fails = [o for o in done if not o[2]]
    if not fails:
        return False
    tail = [o for o in done if o[1] > time.time() - settle]
    return len(tail) >= 5 and all(o[2] for o in tail) and tail[0][0] > fails[-1][0]


ready, i, threads = False, 0, []
while time.time() < deadline:
    slots.acquire()
    t = threading.Thread(target=operation, args=(i,), daemon=True)
    t.start()
    threads.append(t)
    i += 1
    time.sleep(interval)
    if not ready:
        with lock:
            good = [o for o in ops if o[2]]
        if len(good) >= 5 and len(good) == len(ops):
            print("READY", flush=True)
            ready = True
    elif finished():
        break
for t in threads:
    t.join(op_timeout + 5)
print("RESULT " + json.dumps(ops), flush=True)
'''


class BenchError(Exception):
    pass


class Labctl:
    """`python -m labctl` from a directory that is not the repository, as a user runs it."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.cwd = tempfile.mkdtemp(prefix="lab-bench-")
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "labctl", *args]

    def __call__(self, *args: str, timeout: float = 900, check: bool = True, input: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.Popen(self.argv(*args), cwd=self.cwd, env=self.env, text=True,
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        except KeyboardInterrupt:
            # Not subprocess.run's SIGKILL: an interrupted `labctl up` removes what it created, and
            # must be let finish.  It got Ctrl-C from the terminal, or gets it now (our SIGTERM).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            raise
        res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        if check and res.returncode != 0:
            raise BenchError(f"labctl {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
        return res

    def json(self, *args: str, timeout: float = 900) -> Any:
        return json.loads(self(*args, "--json", timeout=timeout).stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def running_for(node: dict[str, Any]) -> float:
    """Seconds since the node's container started (status --json: `since`, RFC 3339 in UTC)."""
    if node["state"] != "running" or not node.get("since"):
        return 0.0
    stamp = node["since"].rstrip("Z").split(".")[0]
    started = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.UTC)
    return time.time() - started.timestamp()


def served_by(st: dict[str, Any], node: str) -> bool:
    return (bool(st["resources"]) and all(r["holders"] == [node] for r in st["resources"])
            and bool(st["share"]["serving"]))


# --------------------------------------------------------------------------- memory


def memory(engine: docker.DockerClient, lab: str) -> dict[str, float]:
    """Each container of the lab: bytes in use as `docker stats` counts them."""
    out = {}
    for c in engine.containers.list(filters={"label": f"labctl.lab={lab}"}):
        m = c.stats(stream=False).get("memory_stats", {})
        usage = m.get("usage", 0)
        st = m.get("stats", {})
        # the docker CLI's calculation: cgroup v1 total_inactive_file, v2 inactive_file
        inactive = st.get("total_inactive_file", st.get("inactive_file", 0))
        out[c.name] = usage - inactive if inactive < usage else usage
    return out


# --------------------------------------------------------------------------- outage


def outage_of(ops: list[list[Any]], killed: float, op_timeout: float) -> dict[str, Any]:
    """From the probe's operations [start, end, ok, detail] and the time of the kill."""
    ops = sorted(ops, key=lambda o: o[0])
    fails = [o for o in ops if not o[2] and o[0] >= killed - op_timeout - 1]
    early = [o for o in ops if not o[2] and o[0] < killed - op_timeout - 1]
    if not fails:
        return {"outage": 0.0, "served_after_kill": 0.0, "failed_ops": 0, "early_failures": len(early),
                "ops": len(ops), "note": "no operation failed"}
    first = fails[0]
    before = [o[1] for o in ops if o[2] and o[0] < first[0]]
    after = [o[1] for o in ops if o[2] and o[0] > first[0]]
    if not before or not after:
        raise BenchError(f"the probe saw no success {'before' if not before else 'after'} the outage")
    recovered = min(after)
    relapses = [o for o in ops if not o[2] and o[0] > recovered]
    kinds = sorted({o[3][:60] for o in fails})
    return {"outage": recovered - max(before), "served_after_kill": recovered - killed,
            "first_failure_after_kill": first[0] - killed, "failed_ops": len(fails),
            "relapses": len(relapses), "early_failures": len(early), "ops": len(ops), "errors": kinds}


def one_outage(lc: Labctl, victim: str, survivor: str, server: str, share: str,
               op_timeout: float, verb: str = "fail") -> dict[str, Any]:
    """The client's outage while `labctl VERB VICTIM` (fail: a power cut; freeze) takes effect."""
    probe = lc.popen("exec", "--lab", lc.lab, "client", "--", "python3", "-u", PROBE_PATH, server, share,
                     "0.1", str(op_timeout), "10", "5", "400")
    try:
        assert probe.stdout is not None and probe.stderr is not None
        line = probe.stdout.readline()
        if line.strip() != "READY":
            raise BenchError(f"the probe did not start: {line}{probe.stdout.read()}{probe.stderr.read()}")
        time.sleep(1.0)
        fault = lc.json(verb, "--lab", lc.lab, victim)["fault"]
        out, err = probe.communicate(timeout=460)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
    result = next((ln for ln in out.splitlines() if ln.startswith("RESULT ")), None)
    if result is None:
        raise BenchError(f"the probe printed no result:\n{out[-2000:]}\n{err[-2000:]}")
    ops = json.loads(result[len("RESULT "):])
    o = outage_of(ops, float(fault["requested"]), op_timeout)
    st = lc.json("status", "--lab", lc.lab)
    o["survivor_serves"] = served_by(st, survivor)
    return o


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="outage runs per profile (default 5)")
    ap.add_argument("--quick", action="store_true", help="one run per profile")
    ap.add_argument("--cold", action="store_true", help="also time `labctl build --no-cache` (~20 s here)")
    ap.add_argument("--profiles", default="seed,fast", help="heartbeat profiles (default seed,fast)")
    ap.add_argument("--topology", default="two-node", help="a shipped topology or a .yaml path")
    ap.add_argument("--lab", default="bench-failover", help="the lab's name (default bench-failover)")
    ap.add_argument("--op-timeout", type=float, default=3.0, help="the probe kills an operation after this")
    a = ap.parse_args()
    if a.quick:
        a.runs = 1
    return a


def main() -> int:
    a = parse_args()
    profiles = [p.strip() for p in a.profiles.split(",") if p.strip()]
    topo = {p: load_topology(a.topology, p) for p in profiles}
    lc = Labctl(a.lab)
    engine = docker.from_env()
    res: dict[str, Any] = {"up": {}, "mem": {}, "outage": {}, "build": None}

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    leftover = lc("down", "--lab", a.lab, timeout=600)
    if "nothing to remove" not in leftover.stdout:
        print(f"removed a leftover lab {a.lab}: {leftover.stdout.strip()}", file=sys.stderr)
    code = 0
    try:
        if a.cold:
            t0 = time.monotonic()
            lc("build", "--no-cache", "--json", timeout=1800)
            res["build"] = time.monotonic() - t0
            print(f"cold build (node + client, --no-cache): {res['build']:.1f} s", file=sys.stderr)
        else:
            lc("build", "--json", timeout=1800)  # the warm up is timed with the images present
        for p in profiles:
            t = topo[p]
            victim = t.preferred_node.name
            survivor = next(n.name for n in t.nodes if n.name != victim)
            t0 = time.monotonic()
            up = lc.json("up", a.topology, "--lab", a.lab, "--profile", p, timeout=1800)
            res["up"][p] = {"wall": time.monotonic() - t0, **up["seconds"]}
            print(f"[{p}] up: {res['up'][p]['wall']:.1f} s ({up['seconds']})", file=sys.stderr)
            res["mem"][p] = memory(engine, a.lab)
            lc("exec", "-i", "--lab", a.lab, "client", "--", "sh", "-c", f"cat > {PROBE_PATH}", input=PROBE)
            runs: list[dict[str, Any]] = []

            def settled(victim: str = victim) -> bool:
                st = lc.json("status", "--lab", a.lab)
                node = next(n for n in st["nodes"] if n["name"] == victim)
                return served_by(st, victim) and bool(st["settled"]) and running_for(node) >= STEADY_AFTER

            for r in range(a.runs):
                wait_for(settled, 300, f"{victim} to serve, the lab settled")
                o = one_outage(lc, victim, survivor, t.cluster.name, t.share.name, a.op_timeout)
                runs.append(o)
                print(f"[{p}] run {r + 1}: outage {o['outage']:.1f} s, served {o['served_after_kill']:.1f} s "
                      f"after the kill ({o['failed_ops']} failed operations: "
                      f"{', '.join(o.get('errors', []))})", file=sys.stderr)
                lc("recover", "--lab", a.lab, victim, "--timeout", "300", timeout=400)
            res["outage"][p] = runs
            mem_after = memory(engine, a.lab)
            if sum(mem_after.values()) > sum(res["mem"][p].values()):
                res["mem"][p] = mem_after
            lc("down", "--lab", a.lab, timeout=600)
    except KeyboardInterrupt:
        print("interrupted: taking the lab down", file=sys.stderr)
        code = 130
    except (BenchError, subprocess.TimeoutExpired, docker.errors.DockerException) as e:
        print(f"failed: {e}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the cleanup is not interrupted (children inherit)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        down = lc("down", "--lab", a.lab, check=False, timeout=600)  # "nothing to remove" is fine
        if down.returncode != 0:
            print(f"labctl down --lab {a.lab} failed:\n{down.stdout}{down.stderr}", file=sys.stderr)
            code = code or 1
        shutil.rmtree(lc.cwd, ignore_errors=True)
    report(res, topo, a)
    return code


def report(res: dict[str, Any], topo: dict[str, Any], a: argparse.Namespace) -> None:
    rows: list[tuple[str, str, str, str]] = []

    def row(what: str, figure: float | None, target: float | None, unit: str = "s", extra: str = "") -> None:
        fig = "-" if figure is None else f"{figure:.1f} {unit}{extra}"
        tgt = "-" if target is None else f"<= {target:g} {unit}"
        ratio = "-" if figure is None or target is None else f"{figure / target:.0%}"
        rows.append((what, fig, tgt, ratio))

    for p, up in res["up"].items():
        row(f"warm up to serving share ({p})", up["wall"], 10,
            extra=f" (boot {up['serving_after_boot']:.1f} s)")
    if a.cold:
        row("cold image build (node + client, --no-cache)", res["build"], None)
    for p, runs in res["outage"].items():
        if not runs:
            continue
        dead = topo[p].heartbeat.deadtime_ms / 1000
        target = dead + 2 if p == "seed" else 3.0 if p == "fast" else None
        outs = [r["outage"] for r in runs]
        served = [r["served_after_kill"] for r in runs]
        row(f"outage, fail {topo[p].preferred_node.name} ({p}, deadtime {dead:g} s), median of {len(runs)}",
            statistics.median(outs), target)
        row("  max", max(outs), target)
        row("  served after the kill, median", statistics.median(served), None)
        row("  served after the kill, max", max(served), None)
    for p, mem in res["mem"].items():
        row(f"memory of the running lab ({p})", sum(mem.values()) / MB, 300, unit="MB")
    if not rows:
        return
    w = [max(len(r[i]) for r in [*rows, ("what", "figure", "target", "ratio")]) for i in range(4)]
    print(f"lab {a.topology}, {a.runs} outage run(s) per profile")
    for r in [("what", "figure", "target", "ratio"), *rows]:
        print("  " + "   ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    for p, mem in res["mem"].items():
        big_first = sorted(mem.items(), key=lambda x: -x[1])
        parts = ", ".join(f"{n.rsplit('-', 1)[-1]} {v / MB:.0f}" for n, v in big_first)
        print(f"  memory ({p}), MB: {parts}")
    for p, runs in res["outage"].items():
        for i, r in enumerate(runs, 1):
            notes = [f"{r['failed_ops']} failed of {r['ops']} operations"]
            if r.get("relapses"):
                notes.append(f"{r['relapses']} failures after the first success")
            if r.get("early_failures"):
                notes.append(f"{r['early_failures']} failures before the kill")
            if not r.get("survivor_serves", True):
                notes.append("the survivor did not hold everything afterwards")
            print(f"  {p} run {i}: outage {r['outage']:.2f} s, served {r['served_after_kill']:.2f} s after "
                  f"the kill; {'; '.join(notes)}; errors: {' | '.join(r.get('errors', [])) or '-'}")


if __name__ == "__main__":
    sys.exit(main())
