"""The glock cache in isolation, against a scripted lock server (the real memexpd is used by
tests/ogfs/test_cluster.py).  What it must do: cache grants, never demote a lock in use,
flush before an exclusive lock leaves, and honour the minimum hold time."""

from __future__ import annotations

from collections.abc import Callable

import trio

from ogfs.glock import MIN_HOLD, Glocks
from ogfs.memexp.protocol import EX, INODE, IOPEN, SH, UN

NAME = (INODE, 4242)
QUIET = 5 * MIN_HOLD  # long enough that a demote would have happened, were it allowed
STEP = 0.001


class Server:
    def __init__(self) -> None:
        self.requests: list[tuple[tuple[int, int], int]] = []
        self.demotes: list[tuple[tuple[int, int], int]] = []
        self.batches: list[list[tuple[int, int]]] = []

    async def lock(self, name: tuple[int, int], state: int, flags: int) -> int:
        self.requests.append((name, state))
        await trio.sleep(0)
        return state

    async def lock_many(self, names: list[tuple[int, int]], state: int, flags: int) -> list[Granted]:
        self.batches.append(list(names))
        return [Granted(await self.lock(name, state, flags)) for name in names]

    async def demote(self, name: tuple[int, int], state: int) -> None:
        self.demotes.append((name, state))


class Granted:
    def __init__(self, state: int) -> None:
        self.granted = state

    async def state(self) -> int:
        return self.granted


class Hooks:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.unlocks: list[tuple[int, int]] = []  # before_unlock calls
        self.gate: trio.Event | None = None  # before_unlock waits for it

    def after_grant(self, name: tuple[int, int], old: int, new: int) -> None:
        self.events.append(f"grant {old}->{new}")

    def before_demote(self, name: tuple[int, int], old: int, new: int) -> None:
        self.events.append(f"demote {old}->{new}")

    def iopen_wanted(self, addr: int) -> None:
        self.events.append(f"iopen wanted {addr}")

    async def before_unlock(self, name: tuple[int, int]) -> None:
        self.unlocks.append(name)
        if self.gate is not None:
            await self.gate.wait()


async def until(cond: Callable[[], bool]) -> None:
    with trio.fail_after(2):
        while not cond():
            await trio.sleep(STEP)


def run(test):  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            server, hooks = Server(), Hooks()
            await test(Glocks(server, hooks, nursery, op_timeout=5), server, hooks)
            nursery.cancel_scope.cancel()
    trio.run(main)


def test_a_grant_is_cached() -> None:
    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        await g.acquire(NAME, SH)
        g.release(NAME)
        await g.acquire(NAME, SH)
        g.release(NAME)
        assert server.requests == [(NAME, SH)]
        await g.acquire(NAME, EX)  # no upgrade: SH goes back, then EX is asked for
        g.release(NAME)
        assert server.requests == [(NAME, SH), (NAME, EX)]
        assert server.demotes == [(NAME, UN)]
        assert hooks.events == [f"grant {UN}->{SH}", f"demote {SH}->{UN}", f"grant {UN}->{EX}"]
    run(t)


def test_a_callback_waits_until_the_lock_is_unused() -> None:
    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        await g.acquire(NAME, EX)
        g.callback(NAME, EX)
        await trio.sleep(QUIET)
        assert server.demotes == []  # still in use
        g.release(NAME)
        with trio.fail_after(2):
            while not server.demotes:
                await trio.sleep(STEP)
        assert server.demotes == [(NAME, UN)]
        assert hooks.events[-1] == f"demote {EX}->{UN}"
        await g.acquire(NAME, SH)  # asks again: the cache was given away
        g.release(NAME)
        assert server.requests[-1] == (NAME, SH)
    run(t)


def test_a_shared_callback_keeps_a_shared_copy() -> None:
    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        await g.acquire(NAME, EX)
        g.release(NAME)
        g.callback(NAME, SH)
        with trio.fail_after(2):
            while not server.demotes:
                await trio.sleep(STEP)
        assert server.demotes == [(NAME, SH)]
        n = len(server.requests)
        await g.acquire(NAME, SH)  # still cached in SH
        g.release(NAME)
        assert len(server.requests) == n
    run(t)


