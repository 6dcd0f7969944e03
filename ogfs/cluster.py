"""Cluster mounts (lock_memexp): what a lock covers in the caches, the mount sequence with
first-mounter recovery and the split-brain guard, journal recovery for a dead node, fencing
before any replay (ogfs/fence.py) and the disk-heartbeat slot that is also this mount's lease
(ogfs/lease.py).  The daemon (ogfs/daemon.py) calls mount_cluster() and runs the tasks."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from . import cidev, fence, journal, powerswitch, slots, slotwatch
from .config import ClusterConfig, NodeEntry
from .fs import Filesystem, MountError, Options
from .glock import Glocks, TryFailed
from .layout import Superblock
from .lease import Lease
from .memexp.client import LockClient, MemexpError
from .memexp.protocol import EX, INODE, IOPEN, JOURNAL, NOEXP, RGRP, TRY, TRY_1CB, UN, Name

log = logging.getLogger("ogfs")
CONNECT_TIMEOUT = 15.0  # seconds a mount waits for memexpd before it fails


class CacheHooks:
    """Keep the filesystem's caches, and the kernel's, true to the locks this node holds
    (glock.Hooks)."""

    def __init__(self) -> None:
        self.fs: Filesystem | None = None
        # Withdraws the attributes the kernel caches for an inode (fuse_ops.forget_attrs); set
        # by the daemon while the FUSE mount is live.
        self.forget_kernel_attrs: Callable[[int], None] | None = None
        # Another node wants to free an inode (its IOPEN lock): fuse_ops.iopen_wanted.
        self.on_iopen_wanted: Callable[[int], None] | None = None

        # Takes an open inode's IOPEN lock before its glock leaves: fuse_ops.pin_before_unlock.
        self.pin_before_unlock: Callable[[int], Awaitable[None]] | None = None

    def iopen_wanted(self, addr: int) -> None:
        if self.on_iopen_wanted is not None:
            self.on_iopen_wanted(addr)

    async def before_unlock(self, name: Name) -> None:
        if name[0] == INODE and self.pin_before_unlock is not None:
            await self.pin_before_unlock(name[1])

    def after_grant(self, name: Name, old: int, new: int) -> None:
        fs = self.fs
        if fs is None:
            return
        kind, n = name
        if kind == RGRP:
            rg = fs.alloc.rgrps[n]
            if old == UN and not rg.dirty:
                fs.reload_rgrp(n)  # another node may have changed it meanwhile
            if new == EX and fs.alloc.allowed is not None:
                fs.alloc.allowed.add(n)
        elif kind == INODE and old == UN:
            cached = fs.inodes.get(n)
            if cached is not None and cached not in fs.dirty_inodes:
                fs.forget_inode(n)  # read it afresh (a dirty one is new: we made it)

    def before_demote(self, name: Name, old: int, new: int) -> None:
        fs = self.fs
        if fs is None:
            return
        kind, n = name
        if kind == IOPEN:
            return  # covers nothing cached: the inode's own lock and its rgrps' do
        if kind == INODE and new == UN and self.forget_kernel_attrs is not None:
            # First, so nothing below can leave them behind.  EX -> SH keeps them: the node
            # that shares the lock cannot change the inode either.
            self.forget_kernel_attrs(n)
        cached = fs.inodes.get(n) if kind == INODE else None
        if old == EX or (cached is not None and cached in fs.dirty_inodes):
            fs.flush_for_demote()  # commit and write home before another node may look
        if kind == RGRP and fs.alloc.allowed is not None:
            fs.alloc.allowed.discard(n)
        if kind == INODE and new == UN:
            fs.forget_inode(n)


@dataclass
class ClusterMount:
    fs: Filesystem
    client: LockClient
    glocks: Glocks
    lease: Lease
    cidev_path: str
    first: bool
    fences: list[fence.Record] = field(default_factory=list)  # journals this mount took

    @property
    def slot(self) -> slots.Slot:
        return self.lease.slot


def cache_hooks(cm: ClusterMount) -> CacheHooks:
    hooks = cm.glocks.hooks
    assert isinstance(hooks, CacheHooks)
    return hooks


async def mount_cluster(device: str, sb: Superblock, hostdata: str | None, locktable: str,
                        readonly: bool, commit: float, barrier: bool,
                        nursery: trio.Nursery) -> ClusterMount:
    if not hostdata:
        raise MountError("lockproto=memexp needs hostdata=<this node's IP> (its row in the cidev)")
    try:
        cfg = cidev.read_config(locktable)
    except Exception as e:  # noqa: BLE001
        raise MountError(f"cannot read the cluster information device {locktable}: {e}") from None
    me = cfg.node_by_ip(hostdata)
    if me is None:
        raise MountError(f"hostdata={hostdata} is not a node of {locktable} "
                         f"(nodes: {', '.join(n.ip for n in cfg.nodes)})")
    client = LockClient((cfg.lockdev_ip, cfg.lockdev_port), me.ip, me.cid, cfg.cbport,
                        sb.uuid_str, cfg.timeout)
    try:
        await client.connect(trio.current_time() + CONNECT_TIMEOUT)
    except MemexpError as e:
        raise MountError(str(e)) from None
    hooks = CacheHooks()
    glocks = Glocks(client, hooks, nursery, op_timeout=2 * cfg.timeout + 10)
    client.on_callback = glocks.callback
    client.held = glocks.held
    client.on_lost = glocks.lost
    await client.run(nursery)
    reply = await client.mount()
    jid = me.cid
    try:  # our own journal, exclusively: a second mount with the same hostdata must fail
        for attempt in range(3):
            try:
                await glocks.try_acquire((JOURNAL, jid), EX, NOEXP | TRY | TRY_1CB)
                break
            except TryFailed:
                if attempt == 2:
                    raise
                await trio.sleep(0.5)
    except TryFailed:
        raise MountError(f"journal {jid} is in use by another node: is hostdata={hostdata} "
                         f"mounted elsewhere?") from None
    first = bool(reply["first"])
    lease = Lease(locktable, slots.Slot(me.cid, slots.MOUNTING, client.incarnation, 0, time.time_ns(),
                                        cfg.slot_interval_ms, hostdata))
    fences: list[fence.Record] = []
    if first:
        cids = [n.cid for n in cfg.nodes]
        alive = await trio.to_thread.run_sync(slotwatch.check_slots, locktable, me.cid, cids, log)
        if alive:
            who = ", ".join(f"{s.hostdata} (cid {s.cid})" for s in alive)
            raise MountError(f"refusing to mount as first node: {who} still writes its disk "
                             f"heartbeat on {locktable} (split brain? STOMITH it first)")
        # Every other mount the slots show is dead by its disk heartbeat: power it off where a
        # switch can, mark its journal taken, and only then let Filesystem() replay it.
        for s in slots.live_others(locktable, me.cid, cids, wait=False):
            victim = cfg.node_by_cid(s.cid)
            if victim is not None:
                rec = await trio.to_thread.run_sync(_fence_dead, cfg, locktable, victim, me)
                if rec is not None:
                    fences.append(rec)
    for j in reply.get("recover", []):  # memexpd's STOMITH step fenced these (or says it did not)
        victim = cfg.node_by_cid(j)
        if victim is not None and j != jid:
            rec = await trio.to_thread.run_sync(_take, locktable, j, me, _after_stomith(cfg, victim))
            if rec is not None:
                fences.append(rec)
    await trio.to_thread.run_sync(lease.renew)  # our slot: "mounting", and the lease begins
    recover = None if first else sorted(set(reply.get("recover", [])) | {jid})
    fs = Filesystem(device, Options(jid=jid, readonly=readonly, commit_interval=commit,
                                    barrier=barrier, recover=recover, cluster=True,
                                    guard=lease.guard))
    hooks.fs = fs
    fs.flush_for_demote()
    fs.inodes.clear()  # read under locks from now on
    for j in reply.get("recover", []):
        await client.simple("RECOVERY_DONE", jid=j, ok=True)
    if first:
        await client.simple("OTHERS_MAY_MOUNT")

    async def recover_journal(j: int) -> None:
        name = (JOURNAL, j)
        await glocks.acquire(name, EX, NOEXP)
        try:
            victim = cfg.node_by_cid(j)
            if victim is not None:
                rec = await trio.to_thread.run_sync(_take, locktable, j, me, _after_stomith(cfg, victim))
                if rec is not None:
                    fences.append(rec)
            log.info("jid=%d: Trying to acquire journal lock... Looking at journal...", j)
            n = journal.replay(fs.dev, fs.sb.journals[j], j, fs.sb.uuid)
            log.info("jid=%d: Replaying journal... replayed %d transaction(s); Done", j, n)
        finally:
            glocks.release(name)
            glocks.drop(name)
        await client.simple("RECOVERY_DONE", jid=j, ok=True)

    client.on_recover = recover_journal
    lease.slot.state = slots.MOUNTED
    return ClusterMount(fs, client, glocks, lease, locktable, first, fences)


def _take(cidev_path: str, victim: int, me: NodeEntry, how: str) -> fence.Record | None:
    # A victim the switch confirmed off has no lease left to wait out (ogfs/fence.py, step 3).
    return fence.take(cidev_path, victim, me.cid, me.ip, how, log,
                      functools.partial(slotwatch.unchanged_since, cidev_path),
                      off=how.startswith(fence.POWERED_OFF))


def _after_stomith(cfg: ClusterConfig, victim: NodeEntry) -> str:
    """How a node memexpd expired was fenced: by its STOMITH method's kind."""
    method = cfg.method(victim.method)
    kind = method.kind if method is not None else "manual"
    if kind == "none":
        return fence.UNFENCED
    return fence.POWERED_OFF if kind == "labctl" else fence.STOMITH_DONE


