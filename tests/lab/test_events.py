"""`labctl events` against a real two-node lab: fail the preferred node and read the failover back,
as it happens (`--follow`) and afterwards (the dead node's own files included), in time order.

One lab, one power cut; the waits are on the stream itself (the survivor's mount showing up), and
the follow lag is measured with a line written in a node and timed when it comes out.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from typing import Any

import pytest
from labrunner import Labctl

pytestmark = pytest.mark.slow

LAB = "evt"
PROBE = "labctl-events-probe"


class Follow:
    """`labctl events --follow --json --all` in the background: each event with when it arrived."""

    def __init__(self, lc: Labctl) -> None:
        self.proc = lc.popen("events", "--lab", LAB, "--follow", "--json", "--all")
        self.got: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.got.put((time.time(), json.loads(line)))

    def until(self, want: Any, timeout: float, what: str) -> tuple[float, dict[str, Any]]:
        """The first event from now on for which ``want(event)`` is true, with its arrival time."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
                raise AssertionError(f"no {what} on the stream within {timeout:.0f} s {err}")
            try:
                arrived, ev = self.got.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(ev)
            if want(ev):
                return arrived, ev

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C
        return self.proc.wait(20)


def probe(lc: Labctl, host: str, tag: str) -> None:
    """A line in a followed log, in memexpd's format, carrying the moment it was written."""
    lc.sh(LAB, host, f'echo "$(date "+%F %T") memexpd[1]: {PROBE} {tag} $(date +%s.%N)" '
                     ">> /var/log/labctl/memexpd.log")


def lag(lc: Labctl, follow: Follow, host: str, tag: str, timeout: float) -> float:
    probe(lc, host, tag)
    arrived, ev = follow.until(lambda e: f"{PROBE} {tag} " in e["text"], timeout, f"probe {tag}")
    return arrived - float(ev["text"].rsplit(" ", 1)[1])


def first(events: list[dict[str, Any]], host: str, source: str, kind: str, **fields: Any) -> int:
    """The index of the first event that is all of these."""
    for i, ev in enumerate(events):
        if (ev["host"], ev["source"], ev["kind"]) == (host, source, kind) and \
                all(ev["fields"].get(k) == v for k, v in fields.items()):
            return i
    raise AssertionError(f"no {host} {source} {kind} {fields} among:\n" +
                         "\n".join(f"{e['host']} {e['source']} {e['kind']} {e['text']}" for e in events))


def test_a_power_cut_told_in_time_order(engine: Any, lc: Labctl) -> None:
    lc("down", "--lab", LAB, check=False)
    lc("up", "two-node", "--lab", LAB, timeout=900)
    follow: Follow | None = None
    try:
        st = lc.status(LAB)
        victim = st["preferred"]
        survivor = next(n["name"] for n in st["nodes"] if n["name"] != victim)
        follow = Follow(lc)
        lag(lc, follow, survivor, "warm", 60)  # the stream is live once a line written now comes out
        lags = [lag(lc, follow, survivor, str(i), 10) for i in range(3)]
        print(f"events --follow lag: {', '.join(f'{x * 1000:.0f} ms' for x in lags)}")
        assert max(lags) < 1.0, lags

        cut = time.time()
        lc("fail", "--lab", LAB, victim)
        follow.until(lambda e: (e["host"], e["source"], e["kind"]) == (survivor, "ogfs", "mounted"), 120,
                     f"{survivor}'s ogfs mount after the power cut")
        assert follow.stop() == 0  # Ctrl-C ends --follow with exit 0

        everything = json.loads(lc("events", "--lab", LAB, "--json").stdout)["events"]
        times = [ev["time"] for ev in everything]
        assert times == sorted(times)
        assert all(ev["kind"] != "log" for ev in everything)  # without --all: only what a rule knows
        # the dead node's own files are read too: its boot is there
        first(everything, victim, "heartbeat", "acquire")
        first(everything, victim, "ogfs", "mounted")

        after = [ev for ev in everything if ev["time"] >= cut - 1]
        order = [
            first(after, victim, "labctl", "fault-applied"),
            first(after, survivor, "heartbeat", "node-dead", node=victim),
            first(after, survivor, "heartbeat", "acquire"),
            first(after, survivor, "ogfs", "replayed"),
            first(after, survivor, "ogfs", "mounted"),
        ]
        assert order == sorted(order), [after[i] for i in order]
        stamps = [after[i]["time"] for i in order]
        assert stamps == sorted(stamps)
        assert after[order[0]]["text"] == f"fail {victim}"
        first(after, survivor, "heartbeat", "link-dead", peer=victim, medium="eth0")
        first(after, survivor, "heartbeat", "link-dead", peer=victim, medium="/dev/ttyS0")
        first(after, "cable", "serial", "unplugged", node=victim)

        # the stream showed the same events, each once
        streamed = [ev for ev in follow.seen if ev["kind"] != "log"]
        keys = [(ev["time"], ev["host"], ev["source"], ev["text"]) for ev in streamed]
        assert len(keys) == len(set(keys))
        for i in order:
            assert after[i] in streamed, after[i]
    finally:
        if follow is not None and follow.proc.poll() is None:
            follow.proc.kill()
        lc("down", "--lab", LAB, check=False)


def test_a_bad_since_is_refused_before_the_engine_is_asked(lc: Labctl) -> None:
    res = lc("events", "--lab", LAB, "--since", "not-a-time", check=False)
    assert res.returncode == 2 and "--since" in res.stderr
