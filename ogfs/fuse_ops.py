"""pyfuse3 glue: kernel requests in, Filesystem calls out.

Every handler has two phases:
  1. take the glocks it needs (ogfs/glock.py), awaiting grants: other requests run meanwhile;
  2. call the filesystem without awaiting, so the change is atomic with respect to commits and
     to callbacks (a demote runs between operations, never inside one).
Lock order, so two nodes never wait on each other in a circle: the RENAME lock, then directories
before what they contain, then other inodes, then resource groups.  With lock_nolock the locks
are free (glock.NoLocks).

Errors become the right errno; anything unexpected is logged with its traceback and the caller
gets EIO, never a crash of the daemon.  Inode numbers are dinode block addresses, except that
the kernel insists the root is 1.
"""

from __future__ import annotations

import errno
import logging
import os
import reprlib
import stat
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

import pyfuse3

from .fs import Filesystem, FsError
from .glock import AnyLocks, Glocks, LockTimeout, NoLocks, TryFailed
from .inode import Inode
from .layout import BLOCK, UNLINKED
from .memexp.protocol import EX, INODE, IOPEN, NONDISK, RENAME_LOCK, RGRP, SH, TRY_1CB, Name, name_str

log = logging.getLogger("ogfs")
LOCK_AHEAD = 32  # at most this many blocks (and glocks) are reserved for the next new inodes
P = ParamSpec("P")
R = TypeVar("R")