def _fence_dead(cfg: ClusterConfig, cidev_path: str, victim: NodeEntry, me: NodeEntry) -> fence.Record | None:
    """A first mounter found `victim` dead by its disk heartbeat alone: switch it off if its
    STOMITH method is the lab's switch (and wait for the switch to confirm), then take() it."""
    if fence.fenced_already(cidev_path, victim.cid) is not None:  # no second power-off for it
        return _take(cidev_path, victim.cid, me, fence.UNFENCED)
    try:
        switch = powerswitch.switch_of(cfg, victim)
        if switch is not None:
            addr, port, plug = switch
            log.warning("fence: powering %s (cid %d) off: power switch %s:%d, plug %s", victim.ip,
                        victim.cid, addr, port, plug)
            answer = powerswitch.power_off(addr, port, plug)
            log.warning("fence: the power switch says %r", answer)
            return _take(cidev_path, victim.cid, me, f"{fence.POWERED_OFF} (plug {plug})")
    except powerswitch.SwitchError as e:
        raise MountError(f"cannot fence {victim.ip} (cid {victim.cid}) before replaying its "
                         f"journal: {e}") from None
    log.warning("fence: %s (cid %d) has STOMITH method '%s': nothing powers it off; replaying its "
                "journal UNFENCED (if it is only frozen, its disk lease withdraws it when it wakes)",
                victim.ip, victim.cid, victim.method)
    return _take(cidev_path, victim.cid, me, fence.UNFENCED)