def test_new_users_wait_while_a_demote_is_pending() -> None:
    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        await g.acquire(NAME, EX)
        g.callback(NAME, EX)
        got: list[str] = []

        async def late_user() -> None:
            await g.acquire(NAME, EX)
            got.append("granted")
            g.release(NAME)

        async with trio.open_nursery() as n:
            n.start_soon(late_user)
            await trio.sleep(QUIET)
            assert got == []  # it does not barge in ahead of the other node
            g.release(NAME)
        assert got == ["granted"] and server.demotes == [(NAME, UN)]
        assert server.requests.count((NAME, EX)) == 2
    run(t)


def test_locks_asked_for_ahead_go_in_one_batch_and_are_found_cached() -> None:
    ahead = [(INODE, 5000 + k) for k in range(4)]

    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        await g.acquire(NAME, EX)  # held: a prefetch leaves it alone
        g.prefetch([NAME] + ahead, EX)
        for name in ahead:
            await g.acquire(name, EX)  # granted, or waits for the grant on its way
            g.release(name)
        assert server.batches[-1] == ahead and len(server.requests) == 5
        assert g.counters["prefetches"] == 4
        g.prefetch(ahead, EX)  # held already: nothing asked again
        assert len(server.requests) == 5
        g.release(NAME)
    run(t)


def test_a_lock_asked_for_ahead_and_unused_goes_at_a_callback() -> None:
    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        g.prefetch([NAME], EX)
        g.callback(NAME, EX)  # another node wants it before we used it: may overtake the grant
        with trio.fail_after(2):
            while not server.demotes:
                await trio.sleep(STEP)
        assert server.demotes == [(NAME, UN)]
        assert hooks.events == [f"grant {UN}->{EX}", f"demote {EX}->{UN}"]
    run(t)


def test_an_open_files_iopen_lock_stays_when_another_node_wants_to_free_it() -> None:
    """Held open (users > 0), IOPEN ignores the callback but tells the filesystem, and another
    open still finds it cached; unused, it goes like any lock."""
    iopen = (IOPEN, 4242)

    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        await g.acquire(iopen, SH)  # an open handle
        g.callback(iopen, EX)
        assert hooks.events[-1] == "iopen wanted 4242"
        await trio.sleep(QUIET)
        assert server.demotes == []
        with trio.fail_after(1):
            await g.acquire(iopen, SH)  # a second open is not held up by a pending demote
        g.release(iopen)
        g.release(iopen)
        await trio.sleep(QUIET)
        assert server.demotes == []  # closed: cached until someone asks again
        g.callback(iopen, EX)
        with trio.fail_after(2):
            while not server.demotes:
                await trio.sleep(STEP)
        assert server.demotes == [(iopen, UN)]
        assert server.requests == [(iopen, SH)]
    run(t)


def test_let_go_returns_once_the_lock_is_given_back() -> None:
    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        await g.acquire(NAME, SH)
        g.release(NAME)
        with trio.fail_after(2):
            await g.let_go(NAME)
        assert server.demotes == [(NAME, UN)]
        with trio.fail_after(2):
            await g.let_go(NAME)  # not held: nothing to do
        assert server.demotes == [(NAME, UN)]
    run(t)


def test_what_must_come_before_an_unlock_is_taken_first() -> None:
    """before_unlock (an open file's IOPEN lock) runs, and ends, before the DEMOTE to UN
    leaves; a demote to SH keeps the lock and needs nothing first."""
    async def t(g: Glocks, server: Server, hooks: Hooks) -> None:
        hooks.gate = trio.Event()
        await g.acquire(NAME, EX)
        g.release(NAME)
        g.callback(NAME, SH)
        await until(lambda: len(server.demotes) == 1)
        assert server.demotes == [(NAME, SH)] and hooks.unlocks == []
        g.callback(NAME, EX)
        await until(lambda: bool(hooks.unlocks))
        await trio.sleep(QUIET)
        assert server.demotes == [(NAME, SH)]  # waits for before_unlock
        hooks.gate.set()
        await until(lambda: len(server.demotes) == 2)
        assert server.demotes == [(NAME, SH), (NAME, UN)]
        assert hooks.unlocks == [NAME]
    run(t)
