"""The disk-heartbeat slots and their watcher (ogfs/slots.py, ogfs/slotwatch.py) on a cidev that
is a regular file: what a first mounter concludes, and how much of the watching it can skip."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support import wait_for

from ogfs import cidev, slots, slotwatch

INTERVAL_MS = 100  # a slot frozen for 0.15 s is dead


@pytest.fixture
def dev(tmp_path: Path) -> str:
    path = tmp_path / "cidev.img"
    with open(path, "wb") as f:
        f.truncate(cidev.MIN_SIZE)
    return str(path)


@pytest.fixture
def watcher(dev: str, tmp_path: Path) -> slotwatch.Watcher:
    return slotwatch.Watcher(dev, [0, 1, 2], str(tmp_path / "state"))


def mounted(cid: int, counter: int = 1) -> slots.Slot:
    return slots.Slot(cid, slots.MOUNTED, 5, counter, time.time_ns(), INTERVAL_MS, f"10.0.0.{cid + 1}")


class Sleeps:
    """A `sleep` for live_others that records what it was asked to wait and can act meanwhile."""

    def __init__(self, meanwhile=lambda: None) -> None:
        self.asked: list[float] = []
        self.meanwhile = meanwhile

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.meanwhile()
        time.sleep(seconds)


def since(watcher: slotwatch.Watcher, dev: str):
    return lambda s: slotwatch.unchanged_since(dev, s, str(Path(watcher.path).parent))


def seen_frozen(dev: str, watcher: slotwatch.Watcher, slot: slots.Slot, seconds: float):
    """Write `slot`, let the watcher read it, wait until it has looked so for `seconds`; return
    the watcher's `unchanged_since` for live_others."""
    slots.write_slot(dev, slot)
    watcher.scan()
    seen = since(watcher, dev)
    wait_for(lambda: time.monotonic() - seen(slots.read_slot(dev, slot.cid)) > seconds, 5,
             f"{seconds} s to pass")
    return seen


def test_a_slot_the_watcher_saw_frozen_long_enough_is_dead_without_waiting(dev, watcher) -> None:
    seen = seen_frozen(dev, watcher, mounted(0), 0.15)
    sleeps = Sleeps()
    assert slots.live_others(dev, 1, [0, 1], sleep=sleeps, unchanged_since=seen) == []
    assert sleeps.asked == []


def test_without_the_watcher_a_frozen_slot_is_watched_for_one_and_a_half_intervals(dev) -> None:
    slots.write_slot(dev, mounted(0))
    started = time.monotonic()
    assert slots.live_others(dev, 1, [0, 1]) == []
    assert time.monotonic() - started >= 1.5 * INTERVAL_MS / 1000  # a lower bound: never flaky


def test_the_watchers_time_counts_and_only_the_rest_is_waited(dev, watcher) -> None:
    seen = seen_frozen(dev, watcher, mounted(0), 0.1)
    sleeps = Sleeps()
    assert slots.live_others(dev, 1, [0, 1], sleep=sleeps, unchanged_since=seen) == []
    assert sum(sleeps.asked) < 0.06  # 0.15 s in all, 0.1 s of it seen by the watcher


def test_a_slot_that_moves_is_alive_whatever_the_watcher_saw_before(dev, watcher) -> None:
    slot = mounted(0)
    seen = seen_frozen(dev, watcher, slot, 0.05)

    def node_writes() -> None:
        slot.counter += 1
        slot.time_ns = time.time_ns()
        slots.write_slot(dev, slot)

    alive = slots.live_others(dev, 1, [0, 1], sleep=Sleeps(node_writes), unchanged_since=seen)
    assert [s.cid for s in alive] == [0]


def test_the_watchers_word_holds_only_for_the_slot_exactly_as_it_saw_it(dev, watcher) -> None:
    slot = mounted(0)
    slots.write_slot(dev, slot)
    watcher.scan()
    seen = since(watcher, dev)
    assert seen(slots.read_slot(dev, 0)) is not None
    slot.counter += 1  # written after the watcher's last read: it knows nothing of this one
    slot.time_ns = time.time_ns()
    slots.write_slot(dev, slot)
    assert seen(slots.read_slot(dev, 0)) is None
    watcher.scan()
    assert seen(slots.read_slot(dev, 0)) is not None
    state = json.loads(Path(watcher.path).read_text())
    state["boot_id"] = "another boot"  # CLOCK_MONOTONIC times of another boot mean nothing
    Path(watcher.path).write_text(json.dumps(state))
    assert seen(slots.read_slot(dev, 0)) is None


def test_the_watcher_reads_several_times_per_slot_interval(dev, watcher) -> None:
    assert watcher.period() == slotwatch.MAX_PERIOD  # nothing written yet
    slots.write_slot(dev, mounted(2))
    assert watcher.scan() == ["cid 2 (10.0.0.3): mounted"]
    assert watcher.period() == INTERVAL_MS / 1000 / slotwatch.READS_PER_INTERVAL
    assert watcher.scan() == []  # nothing new worth a line
    unmounted = mounted(2)
    unmounted.state = slots.UNMOUNTED
    slots.write_slot(dev, unmounted)
    assert watcher.scan() == ["cid 2 (10.0.0.3): unmounted"]