FENCED_HOOK = "/etc/ogfs/fenced"  # run once when this mount finds itself fenced (docs/fencing.md)


def run_fenced_hook(mountpoint: str, rec: fence.Record, hook: str = FENCED_HOOK) -> None:
    """The node's answer to being fenced, like GFS2's withdraw helper: ``HOOK MOUNTPOINT REASON``,
    not waited for.  A lab node's hook reboots it (a self-fence); without a hook the mount only
    stays withdrawn."""
    import os
    import subprocess

    if not os.access(hook, os.X_OK):
        log.error("fenced (%s); no %s: the mount stays withdrawn until it is unmounted", rec.describe(), hook)
        return
    log.error("fenced (%s): running %s", rec.describe(), hook)
    try:
        subprocess.Popen([hook, mountpoint, rec.describe()], stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        log.error("cannot run %s: %s", hook, e)


async def slot_writer(cm: ClusterMount) -> None:
    """Keep our disk heartbeat, and with it our lease, moving while we are mounted; renew every
    half lease so that writes almost never wait for a renewal (ogfs/lease.py)."""
    while True:
        try:
            rec = await trio.to_thread.run_sync(cm.lease.renew)
        except OSError as e:  # the guard withdraws the mount if this lasts past the lease
            log.warning("cannot write the disk heartbeat slot on %s: %s", cm.cidev_path, e)
            rec = None
        if rec is not None:
            cm.fs.dev.withdraw(f"fenced: {rec.describe()}")
            return
        await trio.sleep(cm.lease.length / 2)


async def leave(cm: ClusterMount) -> None:
    """After the final commit: mark our slot unmounted (not if fenced) and log out of memexpd."""
    await trio.to_thread.run_sync(cm.lease.release)
    await cm.client.unmount()
