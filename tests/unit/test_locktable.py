"""memexpd's lock table (ogfs/memexp/locktable.py): every rule by example, then a hypothesis
state machine over random interleavings that checks the invariants after every step:

(a) never two incompatible holders of a lock (a frozen hold counts against non-NOEXP holds);
(b) a frozen lock is never granted in a conflicting state before its recovery (unless NOEXP);
(c) liveness: once everyone releases, expired nodes are STOMITHed and journals recovered, every
    request was answered (granted, TRY-failed, or dropped because its node went away) and every
    MOUNT of a live node answered.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ogfs.config import NodeEntry
from ogfs.memexp.locktable import (
    Callback,
    Dropped,
    Grant,
    LockTable,
    Log,
    Mounted,
    ReclaimRefused,
    Recover,
    Refused,
    Stomith,
    TryFailed,
    covers,
)
from ogfs.memexp.protocol import DF, EX, NOEXP, PRIORITY, SH, TRY, TRY_1CB, UN, compatible

T = 10.0
A, B, C = 0, 1, 2
L1, L2, L3 = (2, 100), (2, 101), (3, 7)


def ip(cid: int) -> str:
    return f"192.168.1.{cid + 1}"


def table(n: int = 3, grace_until: float = 0.0, now: float = 0.0) -> LockTable:
    return LockTable([NodeEntry(ip(c), c, "manual") for c in range(n)], T, now=now, grace_until=grace_until)


def of(acts: list[Any], kind: type) -> list[Any]:
    return [a for a in acts if isinstance(a, kind)]


def logs(acts: list[Any]) -> str:
    return "\n".join(a.text for a in of(acts, Log))


def login(t: LockTable, *cids: int, now: float = 0.0, mount: bool = False) -> None:
    for c in cids:
        t.hello(c, ip(c), 1000 + c, now)
        if mount:
            got = of(t.mount(c), Mounted)
            assert got, f"mount of {c} did not answer"
            if got[0].first:
                t.others_may_mount(c)


def holders(t: LockTable, name: tuple[int, int]) -> dict[int, int]:
    lock = t.locks.get(name)
    return {c: h.state for c, h in lock.holders.items()} if lock else {}


def frozen(t: LockTable, name: tuple[int, int]) -> dict[int, int]:
    lock = t.locks.get(name)
    return dict(lock.frozen) if lock else {}


# -- compatibility, own holds, FIFO, PRIORITY ----------------------------------------------------------

@pytest.mark.parametrize("first,second,together", [
    (SH, SH, True), (DF, DF, True), (EX, EX, False), (EX, SH, False), (SH, DF, False), (DF, EX, False)])
def test_compatibility_as_the_protocol_says(first: int, second: int, together: bool) -> None:
    t = table()
    login(t, A, B)
    assert of(t.request(A, 1, L1, first), Grant)
    acts = t.request(B, 2, L1, second)
    assert bool(of(acts, Grant)) == together == compatible(first, second)
    if not together:
        assert of(acts, Callback) == [Callback(A, L1, second)]


def test_a_request_from_a_holder_replaces_its_own_hold() -> None:
    t = table()
    login(t, A, B)
    t.request(A, 1, L1, SH)
    assert of(t.request(A, 2, L1, EX), Grant) == [Grant(A, 2, L1, EX)]  # upgrade: nobody else
    assert holders(t, L1) == {A: EX}
    assert of(t.request(A, 3, L1, SH), Grant) == [Grant(A, 3, L1, SH)]  # downgrade: at once
    assert of(t.request(B, 4, L1, SH), Grant)
    assert holders(t, L1) == {A: SH, B: SH}
    acts = t.request(A, 5, L1, EX)  # upgrade past another SH holder waits for it
    assert not of(acts, Grant) and of(acts, Callback) == [Callback(B, L1, EX)]
    assert of(t.demote(B, L1, UN), Grant) == [Grant(A, 5, L1, EX)]
    assert of(t.request(A, 6, L1, UN), Grant) == [Grant(A, 6, L1, UN)] and L1 not in t.locks


def test_fifo_no_barging_past_an_earlier_incompatible_waiter() -> None:
    t = table()
    login(t, A, B, C)
    t.request(A, 1, L1, SH)
    t.request(B, 2, L1, EX)  # waits for A
    acts = t.request(C, 3, L1, SH)  # compatible with A, but B asked first
    assert not of(acts, Grant) and not of(acts, Callback)
    acts = t.demote(A, L1, UN)
    assert of(acts, Grant) == [Grant(B, 2, L1, EX)]
    assert of(acts, Callback) == [Callback(B, L1, SH)]
    assert of(t.demote(B, L1, UN), Grant) == [Grant(C, 3, L1, SH)]


def test_priority_goes_to_the_head_of_the_queue() -> None:
    t = table()
    login(t, A, B, C)
    t.request(A, 1, L1, EX)
    t.request(B, 2, L1, EX)
    t.request(C, 3, L1, EX, PRIORITY)
    assert [w.cid for w in t.locks[L1].waiters] == [C, B]
    assert of(t.demote(A, L1, UN), Grant) == [Grant(C, 3, L1, EX)]


def test_try_fails_at_once_and_try_1cb_still_calls_back_once() -> None:
    t = table()
    login(t, A, B)
    t.request(A, 1, L1, EX)
    acts = t.request(B, 2, L1, SH, TRY)
    assert of(acts, TryFailed) == [TryFailed(B, 2, L1, f"held by node {ip(A)} in EX")]
    assert not of(acts, Callback) and t.locks[L1].waiters == []
    acts = t.request(B, 3, L1, SH, TRY | TRY_1CB)
    assert of(acts, Callback) == [Callback(A, L1, SH)] and of(acts, TryFailed)
    acts = t.request(B, 4, L1, SH, TRY | TRY_1CB)  # A already knows
    assert not of(acts, Callback) and of(acts, TryFailed)
    t.demote(A, L1, SH)
    assert of(t.request(B, 5, L1, SH, TRY), Grant)


def test_try_1cb_implies_try() -> None:
    t = table()
    login(t, A, B)
    t.request(A, 1, L1, EX)
    acts = t.request(B, 2, L1, EX, TRY_1CB)
    assert of(acts, TryFailed) and of(acts, Callback) == [Callback(A, L1, EX)]


def test_try_does_not_barge_past_waiters() -> None:
    t = table()
    login(t, A, B, C)
    t.request(A, 1, L1, SH)
    t.request(B, 2, L1, EX)
    acts = t.request(C, 3, L1, SH, TRY)
    assert of(acts, TryFailed)[0].reason == f"queued behind node {ip(B)}'s EX request"


def test_one_callback_per_holder_and_need_until_the_hold_changes() -> None:
    t = table()
    login(t, A, B, C)
    t.request(A, 1, L1, EX)
    assert of(t.request(B, 2, L1, EX), Callback) == [Callback(A, L1, EX)]
    assert of(t.request(C, 3, L1, EX), Callback) == []  # same holder, same need: not again
    acts = t.request(C, 4, L1, SH)
    assert of(acts, Callback) == [Callback(A, L1, SH)]  # another need
    acts = t.demote(A, L1, SH)  # its hold changed: called back again for what still conflicts
    assert of(acts, Callback) == [Callback(A, L1, EX)]
    assert t.callbacks_for(A) == [Callback(A, L1, EX)]


def test_demote_rules() -> None:
    t = table()
    login(t, A, B)
    t.request(A, 1, L1, SH)
    assert "not a demotion" in logs(t.demote(A, L1, EX))
    assert holders(t, L1) == {A: SH}
    assert "not held" in logs(t.demote(B, L1, SH))
    assert t.demote(B, L1, UN) == []


# -- expiry, frozen locks, STOMITH, recovery -----------------------------------------------------------

def test_silence_expires_sh_dropped_ex_frozen_waiters_dropped() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(A, 1, L1, EX)
    t.request(A, 2, L2, SH)
    t.request(B, 3, L3, EX)
    t.request(A, 4, L3, SH)  # A waits on B
    t.heartbeat(B, 9.0)
    assert t.tick(10.0) == []  # not more than timeout yet
    acts = t.tick(10.5)
    assert f"node {ip(A)} (cid 0) expired: no heartbeat for 10 s" in logs(acts)
    assert of(acts, Stomith) == [Stomith(A, "manual")]
    assert of(acts, Dropped) == [Dropped(A, 4, L3, "its node expired")]
    assert frozen(t, L1) == {A: EX} and holders(t, L1) == {}
    assert L2 not in t.locks  # the SH hold is simply gone
    assert t.nodes[A].state == "stomith_wait"
    # B's conflicting request waits for the frozen hold; NOEXP passes it
    acts = t.request(B, 5, L1, SH)
    assert not of(acts, Grant) and not of(acts, Callback)  # nobody to call back
    assert "frozen" in of(t.request(B, 6, L1, EX, TRY), TryFailed)[0].reason
    assert of(t.request(B, 7, L2, EX), Grant)


def test_frozen_df_blocks_everything_but_df() -> None:
    t = table()
    login(t, A, B)
    t.request(A, 1, L1, DF)
    t.heartbeat(B, 10.0)
    t.tick(10.5)
    assert frozen(t, L1) == {A: DF}
    assert of(t.request(B, 2, L1, DF), Grant)
    assert of(t.request(B, 3, L2, SH), Grant)
    assert of(t.request(B, 4, L1, SH, TRY), TryFailed)


def test_stomith_ack_then_recover_then_recovery_done_unfreezes_and_grants() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(A, 1, L1, EX)
    t.heartbeat(B, 10.0)
    t.tick(10.5)
    waiting = t.request(B, 2, L1, EX)
    assert not of(waiting, Grant)
    with pytest.raises(Refused, match="not waiting for STOMITH"):
        t.stomith_done(B)
    acts = t.stomith_done(A)
    assert of(acts, Recover) == [Recover(B, A)]
    assert t.nodes[A].state == "recovering" and t.recoveries_for(B) == [Recover(B, A)]
    # a NOEXP request (recovery's) is granted over the frozen hold; B's plain one still waits
    assert of(t.request(B, 3, L1, EX, NOEXP | TRY), Grant)
    t.demote(B, L1, UN)
    assert holders(t, L1) == {}
    with pytest.raises(Refused):
        t.stomith_done(A)
    acts = t.recovery_done(B, A, True)
    assert of(acts, Grant) == [Grant(B, 2, L1, EX)]
    assert frozen(t, L1) == {} and t.nodes[A].state == "gone"
    assert "journal 0 (192.168.1.1) recovered by node 192.168.1.2 (cid 1): 1 expired lock(s)" in logs(acts)


def test_noexp_passes_waiters_that_wait_for_the_frozen_hold() -> None:
    t = table()
    login(t, A, B, C, mount=True)
    t.request(A, 1, L1, EX)
    t.heartbeat(B, 10.0)
    t.heartbeat(C, 10.0)
    t.tick(10.5)
    t.request(C, 2, L1, SH)  # waits for recovery
    acts = t.request(B, 3, L1, EX, NOEXP)  # the recoverer: must not wait behind C
    assert of(acts, Grant) == [Grant(B, 3, L1, EX)]
    assert of(t.request(C, 4, L2, EX), Grant)
    t.request(B, 5, L2, EX, NOEXP)  # NOEXP does not pass a live holder's conflict
    assert holders(t, L2) == {C: EX}


def test_no_mounted_node_leaves_the_journal_to_the_next_mounter() -> None:
    t = table()
    login(t, A, mount=True)
    t.request(A, 1, L1, EX)
    login(t, B, now=5.0)
    t.tick(10.5)
    acts = t.stomith_done(A)
    assert not of(acts, Recover) and t.nodes[A].state == "recovery_pending"
    assert "the next mounter recovers it" in logs(acts)
    assert of(t.mount(B), Mounted) == [Mounted(B, B, True, (A,))]
    assert t.nodes[A].state == "recovering"
    t.others_may_mount(B)
    assert of(t.recovery_done(B, A, True), Log)
    assert frozen(t, L1) == {}


def test_recovery_given_up_goes_to_another_node_or_waits() -> None:
    t = table()
    login(t, A, B, C, mount=True)
    t.request(A, 1, L1, EX)
    t.heartbeat(B, 10.0)
    t.heartbeat(C, 10.0)
    t.tick(10.5)
    assert of(t.stomith_done(A), Recover) == [Recover(B, A)]
    assert "ignored" in logs(t.recovery_done(C, A, True))  # C was not asked
    acts = t.recovery_done(B, A, False)
    assert of(acts, Recover) == [Recover(C, A)] and "gave up" in logs(acts)
    acts = t.recovery_done(C, A, False)
    assert of(acts, Recover) == [Recover(B, A)]
    t.unmount(C)
    t.unmount(B)  # B was recovering it: nobody left, so it waits for a mounter
    assert t.nodes[A].state == "recovery_pending" and frozen(t, L1) == {A: EX}


def test_a_recoverer_that_expires_hands_the_journal_over() -> None:
    t = table()
    login(t, A, B, C, mount=True)
    t.request(A, 1, L1, EX)
    t.heartbeat(B, 10.0)
    t.heartbeat(C, 10.0)
    t.tick(10.5)
    t.stomith_done(A)
    assert t.nodes[A].recoverer == B
    t.heartbeat(C, 20.0)
    acts = t.tick(21.0)
    assert of(acts, Stomith) == [Stomith(B, "manual")]
    assert of(acts, Recover) == [Recover(C, A)]


def test_recovery_done_before_stomith_is_ignored() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(A, 1, L1, EX)
    t.heartbeat(B, 10.0)
    t.tick(10.5)
    assert "not acknowledged" in logs(t.recovery_done(B, A, True))
    assert frozen(t, L1) == {A: EX}


def test_a_node_not_mounted_and_holding_no_ex_needs_no_stomith() -> None:
    t = table()
    login(t, A, B)
    t.request(A, 1, L1, SH)
    t.heartbeat(B, 10.0)
    acts = t.tick(10.5)
    assert not of(acts, Stomith) and t.nodes[A].state == "expired"
    assert "no STOMITH or recovery needed" in logs(acts)


def test_disconnect_is_not_expiry_but_drops_waiters() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(B, 1, L1, EX)
    t.request(A, 2, L1, EX)
    acts = t.disconnect(A)
    assert of(acts, Dropped) == [Dropped(A, 2, L1, "the lock connection closed")]
    assert t.nodes[A].state == "live" and not of(t.tick(5.0), Stomith)
    t.heartbeat(B, 10.0)
    assert of(t.tick(10.5), Stomith) == [Stomith(A, "manual")]


def test_reconnect_same_incarnation_drops_waiters_and_reconciles_downwards() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(A, 1, L1, EX)
    t.request(A, 2, L2, SH)
    t.request(B, 3, L1, EX)  # A was called back; pretend its DEMOTE was lost
    t.request(A, 4, L3, EX)
    t.request(B, 5, L3, EX)
    t.disconnect(A)
    acts = t.hello(A, ip(A), 1000, 1.0, reclaim=[(2, 101, SH), (3, 7, EX), (4, 4, EX)], mounted=True)
    assert of(acts, Grant) == [Grant(B, 3, L1, EX)]  # L1 no longer listed: released
    assert holders(t, L2) == {A: SH}
    assert of(acts, ReclaimRefused) == [ReclaimRefused(A, (4, 4), EX, "memexpd does not know this hold")]
    assert of(acts, Callback) == [Callback(A, L3, EX)]  # called back again
    assert t.nodes[A].mounted


def test_hello_from_an_expired_incarnation_is_refused() -> None:
    t = table()
    login(t, A, B)
    t.heartbeat(B, 10.0)
    t.tick(10.5)
    with pytest.raises(Refused, match="must be restarted"):
        t.hello(A, ip(A), 1000, 11.0)
    with pytest.raises(Refused, match="not in the node table"):
        t.hello(7, "192.168.1.8", 1, 11.0)
    with pytest.raises(Refused, match="is 192.168.1.1 in the node table"):
        t.hello(A, "192.168.1.9", 1, 11.0)
    with pytest.raises(Refused, match="HELLO first"):
        t.request(A, 1, L1, EX)


def test_a_new_incarnation_while_the_old_is_live_means_a_restart() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(A, 1, L1, EX)
    t.request(A, 2, L2, SH)
    with pytest.raises(Refused, match="mounted twice"):  # the old one still talks: same hostdata twice?
        t.hello(A, ip(A), 2000, 1.0)
    t.disconnect(A)
    acts = t.hello(A, ip(A), 2000, 1.0)
    assert not of(acts, Stomith)  # vouched by the node itself
    assert of(acts, Recover) == [Recover(B, A)]
    assert frozen(t, L1) == {A: EX} and L2 not in t.locks
    assert t.nodes[A].state == "live" and t.nodes[A].journal == "recovering"
    assert not of(t.mount(A), Mounted)  # its own journal is being replayed by B
    assert of(t.request(A, 3, L1, EX, TRY), TryFailed)  # the old incarnation's hold is frozen
    acts = t.recovery_done(B, A, True)
    assert of(acts, Mounted) == [Mounted(A, A, False, ())]


def test_a_restarted_node_recovers_its_own_journal_if_nobody_else_can() -> None:
    t = table()
    login(t, A, mount=True)
    t.request(A, 1, L1, EX)
    t.disconnect(A)
    t.hello(A, ip(A), 2000, 5.0)
    assert t.nodes[A].journal == "recovery_pending"
    assert of(t.mount(A), Mounted) == [Mounted(A, A, True, (A,))]


def test_a_new_incarnation_after_expiry_counts_as_stomith() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(A, 1, L1, EX)
    t.heartbeat(B, 10.0)
    t.tick(10.5)
    acts = t.hello(A, ip(A), 2000, 11.0)
    assert "counts as its STOMITH" in logs(acts) and of(acts, Recover) == [Recover(B, A)]


def test_one_memexpd_one_filesystem() -> None:
    t = table()
    t.hello(A, ip(A), 1, 0.0, uuid="u1")
    with pytest.raises(Refused, match="one memexpd serves one filesystem"):
        t.hello(B, ip(B), 2, 0.0, uuid="u2")


# -- mounts ---------------------------------------------------------------------------------------------

def test_first_mounter_and_others_may_mount() -> None:
    t = table()
    login(t, A, B, C)
    assert of(t.mount(A), Mounted) == [Mounted(A, A, True, ())]
    acts = t.mount(B)
    assert not of(acts, Mounted) and "is recovering journals" in logs(acts)
    t.mount(C)
    assert of(t.mount(A), Mounted) == [Mounted(A, A, True, ())]  # asked again: same answer
    acts = t.others_may_mount(A)
    assert of(acts, Mounted) == [Mounted(B, B, False, ()), Mounted(C, C, False, ())]
    assert of(t.mount(A), Mounted) == [Mounted(A, A, False, ())]
    assert "ignored" in logs(t.others_may_mount(B))


def test_a_first_mounter_that_expires_lets_the_next_one_be_first_after_stomith() -> None:
    t = table()
    login(t, A, B)
    t.mount(A)
    t.mount(B)
    t.heartbeat(B, 10.0)
    acts = t.tick(10.5)
    assert of(acts, Stomith) == [Stomith(A, "manual")] and not of(acts, Mounted)
    assert "STOMITH of node 192.168.1.1 (cid 0) is not done" in str(t._mount_blocker(B))  # noqa: SLF001
    assert of(t.stomith_done(A), Mounted) == [Mounted(B, B, True, (A,))]


def test_a_second_mount_is_not_first_and_gets_pending_journals() -> None:
    t = table()
    login(t, A, B, C, mount=True)
    assert [t.nodes[c].mounted for c in (A, B, C)] == [True, True, True]
    t.unmount(B)
    t.unmount(C)
    t.request(A, 1, L1, EX)
    login(t, B, now=1.0)
    t.hello(C, ip(C), 3000, 9.0)
    t.heartbeat(B, 10.0)
    t.tick(10.5)
    t.stomith_done(A)  # nobody mounted
    assert of(t.mount(B), Mounted) == [Mounted(B, B, True, (A,))]
    t.recovery_done(B, A, True)
    t.others_may_mount(B)
    assert of(t.mount(C), Mounted) == [Mounted(C, C, False, ())]


def test_unmount_releases_everything() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(A, 1, L1, EX)
    t.request(B, 2, L1, SH)
    t.request(A, 3, L2, EX)
    t.request(B, 4, L2, EX)
    t.request(A, 5, L3, SH)
    acts = t.unmount(B)
    assert sorted(of(acts, Dropped), key=lambda d: d.id) == [
        Dropped(B, 2, L1, "its node unmounted"), Dropped(B, 4, L2, "its node unmounted")]
    acts = t.unmount(A)
    assert t.locks == {} and t.nodes[A].state == "gone"
    with pytest.raises(Refused):
        t.request(A, 6, L1, EX)
    t.hello(A, ip(A), 1000, 1.0)  # it may come back (a new mount)
    assert t.nodes[A].state == "live"


# -- grace period after a memexpd start ---------------------------------------------------------------

def test_grace_period_only_reclaims_then_the_queues_move() -> None:
    t = table(n=4, grace_until=10.0)  # the 4th node never logs in: the grace period runs out
    acts = t.hello(A, ip(A), 1, 1.0, reclaim=[(2, 100, EX), (2, 101, SH)], mounted=True)
    assert not of(acts, ReclaimRefused) and holders(t, L1) == {A: EX}
    acts = t.hello(B, ip(B), 2, 2.0, reclaim=[(2, 100, SH), (2, 101, SH)], mounted=True)
    assert of(acts, ReclaimRefused) == [ReclaimRefused(B, L1, SH, f"conflicts with node {ip(A)}'s hold")]
    assert holders(t, L2) == {A: SH, B: SH}
    acts = t.request(B, 1, L3, EX)  # a new request, nobody holds it: still waits
    assert not of(acts, Grant)
    assert of(t.request(B, 2, L3, EX, TRY), TryFailed)[0].reason.startswith("grace period")
    acts = t.request(B, 3, L1, SH)
    assert not of(acts, Callback)  # no callbacks during grace either
    assert of(t.mount(B), Mounted) == [Mounted(B, B, False, ())]  # B reclaimed: mounted already
    t.hello(C, ip(C), 3, 3.0)
    assert not of(t.mount(C), Mounted)
    assert t.tick(9.9) == []
    acts = t.tick(10.0)
    assert "grace period over" in logs(acts)
    assert of(acts, Grant) == [Grant(B, 1, L3, EX)]
    assert of(acts, Callback) == [Callback(A, L1, SH)]
    assert of(acts, Mounted) == [Mounted(C, C, False, ())]
    # a late reclaimer gets nothing back, but is mounted
    t2 = table(grace_until=10.0)
    acts = t2.hello(A, ip(A), 1, 11.0, reclaim=[(2, 100, EX)], mounted=True)
    assert of(acts, ReclaimRefused) == [ReclaimRefused(A, L1, EX, "the grace period is over")]
    assert t2.nodes[A].mounted


def test_grace_ends_early_once_every_node_is_logged_in() -> None:
    t = table(n=2, grace_until=30.0)
    t.hello(A, ip(A), 1, 1.0, reclaim=[(2, 100, EX)], mounted=True)
    assert t.grace
    acts = t.hello(B, ip(B), 2, 2.0)
    assert not t.grace and "every node is logged in" in logs(acts)


def test_status_is_plain_data() -> None:
    t = table()
    login(t, A, B, mount=True)
    t.request(A, 1, L1, EX)
    t.request(B, 2, L1, SH, NOEXP)
    st_ = t.status(now=3.0)
    assert st_["nodes"][0] == {"cid": 0, "ip": ip(A), "state": "live", "jid": 0, "mounted": True,
                               "connected": True, "incarnation": 1000, "stomith": "manual",
                               "journal": None, "recoverer": None, "silent": 3.0}
    assert st_["nodes"][2]["state"] == "unknown"
    assert st_["locks"] == [{"name": [2, 100], "lock": "inode:100",
                             "holders": [{"cid": 0, "ip": ip(A), "state": "EX", "noexp": False}],
                             "frozen": [],
                             "waiters": [{"cid": 1, "ip": ip(B), "id": 2, "state": "SH", "flags": "NOEXP"}]}]


# -- the state machine ----------------------------------------------------------------------------------

CIDS = [A, B, C]
NAMES = [L1, L2, L3]
STATES = [UN, EX, DF, SH]


class LockTableMachine(RuleBasedStateMachine):
    """Random interleavings; the test keeps its own view of who holds what (from Grant actions,
    its own DEMOTEs, and the node states the table reports) and checks it against the table."""

    @initialize(grace=st.sampled_from([0.0, 0.0, 6.0, 25.0]))
    def start(self, grace: float) -> None:
        self.now = 0.0
        self.t = table(grace_until=grace)
        self.inc = {c: 0 for c in CIDS}
        self.ids = itertools.count(1)
        self.pending: dict[int, tuple[int, tuple[int, int], int, int, bool | None]] = {}
        self.holds: dict[tuple[int, int], dict[int, tuple[int, bool]]] = defaultdict(dict)
        self.frozen: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)
        self.fenced: set[int] = set()
        self.mounting: set[int] = set()
        self.heard = {c: 0.0 for c in CIDS}
        self.dead: set[tuple[int, int]] = set()
        self.snap = self.nodes()

    # -- bookkeeping --------------------------------------------------------------------------------

    def nodes(self) -> dict[int, dict[str, Any]]:
        return {n["cid"]: n for n in self.t.status()["nodes"]}

    def live(self, cid: int) -> bool:
        return self.nodes()[cid]["state"] == "live"

    def apply(self, acts: list[Any], unmounted: int | None = None) -> None:
        after = {n: dict(f) for n, f in ((lk.name, lk.frozen) for lk in self.t.locks.values())}
        now = self.nodes()
        left = {c for c, old in self.snap.items() if old["state"] == "live" and (
            now[c]["state"] != "live" or now[c]["incarnation"] != old["incarnation"])}
        firsts = []
        for a in acts:
            if isinstance(a, Grant):
                cid, name, state, flags, keep = self.pending.pop(a.id)
                assert (cid, name, state) == (a.cid, a.name, a.state)
                if state == UN:
                    self.holds[name].pop(cid, None)
                    continue
                noexp = keep if keep is not None else bool(flags & NOEXP)
                for other, s in self.holds[name].items():  # (a) at the moment of the grant
                    assert other in (cid, *left) or compatible(s[0], state), (name, self.holds[name], a)
                if not noexp:  # (b) no grant over a hold still frozen after this step
                    for f in after.get(name, {}).values():
                        assert compatible(f, state), (name, after[name], a)
                self.holds[name][cid] = (state, noexp)
            elif isinstance(a, TryFailed):
                cid, name, state, flags, keep = self.pending.pop(a.id)
                assert flags & (TRY | TRY_1CB) and a.reason
            elif isinstance(a, Dropped):
                assert self.pending.pop(a.id)[0] == a.cid
            elif isinstance(a, Callback):
                held = self.holds[a.name].get(a.cid)
                assert held is not None and not compatible(held[0], a.need), (a, held)
            elif isinstance(a, Stomith):
                self.fenced.discard(a.cid)
            elif isinstance(a, Recover):
                assert a.jid in self.fenced and a.cid != a.jid, a  # I4: only after STOMITH
            elif isinstance(a, Mounted):
                if a.cid not in self.mounting:
                    continue  # asked again by a mounted node: the same answer again
                self.mounting.discard(a.cid)
                assert all(j in self.fenced for j in a.recover), a
                if a.first:
                    firsts.append(a)
                assert not firsts or a is firsts[-1], "a MOUNT answered while a first mounter works"
        if firsts:
            assert len(firsts) == 1
            assert self.t.first_mounter == firsts[0].cid or firsts[0].cid in left  # or it expired since
            others = [n for c, n in now.items() if c != firsts[0].cid]
            assert not any(n["mounted"] and n["state"] == "live" for n in others)
        for cid, old in self.snap.items():
            new = now[cid]
            if cid in left:
                self.mounting.discard(cid)
                assert not any(p[0] == cid for p in self.pending.values()), "waiters of a dead node kept"
                if cid != unmounted:
                    self.dead.add((cid, old["incarnation"]))
                for name, hs in self.holds.items():
                    h = hs.pop(cid, None)
                    if h is not None and cid != unmounted and h[0] in (EX, DF):
                        old_frozen = self.frozen[name].get(cid)
                        self.frozen[name][cid] = EX if EX in (old_frozen, h[0]) else DF
            if old["journal"] is not None and new["journal"] is None:
                for fz in self.frozen.values():
                    fz.pop(cid, None)
                self.fenced.discard(cid)
        self.snap = now

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "t"):
            return
        for name in NAMES:
            lock = self.t.locks.get(name)
            got = {c: (h.state, h.noexp) for c, h in lock.holders.items()} if lock else {}
            assert got == self.holds[name], (name, got, dict(self.holds[name]))
            assert (dict(lock.frozen) if lock else {}) == self.frozen[name]
            hs = list(self.holds[name].items())
            for (_, (s1, _)), (_, (s2, _)) in itertools.combinations(hs, 2):  # (a)
                assert compatible(s1, s2), (name, hs)
            for _, (s, noexp) in hs:  # (a)/(b): frozen holds count unless NOEXP
                for f in self.frozen[name].values():
                    assert noexp or compatible(f, s), (name, hs, self.frozen[name])
        assert sum(1 for n in self.t.nodes.values() if n.mounted and n.session == "live") >= (
            1 if self.t.first_mounter is not None else 0)

    # -- rules --------------------------------------------------------------------------------------

    @rule(cid=st.sampled_from(CIDS), new=st.booleans(),
          reclaim=st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from([EX, DF, SH])), max_size=3),
          mounted=st.booleans())
    def hello(self, cid: int, new: bool, reclaim: list[Any], mounted: bool) -> None:
        node = self.nodes()[cid]
        live = node["state"] == "live"
        if not live or new:
            self.inc[cid] += 1
        if live and not new:  # a reconnect says what it holds, as the real client does
            listed = [(n[0], n[1], s) for n, hs in self.holds.items() for c, (s, _) in hs.items() if c == cid]
            fresh = False
        else:
            fresh = node["state"] == "unknown"
            listed = [(n[0], n[1], s) for n, s in reclaim] if fresh else []
        vouch = (live and new) or node["state"] == "stomith_wait"
        try:
            acts = self.t.hello(cid, ip(cid), self.inc[cid], self.now, reclaim=listed,
                                mounted=mounted and fresh)
        except Refused as e:
            assert live and new and node["connected"] and self.now - self.heard[cid] < 2 * T / 5, e
            self.inc[cid] -= 1
            return
        self.heard[cid] = self.now
        if vouch:
            self.fenced.add(cid)
        if fresh:
            refused = {(r.name, r.state) for r in of(acts, ReclaimRefused)}
            for n, s in reclaim:
                if (n, s) not in refused:
                    self.pending[-1] = (cid, n, s, 0, None)
                    self.apply([Grant(cid, -1, n, s)])  # the model takes the reclaim as a grant
        self.apply(acts)

    @rule(cid=st.sampled_from(CIDS))
    def hello_from_the_dead(self, cid: int) -> None:
        if (cid, self.inc[cid]) in self.dead:
            with pytest.raises(Refused, match="must be restarted"):
                self.t.hello(cid, ip(cid), self.inc[cid], self.now)

    @rule(cid=st.sampled_from(CIDS), name=st.sampled_from(NAMES), state=st.sampled_from(STATES),
          flags=st.integers(0, 15))
    def request(self, cid: int, name: tuple[int, int], state: int, flags: int) -> None:
        if not self.live(cid):
            with pytest.raises(Refused):
                self.t.request(cid, 0, name, state, flags)
            return
        rid = next(self.ids)
        prior = self.holds[name].get(cid)
        keep = prior[1] if prior is not None and covers(prior[0], state) else None
        self.pending[rid] = (cid, name, state, flags, keep)
        self.apply(self.t.request(cid, rid, name, state, flags))

    @rule(cid=st.sampled_from(CIDS), name=st.sampled_from(NAMES), state=st.sampled_from(STATES))
    def demote(self, cid: int, name: tuple[int, int], state: int) -> None:
        if not self.live(cid):
            return
        acts = self.t.demote(cid, name, state)
        held = self.holds[name].get(cid)
        if held is not None and covers(held[0], state):
            if state == UN:
                del self.holds[name][cid]
            else:
                self.holds[name][cid] = (state, held[1])
        self.apply(acts)

    @rule(cid=st.sampled_from(CIDS))
    def heartbeat(self, cid: int) -> None:
        if self.live(cid):
            self.heard[cid] = self.now
            self.apply(self.t.heartbeat(cid, self.now))

    @rule(dt=st.sampled_from([0.5, 2.0, 5.0, 11.0]))
    def tick(self, dt: float) -> None:
        self.now += dt
        self.apply(self.t.tick(self.now))

    @rule(cid=st.sampled_from(CIDS))
    def disconnect(self, cid: int) -> None:
        self.apply(self.t.disconnect(cid))

    @rule(cid=st.sampled_from(CIDS))
    def stomith_ack(self, cid: int) -> None:
        if self.nodes()[cid]["state"] != "stomith_wait":
            with pytest.raises(Refused):
                self.t.stomith_done(cid)
            return
        self.fenced.add(cid)
        self.apply(self.t.stomith_done(cid))

    @rule(jid=st.sampled_from(CIDS), ok=st.booleans(), anyone=st.sampled_from([None, *CIDS]))
    def recovery_done(self, jid: int, ok: bool, anyone: int | None) -> None:
        node = self.nodes()[jid]
        sender = node["recoverer"] if anyone is None else anyone
        if sender is None or not self.live(sender):
            return
        self.apply(self.t.recovery_done(sender, jid, ok))

    @rule(cid=st.sampled_from(CIDS))
    def mount(self, cid: int) -> None:
        if self.live(cid):
            if not self.nodes()[cid]["mounted"]:
                self.mounting.add(cid)
            self.apply(self.t.mount(cid))

    @rule(cid=st.sampled_from(CIDS))
    def others_may_mount(self, cid: int) -> None:
        if self.live(cid):
            self.apply(self.t.others_may_mount(cid))

    @rule(cid=st.sampled_from(CIDS))
    def unmount(self, cid: int) -> None:
        if self.live(cid):
            acts = self.t.unmount(cid)
            self.apply(acts, unmounted=cid)

    # -- (c) liveness -------------------------------------------------------------------------------

    def teardown(self) -> None:
        if not hasattr(self, "t"):
            return
        self.now = max(self.now, self.t.grace_until)
        for cid in CIDS:
            if self.live(cid):
                self.heard[cid] = self.now
                self.t.heartbeat(cid, self.now)
        self.apply(self.t.tick(self.now))
        for _ in range(40):
            nodes = self.nodes()
            for cid, n in nodes.items():
                if n["state"] == "stomith_wait":
                    self.fenced.add(cid)
                    self.apply(self.t.stomith_done(cid))
            nodes = self.nodes()
            for cid, n in nodes.items():
                if n["recoverer"] is not None and n["journal"] == "recovering":
                    self.apply(self.t.recovery_done(n["recoverer"], cid, True))
            nodes = self.nodes()
            if any(n["journal"] == "recovery_pending" for n in nodes.values()):
                # a journal waits for the next mounter: a node that is not mounted mounts, or one
                # that is (and gave up on it) remounts, or a node comes back and mounts
                live = [c for c, n in nodes.items() if n["state"] == "live"]
                up = next((c for c in live if not nodes[c]["mounted"]), None)
                if up is None:
                    up = live[0] if live else min(nodes)
                    if live:
                        self.apply(self.t.unmount(up), unmounted=up)
                    self.inc[up] += 1
                    if nodes[up]["state"] == "stomith_wait":
                        self.fenced.add(up)
                    self.heard[up] = self.now
                    self.apply(self.t.hello(up, ip(up), self.inc[up], self.now))
                self.mounting.add(up)
                self.apply(self.t.mount(up))
            if self.t.first_mounter is not None:
                self.apply(self.t.others_may_mount(self.t.first_mounter))
            for name in NAMES:  # everyone releases everything
                for cid in list(self.holds[name]):
                    del self.holds[name][cid]
                    self.apply(self.t.demote(cid, name, UN))
            nodes = self.nodes()
            busy = (self.t.locks or self.t.mount_queue or self.t.first_mounter is not None
                    or any(n["journal"] for n in nodes.values()))
            if not busy:
                break
        assert not self.pending, f"requests never answered: {self.pending}"
        live_mounting = {c for c in self.mounting if self.live(c)}
        assert not live_mounting, f"MOUNTs never answered: {live_mounting}"
        assert not self.t.locks, self.t.status()


TestLockTableMachine = LockTableMachine.TestCase
TestLockTableMachine.settings = settings(max_examples=300, stateful_step_count=60, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