def _errors(fn: Callable[Concatenate[Operations, P], Awaitable[R]]
            ) -> Callable[Concatenate[Operations, P], Coroutine[Any, Any, R]]:
    """A request handler's exceptions as pyfuse3 wants them (FUSEError); the signature stays
    visible to mypy, which checks it against pyfuse3.Operations."""
    @wraps(fn)
    async def wrapper(self: Operations, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(self, *args, **kwargs)
        except FsError as e:
            if e.errno == errno.ENOENT and fn.__name__ not in ("lookup", "getxattr"):
                log.debug("%s(%s): ENOENT", fn.__name__, ", ".join(reprlib.repr(a) for a in args[:3]))
            raise pyfuse3.FUSEError(e.errno) from None
        except pyfuse3.FUSEError:
            raise
        except LockTimeout as e:
            log.error("%s: %s", fn.__name__, e)
            raise pyfuse3.FUSEError(errno.EIO) from None
        except Exception:
            shown = ", ".join(reprlib.repr(a) for a in args[:3])
            log.exception("%s(%s) failed", fn.__name__, shown)
            raise pyfuse3.FUSEError(errno.EIO) from None
        finally:
            self.fs.after_op()
    return wrapper


class Held:
    """The glocks one operation holds; released together when it ends."""

    def __init__(self, ops: Operations) -> None:
        self.ops, self.locks, self.fs = ops, ops.locks, ops.fs
        self.names: dict[Name, int] = {}
        self.waiting: tuple[Name, int] | None = None
        self.what = sys._getframe(2).f_code.co_name  # the handler, for `ogfs_tool counters`

    async def take(self, name: Name, state: int) -> None:
        if self.names.get(name) in (EX, state):
            return
        self.waiting = (name, state)
        self.ops.inflight.add(self)
        try:
            await self.locks.acquire(name, state)
        finally:
            self.waiting = None
        if name in self.names:
            self.locks.release(name)  # keep one use per lock; the stronger state now covers it
        self.names[name] = state

    async def inode(self, addr: int, state: int) -> None:
        await self.take((INODE, addr), state)

    async def inodes(self, addrs: list[int], state: int) -> None:
        for a in sorted(set(addrs)):
            await self.inode(a, state)

    async def rgrps(self, indices: set[int]) -> None:
        for i in sorted(indices):
            await self.take((RGRP, i), EX)

    async def for_alloc(self, nblocks: int) -> None:
        """Hold resource groups with room for `nblocks` more blocks (plus some slack)."""
        if isinstance(self.locks, NoLocks):
            return
        a = self.fs.alloc
        need = nblocks + 16
        order = list(range(a.home, len(a.rgrps))) + list(range(a.home))
        for i in order:
            if sum(a.rgrps[k].free for k in (a.allowed or ())) - len(a.quarantine) >= need:
                return
            if i not in (a.allowed or ()):
                await self.take((RGRP, i), EX)

    def release(self) -> None:
        for name in self.names:
            self.locks.release(name)
        self.names.clear()
        self.ops.inflight.discard(self)

    def describe(self) -> dict[str, Any]:
        return {"op": self.what, "holds": {name_str(n): s for n, s in self.names.items()},
                "waits": None if self.waiting is None else name_str(self.waiting[0])}

    async def __aenter__(self) -> Held:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class Operations(pyfuse3.Operations):
    supports_dot_lookup = True
    enable_writeback_cache = False  # the cache would outlive our locks (ogfs.md 3.2)

    def __init__(self, fs: Filesystem, cache_timeout: float, locks: AnyLocks | None = None) -> None:
        super().__init__()
        self.fs = fs
        self.locks: AnyLocks = locks or NoLocks()
        self.clustered = not isinstance(self.locks, NoLocks)
        # The kernel may cache attributes: in a cluster only while this node holds the inode's
        # glock, because forget_attrs() withdraws them before that glock goes (ogfs.md).  Names
        # are never cached in a cluster: a directory's entries cannot be withdrawn safely (the
        # kernel's invalidation waits for requests that wait for the directory's glock), so
        # the kernel asks (lookup) each time it walks a path.
        self.attr_timeout = cache_timeout
        self.entry_timeout = 0.0 if self.clustered else cache_timeout
        self.handles: dict[int, tuple[int, bool]] = {}  # fh -> (inode, O_APPEND)
        self.open_count: dict[int, int] = {}  # inode -> open handles
        self.iopen_pinned: set[int] = set()  # open inodes whose IOPEN we hold (pin_before_unlock)
        self.maybe_unlinked: set[int] = set()  # another node wanted to free these (iopen_wanted)
        self.dirhandles: dict[int, list[tuple[bytes, int]]] = {}
        self.inflight: set[Held] = set()  # operations holding or waiting for glocks
        self.ahead = 2  # the window of _reserve_ahead, grows to LOCK_AHEAD
        self._next_fh = 1

    def held(self) -> Held:
        return Held(self)

    def forget_attrs(self, addr: int) -> None:
        """The inode's glock is leaving this node: the kernel must not answer from attributes
        it cached under it.  Safe to call from the event loop: it only marks the kernel's
        attributes stale (no page cache with direct_io, no directory lock taken), so it
        never waits for a request of ours."""
        if self.attr_timeout <= 0:
            return
        try:
            pyfuse3.invalidate_inode(self._ino(addr), attr_only=True)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return  # the kernel holds no inode of that number: nothing cached
            # Not withdrawn, so the kernel might answer from it: cache nothing from now on.
            log.error("cannot withdraw the kernel's attributes of inode %d (%s): "
                      "attribute caching is off for the rest of this mount", addr, e)
            self.attr_timeout = 0.0

    # -- inode numbers ------------------------------------------------------------------

    def _addr(self, ino: int) -> int:
        return self.fs.root if ino == pyfuse3.ROOT_INODE else ino

    def _ino(self, addr: int) -> int:
        return pyfuse3.ROOT_INODE if addr == self.fs.root else addr

    def _entry(self, i: Inode, counted: bool = True, cache: bool = True) -> pyfuse3.EntryAttributes:
        """Attributes for the kernel; `counted` entries add one to the kernel's lookup count.
        Unless `cache` is False, the caller holds the inode's glock and does not await before
        the reply goes out: a demote, which withdraws what the kernel caches, runs only then."""
        if counted:
            self.fs.ref(i.addr)
        e = pyfuse3.EntryAttributes()
        e.st_ino = self._ino(i.addr)
        e.generation = 0
        e.entry_timeout = self.entry_timeout if cache else 0.0
        e.attr_timeout = self.attr_timeout if cache else 0.0
        e.st_mode = i.mode
        e.st_nlink = i.nlink
        e.st_uid = i.uid
        e.st_gid = i.gid
        e.st_rdev = i.rdev
        e.st_size = i.size
        e.st_blksize = BLOCK
        e.st_blocks = (i.blocks + (1 if i.stuffed else 0)) * 8
        e.st_atime_ns = i.atime
        e.st_mtime_ns = i.mtime
        e.st_ctime_ns = i.ctime
        return e

    def _fh(self) -> int:
        fh = self._next_fh
        self._next_fh += 1
        return fh

    # -- lookups and attributes -----------------------------------------------------------

    @_errors
    async def lookup(self, parent_inode: int, name: bytes,
                     ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        parent = self._addr(parent_inode)
        async with self.held() as h:
            await h.inode(parent, SH)
            addr = self.fs.lookup_addr(parent, name)
            await h.inode(addr, SH)
            return self._entry(self.fs.inode(addr))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, n in inode_list:
            addr = self._addr(ino)
            try:
                cached = self.fs.inodes.get(addr)
                if self.fs.refs.get(addr, 0) <= n and (
                        (cached is not None and cached.nlink == 0) or addr in self.maybe_unlinked):
                    # The last reference to an inode that is (or may be) unlinked: freeing it
                    # needs its locks.
                    self.maybe_unlinked.discard(addr)
                    await self._free_locked(addr, unref=n)
                else:
                    self.fs.unref(addr, n)
            except Exception:  # forget has no reply: log and go on
                log.exception("forget(%d) failed", addr)
            finally:
                self.fs.after_op()

    async def _free_locked(self, addr: int, unref: int = 0) -> None:
        """Drop `unref` kernel references and free the inode if that leaves it unlinked and
        unused, under its locks."""
        async with self.held() as h:
            await h.inode(addr, EX)
            try:
                rgrps = self.fs.rgrps_of(addr)  # read afresh under the lock
            except FsError:  # freed meanwhile by another node
                self.fs.unref(addr, unref)
                return
            await h.rgrps(rgrps)
            self.fs.unref(addr, unref)  # lock_nolock: frees it here
            await self._free_if_unused(addr)

    async def _free_if_unused(self, addr: int) -> None:
        """In a cluster, free an unlinked inode that no node has open any more (GFS's IOPEN
        lock).  The caller holds its INODE lock in EX and its resource groups' locks.  Every
        other node with the file open holds the IOPEN lock in SH (it took it before the INODE
        lock left it: pin_before_unlock), so a grant of EX, tried once (TRY_1CB), says nobody
        has; if somebody has, memexpd calls it back and that node frees the inode itself once
        done with it (iopen_wanted)."""
        if not isinstance(self.locks, Glocks):
            return  # lock_nolock: Filesystem.unref and unlink free at once
        try:
            i = self.fs.inode(addr)
        except FsError:
            return
        if (i.nlink or self.fs.refs.get(addr, 0) or self.open_count.get(addr)
                or self.fs.alloc.state(addr) != UNLINKED):
            return  # linked, or in use here: the last forget comes back
        name = (IOPEN, addr)
        # Our own SH goes first: two nodes that each fail a try while keeping theirs would
        # each wait for the other forever.
        await self.locks.let_go(name)
        try:
            await self.locks.try_acquire(name, EX, TRY_1CB)
        except TryFailed as e:
            log.debug("unlinked inode %d is open on another node (%s): freed there", addr, e)
            self.fs.counters["unlinked_held_elsewhere"] += 1
            return
        except Exception as e:  # noqa: BLE001 - it stays unlinked: the next first mount frees it
            log.warning("cannot free unlinked inode %d now: %s", addr, e)
            return
        try:
            if self.fs.free_unlinked(addr):
                self.fs.counters["unlinked_freed"] += 1
        finally:
            self.locks.release(name)
            self.locks.drop(name)

    def iopen_wanted(self, addr: int) -> None:
        """Another node tried to free the inode and found this node holding its IOPEN lock
        (glock.Glocks.callback): free it from here once unused here, at the last forget if
        the kernel still knows the inode, else now."""
        if self.fs.refs.get(addr, 0) or self.open_count.get(addr):
            self.maybe_unlinked.add(addr)
        elif isinstance(self.locks, Glocks):
            self.locks.nursery.start_soon(self._free_later, addr)

    async def _free_later(self, addr: int) -> None:
        try:
            await self._free_locked(addr)
        except Exception:  # noqa: BLE001 - nobody waits for this: log and go on
            log.exception("freeing unlinked inode %d failed", addr)
        finally:
            self.fs.after_op()

    @_errors
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, SH)
            return self._entry(self.fs.inode(addr), counted=False)

    @_errors
    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, EX)
            if fields.update_size:
                await h.rgrps(self.fs.rgrps_of(addr, -(-attr.st_size // BLOCK)))
                await h.for_alloc(2)
            i = self.fs.setattr(
                addr,
                mode=attr.st_mode if fields.update_mode else None,
                uid=attr.st_uid if fields.update_uid else None,
                gid=attr.st_gid if fields.update_gid else None,
                size=attr.st_size if fields.update_size else None,
                atime=attr.st_atime_ns if fields.update_atime else None,
                mtime=attr.st_mtime_ns if fields.update_mtime else None)
            return self._entry(i, counted=False)

    @_errors
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, SH)
            return self.fs.readlink(addr)

    @_errors
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        s = self.fs.statfs(fresh=not isinstance(self.locks, NoLocks))
        d = pyfuse3.StatvfsData()
        d.f_bsize = d.f_frsize = s["bsize"]
        d.f_blocks, d.f_bfree, d.f_bavail = s["blocks"], s["bfree"], s["bfree"]
        d.f_files, d.f_ffree, d.f_favail = s["files"], s["ffree"], s["ffree"]
        d.f_namemax = s["namemax"]
        return d

    # -- namespace ----------------------------------------------------------------------

    async def _new(self, parent_inode: int, make: Callable[[int], Inode], extra_blocks: int = 0
                   ) -> Inode:
        parent = self._addr(parent_inode)
        async with self.held() as h:
            await h.inode(parent, EX)
            await h.for_alloc(3 + extra_blocks)
            child = make(parent)
            self._reserve_ahead(child.addr)
            # Lock the new inode before the parent goes: another node may still cache a lock
            # on this block number from an inode that lived here before.
            await h.inode(child.addr, EX)
            return child

    def _reserve_ahead(self, addr: int) -> None:
        """Reserve the blocks the next new inodes will get (Allocator.reserve), a batch at a
        time, and in a cluster ask for their glocks now: creates then find them granted
        instead of waiting a round trip to memexpd each (measured: 0.25 ms a create), and the
        node's cost of a request is shared by the batch.  Only a shortcut: a create still
        takes its inode's lock, and an EX glock on a free block keeps no other node from
        anything (it cannot allocate the block while we hold its resource group; if it gets
        the group, it asks for the lock and we give it up).  lock_nolock reserves too: one
        placement policy whatever the lock protocol."""
        a = self.fs.alloc
        if len(a.reserved) > self.ahead // 2:
            return
        # The window doubles while creates keep coming: a lone create asks for a few locks
        # it may never use, a stream of creates for many at a time.
        self.ahead = min(2 * self.ahead, LOCK_AHEAD)
        new = a.reserve(max(a.reserved, default=addr) + 1, self.ahead - len(a.reserved))
        if new and isinstance(self.locks, Glocks):
            self.locks.prefetch([(INODE, b) for b in new], EX)

    @_errors
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._entry(await self._new(
            parent_inode, lambda p: self.fs.create(p, name, mode, ctx.uid, ctx.gid, rdev)))

    @_errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._entry(await self._new(
            parent_inode, lambda p: self.fs.mkdir(p, name, mode, ctx.uid, ctx.gid)))

    @_errors
    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._entry(await self._new(
            parent_inode, lambda p: self.fs.symlink(p, name, target, ctx.uid, ctx.gid), 2))

    @_errors
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        addr, parent = self._addr(inode), self._addr(new_parent_inode)
        async with self.held() as h:
            await h.inode(parent, EX)
            await h.inode(addr, EX)
            await h.for_alloc(2)
            return self._entry(self.fs.link(addr, parent, new_name))

    async def _remove(self, parent_inode: int, name: bytes, remove: Callable[[int, bytes], None]) -> None:
        parent = self._addr(parent_inode)
        async with self.held() as h:
            await h.inode(parent, EX)
            addr = self.fs.lookup_addr(parent, name)
            await h.inode(addr, EX)
            await h.rgrps(self.fs.rgrps_of(addr))
            remove(parent, name)
            await self._free_if_unused(addr)

    @_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._remove(parent_inode, name, self.fs.unlink)

    @_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._remove(parent_inode, name, self.fs.rmdir)

    @_errors
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: pyfuse3.RequestContext) -> None:
        op, np = self._addr(parent_inode_old), self._addr(parent_inode_new)
        async with self.held() as h:
            if op != np:  # GFS serialises cross-directory renames cluster-wide
                await h.take((NONDISK, RENAME_LOCK), EX)
            await h.inodes([op, np], EX)
            src = self.fs.lookup_addr(op, name_old)
            try:
                dst: int | None = self.fs.lookup_addr(np, name_new)
            except FsError:
                dst = None
            await h.inodes([src] + ([dst] if dst else []), EX)
            if dst:
                await h.rgrps(self.fs.rgrps_of(dst))
            await h.for_alloc(2)
            self.fs.rename(op, name_old, np, name_new,
                           noreplace=bool(flags & pyfuse3.RENAME_NOREPLACE),
                           exchange=bool(flags & pyfuse3.RENAME_EXCHANGE))
            if dst:
                await self._free_if_unused(dst)

    # -- files --------------------------------------------------------------------------

    def _fileinfo(self, addr: int, flags: int) -> pyfuse3.FileInfo:
        """A new handle (the caller holds the inode's glock: see pin_before_unlock)."""
        fh = self._fh()
        self.handles[fh] = (addr, bool(flags & os.O_APPEND))
        self.open_count[addr] = self.open_count.get(addr, 0) + 1
        # direct_io: no page cache, so another node's write is read at once (ogfs.md 3.2).
        return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False)

    @_errors
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, EX if flags & os.O_TRUNC else SH)
            i = self.fs.inode(addr)
            if flags & os.O_TRUNC and not stat.S_ISDIR(i.mode):
                await h.rgrps(self.fs.rgrps_of(addr))
                self.fs.truncate(addr, 0)
            return self._fileinfo(addr, flags)

    @_errors
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        try:
            i = await self._new(parent_inode, lambda p: self.fs.create(p, name, mode, ctx.uid, ctx.gid))
        except FsError as e:
            # Another node created the name after our lookup said it was not there: without
            # O_EXCL, open(O_CREAT) opens what is there now, as on a local filesystem.
            if e.errno != errno.EEXIST or flags & os.O_EXCL:
                raise
            parent = self._addr(parent_inode)
            async with self.held() as h:
                await h.inode(parent, SH)
                addr = self.fs.lookup_addr(parent, name)
                await h.inode(addr, EX if flags & os.O_TRUNC else SH)
                i = self.fs.inode(addr)
                if stat.S_ISDIR(i.mode):
                    raise FsError(errno.EISDIR) from None
                if flags & os.O_TRUNC:
                    await h.rgrps(self.fs.rgrps_of(addr))
                    self.fs.truncate(addr, 0)
        return self._fileinfo(i.addr, flags), self._entry(i)

    @_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        addr = self.handles[fh][0]
        async with self.held() as h:
            await h.inode(addr, SH)
            return self.fs.read(addr, off, size)

    @_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        addr, append = self.handles[fh]
        async with self.held() as h:
            await h.inode(addr, EX)
            await h.for_alloc(len(buf) // BLOCK + 3)
            if append:  # the size as of now, under the lock: appends from two nodes interleave whole
                off = self.fs.inode(addr).size
            return self.fs.write(addr, off, buf)

    @_errors
    async def flush(self, fh: int) -> None:
        pass

    @_errors
    async def release(self, fh: int) -> None:
        addr, _ = self.handles.pop(fh)
        left = self.open_count.pop(addr) - 1
        if left:
            self.open_count[addr] = left
        elif addr in self.iopen_pinned:
            self.iopen_pinned.discard(addr)
            self.locks.release((IOPEN, addr))  # stays cached until another node asks

    async def pin_before_unlock(self, addr: int) -> None:
        """The inode's glock is about to leave this node while files of it are open here: take
        its IOPEN lock in SH first, until the last close.  That is how a node that frees an
        inode learns it is open elsewhere (_free_if_unused).  While this node holds the inode's
        glock nobody can free it (that takes the glock in EX), so opens need no IOPEN lock of
        their own, and the usual create-write-close never asks memexpd for one.  It is granted
        at once: a node holds IOPEN in EX only while it holds the inode's glock in EX, and we
        hold that glock until this returns."""
        if not self.open_count.get(addr) or addr in self.iopen_pinned:
            return
        await self.locks.acquire((IOPEN, addr), SH)
        if self.open_count.get(addr) and addr not in self.iopen_pinned:
            self.iopen_pinned.add(addr)
        else:  # closed meanwhile
            self.locks.release((IOPEN, addr))

    @_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        self.fs.fsync()

    # -- directories ----------------------------------------------------------------------

    @_errors
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, SH)
            fh = self._fh()
            # A snapshot: readdir offsets stay valid while the directory changes underneath.
            self.dirhandles[fh] = self.fs.readdir(addr)
            return fh

    @_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        entries = self.dirhandles[fh]
        for k in range(start_id, len(entries)):
            name, addr = entries[k]
            async with self.held() as h:
                await h.inode(addr, SH)
                try:
                    i = self.fs.inode(addr)
                except FsError:
                    continue  # removed since opendir
                # The reply goes out after the loop, when this entry's glock may be gone (a
                # later entry's lock can make us await): in a cluster nothing is cached from it.
                entry = self._entry(i, counted=False, cache=not self.clustered)
                if not pyfuse3.readdir_reply(token, name, entry, k + 1):
                    break
                self.fs.ref(addr)  # readdirplus: the kernel now holds a lookup for it

    @_errors
    async def releasedir(self, fh: int) -> None:
        self.dirhandles.pop(fh, None)

    @_errors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        self.fs.fsync()

    # -- extended attributes ----------------------------------------------------------------

    @_errors
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, EX)
            self.fs.setxattr(addr, name, value)

    @_errors
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, SH)
            return self.fs.getxattr(addr, name)

    @_errors
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, SH)
            return self.fs.listxattr(addr)

    @_errors
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        addr = self._addr(inode)
        async with self.held() as h:
            await h.inode(addr, EX)
            self.fs.removexattr(addr, name)
