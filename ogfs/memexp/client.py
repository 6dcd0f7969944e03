"""The node's side of memexp: the lock connection to memexpd and the callback port.

One LockClient per mount.  It logs in (HELLO), mounts (MOUNT -> jid, first, recover), sends
heartbeats, turns LOCK requests into awaitable answers, and listens on <node IP>:cbport for CB
and RECOVER.  When memexpd goes away it reconnects with backoff and, once a (new) memexpd
answers, says HELLO again with every lock it holds (the reclaim of docs/memexp-protocol.md),
then sends again every request still unanswered.  Operations waiting meanwhile are bounded by
the glock layer's timeout.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..glock import TryFailed
from .aio import Channel
from .protocol import Name, ProtocolError, name_str

log = logging.getLogger("ogfs")
# What a lost or refused connection raises, through trio's streams or our framing.
NET_ERRORS = (OSError, ConnectionError, ProtocolError, trio.BrokenResourceError,
              trio.ClosedResourceError)


class MemexpError(Exception):
    pass


class Answer:
    """memexpd's answer to one LOCK request, once it comes."""

    def __init__(self, name: Name) -> None:
        self.name = name
        self.event = trio.Event()
        self.box: list[dict[str, Any]] = []  # the GRANTED or TRYFAILED message

    async def state(self) -> int:
        """The state granted; TryFailed if memexpd (or a withdrawal) refused it."""
        if not self.event.is_set():  # (Event.wait() yields to the scheduler even when set)
            await self.event.wait()
        reply = self.box[0]
        if reply["op"] == "TRYFAILED":
            raise TryFailed(f"{name_str(self.name)}: {reply.get('reason', 'busy')}")
        return int(reply["state"])


