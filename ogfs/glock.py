"""Glocks: the node's cache of cluster locks (GFS's G-lock layer, much simplified).

A glock stays with the node after the operation that asked for it is done ("cacheable"), so
the next operation on the same inode or resource group costs nothing.  It leaves only when
memexpd calls back (another node wants it):

    callback -> wait until no local operation is using it (and a minimum hold time has
                passed, so a freshly granted lock is used at least once: no ping-pong livelock)
             -> hooks.before_demote: if it was EX, commit and write everything home
                (fs.flush_for_demote), then drop what it covers from the caches
             -> DEMOTE to memexpd

and when it comes back, hooks.after_grant drops whatever stale copy the node still had.
So a node only ever uses cached metadata under a lock it holds, and another node's changes are
seen as soon as the lock is granted.

Nothing is ever upgraded: a node holding SH that needs EX first gives SH back (when no local
operation uses it) and then asks for EX, and operations ask for the strongest state they will
need up front.  An upgrade would deadlock two nodes doing the same (each holding SH, each
queued for EX behind the other).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from .memexp.protocol import EX, IOPEN, SH, UN, Name, name_str

log = logging.getLogger("ogfs")
MIN_HOLD = 0.01  # seconds a grant is kept before a callback may take it (GFS2's minimum hold time)


class LockTimeout(Exception):
    """The lock server did not answer in time (memexpd down, cbport blocked, ...)."""


class TryFailed(Exception):
    pass


class Answer(Protocol):
    async def state(self) -> int: ...


class Requester(Protocol):
    async def lock(self, name: Name, state: int, flags: int) -> int: ...
    async def lock_many(self, names: list[Name], state: int, flags: int) -> Sequence[Answer]: ...
    async def demote(self, name: Name, state: int) -> None: ...


class Hooks(Protocol):
    def after_grant(self, name: Name, old: int, new: int) -> None: ...
    def before_demote(self, name: Name, old: int, new: int) -> None: ...
    def iopen_wanted(self, addr: int) -> None: ...
    async def before_unlock(self, name: Name) -> None: ...


def covers(held: int, want: int) -> bool:
    return held == EX or (held == SH and want == SH)


@dataclass(eq=False)
class Glock:
    name: Name
    state: int = UN
    users: int = 0
    requesting: int = UN       # a request for this state is on its way
    demote_to: int | None = None
    early_callback: int | None = None  # a CB that overtook our GRANTED (two connections)
    granted_at: float = 0.0
    changed: trio.Event = field(default_factory=trio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class Glocks:
    def __init__(self, requester: Requester, hooks: Hooks, nursery: trio.Nursery,
                 op_timeout: float = 60.0) -> None:
        self.req = requester
        self.hooks = hooks
        self.nursery = nursery
        self.op_timeout = op_timeout
        self.locks: dict[Name, Glock] = {}
        self.counters = {"lock_requests": 0, "callbacks": 0, "demotes": 0, "cached_hits": 0,
                         "prefetches": 0}

    def _get(self, name: Name) -> Glock:
        g = self.locks.get(name)
        if g is None:
            g = self.locks[name] = Glock(name)
        return g

    async def acquire(self, name: Name, state: int, flags: int = 0) -> None:
        """Hold `name` in at least `state` for one operation; pair with release()."""
        g = self._get(name)
        if covers(g.state, state) and g.demote_to is None:
            # Cached: most acquires.  No timeout scope (costly in trio) and no checkpoint, so
            # the operation still runs to its end without yielding.
            g.users += 1
            self.counters["cached_hits"] += 1
            return
        try:
            with trio.fail_after(self.op_timeout):
                while True:
                    if covers(g.state, state) and g.demote_to is None:
                        g.users += 1
                        return
                    if state == EX and g.state == SH and g.demote_to is None and g.requesting == UN:
                        # No upgrades: give SH back first, then ask for EX from nothing.  A node
                        # holding SH while it waits for EX would block the node ahead of it in
                        # memexpd's queue, which waits for that very SH: a deadlock.
                        g.demote_to = UN
                        self.nursery.start_soon(self._demote, g)
                    elif g.demote_to is None and not covers(g.requesting, state):
                        want = EX if state == EX or g.state == EX else SH
                        g.requesting = want
                        self.nursery.start_soon(self._request, [g], want, flags)
                    await g.changed.wait()
        except trio.TooSlowError:
            raise LockTimeout(f"no grant of {name_str(name)} in {self.op_timeout:.0f} s") from None

    def prefetch(self, names: list[Name], state: int) -> None:
        """Ask for `names` now, in one go, for operations still to come (the next new inodes):
        acquire() then finds them granted or on their way.  Nothing held or moving is touched."""
        gs = [g for g in map(self._get, names)
              if g.state == UN and g.requesting == UN and g.demote_to is None]
        for g in gs:
            g.requesting = state
        if gs:
            self.counters["prefetches"] += len(gs)
            self.nursery.start_soon(self._request, gs, state, 0)

    async def _request(self, gs: list[Glock], want: int, flags: int) -> None:
        """One task for requests sent together; their grants are applied in order.  (A lock
        that has to wait delays the grants behind it; prefetched locks are of free blocks,
        which no other node uses, and creates use them in that order anyway.)"""
        self.counters["lock_requests"] += len(gs)
        try:
            answers = await self.req.lock_many([g.name for g in gs], want, flags)
        except Exception as e:  # noqa: BLE001 - the waiters time out; the log says why
            for g in gs:
                self._not_granted(g, e)
            return
        for g, answer in zip(gs, answers, strict=True):
            try:
                got = await answer.state()
            except Exception as e:  # noqa: BLE001
                self._not_granted(g, e)
                continue
            self._granted(g, got)

    def _not_granted(self, g: Glock, e: Exception) -> None:
        log.warning("lock request %s failed: %s", name_str(g.name), e)
        g.requesting = UN
        g.notify()

    def _granted(self, g: Glock, got: int) -> None:
        old, g.state, g.requesting = g.state, got, UN
        g.granted_at = time.monotonic()
        self.hooks.after_grant(g.name, old, got)
        g.notify()
        if g.early_callback is not None:
            need, g.early_callback = g.early_callback, None
            self.callback(g.name, need)

    async def try_acquire(self, name: Name, state: int, flags: int) -> None:
        """Acquire with TRY semantics: TryFailed at once if memexpd cannot grant it now."""
        g = self._get(name)
        if covers(g.state, state):
            g.users += 1
            return
        self.counters["lock_requests"] += 1
        got = await self.req.lock(name, state, flags)
        old, g.state = g.state, got
        g.granted_at = time.monotonic()
        self.hooks.after_grant(name, old, got)
        g.users += 1
        g.notify()

    def release(self, name: Name) -> None:
        g = self.locks[name]
        g.users -= 1
        if g.users == 0 and g.demote_to is not None:
            g.notify()

    def callback(self, name: Name, need: int) -> None:
        """memexpd says another node wants `name` in state `need`."""
        self.counters["callbacks"] += 1
        g = self.locks.get(name)
        if name[0] == IOPEN:
            # Only a node that wants to free the inode asks (TRY_1CB, in EX): tell the
            # filesystem, which frees it itself once unused here.  While a file is open here
            # its IOPEN stays (users: one per open handle): the asker's TRY has failed already,
            # and a demote pending until the last close would hold up every other open.
            self.hooks.iopen_wanted(name[1])
            if g is not None and g.users > 0:
                return
        if g is None:
            return
        if g.requesting != UN:
            # Callbacks come on the callback connection, grants on the lock connection: a
            # callback about a grant still on its way must wait for that grant, not be lost.
            g.early_callback = need if g.early_callback in (None, SH) else g.early_callback
            if g.state == UN:
                return
        if g.state == UN:
            return
        target = SH if need == SH and g.state == EX else UN
        if need == SH and g.state == SH:
            return  # compatible already
        if g.demote_to is None:
            g.demote_to = target
            self.nursery.start_soon(self._demote, g)
        elif target == UN:
            g.demote_to = UN

    async def _demote(self, g: Glock) -> None:
        await trio.sleep(max(0.0, g.granted_at + MIN_HOLD - time.monotonic()))
        while True:
            while g.users > 0:
                await g.changed.wait()
            if g.demote_to != UN:
                break
            try:  # what must be taken before the lock goes (an open file's IOPEN lock)
                await self.hooks.before_unlock(g.name)
            except Exception as e:  # noqa: BLE001 - the other node must not wait forever
                log.warning("before giving up %s: %s", name_str(g.name), e)
            if g.users == 0:  # (an operation may have taken it meanwhile: wait for it again)
                break
        target = g.demote_to
        assert target is not None
        if g.state != target:
            self.hooks.before_demote(g.name, g.state, target)
            g.state = target
            self.counters["demotes"] += 1
            try:
                await self.req.demote(g.name, target)
            except Exception as e:  # noqa: BLE001 - memexpd gone: the reclaim after reconnect says
                log.warning("demote of %s not delivered: %s", name_str(g.name), e)
        g.demote_to = None
        g.notify()

    def lost(self, name: Name) -> None:
        """memexpd refused our reclaim after a restart: what the lock covered is not ours."""
        g = self.locks.get(name)
        if g is not None and g.state != UN:
            self.hooks.before_demote(name, g.state, UN)
            g.state = UN
            g.notify()

    def drop(self, name: Name) -> None:
        """Give a lock back to memexpd as soon as no local operation uses it."""
        g = self.locks.get(name)
        if g is not None and g.state != UN and g.demote_to is None:
            g.demote_to = UN
            self.nursery.start_soon(self._demote, g)

    async def let_go(self, name: Name) -> None:
        """Give `name` back to memexpd and wait until it is gone (no local user may hold it)."""
        g = self.locks.get(name)
        while g is not None and g.state != UN:
            if g.demote_to is None:
                self.drop(name)
            await g.changed.wait()

    def held(self) -> list[tuple[Name, int]]:
        """What to reclaim from a restarted memexpd."""
        return [(g.name, g.state) for g in self.locks.values() if g.state != UN]

    def dump(self) -> list[dict[str, Any]]:
        return [{"name": name_str(g.name), "state": g.state, "users": g.users, "demote_to": g.demote_to,
                 "requesting": g.requesting, "early_callback": g.early_callback}
                for g in self.locks.values() if g.state != UN or g.users or g.requesting]


class NoLocks:
    """lock_nolock: every lock is granted at once and nothing is ever called back."""

    counters: dict[str, int] = {}

    async def acquire(self, name: Name, state: int, flags: int = 0) -> None:
        return None

    def release(self, name: Name) -> None:
        return None


AnyLocks = Glocks | NoLocks
Callback = Callable[[Name, int], None]
