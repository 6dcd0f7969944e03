"""Fence records and the disk lease (ogfs/fence.py, ogfs/lease.py) on a cidev in a file."""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path

import pytest

from ogfs import cidev, fence, slots
from ogfs.blockdev import Device
from ogfs.lease import Lease

log = logging.getLogger("test")


@pytest.fixture
def dev(tmp_path: Path) -> str:
    p = tmp_path / "cidev"
    with open(p, "wb") as f:
        f.truncate(cidev.MIN_SIZE)
    return str(p)


def mounted(dev: str, cid: int = 0, interval_ms: int = 200) -> Lease:
    lease = Lease(dev, slots.Slot(cid, slots.MOUNTED, 1, 0, 0, interval_ms, f"10.0.0.{cid + 1}"))
    assert lease.renew() is None
    return lease


def test_a_record_round_trips_and_a_damaged_one_reads_as_none(dev: str) -> None:
    rec = fence.Record(3, 0xDEADBEEF, 1, "192.168.1.2", time.time_ns(), fence.UNFENCED)
    fence.write_fence(dev, rec)
    assert fence.read_fence(dev, 3) == rec
    assert fence.read_fence(dev, 2) is None
    assert rec.unfenced and "journal 3 taken by 192.168.1.2 (cid 1)" in rec.describe()
    with open(dev, "r+b") as f:
        f.seek((cidev.FENCE_FIRST_BLOCK + 3) * cidev.BLOCK + 20)
        f.write(b"\xff")
    assert fence.read_fence(dev, 3) is None


def test_the_guard_costs_nothing_inside_the_lease_and_renews_outside_it(dev: str) -> None:
    lease = mounted(dev, interval_ms=200)
    assert slots.read_slot(dev, 0) == lease.slot and lease.slot.mount_id != 0
    before = lease.renewals
    assert lease.guard() is None
    assert lease.renewals == before  # inside the lease: no disk I/O
    lease.expires = time.monotonic() - 0.01  # as after a freeze longer than the lease
    assert lease.guard() is None
    assert lease.renewals == before + 1
    assert slots.read_slot(dev, 0).counter == lease.slot.counter  # type: ignore[union-attr]


def test_take_fences_the_mount_it_saw_and_its_next_renewal_stops_everything(dev: str) -> None:
    victim = mounted(dev, cid=0)
    waits: list[float] = []
    rec = fence.take(dev, 0, 1, "10.0.0.2", fence.UNFENCED, log, sleep=waits.append)
    assert rec is not None and rec.mount_id == victim.slot.mount_id
    assert waits and 0 < waits[0] <= 0.2  # the victim's lease may still hold: wait it out
    written = slots.read_slot(dev, 0)
    victim.expires = 0.0  # the victim wakes up after its lease ran out
    why = victim.guard()
    assert why is not None and why.startswith("fenced: journal 0 taken by 10.0.0.2 (cid 1)")
    assert victim.renew() == rec
    victim.release()
    assert slots.read_slot(dev, 0) == written  # fenced: not even its slot is written again


def test_take_does_not_wait_for_a_slot_the_watcher_saw_frozen_for_a_lease(dev: str) -> None:
    mounted(dev, cid=0, interval_ms=200)
    waits: list[float] = []
    long_ago = time.monotonic() - 1.0
    fence.take(dev, 0, 1, "10.0.0.2", fence.UNFENCED, log, unchanged_since=lambda s: long_ago,
               sleep=waits.append)
    assert waits == []


def test_take_of_a_node_the_switch_powered_off_does_not_wait(dev: str) -> None:
    """The switch confirmed the victim off: its slot may have moved just before (docker kill thaws
    a frozen container for a moment), but a dead node renews nothing, so there is no lease left to
    wait out. The same slot without `off` is waited for (the test above)."""
    victim = mounted(dev, cid=0, interval_ms=200)
    waits: list[float] = []
    rec = fence.take(dev, 0, 1, "10.0.0.2", fence.POWERED_OFF, log, sleep=waits.append, off=True)
    assert rec is not None and rec.how == fence.POWERED_OFF and waits == []
    assert victim.renew() == rec  # had it lived on, its next renewal would still stop it


def test_nothing_to_take_from_an_unmounted_slot(dev: str) -> None:
    lease = mounted(dev, cid=0)
    lease.release()
    assert fence.take(dev, 0, 1, "10.0.0.2", fence.UNFENCED, log, sleep=lambda s: None) is None
    assert fence.read_fence(dev, 0) is None


def test_an_old_record_does_not_fence_a_new_mount_of_the_same_node(dev: str) -> None:
    old = mounted(dev, cid=0)
    fence.take(dev, 0, 1, "10.0.0.2", fence.POWERED_OFF, log, sleep=lambda s: None)
    assert old.renew() is not None
    new = mounted(dev, cid=0)  # the node rebooted and mounted again: a new mount_id
    assert new.slot.mount_id != old.slot.mount_id
    new.expires = 0.0
    assert new.guard() is None


def test_a_fenced_device_writes_nothing_and_says_why(dev: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(bytes(16 * 4096))
    victim = mounted(dev, cid=0)
    d = Device(str(data), guard=victim.guard)
    d.write(1, b"a" * 4096)
    fence.take(dev, 0, 1, "10.0.0.2", fence.UNFENCED, log, sleep=lambda s: None)
    victim.expires = 0.0
    with pytest.raises(OSError) as e:
        d.write(2, b"b" * 4096)
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError):
        d.flush()
    assert d.withdrawn is not None and "taken by 10.0.0.2" in d.withdrawn
    assert data.read_bytes()[2 * 4096:3 * 4096] == bytes(4096)
    assert data.read_bytes()[4096:2 * 4096] == b"a" * 4096


def test_a_mount_fenced_once_is_not_fenced_again(dev: str) -> None:
    """A node that went down fenced leaves its slot "mounted": the next first mounter finds the
    old record and neither waits nor writes a new one (nor powers the node off: ogfs/cluster.py)."""
    mounted(dev, cid=0)
    rec = fence.take(dev, 0, 1, "10.0.0.2", fence.POWERED_OFF, log, sleep=lambda s: None)
    assert fence.fenced_already(dev, 0) == rec
    waits: list[float] = []
    again = fence.take(dev, 0, 1, "10.0.0.2", fence.UNFENCED, log, sleep=waits.append)
    assert again == rec and waits == [] and fence.read_fence(dev, 0) == rec
    mounted(dev, cid=0)  # it mounted again: a new mount, not fenced
    assert fence.fenced_already(dev, 0) is None