class LockClient:
    def __init__(self, lockdev: tuple[str, int], me_ip: str, cid: int, cbport: int, uuid: str,
                 timeout: float) -> None:
        self.lockdev, self.ip, self.cid, self.cbport, self.uuid = lockdev, me_ip, cid, cbport, uuid
        self.timeout = timeout  # the cluster's node timeout: heartbeat every timeout/5
        self.incarnation = int.from_bytes(os.urandom(6), "big")
        self.chan: Channel | None = None
        self.epoch: int | None = None
        self.mounted = False
        self.withdrawn: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[dict[str, Any], trio.Event, list[Any]]] = {}
        self._mount_reply: list[dict[str, Any]] = []
        self._mount_event = trio.Event()
        self._connected = trio.Event()
        self.on_callback: Callable[[Name, int], None] = lambda name, need: None
        self.on_recover: Callable[[int], Awaitable[None]] | None = None
        self.on_lost: Callable[[Name], None] = lambda name: None
        self.held: Callable[[], list[tuple[Name, int]]] = list
        self.counters = {"reconnects": 0, "heartbeats": 0}

    # -- connecting ---------------------------------------------------------------------------

    async def _open(self) -> Channel:
        stream = await trio.open_tcp_stream(*self.lockdev)
        chan = Channel(stream)
        await chan.send("HELLO", ip=self.ip, cid=self.cid, cbport=self.cbport, uuid=self.uuid,
                        incarnation=self.incarnation, mounted=self.mounted,
                        reclaim=[[n[0], n[1], s] for n, s in self.held()])
        msg = await chan.recv()
        if msg["op"] != "WELCOME":
            await chan.aclose()
            raise MemexpError(f"memexpd refused the login: {msg.get('reason', msg)}")
        self.epoch = msg.get("epoch")
        for name in msg.get("refused", []):
            log.error("memexpd refused our reclaim of %s: another node holds it", name)
            self.on_lost(tuple(name[:2]))  # type: ignore[arg-type]
        return chan

    async def connect(self, deadline: float) -> None:
        """First login, retried until `deadline` (trio clock): memexpd may still be starting."""
        last: Exception | None = None
        while trio.current_time() < deadline:
            try:
                self.chan = await self._open()
                self._connected.set()
                return
            except (*NET_ERRORS, MemexpError) as e:
                last = e
                await trio.sleep(0.2)
        host, port = self.lockdev
        reason = getattr(last, "strerror", None) or str(last)
        raise MemexpError(f"cannot reach the lock server memexpd at {host}:{port}: {reason} "
                          f"(is the memexpd resource running?)")

    async def run(self, nursery: trio.Nursery) -> None:
        """Start the background tasks: receiver (with reconnects), heartbeats, callback port."""
        await nursery.start(self._callback_server)
        nursery.start_soon(self._receiver)
        nursery.start_soon(self._heartbeats)

    async def _receiver(self) -> None:
        while True:
            chan = self.chan
            assert chan is not None
            try:
                while True:
                    self._dispatch(await chan.recv())
            except NET_ERRORS as e:
                log.warning("lost the lock server memexpd at %s:%d (%s); reconnecting",
                            *self.lockdev, e)
            self._connected = trio.Event()
            await self._reconnect()

    async def _reconnect(self) -> None:
        delay = 0.1
        while True:
            try:
                self.chan = await self._open()
                break
            except NET_ERRORS:
                await trio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except MemexpError as e:
                # memexpd answers but will not have us (we were expired and STOMITHed meanwhile):
                # our locks are gone, so is any right to the disk.  Withdraw, as GFS does.
                log.error("%s; withdrawing: operations fail with EIO until a remount", e)
                self.withdrawn = str(e)
                for _msg, event, box in self._pending.values():
                    box.append({"op": "TRYFAILED", "reason": "withdrawn"})
                    event.set()
                self._pending.clear()
                await trio.sleep_forever()
        self.counters["reconnects"] += 1
        log.info("lock server back (epoch %s): reclaimed %d lock(s)", self.epoch, len(self.held()))
        self._connected.set()
        for msg, _event, _box in list(self._pending.values()):
            await self._send_raw(msg)

    async def _send_raw(self, msg: dict[str, Any]) -> None:
        fields = {k: v for k, v in msg.items() if k not in ("op", "v")}
        assert self.chan is not None
        await self.chan.send(msg["op"], **fields)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        if op in ("GRANTED", "TRYFAILED"):
            entry = self._pending.pop(msg["id"], None)
            if entry is not None:
                entry[2].append(msg)
                entry[1].set()
        elif op == "MOUNTED":
            self._mount_reply.append(msg)
            self._mount_event.set()
        elif op == "ERROR":
            log.error("memexpd: %s", msg.get("reason"))
        elif op == "BYE":
            pass

    async def _heartbeats(self) -> None:
        seq = 0
        while True:
            await trio.sleep(max(self.timeout / 5, 0.05))
            await self._connected.wait()
            seq += 1
            try:
                assert self.chan is not None
                await self.chan.send("HB", seq=seq)
                self.counters["heartbeats"] += 1
            except NET_ERRORS:
                pass  # the receiver notices and reconnects

    async def _callback_server(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """memexpd connects to <node IP>:cbport for CB and RECOVER."""
        listeners = await trio.open_tcp_listeners(self.cbport, host=self.ip)
        for lst in listeners:
            lst.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        task_status.started()
        await trio.serve_listeners(self._callbacks, listeners)

    async def _callbacks(self, stream: trio.abc.Stream) -> None:
        chan = Channel(stream)
        try:
            while True:
                msg = await chan.recv()
                if msg["op"] == "CB":
                    self.on_callback(tuple(msg["name"]), msg["need"])  # type: ignore[arg-type]
                elif msg["op"] == "RECOVER" and self.on_recover is not None:
                    log.info("memexpd asks this node to recover journal %d", msg["jid"])
                    await self.on_recover(msg["jid"])
        except NET_ERRORS:
            return

    # -- requests -------------------------------------------------------------------------------

    async def _until_connected(self) -> None:
        if not self._connected.is_set():  # (Event.wait() yields to the scheduler even when set)
            await self._connected.wait()

    async def lock_many(self, names: list[Name], state: int, flags: int) -> list[Answer]:
        """LOCK requests for all of `names`, sent in one write; each Answer brings its grant.
        An unanswered request is sent again after a reconnect (_reconnect)."""
        if self.withdrawn:
            raise MemexpError(f"withdrawn: {self.withdrawn}")
        msgs, answers = [], []
        for name in names:
            msg: dict[str, Any] = {"op": "LOCK", "id": next(self._ids), "name": list(name),
                                   "state": state, "flags": flags}
            answer = Answer(name)
            self._pending[msg["id"]] = (msg, answer.event, answer.box)
            msgs.append(msg)
            answers.append(answer)
        await self._until_connected()
        try:
            assert self.chan is not None
            await self.chan.send_many(msgs)
        except NET_ERRORS:
            pass  # resent after the reconnect
        return answers

    async def lock(self, name: Name, state: int, flags: int) -> int:
        [answer] = await self.lock_many([name], state, flags)
        return await answer.state()

    async def demote(self, name: Name, state: int) -> None:
        await self._until_connected()
        assert self.chan is not None
        await self.chan.send("DEMOTE", name=list(name), state=state)

    async def mount(self) -> dict[str, Any]:
        assert self.chan is not None
        await self.chan.send("MOUNT")
        await self._mount_event.wait()
        self.mounted = True
        return self._mount_reply[-1]

    async def simple(self, op: str, **fields: Any) -> None:
        await self._until_connected()
        assert self.chan is not None
        await self.chan.send(op, **fields)

    async def unmount(self) -> None:
        if self.chan is None:
            return
        with trio.move_on_after(5):
            await self.chan.send("UNMOUNT")
        self.mounted = False
