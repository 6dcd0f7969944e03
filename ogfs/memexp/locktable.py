"""memexpd's lock table: the pure state machine behind docs/memexp-protocol.md.

No I/O and no clock.  The server passes `now` (seconds on any monotonic clock) where time
matters and carries out, in order, the *actions* every method returns: answers to a node's lock
connection (Grant, TryFailed, Mounted), messages to its callback port (Callback, Recover), a
STOMITH to run (Stomith) and operator log lines (Log).  A call the protocol does not allow
(a request from a node that is not logged in, a HELLO from an expired incarnation, ...) raises
Refused: the server answers ERROR.

Nodes are known by CID (= jid); each has a *session* (live, expired, gone, or unknown: not heard
from since memexpd started) and, after it expired while it could have written its journal, a
*journal* recovery state: stomith_wait -> recovering (by a live mounted node) or
recovery_pending (no node mounted: handed to the next mounter) -> recovered.  The state shown to
operators is "live" for a live session, else the journal state, else the session.

Invariants (tests/unit/test_locktable.py checks them after every step of random interleavings):

I1 exclusion   Two different nodes never hold one lock in incompatible states
               (protocol.compatible: only SH-SH and DF-DF).  A request from a node that already
               holds the lock replaces its own hold (upgrade, downgrade).
I2 frozen      When a node expires its SH holds are dropped and its EX/DF holds are *frozen*:
               they block every conflicting request that lacks NOEXP until its journal is
               recovered (recovery_done ok).  A frozen hold counts as a holder for I1 against
               every hold granted without NOEXP.
I3 answers     Every LOCK gets exactly one answer: Grant or TryFailed, or it is Dropped (the
               node expired, restarted, unmounted or lost its lock connection: the node re-sends
               what it still wants after its next HELLO).  A waiting request is granted as soon
               as nothing blocks it; what can block it: a holder in a conflicting state (which
               gets one Callback per state needed, not repeated until its hold changes), a
               frozen hold, an earlier waiter it conflicts with (FIFO: no barging; PRIORITY
               requests queue at the head; a NOEXP request passes waiters that only wait for a
               frozen hold, so recovery never waits behind requests that wait for recovery),
               the grace period after a memexpd start (only reclaims are granted then).
I4 fencing     Recover(jid) is sent only after the node of jid was STOMITHed (stomith_done, or a
               HELLO from its next incarnation: the node vouches it restarted) and only to a
               live mounted node other than it; MOUNTED.recover lists only such journals.
I5 mounts      MOUNTs are answered one at a time in FIFO order.  first is true when no other
               live node is mounted; while a first mounter has not sent OTHERS_MAY_MOUNT no
               other MOUNT is answered; a first mount (which replays every journal) also waits
               while any node awaits STOMITH, and any mount waits while its own journal is being
               recovered by another node.  No MOUNT is answered during the grace period.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .protocol import DF, EX, NOEXP, PRIORITY, STATE_NAMES, TRY, TRY_1CB, UN, Name, compatible, name_str

# Node states (Node.state)
LIVE = "live"
EXPIRED = "expired"                    # silent: expired with nothing to recover
STOMITH_WAIT = "stomith_wait"          # expired; waits for its STOMITH (ogfs_tool stomith-ack)
RECOVERY_PENDING = "recovery_pending"  # STOMITHed; no mounted node yet to replay its journal
RECOVERING = "recovering"              # STOMITHed; a live node replays its journal
GONE = "gone"                          # unmounted, or expired and recovered
UNKNOWN = "unknown"                    # in the node table, not heard from since memexpd started

FLAG_NAMES = ((TRY, "TRY"), (TRY_1CB, "TRY_1CB"), (NOEXP, "NOEXP"), (PRIORITY, "PRIORITY"))


def flags_str(flags: int) -> str:
    return "|".join(n for bit, n in FLAG_NAMES if flags & bit) or "-"


# --- actions ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    """Answer GRANTED{id, name, state} on the lock connection of `cid`."""
    cid: int
    id: Any
    name: Name
    state: int


@dataclass(frozen=True)
class TryFailed:
    """Answer TRYFAILED{id, name, reason} on the lock connection of `cid`."""
    cid: int
    id: Any
    name: Name
    reason: str


@dataclass(frozen=True)
class Dropped:
    """A waiting request forgotten because its node expired/restarted/unmounted/disconnected.
    Nothing is sent: that connection is gone or the node re-sends after HELLO."""
    cid: int
    id: Any
    name: Name
    reason: str


@dataclass(frozen=True)
class Callback:
    """Send CB{name, need} on the callback connection of `cid`."""
    cid: int
    name: Name
    need: int


@dataclass(frozen=True)
class Recover:
    """Send RECOVER{jid} on the callback connection of `cid`."""
    cid: int
    jid: int


@dataclass(frozen=True)
class Stomith:
    """Run the STOMITH method `method` (a name in the cidev) on node `cid`, then call
    stomith_done(cid) when it has succeeded (manual: when the operator acknowledges)."""
    cid: int
    method: str


@dataclass(frozen=True)
class Log:
    text: str
    level: str = "info"  # "info" or "warning"


@dataclass(frozen=True)
class Mounted:
    """Answer MOUNTED{jid, first, recover} on the lock connection of `cid`."""
    cid: int
    jid: int
    first: bool
    recover: tuple[int, ...]


@dataclass(frozen=True)
class ReclaimRefused:
    """A lock named in HELLO.reclaim that the node does not get back (WELCOME.refused)."""
    cid: int
    name: Name
    state: int
    reason: str


Action = Grant | TryFailed | Dropped | Callback | Recover | Stomith | Log | Mounted | ReclaimRefused


class Refused(Exception):
    """The call is not allowed in the current state; str() is the reason for ERROR."""


# --- state -----------------------------------------------------------------------------------------

@dataclass
class Node:
    cid: int
    ip: str
    method: str
    session: str = UNKNOWN            # live | expired | gone | unknown
    incarnation: Any = None
    uuid: str | None = None
    last_heard: float = 0.0
    connected: bool = False
    mounted: bool = False
    mount_reply: tuple[bool, tuple[int, ...]] | None = None
    journal: str | None = None        # None | stomith_wait | recovery_pending | recovering
    recoverer: int | None = None      # with journal == recovering
    dead: set[Any] = field(default_factory=set)  # incarnations that expired: never welcome again

    @property
    def jid(self) -> int:
        return self.cid

    @property
    def state(self) -> str:
        if self.session == LIVE:
            return LIVE
        return self.journal or self.session

    def label(self) -> str:
        return f"node {self.ip} (cid {self.cid})"


@dataclass
class Hold:
    state: int
    noexp: bool = False  # granted with NOEXP: may coexist with a conflicting frozen hold


@dataclass
class Waiter:
    cid: int
    id: Any
    state: int
    flags: int


@dataclass
class Lock:
    name: Name
    holders: dict[int, Hold] = field(default_factory=dict)
    waiters: list[Waiter] = field(default_factory=list)
    frozen: dict[int, int] = field(default_factory=dict)   # expired holders: cid -> EX or DF
    cb_sent: set[tuple[int, int]] = field(default_factory=set)  # (holder cid, need) called back

    def empty(self) -> bool:
        return not (self.holders or self.waiters or self.frozen)


def covers(held: int, want: int) -> bool:
    """Is moving a hold from `held` to `want` a demotion (never blocked by anyone)?"""
    return held == want or held == EX or want == UN


class LockTable:
    """The whole of memexpd's state.  `nodes` is the cidev node table: objects with cid, ip and
    method (ogfs.config.NodeEntry).  Until `grace_until` only reclaims are granted."""

    def __init__(self, nodes: Iterable[Any], timeout: float, now: float = 0.0,
                 grace_until: float = 0.0) -> None:
        self.nodes: dict[int, Node] = {n.cid: Node(n.cid, n.ip, n.method) for n in nodes}
        self.timeout = timeout
        self.grace_until = grace_until
        self.grace = grace_until > now
        # The nodes that may hold locks to reclaim (None: any node).  The server narrows it down
        # from the disk-heartbeat slots: a node whose slot does not move is dead and reclaims nothing.
        self.reclaimers: set[int] | None = None
        self.locks: dict[Name, Lock] = {}
        self.mount_queue: list[int] = []
        self.first_mounter: int | None = None

    # -- helpers ------------------------------------------------------------------------------------

    def node(self, cid: int) -> Node | None:
        return self.nodes.get(cid)

    def _live(self, cid: int) -> Node:
        node = self.nodes.get(cid)
        if node is None:
            raise Refused(f"cid {cid} is not in the node table")
        if node.session != LIVE:
            raise Refused(f"{node.label()} is not logged in ({node.state}): say HELLO first")
        return node

    def _ip(self, cid: int) -> str:
        node = self.nodes.get(cid)
        return node.ip if node else f"cid {cid}"

    def _lock(self, name: Name) -> Lock:
        lock = self.locks.get(name)
        if lock is None:
            lock = self.locks[name] = Lock(name)
        return lock

    def _gc(self, lock: Lock) -> None:
        if lock.empty() and self.locks.get(lock.name) is lock:
            del self.locks[lock.name]

    def _set_hold(self, lock: Lock, cid: int, hold: Hold | None) -> None:
        """Change `cid`'s hold; it may be called back again for any need."""
        if hold is None or hold.state == UN:
            lock.holders.pop(cid, None)
        else:
            lock.holders[cid] = hold
        lock.cb_sent = {(h, need) for h, need in lock.cb_sent if h != cid}

    def _frozen_blocked(self, lock: Lock, w: Waiter) -> bool:
        return not w.flags & NOEXP and any(not compatible(f, w.state) for f in lock.frozen.values())

    def _blocker(self, lock: Lock, w: Waiter, ahead: list[Waiter]) -> str | None:
        """Why `w` cannot be granted now (None: it can), with `ahead` the waiters before it."""
        if self.grace:
            return "grace period: memexpd (re)started, only reclaims are granted"
        for hcid, h in lock.holders.items():
            if hcid != w.cid and not compatible(h.state, w.state):
                return f"held by node {self._ip(hcid)} in {STATE_NAMES[h.state]}"
        if not w.flags & NOEXP:
            for fcid, f in lock.frozen.items():
                if not compatible(f, w.state):
                    return (f"frozen: expired node {self._ip(fcid)} held it in {STATE_NAMES[f]} "
                            f"(until journal {fcid} is recovered)")
        for e in ahead:
            if e.cid == w.cid or compatible(e.state, w.state):
                continue
            if w.flags & NOEXP and self._frozen_blocked(lock, e):
                continue  # recovery must not wait behind requests that wait for recovery
            return f"queued behind node {self._ip(e.cid)}'s {STATE_NAMES[e.state]} request"
        return None

    def _callbacks(self, lock: Lock, w: Waiter, acts: list[Action]) -> None:
        for hcid, h in lock.holders.items():
            if hcid != w.cid and not compatible(h.state, w.state) and (hcid, w.state) not in lock.cb_sent:
                lock.cb_sent.add((hcid, w.state))
                acts.append(Callback(hcid, lock.name, w.state))

    def _pump(self, lock: Lock, acts: list[Action]) -> None:
        """Grant, in queue order, every waiter nothing blocks; call back the holders in the way
        of the others.  Nothing moves during the grace period."""
        if self.grace:
            return
        progress = True
        while progress:
            progress = False
            for i, w in enumerate(lock.waiters):
                if self._blocker(lock, w, lock.waiters[:i]) is None:
                    del lock.waiters[i]
                    self._set_hold(lock, w.cid, Hold(w.state, bool(w.flags & NOEXP)))
                    acts.append(Grant(w.cid, w.id, lock.name, w.state))
                    progress = True
                    break
        for w in lock.waiters:
            self._callbacks(lock, w, acts)
        self._gc(lock)

    def _pump_all(self, acts: list[Action]) -> None:
        for lock in list(self.locks.values()):
            self._pump(lock, acts)
        self._pump_mounts(acts)

    def _drop_waiters(self, cid: int, reason: str, acts: list[Action]) -> None:
        for lock in list(self.locks.values()):
            mine = [w for w in lock.waiters if w.cid == cid]
            if mine:
                lock.waiters = [w for w in lock.waiters if w.cid != cid]
                acts.extend(Dropped(w.cid, w.id, lock.name, reason) for w in mine)
                self._pump(lock, acts)

    def _grace_check(self, now: float, acts: list[Action]) -> None:
        """The grace period ends at grace_until, or as soon as every node of the table is logged
        in (nobody is left who could reclaim)."""
        if not self.grace:
            return
        who = [n for c, n in self.nodes.items() if self.reclaimers is None or c in self.reclaimers]
        everyone = all(n.session == LIVE for n in who)
        if now >= self.grace_until or everyone:
            self.grace = False
            why = "every node is logged in" if everyone and now < self.grace_until else "time is up"
            acts.append(Log(f"grace period over ({why}): granting new requests"))
            self._pump_all(acts)

    def set_reclaimers(self, cids: Iterable[int], now: float) -> list[Action]:
        """Only these nodes can have locks to reclaim: the grace period ends once they are in."""
        acts: list[Action] = []
        self.reclaimers = set(cids)
        if self.grace:
            alive = ", ".join(self._ip(c) for c in sorted(self.reclaimers)) or "none"
            acts.append(Log(f"disk heartbeats: nodes that may reclaim locks: {alive}"))
        self._grace_check(now, acts)
        return acts

    # -- nodes --------------------------------------------------------------------------------------

    def hello(self, cid: int, ip: str, incarnation: Any, now: float,
              reclaim: Iterable[tuple[int, int, int]] = (), mounted: bool = False,
              uuid: str | None = None) -> list[Action]:
        """A node logs in.  Refused if it is not in the node table, or says HELLO from an
        incarnation that expired (its locks were taken away: it must restart first), or another
        live incarnation of the same CID is still connected and heartbeating (the same hostdata
        mounted twice?), or it mounts another filesystem than the live nodes.

        * same incarnation, live: a reconnect.  Its waiting requests are dropped (it re-sends
          them); `reclaim` lists what it holds now: holds it no longer lists are released (a
          DEMOTE lost with the old connection), and callbacks are sent again.
        * new incarnation while the old one is live: the node restarted.  The old holds expire
          and count as STOMITHed (the node itself vouches), so its journal goes to recovery.
        * new incarnation while the old one awaits STOMITH: likewise vouched.
        * first HELLO since memexpd started (session unknown) during the grace period: the
          `reclaim` holds are re-established unless they conflict (ReclaimRefused); after it,
          every reclaim is refused.  `mounted` makes it a mounted node again (no MOUNT needed),
          so journals waiting for a mounted node are handed to it.
        """
        node = self.nodes.get(cid)
        if node is None:
            raise Refused(f"cid {cid} is not in the node table of the cidev")
        if ip != node.ip:
            raise Refused(f"cid {cid} is {node.ip} in the node table, not {ip}")
        if incarnation in node.dead:
            raise Refused(f"{node.label()} was expired and its locks taken away: "
                          "it must be restarted (remounted) before it may log in again")
        if uuid:
            for other in self.nodes.values():
                if other.cid != cid and other.session == LIVE and other.uuid and other.uuid != uuid:
                    raise Refused(f"filesystem {uuid} is not the one {other.label()} mounted "
                                  f"({other.uuid}): one memexpd serves one filesystem")
        acts: list[Action] = []
        self._grace_check(now, acts)
        reclaim = [(int(t), int(n), int(s)) for t, n, s in reclaim]

        if node.session == LIVE and node.incarnation == incarnation:
            node.last_heard, node.connected = now, True
            self._drop_waiters(cid, "the node reconnected", acts)
            self._reconcile(node, reclaim, acts)
            for lock in self.locks.values():
                lock.cb_sent = {(h, need) for h, need in lock.cb_sent if h != cid}
            self._pump_all(acts)
            return acts

        if node.session == LIVE:
            if node.connected and now - node.last_heard < 2 * self.timeout / 5:
                raise Refused(f"{node.label()} is logged in and alive (incarnation "
                              f"{node.incarnation}): is the same hostdata mounted twice?")
            acts.append(Log(f"{node.label()} restarted (new incarnation): its old locks are "
                            "expired and its journal will be recovered", "warning"))
            self._expire(node, acts, vouched=True)
        elif node.journal == STOMITH_WAIT:
            acts.append(Log(f"{node.label()} restarted: that counts as its STOMITH"))
            self._stomith_done(node, acts)

        fresh = node.session == UNKNOWN
        node.session, node.incarnation, node.uuid = LIVE, incarnation, uuid
        node.last_heard, node.connected = now, True
        node.mounted, node.mount_reply = False, None
        if fresh and (reclaim or mounted):
            self._reclaim(node, reclaim, acts)
            if mounted:
                node.mounted, node.mount_reply = True, (False, ())
                for other in sorted(self.nodes.values(), key=lambda n: n.cid):
                    if other.journal == RECOVERY_PENDING and other.cid != cid:
                        self._assign_recovery(other, acts)
        else:
            for t, n, s in reclaim:
                if s != UN:
                    acts.append(ReclaimRefused(cid, (t, n), s, "no reclaim: memexpd did not restart "
                                                               "since this node last logged in"))
        acts.append(Log(f"{node.label()} logged in (incarnation {incarnation}"
                        + (f", reclaims {len(reclaim)} lock(s)" if reclaim else "")
                        + (", mounted" if node.mounted else "") + ")"))
        self._grace_check(now, acts)
        self._pump_all(acts)
        return acts

    def _reclaim(self, node: Node, reclaim: list[tuple[int, int, int]], acts: list[Action]) -> None:
        for t, n, s in reclaim:
            if s == UN:
                continue
            name = (t, n)
            if not self.grace:
                acts.append(ReclaimRefused(node.cid, name, s, "the grace period is over"))
                continue
            lock = self._lock(name)
            clash = [c for c, h in lock.holders.items() if c != node.cid and not compatible(h.state, s)]
            clash += [c for c, f in lock.frozen.items() if not compatible(f, s)]
            if clash:
                why = f"conflicts with node {self._ip(clash[0])}'s hold"
                acts.append(ReclaimRefused(node.cid, name, s, why))
                acts.append(Log(f"reclaim of {name_str(name)} in {STATE_NAMES[s]} by {node.label()} "
                                f"refused: {why}", "warning"))
                self._gc(lock)
                continue
            self._set_hold(lock, node.cid, Hold(s))

    def _reconcile(self, node: Node, reclaim: list[tuple[int, int, int]], acts: list[Action]) -> None:
        """A reconnect: trust the node's list downwards only (a lost DEMOTE), never upwards."""
        listed = {(t, n): s for t, n, s in reclaim}
        for lock in list(self.locks.values()):
            hold = lock.holders.get(node.cid)
            if hold is None:
                continue
            want = listed.get(lock.name, UN)
            if want != hold.state and covers(hold.state, want):
                self._set_hold(lock, node.cid, Hold(want, hold.noexp))
                self._pump(lock, acts)
        for name, s in listed.items():
            found = self.locks.get(name)
            hold = found.holders.get(node.cid) if found else None
            if s != UN and (hold is None or not covers(hold.state, s)):
                acts.append(ReclaimRefused(node.cid, name, s, "memexpd does not know this hold"))

    def heartbeat(self, cid: int, now: float) -> list[Action]:
        """Any frame from a live node: it is alive at `now`."""
        self._live(cid).last_heard = now
        return []

    def disconnect(self, cid: int) -> list[Action]:
        """The lock connection of `cid` closed.  Not an expiry (only silence expires a node):
        its holds stay, its waiting requests are dropped (the node re-sends them after HELLO),
        a MOUNT it is waiting for stays queued."""
        node = self.nodes.get(cid)
        acts: list[Action] = []
        if node is None or node.session != LIVE:
            return acts
        node.connected = False
        self._drop_waiters(cid, "the lock connection closed", acts)
        self._pump_mounts(acts)
        return acts

    def tick(self, now: float) -> list[Action]:
        """Expire every live node silent for more than `timeout` (first: nothing is granted to a
        node that is already silent for too long); then end the grace period if it is over."""
        acts: list[Action] = []
        for node in sorted(self.nodes.values(), key=lambda n: n.cid):
            if node.session == LIVE and now - node.last_heard > self.timeout:
                acts.append(Log(f"{node.label()} expired: no heartbeat for "
                                f"{now - node.last_heard:.0f} s", "warning"))
                self._expire(node, acts)
        self._grace_check(now, acts)
        return acts

    def _expire(self, node: Node, acts: list[Action], vouched: bool = False) -> None:
        """The session ends without a goodbye.  SH holds dropped, EX/DF holds frozen, waiters
        dropped; journals it was recovering go to another node.  A node that was mounted or held
        EX/DF may have written its journal: it needs STOMITH, then recovery."""
        cid = node.cid
        node.dead.add(node.incarnation)
        needs = node.mounted
        for lock in list(self.locks.values()):
            hold = lock.holders.get(cid)
            if hold is not None:
                self._set_hold(lock, cid, None)
                if hold.state in (EX, DF):
                    needs = True
                    old = lock.frozen.get(cid)
                    lock.frozen[cid] = EX if EX in (old, hold.state) else DF
        self._drop_waiters(cid, "its node expired", acts)
        if cid in self.mount_queue:
            self.mount_queue.remove(cid)
        if self.first_mounter == cid:
            self.first_mounter = None
            acts.append(Log(f"first mounter {node.label()} expired before OTHERS_MAY_MOUNT", "warning"))
        node.session, node.connected, node.mounted, node.mount_reply = EXPIRED, False, False, None
        self._hand_over(cid, acts)
        if needs:
            node.journal, node.recoverer = STOMITH_WAIT, None
            if vouched:
                self._stomith_done(node, acts)
            else:
                acts.append(Stomith(cid, node.method))
        else:
            acts.append(Log(f"{node.label()} was not mounted and held no EX/DF lock: "
                            "no STOMITH or recovery needed"))
        self._pump_all(acts)

    def _hand_over(self, cid: int, acts: list[Action]) -> None:
        """`cid` is no longer mounted: the journals it was recovering go to someone else."""
        for other in sorted(self.nodes.values(), key=lambda n: n.cid):
            if other.journal == RECOVERING and other.recoverer == cid:
                self._assign_recovery(other, acts, exclude={cid})

    def _assign_recovery(self, node: Node, acts: list[Action], exclude: Iterable[int] = ()) -> None:
        exclude = set(exclude)
        cands = sorted(n.cid for n in self.nodes.values()
                       if n.session == LIVE and n.mounted and n.cid != node.cid and n.cid not in exclude)
        if cands:
            node.journal, node.recoverer = RECOVERING, cands[0]
            acts.append(Recover(cands[0], node.cid))
            acts.append(Log(f"recovery of journal {node.cid} ({node.ip}) requested from "
                            f"node {self._ip(cands[0])}"))
        else:
            node.journal, node.recoverer = RECOVERY_PENDING, None
            acts.append(Log(f"journal {node.cid} ({node.ip}) waits for recovery: no node is mounted; "
                            "the next mounter recovers it"))

    def stomith_done(self, cid: int) -> list[Action]:
        """The STOMITH of `cid` succeeded (STOMITH_ACK, or an automatic method).  Refused unless
        the node awaits STOMITH.  Its journal goes to a live mounted node (Recover) or, if none,
        waits for the next mounter."""
        node = self.nodes.get(cid)
        if node is None:
            raise Refused(f"cid {cid} is not in the node table")
        if node.journal != STOMITH_WAIT:
            raise Refused(f"{node.label()} is not waiting for STOMITH (it is {node.state})")
        acts: list[Action] = []
        self._stomith_done(node, acts)
        self._pump_mounts(acts)
        return acts

    def _stomith_done(self, node: Node, acts: list[Action]) -> None:
        self._assign_recovery(node, acts)

    def recovery_done(self, cid: int, jid: int, ok: bool) -> list[Action]:
        """Node `cid` says journal `jid` is replayed (ok) or that it gave up.  Accepted from the
        node it was handed to, or from any live node while it waits for the next mounter.  ok:
        the frozen holds of node `jid` are released and the queues move; the node is gone
        unless a new incarnation is live.  Not ok: another mounted node gets it, or it waits."""
        sender = self._live(cid)
        acts: list[Action] = []
        node = self.nodes.get(jid)
        if node is None or node.journal is None:
            acts.append(Log(f"RECOVERY_DONE for journal {jid} from {sender.label()}: "
                            "nothing to recover there (ignored)"))
            return acts
        if node.journal == STOMITH_WAIT:
            acts.append(Log(f"RECOVERY_DONE for journal {jid} from {sender.label()} ignored: "
                            f"the STOMITH of {node.label()} is not acknowledged", "warning"))
            return acts
        if node.journal == RECOVERING and node.recoverer != cid:
            acts.append(Log(f"RECOVERY_DONE for journal {jid} from {sender.label()} ignored: "
                            f"node {self._ip(node.recoverer or 0)} was asked to recover it", "warning"))
            return acts
        if not ok:
            acts.append(Log(f"{sender.label()} gave up recovering journal {jid}", "warning"))
            self._assign_recovery(node, acts, exclude={cid})
            return acts
        released = 0
        for lock in list(self.locks.values()):
            if lock.frozen.pop(jid, None) is not None:
                released += 1
        node.journal, node.recoverer = None, None
        if node.session == EXPIRED:
            node.session = GONE
        acts.append(Log(f"journal {jid} ({node.ip}) recovered by {sender.label()}: "
                        f"{released} expired lock(s) released"))
        self._pump_all(acts)
        return acts

    # -- mounts -------------------------------------------------------------------------------------

    def mount(self, cid: int) -> list[Action]:
        """MOUNT: answered now or later (Mounted), see I5.  Again from a mounted node: the same
        answer again (first only while it has not sent OTHERS_MAY_MOUNT)."""
        node = self._live(cid)
        acts: list[Action] = []
        if node.mounted:
            first, recover = node.mount_reply or (False, ())
            acts.append(Mounted(cid, cid, first, recover))
            return acts
        if cid not in self.mount_queue:
            self.mount_queue.append(cid)
        self._pump_mounts(acts)
        if cid in self.mount_queue:
            acts.append(Log(f"mount of {node.label()} waits: {self._mount_blocker(cid)}"))
        return acts

    def _mount_blocker(self, cid: int) -> str | None:
        if self.grace:
            return "grace period (nodes that were mounted reclaim their locks)"
        if self.first_mounter is not None:
            return f"first mounter {self.nodes[self.first_mounter].label()} is recovering journals"
        head = self.mount_queue[0] if self.mount_queue else cid
        if head != cid:
            return f"{self.nodes[head].label()} mounts first"
        node = self.nodes[cid]
        if node.journal in (RECOVERING, STOMITH_WAIT):
            return f"its own journal {cid} is being recovered"
        first = not any(n.mounted for n in self.nodes.values() if n.session == LIVE and n.cid != cid)
        waiting = [n.label() for n in self.nodes.values() if n.journal == STOMITH_WAIT]
        if first and waiting:
            return f"it would be the first mounter, and the STOMITH of {', '.join(waiting)} is not done"
        return None

    def _pump_mounts(self, acts: list[Action]) -> None:
        while self.mount_queue and self._mount_blocker(self.mount_queue[0]) is None:
            cid = self.mount_queue.pop(0)
            node = self.nodes[cid]
            first = not any(n.mounted for n in self.nodes.values() if n.session == LIVE and n.cid != cid)
            recover = tuple(sorted(n.cid for n in self.nodes.values() if n.journal == RECOVERY_PENDING))
            for j in recover:
                self.nodes[j].journal, self.nodes[j].recoverer = RECOVERING, cid
            node.mounted, node.mount_reply = True, (first, recover)
            if first:
                self.first_mounter = cid
            acts.append(Mounted(cid, cid, first, recover))
            text = f"{node.label()} mounts journal {cid}" + (" as first mounter" if first else "")
            if recover:
                text += f"; it recovers journal(s) {', '.join(map(str, recover))}"
            acts.append(Log(text))

    def others_may_mount(self, cid: int) -> list[Action]:
        node = self._live(cid)
        acts: list[Action] = []
        if self.first_mounter != cid:
            acts.append(Log(f"OTHERS_MAY_MOUNT from {node.label()} ignored: it is not the first mounter"))
            return acts
        self.first_mounter = None
        node.mount_reply = (False, ())
        acts.append(Log(f"first mounter {node.label()}: others may mount"))
        self._pump_mounts(acts)
        return acts

    def unmount(self, cid: int) -> list[Action]:
        """UNMOUNT: all its holds released, its waiters dropped, the node forgotten (gone)."""
        node = self._live(cid)
        acts: list[Action] = []
        for lock in list(self.locks.values()):
            if cid in lock.holders:
                self._set_hold(lock, cid, None)
        self._drop_waiters(cid, "its node unmounted", acts)
        if cid in self.mount_queue:
            self.mount_queue.remove(cid)
        if self.first_mounter == cid:
            self.first_mounter = None
        node.session, node.connected, node.mounted, node.mount_reply = GONE, False, False, None
        self._hand_over(cid, acts)
        acts.append(Log(f"{node.label()} unmounted"))
        self._pump_all(acts)
        return acts

    # -- locks --------------------------------------------------------------------------------------

    def request(self, cid: int, req_id: Any, name: Name, state: int, flags: int = 0) -> list[Action]:
        """LOCK.  A demotion of the node's own hold (or the same state, or UN) is granted at once.
        TRY (TRY_1CB implies it): granted now or TryFailed now, TRY_1CB calling the conflicting
        holders back once.  Otherwise the request queues (PRIORITY at the head) until I3 lets it
        through."""
        self._live(cid)
        name = (int(name[0]), int(name[1]))
        if state not in STATE_NAMES:
            raise Refused(f"LOCK {name_str(name)}: no state {state}")
        acts: list[Action] = []
        lock = self._lock(name)
        hold = lock.holders.get(cid)
        if state == UN or (hold is not None and covers(hold.state, state)):
            self._set_hold(lock, cid, Hold(state, hold.noexp) if hold and state != UN else None)
            acts.append(Grant(cid, req_id, name, state))
            self._pump(lock, acts)
            self._gc(lock)
            return acts
        if flags & TRY_1CB:
            flags |= TRY
        w = Waiter(cid, req_id, state, flags)
        head = 0
        while head < len(lock.waiters) and lock.waiters[head].flags & PRIORITY:
            head += 1
        if flags & TRY:
            why = self._blocker(lock, w, lock.waiters[:head] if flags & PRIORITY else lock.waiters)
            if why is None:
                self._set_hold(lock, cid, Hold(state, bool(flags & NOEXP)))
                acts.append(Grant(cid, req_id, name, state))
            else:
                if flags & TRY_1CB and not self.grace:
                    self._callbacks(lock, w, acts)
                acts.append(TryFailed(cid, req_id, name, why))
            self._gc(lock)
            return acts
        lock.waiters.insert(head if flags & PRIORITY else len(lock.waiters), w)
        self._pump(lock, acts)
        return acts

    def demote(self, cid: int, name: Name, state: int) -> list[Action]:
        """DEMOTE: lower the node's own hold (UN releases it).  Anything else is logged and ignored."""
        node = self._live(cid)
        name = (int(name[0]), int(name[1]))
        acts: list[Action] = []
        lock = self.locks.get(name)
        hold = lock.holders.get(cid) if lock else None
        if lock is None or hold is None:
            if state != UN:
                acts.append(Log(f"DEMOTE of {name_str(name)} by {node.label()} ignored: not held"))
            return acts
        if state not in STATE_NAMES or not covers(hold.state, state):
            acts.append(Log(f"DEMOTE of {name_str(name)} from {STATE_NAMES[hold.state]} to {state} by "
                            f"{node.label()} ignored: not a demotion", "warning"))
            return acts
        self._set_hold(lock, cid, Hold(state, hold.noexp) if state != UN else None)
        self._pump(lock, acts)
        self._gc(lock)
        return acts

    # -- for the server and the tools ---------------------------------------------------------------

    def callbacks_for(self, cid: int) -> list[Callback]:
        """Every callback `cid` should have had and has not acted on: re-sent after its callback
        connection was re-established."""
        out: list[Callback] = []
        for lock in self.locks.values():
            h = lock.holders.get(cid)
            if h is None:
                continue
            for need in dict.fromkeys(w.state for w in lock.waiters
                                      if w.cid != cid and not compatible(h.state, w.state)):
                out.append(Callback(cid, lock.name, need))
        return out

    def recoveries_for(self, cid: int) -> list[Recover]:
        return [Recover(cid, n.cid) for n in self.nodes.values()
                if n.journal == RECOVERING and n.recoverer == cid]

    def status(self, now: float | None = None) -> dict[str, Any]:
        """Plain dicts for STATUS: every node of the table and every lock with holders, waiters
        or frozen holds (states by name)."""
        nodes = []
        for n in sorted(self.nodes.values(), key=lambda n: n.cid):
            d: dict[str, Any] = {"cid": n.cid, "ip": n.ip, "state": n.state, "jid": n.jid,
                                 "mounted": n.mounted, "connected": n.connected,
                                 "incarnation": n.incarnation, "stomith": n.method,
                                 "journal": n.journal, "recoverer": n.recoverer}
            if n.session == LIVE and now is not None:
                d["silent"] = round(max(0.0, now - n.last_heard), 2)
            nodes.append(d)
        locks = []
        for name in sorted(self.locks):
            lock = self.locks[name]
            locks.append({
                "name": list(name), "lock": name_str(name),
                "holders": [{"cid": c, "ip": self._ip(c), "state": STATE_NAMES[h.state], "noexp": h.noexp}
                            for c, h in sorted(lock.holders.items())],
                "frozen": [{"cid": c, "ip": self._ip(c), "state": STATE_NAMES[s]}
                           for c, s in sorted(lock.frozen.items())],
                "waiters": [{"cid": w.cid, "ip": self._ip(w.cid), "id": w.id, "state": STATE_NAMES[w.state],
                             "flags": flags_str(w.flags)} for w in lock.waiters]})
        grace_left = max(0.0, self.grace_until - now) if self.grace and now is not None else 0.0
        return {"timeout": self.timeout, "grace": self.grace, "grace_left": round(grace_left, 2),
                "first_mounter": self.first_mounter, "mount_queue": list(self.mount_queue),
                "nodes": nodes, "locks": locks}
