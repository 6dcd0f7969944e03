"""memexpd's network side: the lock connections, the callback links, the timer and STOMITH.

All the decisions are ogfs/memexp/locktable.py's; this module turns frames into LockTable calls
and LockTable actions into frames, in the order they come (docs/memexp-protocol.md):

* a lock connection per node (and per tool: STATUS and STOMITH_ACK need no HELLO).  Every
  frame is version-checked; a bad frame, a message before HELLO, or a call the table refuses is
  answered ERROR and the connection is closed (a refused STOMITH_ACK only gets ERROR).  Each
  connection has its own outgoing queue, so a slow node never holds up the others.
* a callback link per logged-in node: memexpd connects to <node IP>:<cbport> and sends CB and
  RECOVER there.  If it cannot connect, or the connection breaks, it retries with backoff; once
  connected again it re-sends every callback and recovery the node still owes (so CB and RECOVER
  may come twice: the node treats a repeat as a no-op).
* a timer calls LockTable.tick every timeout/10 s: expiry and the end of the grace period.
* STOMITH: manual logs what the operator must do and waits for STOMITH_ACK; none acknowledges
  at once with a loud warning; labctl asks the lab's power switch to power the node off
  (ogfs/powerswitch.py) and counts it done only when the switch confirms, retrying until it
  does (an operator's STOMITH_ACK also ends the wait).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from .. import powerswitch, slotwatch
from ..config import ClusterConfig, NodeEntry
from .aio import Channel
from .locktable import (
    LIVE,
    STOMITH_WAIT,
    Action,
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
)
from .protocol import STATE_NAMES, ProtocolError

log = logging.getLogger("memexpd")

BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0  # seconds between callback connection attempts


class BadMessage(Exception):
    """A frame that parses but is not a valid message: ERROR, then close."""


class BindError(Exception):
    pass


def _get(msg: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in msg:
        if default is ...:
            raise BadMessage(f"{msg.get('op')}: missing field {key!r}")
        return default
    value = msg[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadMessage(f"{msg.get('op')}: field {key!r} has the wrong type ({value!r})")
    return value


def _name(msg: dict[str, Any]) -> tuple[int, int]:
    name = _get(msg, "name", list)
    if len(name) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in name):
        raise BadMessage(f"{msg.get('op')}: a lock name is [type, number], not {name!r}")
    return name[0], name[1]


def _state(msg: dict[str, Any]) -> int:
    state = _get(msg, "state", int)
    if state not in STATE_NAMES:
        raise BadMessage(f"{msg.get('op')}: no lock state {state}")
    return int(state)


@dataclass(eq=False)
class Conn:
    """One accepted connection and its outgoing queue (None in the queue: flush and close)."""
    stream: trio.SocketStream
    peer: str
    ch: Channel = field(init=False)
    session: Session | None = None
    closing: bool = False

    def __post_init__(self) -> None:
        self.ch = Channel(self.stream)
        self.out_send, self.out_recv = trio.open_memory_channel[Any](math.inf)

    def who(self) -> str:
        return self.session.label() if self.session else self.peer

    def send(self, op: str, **fields: Any) -> None:
        if not self.closing:
            self.out_send.send_nowait((op, fields))

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.out_send.send_nowait(None)


@dataclass(eq=False)
class Session:
    """One logged-in incarnation of a node: its lock connection (None while it reconnects),
    its callback link, and answers that found no connection (a MOUNTED)."""
    cid: int
    ip: str
    incarnation: Any
    cbport: int
    conn: Conn | None = None
    outbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    link_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    link_connected: bool = False

    def __post_init__(self) -> None:
        self.cb_send, self.cb_recv = trio.open_memory_channel[Any](math.inf)

    def label(self) -> str:
        return f"node {self.ip} (cid {self.cid})"


async def open_listeners(ip: str, port: int, wait: float = 10.0) -> list[trio.SocketListener]:
    """Listen on ip:port; while the address is not local yet (heartbeat adds the cluster IP just
    before it starts memexpd) or the port is still taken, retry for `wait` seconds."""
    deadline = trio.current_time() + wait
    while True:
        try:
            return await trio.open_tcp_listeners(port, host=ip)
        except OSError as e:
            if e.errno not in (errno.EADDRNOTAVAIL, errno.EADDRINUSE) or trio.current_time() >= deadline:
                why = {errno.EADDRNOTAVAIL: f"{ip} is not an address of this host",
                       errno.EADDRINUSE: f"port {port} is in use"}.get(e.errno or 0, e.strerror or str(e))
                raise BindError(f"cannot listen on {ip}:{port}: {why} (waited {wait:g} s)") from None
            await trio.sleep(0.25)


class MemexpServer:
    """memexpd.  `serve(listeners)` runs it until cancelled.  The node side may rely on:
    WELCOME{epoch, timeout, grace, refused} after a HELLO (epoch is a random int per start,
    grace the seconds of grace period left, refused the reclaims not given back as
    [type, number, state]); answers on one connection in the order memexpd decides them; CB and
    RECOVER on the callback connection, possibly repeated after a reconnect."""

    def __init__(self, cfg: ClusterConfig, grace: float | None = None,
                 clock: Callable[[], float] = trio.current_time, lockdev: str | None = None,
                 cidev: str | None = None) -> None:
        self.cfg = cfg
        self.cidev = cidev  # where the disk-heartbeat slots are (None: wait the whole grace period)
        self.grace = float(cfg.timeout if grace is None else grace)
        self.clock = clock
        self.lockdev = lockdev or cfg.lockdev
        self.epoch = int.from_bytes(os.urandom(4), "big")
        self.started = time.time()
        self.table: LockTable | None = None
        self.sessions: dict[int, Session] = {}
        self.nursery: trio.Nursery | None = None
        self._reminded: dict[int, float] = {}

    # -- running ------------------------------------------------------------------------------------

    async def serve(self, listeners: list[trio.SocketListener],
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        now = self.clock()
        self.table = LockTable(self.cfg.nodes, self.cfg.timeout, now=now, grace_until=now + self.grace)
        nodes = ", ".join(f"{n.ip} (cid {n.cid}, STOMITH {n.method})" for n in self.cfg.nodes)
        log.info("memexpd started: epoch %d, listening on %s, timeout %d s, grace period %g s; nodes: %s",
                 self.epoch, self.lockdev, self.cfg.timeout, self.grace, nodes)
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(self._ticker)
            if self.cidev is not None:
                nursery.start_soon(self._watch_slots, self.cidev)
            await nursery.start(trio.serve_listeners, self._handle, listeners)
            task_status.started()

    async def _ticker(self) -> None:
        period = max(self.cfg.timeout / 10, 0.05)
        while True:
            await trio.sleep(period)
            self._run(self.table_().tick(self.clock()))
            self._remind()

    async def _watch_slots(self, cidev: str) -> None:
        """End the grace period early: only nodes still writing their disk heartbeat can have
        locks to reclaim.  (At a failover memexpd moves with the dead node's mount: nobody.)"""
        cids = [n.cid for n in self.cfg.nodes]
        try:
            alive = await trio.to_thread.run_sync(slotwatch.check_slots, cidev, -1, cids, log)
        except OSError as e:
            log.warning("cannot read the disk heartbeats on %s (%s): full grace period", cidev, e)
            return
        self._run(self.table_().set_reclaimers([s.cid for s in alive], self.clock()))

    def table_(self) -> LockTable:
        assert self.table is not None
        return self.table

    def _remind(self) -> None:
        """While a manual STOMITH waits, say so again now and then."""
        every = max(60.0, 2.0 * self.cfg.timeout)
        now = self.clock()
        for node in self.table_().nodes.values():
            if node.journal != STOMITH_WAIT:
                self._reminded.pop(node.cid, None)
            elif now - self._reminded.setdefault(node.cid, now) >= every:
                self._reminded[node.cid] = now
                log.warning("still waiting for the STOMITH of node %s (cid %d): reset it, then run: "
                            "ogfs_tool stomith-ack %s", node.ip, node.cid, node.ip)

    # -- actions ------------------------------------------------------------------------------------

    def _run(self, acts: list[Action]) -> None:
        """Carry out the table's actions in order, then end the sessions the table ended."""
        for a in acts:
            if isinstance(a, Grant):
                self._to_node(a.cid, "GRANTED", id=a.id, name=list(a.name), state=a.state)
            elif isinstance(a, TryFailed):
                self._to_node(a.cid, "TRYFAILED", id=a.id, name=list(a.name), reason=a.reason)
            elif isinstance(a, Mounted):
                self._to_node(a.cid, "MOUNTED", keep=True, jid=a.jid, first=a.first, recover=list(a.recover))
            elif isinstance(a, Callback):
                self._to_link(a.cid, "CB", name=list(a.name), need=a.need)
            elif isinstance(a, Recover):
                self._to_link(a.cid, "RECOVER", jid=a.jid)
            elif isinstance(a, Stomith):
                self._stomith(a)
            elif isinstance(a, Log):
                log.log(logging.WARNING if a.level == "warning" else logging.INFO, "%s", a.text)
            elif isinstance(a, Dropped | ReclaimRefused):
                log.debug("%s", a)
        self._sync_sessions()

    def _to_node(self, cid: int, op: str, keep: bool = False, **fields: Any) -> None:
        s = self.sessions.get(cid)
        if s is None:
            return
        if s.conn is not None:
            s.conn.send(op, **fields)
        elif keep:
            s.outbox.append((op, fields))

    def _to_link(self, cid: int, op: str, **fields: Any) -> None:
        s = self.sessions.get(cid)
        if s is not None:
            s.cb_send.send_nowait((op, fields))

    def _stomith(self, a: Stomith) -> None:
        node = self.cfg.node_by_cid(a.cid)
        ip = node.ip if node else f"cid {a.cid}"
        method = self.cfg.method(a.method)
        kind = method.kind if method else "manual"
        ack = f"ogfs_tool stomith-ack {ip}"
        if kind == "none":
            log.warning("STOMITH none: node %s (cid %d) is NOT fenced (method '%s' is 'none': unsafe, for "
                        "drills only); recovering its journal as if it had been reset", ip, a.cid, a.method)
            self._run(self.table_().stomith_done(a.cid))
        elif kind == "labctl" and node is not None and self.nursery is not None:
            self.nursery.start_soon(self._power_off, node)
        else:
            log.warning("STOMITH manual: reset %s, then run: %s", ip, ack)

    async def _power_off(self, node: NodeEntry) -> None:
        """STOMITH labctl: the switch powers `node` off; only its OK lets recovery start."""
        delay = 1.0
        while self.table_().nodes[node.cid].journal == STOMITH_WAIT:
            try:
                switch = powerswitch.switch_of(self.cfg, node)
                assert switch is not None  # _stomith checked the method's kind
                addr, port, plug = switch
                log.warning("STOMITH labctl: powering %s (cid %d) off: power switch %s:%d, plug %s",
                            node.ip, node.cid, addr, port, plug)
                answer = await trio.to_thread.run_sync(powerswitch.power_off, addr, port, plug)
            except powerswitch.SwitchError as e:
                log.warning("STOMITH labctl of %s failed: %s; trying again in %g s (or reset it and "
                            "run: ogfs_tool stomith-ack %s)", node.ip, e, delay, node.ip)
                await trio.sleep(delay)
                delay = min(2 * delay, 30.0)
                continue
            if self.table_().nodes[node.cid].journal != STOMITH_WAIT:
                return  # acknowledged by hand meanwhile
            log.warning("STOMITH of node %s (cid %d) done: the power switch says %r",
                        node.ip, node.cid, answer)
            self._run(self.table_().stomith_done(node.cid))
            return

    def _sync_sessions(self) -> None:
        table = self.table_()
        for cid, s in list(self.sessions.items()):
            node = table.node(cid)
            if node is None or node.session != LIVE or node.incarnation != s.incarnation:
                self._end_session(s, f"{s.label()} is {node.state if node else 'unknown'}")

    def _end_session(self, s: Session, reason: str) -> None:
        if self.sessions.get(s.cid) is s:
            del self.sessions[s.cid]
        s.link_scope.cancel()
        s.cb_send.close()
        conn, s.conn = s.conn, None
        if conn is not None:
            conn.session = None
            node = self.table_().node(s.cid)
            if node is not None and node.session != "gone":
                conn.send("ERROR", reason=reason)
                conn.close()

    # -- connections --------------------------------------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            host, port = stream.socket.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            peer = "?"
        conn = Conn(stream, peer)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, conn, nursery.cancel_scope)
                await self._reader(conn)
                conn.close()
        finally:
            s = conn.session
            if s is not None and s.conn is conn:
                s.conn = None
                if self.sessions.get(s.cid) is s:
                    log.info("lock connection of %s closed", s.label())
                    self._run(self.table_().disconnect(s.cid))
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _writer(self, conn: Conn, scope: trio.CancelScope) -> None:
        try:
            async for item in conn.out_recv:
                if item is None:
                    break
                op, fields = item
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s <- %s %s", conn.who(), op, fields)
                await conn.ch.send(op, **fields)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            conn.closing = True
            scope.cancel()

    async def _reader(self, conn: Conn) -> None:
        while not conn.closing:
            try:
                msg = await conn.ch.recv()
            except ProtocolError as e:
                log.warning("%s: %s: answering ERROR and closing", conn.peer, e)
                conn.send("ERROR", reason=str(e))
                return
            except (ConnectionError, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s -> %s", conn.who(), {k: v for k, v in msg.items() if k != "v"})
            try:
                self._dispatch(conn, msg)
            except (BadMessage, Refused) as e:
                log.warning("%s: %s: answering ERROR and closing", conn.who(), e)
                conn.send("ERROR", reason=str(e))
                return

    def _dispatch(self, conn: Conn, msg: dict[str, Any]) -> None:
        op = msg["op"]
        table = self.table_()
        if op == "STATUS":
            conn.send("STATUS", **self.status())
            return
        if op == "STOMITH_ACK":
            self._stomith_ack(conn, msg)
            return
        if op == "HELLO":
            self._hello(conn, msg)
            return
        s = conn.session
        if s is None:
            raise BadMessage(f"{op} before HELLO")
        if self.sessions.get(s.cid) is not s or s.conn is not conn:
            raise Refused("this connection was replaced by a newer login of the same node")
        cid = s.cid
        acts = table.heartbeat(cid, self.clock())
        if op == "HB":
            _get(msg, "seq", int, 0)
        elif op == "LOCK":
            flags = _get(msg, "flags", int, 0)
            req_id = _get(msg, "id", (int, str))
            acts = table.request(cid, req_id, _name(msg), _state(msg), flags)
        elif op == "DEMOTE":
            acts = table.demote(cid, _name(msg), _state(msg))
        elif op == "MOUNT":
            acts = table.mount(cid)
        elif op == "OTHERS_MAY_MOUNT":
            acts = table.others_may_mount(cid)
        elif op == "RECOVERY_DONE":
            acts = table.recovery_done(cid, _get(msg, "jid", int), bool(_get(msg, "ok", (bool, int), True)))
        elif op == "UNMOUNT":
            acts = table.unmount(cid)
            self._run(acts)
            conn.send("BYE")
            return
        else:
            raise BadMessage(f"unknown op {op!r}")
        self._run(acts)

    def _hello(self, conn: Conn, msg: dict[str, Any]) -> None:
        cid = _get(msg, "cid", int)
        ip = _get(msg, "ip", str)
        cbport = _get(msg, "cbport", int)
        incarnation = _get(msg, "incarnation", (int, str))
        uuid = _get(msg, "uuid", (str, type(None)), None)
        mounted = bool(_get(msg, "mounted", (bool, int), False))
        reclaim = []
        for item in _get(msg, "reclaim", (list, type(None)), None) or []:
            if (not isinstance(item, list) or len(item) != 3
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in item)
                    or item[2] not in STATE_NAMES):
                raise BadMessage(f"HELLO: a reclaim entry is [type, number, state], not {item!r}")
            reclaim.append((item[0], item[1], item[2]))
        if conn.session is not None:
            raise BadMessage("HELLO twice on one connection")
        table = self.table_()
        now = self.clock()
        acts = table.hello(cid, ip, incarnation, now, reclaim=reclaim, mounted=mounted, uuid=uuid)
        old = self.sessions.get(cid)
        if old is not None and old.incarnation == incarnation:
            s = old
            if s.conn is not None and s.conn is not conn:
                s.conn.session = None
                s.conn.close()
            if s.cbport != cbport:
                s.cbport = cbport
                self._start_link(s)
            log.info("%s reconnected", s.label())
        else:
            if old is not None:
                self._end_session(old, f"{old.label()} logged in again as a new incarnation")
            s = self.sessions[cid] = Session(cid, ip, incarnation, cbport)
            self._start_link(s)
        s.conn, conn.session = conn, s
        grace = max(0.0, table.grace_until - now) if table.grace else 0.0
        refused = [[a.name[0], a.name[1], a.state] for a in acts if isinstance(a, ReclaimRefused)]
        conn.send("WELCOME", epoch=self.epoch, timeout=self.cfg.timeout, grace=round(grace, 3),
                  refused=refused)
        for op, fields in s.outbox:
            conn.send(op, **fields)
        s.outbox.clear()
        self._run(acts)

    def _stomith_ack(self, conn: Conn, msg: dict[str, Any]) -> None:
        who = _get(msg, "node", (str, int))
        node = self.cfg.node_by_ip(who) if isinstance(who, str) else None
        if node is None and (isinstance(who, int) or str(who).isdigit()):
            node = self.cfg.node_by_cid(int(who))
        if node is None:
            conn.send("ERROR", reason=f"{who} is not a node of the cidev")
            return
        try:
            acts = self.table_().stomith_done(node.cid)
        except Refused as e:
            log.warning("STOMITH_ACK for %s from %s refused: %s", node.ip, conn.peer, e)
            conn.send("ERROR", reason=str(e))
            return
        log.warning("STOMITH of node %s (cid %d) acknowledged by the operator (from %s)",
                    node.ip, node.cid, conn.peer)
        conn.send("ACKED", node=node.ip, cid=node.cid)
        self._run(acts)

    def status(self) -> dict[str, Any]:
        now = self.clock()
        st = self.table_().status(now)
        for n in st["nodes"]:
            s = self.sessions.get(n["cid"])
            n["callback"] = s.link_connected if s is not None else False
        return {"epoch": self.epoch, "lockdev": self.lockdev, "started": self.started,
                "uptime": round(time.time() - self.started, 1), **st}

    # -- callback links -----------------------------------------------------------------------------

    def _start_link(self, s: Session) -> None:
        s.link_scope.cancel()
        s.link_scope = trio.CancelScope()
        s.link_connected = False
        assert self.nursery is not None
        self.nursery.start_soon(self._link, s, s.link_scope)

    async def _link(self, s: Session, scope: trio.CancelScope) -> None:
        delay, warned, ever = BACKOFF_MIN, False, False
        failing_since: float | None = None
        with scope:
            while True:
                try:
                    with trio.fail_after(max(1.0, self.cfg.timeout / 2)):
                        stream = await trio.open_tcp_stream(s.ip, s.cbport)
                except (OSError, trio.TooSlowError) as e:
                    now = trio.current_time()
                    failing_since = now if failing_since is None else failing_since
                    if not warned and now - failing_since >= 1.0:  # not the race right after HELLO
                        log.warning("cannot connect to the callback port %s:%d of %s (%s); retrying",
                                    s.ip, s.cbport, s.label(), getattr(e, "strerror", None) or e or "timeout")
                        warned = True
                    await trio.sleep(delay)
                    delay = min(delay * 2, BACKOFF_MAX)
                    continue
                delay, warned, failing_since = BACKOFF_MIN, False, None
                try:
                    await self._link_connected(s, stream, resend=ever)
                except (OSError, ConnectionError, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                finally:
                    s.link_connected = False
                    with trio.CancelScope(shield=True):
                        await stream.aclose()
                ever = True
                log.warning("callback connection to %s lost; reconnecting", s.label())

    async def _link_connected(self, s: Session, stream: trio.SocketStream, resend: bool) -> None:
        ch = Channel(stream)
        # What was queued before the link was up is re-derived from the table: nothing is lost
        # and nothing stale (a callback for a hold already given up) is sent.
        while True:
            try:
                s.cb_recv.receive_nowait()
            except trio.WouldBlock:
                break
        table = self.table_()
        owed: list[Callback | Recover] = [*table.callbacks_for(s.cid), *table.recoveries_for(s.cid)]
        s.link_connected = True
        log.info("callback connection to %s on port %d%s", s.label(), s.cbport,
                 f" (again): re-sending {len(owed)} message(s)" if resend else "")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_eof, stream, nursery.cancel_scope)
            for a in owed:
                if isinstance(a, Callback):
                    await ch.send("CB", name=list(a.name), need=a.need)
                else:
                    await ch.send("RECOVER", jid=a.jid)
            async for op, fields in s.cb_recv:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s <= %s %s (callback port)", s.label(), op, fields)
                await ch.send(op, **fields)

    @staticmethod
    async def _watch_eof(stream: trio.SocketStream, scope: trio.CancelScope) -> None:
        """The node sends nothing on the callback connection: reading returns only at its end."""
        try:
            while await stream.receive_some(4096):
                pass
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()
