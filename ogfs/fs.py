"""The ogfs filesystem on one node: every operation, on in-memory metadata, with a journal.

This module knows nothing of FUSE (ogfs/fuse_ops.py adapts it) so tests can drive it directly.

Transactions.  Operations run one at a time (the daemon's event loop never yields inside one),
so between two operations the in-memory metadata is always consistent.  Each operation only
marks what it changed dirty; `commit()` packs every dirty dinode, directory block, extent
block and resource group into one journal transaction (group commit).  So a transaction is
always a whole number of operations: after a crash, replay gives the state after some
operation, never the middle of one.  Commits happen every `commit` seconds, on fsync, when
the dirty set grows large, and at unmount.

Ordered data.  File data is not journaled.  New blocks are written in place during write(),
before the commit that makes them part of a file; freed blocks wait in quarantine until the
next checkpoint (see alloc.py and the invariant in journal.py).
"""

from __future__ import annotations

import errno
import logging
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import journal
from .alloc import Allocator, NoSpace, Rgrp
from .blockdev import Device
from .inode import MAX_EXTENTS, Dir, Inode, ext_blocks_needed
from .layout import (
    BLOCK,
    DINODE,
    SB_BLOCK,
    STUFF_MAX,
    UNLINKED,
    USED,
    XATTR_SIZE,
    CorruptBlock,
    Superblock,
    pack_xattrs,
    unpack_dir_block,
    unpack_ext_block,
    unpack_rgrp,
    unpack_rindex,
)

log = logging.getLogger("ogfs")

NAME_MAX = 255
MAX_FILE_SIZE = (1 << 32) * BLOCK  # extents address 2^32 logical blocks: 16 TiB
ZERO = bytes(BLOCK)


class FsError(Exception):
    def __init__(self, err: int, msg: str = "") -> None:
        super().__init__(err, msg or errno.errorcode.get(err, str(err)))
        self.errno = err


class MountError(Exception):
    """The filesystem cannot be mounted; the message says why."""


@dataclass
class Options:
    jid: int = 0
    readonly: bool = False
    commit_interval: float = 1.0  # seconds between group commits; 0 = commit every operation
    barrier: bool = True          # fdatasync the device on fsync and checkpoint
    crash_after: int | None = None
    on_crash: Callable[[], None] | None = None
    # Cluster mounts (lock_memexp): which journals this mount must replay (None: every dirty
    # one, as a first mounter or a lone lock_nolock node does), and whether allocation is
    # limited to the resource groups this node holds locks on (ogfs/glock.py grants them).
    recover: list[int] | None = None
    cluster: bool = False
    # Asked before every write and flush: the cluster mount's disk lease (ogfs/lease.py).
    guard: Callable[[], str | None] | None = None


def now() -> int:
    return time.time_ns()


def dtype_of(mode: int) -> int:
    return stat.S_IFMT(mode) >> 12


class Filesystem:
    def __init__(self, dev_path: str, opts: Options) -> None:
        self.opts = opts
        kw = {} if opts.on_crash is None else {"on_crash": opts.on_crash}
        self.dev = Device(dev_path, readonly=opts.readonly, crash_after=opts.crash_after,
                          guard=opts.guard, **kw)
        try:
            self.sb = Superblock.unpack(self.dev.read(SB_BLOCK))
        except Exception as err:
            self.dev.close()
            raise MountError(f"{dev_path}: no ogfs filesystem ({err})") from None
        if not 0 <= opts.jid < len(self.sb.journals):
            self.dev.close()
            raise MountError(f"{dev_path}: no journal {opts.jid} (the filesystem has "
                             f"{len(self.sb.journals)}; add one with mkfs.ogfs -j)")
        self.jid = opts.jid
        self.replayed: dict[int, int] = {}
        self._recover_journals()
        ri_blocks = [self.dev.read(self.sb.rindex_start + i) for i in range(self.sb.rindex_blocks)]
        rgrps = []
        for i, e in enumerate(unpack_rindex(ri_blocks, self.sb.rgrp_count)):
            gen, free, dinodes, unlinked, bm = unpack_rgrp(self.dev.read(e.header))
            rgrps.append(Rgrp(i, e, gen, free, dinodes, unlinked, bm))
        self.alloc = Allocator(rgrps, self.jid, len(self.sb.journals))
        if opts.cluster:
            self.alloc.allowed = set()  # grows as this node is granted resource group locks
        self.inodes: dict[int, Inode] = {}
        self.refs: dict[int, int] = {}  # kernel lookups + open handles; an unlinked inode lives until 0
        self.dirty_inodes: set[Inode] = set()
        self.dirty_ext: set[Inode] = set()
        self.dirty_dirblocks: dict[int, tuple[Dir, int]] = {}
        self.uninstalled: dict[int, bytes | bytearray] = {}
        self.log = journal.Log(self.dev, self.sb.journals[self.jid], self.jid, self.sb.uuid)
        self.last_commit = time.monotonic()
        # unlinked_*: cluster mounts only (fuse_ops.Operations._free_if_unused)
        self.dropped_commits = 0  # group commits dropped after a withdraw (group_commit)
        self.counters = {"commits": 0, "checkpoints": 0, "fsyncs": 0, "ops": 0,
                         "unlinked_freed": 0, "unlinked_held_elsewhere": 0}
        if not opts.readonly:
            seq, _ = self.log.read_head()
            self.log.write_head(seq, 0)  # mounted: the journal is ours and dirty until unmount
            if opts.recover is None:  # alone on the device: nobody else can hold them open
                self._reclaim_unlinked()
            self.commit()

    # ------------------------------------------------------------------------------------
    # Mount-time recovery
    # ------------------------------------------------------------------------------------

    def _recover_journals(self) -> None:
        """Replay dirty journals: every one when this node is alone (lock_nolock, or the first
        mounter of a cluster), else the ones the lock server handed over."""
        todo = range(len(self.sb.journals)) if self.opts.recover is None else self.opts.recover
        for jid in todo:
            region = self.sb.journals[jid]
            state, n = journal.journal_state(self.dev, region, jid, self.sb.uuid)
            if state == "clean":
                continue
            if self.opts.readonly:
                if n:
                    self.dev.close()
                    raise MountError(f"journal {jid} holds {n} transactions to replay: "
                                     f"mount read-write once to recover it")
                continue
            self.replayed[jid] = journal.replay(self.dev, region, jid, self.sb.uuid)

    def _reclaim_unlinked(self) -> None:
        """Free inodes that were unlinked while open when the last mount ended."""
        for rg in self.alloc.rgrps:
            if not rg.unlinked:
                continue
            for i in range(rg.entry.data_count):
                addr = rg.entry.data_start + i
                if self.alloc.state(addr) == UNLINKED:
                    ino = self.inode(addr)
                    self._destroy(ino)

    # ------------------------------------------------------------------------------------
    # The inode cache
    # ------------------------------------------------------------------------------------

    def inode(self, addr: int) -> Inode:
        ino = self.inodes.get(addr)
        if ino is not None:
            return ino
        try:
            rg = self.alloc.rgrp_of(addr)
        except ValueError:
            raise FsError(errno.ENOENT) from None
        # The bitmap says whether a dinode lives here, but in a cluster our copy of a resource
        # group we hold no lock on may be stale: then the dinode block itself must say so.
        if self.alloc.allowed is None or rg.index in self.alloc.allowed:
            if self.alloc.state(addr) not in (DINODE, UNLINKED):
                raise FsError(errno.ENOENT)
        try:
            ino, _kind, indirect = Inode.unpack(addr, self.read_meta(addr))
        except (CorruptBlock, ValueError):
            raise FsError(errno.ENOENT) from None
        for b in indirect:
            gen, exts = unpack_ext_block(self.read_meta(b))
            ino.ext_blocks.append(b)
            ino.ext_gens.append(gen)
            ino.extents += exts
        self.inodes[addr] = ino
        return ino

    def dir(self, ino: Inode) -> Dir:
        if not ino.is_dir:
            raise FsError(errno.ENOTDIR)
        if ino.dir is None:
            d = Dir()
            for lblk in range(sum(n for _, _, n in ino.extents)):
                p, _ = ino.map(lblk)
                assert p is not None
                gen, ents = unpack_dir_block(self.read_meta(p))
                d.add_block(p, gen, ents)
            ino.dir = d
        return ino.dir

    def read_meta(self, blk: int) -> bytes | bytearray:
        """A metadata block as of the last commit: committed images not yet written home
        (checkpointed) are newer than the device's copy."""
        img = self.uninstalled.get(blk)
        return img if img is not None else self.dev.read(blk)

    def _dirty(self, ino: Inode) -> None:
        self.dirty_inodes.add(ino)

    def _check_writable(self) -> None:
        if self.opts.readonly:
            raise FsError(errno.EROFS)
        if self.dev.withdrawn is not None:  # nothing changed now could ever reach the disk
            raise FsError(errno.EIO)

    # ------------------------------------------------------------------------------------
    # Commit and checkpoint
    # ------------------------------------------------------------------------------------

    def dirty_count(self) -> int:
        return (len(self.dirty_inodes) + len(self.dirty_dirblocks) + len(self.alloc.dirty_rgrps())
                + sum(len(i.ext_blocks) for i in self.dirty_ext))

    def commit(self) -> None:
        """One journal transaction with everything dirty (called between operations only)."""
        if self.opts.readonly:
            return
        images: list[tuple[int, bytes | bytearray]] = []
        for ino in self.dirty_inodes:
            images.append((ino.addr, ino.pack(self.jid)))
        for ino in self.dirty_ext:
            images += ino.pack_ext_blocks(self.jid)
        for addr, (d, k) in self.dirty_dirblocks.items():
            images.append((addr, d.pack(k, self.jid)))
        for rg in self.alloc.dirty_rgrps():
            images.append((rg.entry.header, rg.pack(self.jid)))
            rg.dirty = False
        self.dirty_inodes.clear()
        self.dirty_ext.clear()
        self.dirty_dirblocks.clear()
        self.last_commit = time.monotonic()
        if not images:
            return
        if not self.log.space_for(len(images)):
            self.checkpoint()
        self.log.commit(images)
        self.alloc.committed()
        self.counters["commits"] += 1
        self.uninstalled.update(images)
        if self.log.used * 2 > self.log.region.length:
            self.checkpoint()

    def group_commit(self) -> None:
        """``commit`` where no request waits for the answer (the daemon's timer, after each
        operation). After a withdraw (blockdev.py) there is nobody to tell, so it is dropped and
        the log says so once: the operations since the last commit that reached the disk are lost,
        as in a crash, and the journal replays up to that commit at the next mount. A cluster
        mount never drops a checkpoint (see ``checkpoint``)."""
        try:
            self.commit()
        except OSError:
            if self.dev.withdrawn is None:
                raise
            if not self.dropped_commits:
                log.error("withdrawn: %s: dropping the group commit; the operations since the last "
                          "commit that reached the disk are lost", self.dev.path)
            self.dropped_commits += 1

    def checkpoint(self, flags: int = 0) -> None:
        """Write every committed block home and empty the journal.

        A withdrawn cluster mount must not get past this: a lock may leave the node right after a
        checkpoint, and its journal would still hold blocks it never wrote home, which the next
        holder would not see. The error goes up and ends the daemon, its locks held, so the
        cluster recovers its journal once it is STOMITHed (GFS's withdraw)."""
        if self.dev.withdrawn is not None and self.opts.cluster:
            log.error("withdrawn: %s: a cluster mount cannot write journal %d home, so it must not "
                      "give up its locks: stopping here; another node recovers the journal once this "
                      "one is STOMITHed", self.dev.path, self.jid)
        if self.opts.barrier:
            self.dev.flush()  # the log must be durable before home blocks change
        self.log.checkpoint(sorted(self.uninstalled.items()), flags)
        if self.opts.barrier:
            self.dev.flush()
        self.uninstalled.clear()
        self.alloc.release_quarantine()
        self.counters["checkpoints"] += 1

    def after_op(self) -> None:
        """Called by the FUSE layer after each operation: commit when it is time."""
        self.counters["ops"] += 1
        if self.opts.readonly:
            return
        if (self.opts.commit_interval == 0 or self.dirty_count() * 4 > self.log.region.length
                or time.monotonic() - self.last_commit >= self.opts.commit_interval
                or self._space_waits_for_commit()):
            self.group_commit()

    def _space_waits_for_commit(self) -> bool:
        """Little space is usable but a lot was just freed: commit so a checkpoint can free it."""
        a = self.alloc
        return bool(a.uncommitted_frees) and a.free_blocks - len(a.quarantine) < a.total_blocks // 20

    def fsync(self) -> None:
        self.counters["fsyncs"] += 1
        self.commit()
        if self.opts.barrier and not self.opts.readonly:
            self.dev.flush()

    def unmount(self) -> None:
        if not self.opts.readonly and self.dev.withdrawn is None:
            self.commit()
            self.checkpoint(journal.F_UNMOUNT)
        elif self.dev.withdrawn is not None:
            log.error("withdrawn: %s unmounted with its journal %d dirty: the next mount replays it",
                      self.dev.path, self.jid)
        self.dev.close()

    # ------------------------------------------------------------------------------------
    # Allocation helpers
    # ------------------------------------------------------------------------------------

    def _alloc(self, want: int, state: int, goal: int | None = None) -> tuple[int, int]:
        try:
            return self.alloc.alloc(want, state, goal)
        except NoSpace:
            if not self.alloc.quarantine - self.alloc.uncommitted_frees:
                raise FsError(errno.ENOSPC) from None
        # Blocks freed by committed transactions become usable after a checkpoint.  No commit
        # here: we are inside an operation, and a transaction must hold whole operations.
        self.checkpoint()
        try:
            return self.alloc.alloc(want, state, goal)
        except NoSpace:
            raise FsError(errno.ENOSPC) from None

    def _new_inode(self, parent: Inode, mode: int, uid: int, gid: int, rdev: int = 0) -> Inode:
        addr, _ = self._alloc(1, DINODE, goal=parent.addr)
        t = now()
        ino = Inode(addr, mode, uid, gid, 1, 0, t, t, t, rdev, parent=parent.addr)
        if stat.S_ISDIR(mode):
            ino.nlink = 2
            ino.dir = Dir()
            ino.stuffed = None  # directories always live in directory blocks
        self.inodes[addr] = ino
        self._dirty(ino)
        return ino

    def _fit_ext_blocks(self, ino: Inode) -> None:
        """Give the inode as many extent blocks as its extent list needs now."""
        need = ext_blocks_needed(len(ino.extents))
        if len(ino.extents) > MAX_EXTENTS:
            raise FsError(errno.EFBIG, "file too fragmented")
        while len(ino.ext_blocks) < need:
            goal = ino.ext_blocks[-1] + 1 if ino.ext_blocks else ino.addr
            b, _ = self._alloc(1, USED, goal)
            ino.ext_blocks.append(b)
            ino.ext_gens.append(0)
        while len(ino.ext_blocks) > need:
            self.alloc.free(ino.ext_blocks.pop(), 1)
            ino.ext_gens.pop()
        if ino.ext_blocks:
            self.dirty_ext.add(ino)
        self._dirty(ino)

    def _destroy(self, ino: Inode) -> None:
        """Free an inode and everything it owns."""
        for p, n in ino.cut_extents(0):
            self.alloc.free(p, n)
        for b in ino.ext_blocks:
            self.alloc.free(b, 1)
        ino.ext_blocks, ino.ext_gens = [], []
        self.alloc.free(ino.addr, 1)
        self.inodes.pop(ino.addr, None)
        self.dirty_inodes.discard(ino)
        self.dirty_ext.discard(ino)
        if ino.dir is not None:
            for addr in ino.dir.blocks:
                self.dirty_dirblocks.pop(addr, None)

    def _drop_link(self, ino: Inode) -> None:
        ino.nlink -= 1
        ino.ctime = now()
        if ino.nlink <= 0 or (ino.is_dir and ino.nlink <= 1):
            ino.nlink = 0
            # In a cluster another node may have it open: it is freed only under its IOPEN
            # lock in EX (fuse_ops.py, Operations._free_if_unused).
            if self.refs.get(ino.addr, 0) > 0 or self.opts.cluster:
                self.alloc.set_state(ino.addr, UNLINKED)  # reclaimed at next mount if we crash
                self._dirty(ino)
            else:
                self._destroy(ino)
        else:
            self._dirty(ino)

    # ------------------------------------------------------------------------------------
    # Directories
    # ------------------------------------------------------------------------------------

    def _dir_add(self, dino: Inode, name: bytes, child: Inode) -> None:
        d = self.dir(dino)
        k = d.find_room(name)
        if k is None:
            lblk = len(d.blocks)
            goal = d.blocks[-1] + 1 if d.blocks else dino.addr
            p, _ = self._alloc(1, USED, goal)
            dino.add_extent(lblk, p, 1)
            try:
                self._fit_ext_blocks(dino)
            except FsError:
                dino.cut_extents(lblk)
                self.alloc.free(p, 1)
                raise
            d.add_block(p, 0, {})
            k = lblk
            dino.size = len(d.blocks) * BLOCK
        d.put(k, name, child.addr, dtype_of(child.mode))
        self.dirty_dirblocks[d.blocks[k]] = (d, k)
        dino.mtime = dino.ctime = now()
        self._dirty(dino)

    def _dir_remove(self, dino: Inode, name: bytes) -> None:
        d = self.dir(dino)
        k = d.remove(name)
        self.dirty_dirblocks[d.blocks[k]] = (d, k)
        dino.mtime = dino.ctime = now()
        self._dirty(dino)

    @staticmethod
    def _check_name(name: bytes) -> None:
        if len(name) > NAME_MAX:
            raise FsError(errno.ENAMETOOLONG)
        if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
            raise FsError(errno.EINVAL)

    # ------------------------------------------------------------------------------------
    # Namespace operations
    # ------------------------------------------------------------------------------------

    @property
    def root(self) -> int:
        return self.sb.root

    def lookup(self, parent: int, name: bytes) -> Inode:
        pino = self.inode(parent)
        if name == b".":
            return pino
        if name == b"..":
            return self.inode(pino.parent or self.root)
        hit = self.dir(pino).get(name)
        if hit is None:
            raise FsError(errno.ENOENT)
        return self.inode(hit[0])

    def readdir(self, ino: int) -> list[tuple[bytes, int]]:
        d = self.dir(self.inode(ino))
        return [(name, e[0]) for ents in d.ents for name, e in ents.items()]

    def _create_node(self, parent: int, name: bytes, mode: int, uid: int, gid: int,
                     rdev: int = 0) -> Inode:
        self._check_writable()
        self._check_name(name)
        pino = self.inode(parent)
        if self.dir(pino).get(name) is not None:
            raise FsError(errno.EEXIST)
        child = self._new_inode(pino, mode, uid, gid, rdev)
        try:
            self._dir_add(pino, name, child)
        except FsError:
            self._destroy(child)
            raise
        if child.is_dir:
            pino.nlink += 1
        return child

    def create(self, parent: int, name: bytes, mode: int, uid: int = 0, gid: int = 0,
               rdev: int = 0) -> Inode:
        if stat.S_IFMT(mode) == 0:
            mode |= stat.S_IFREG
        if stat.S_ISDIR(mode):
            raise FsError(errno.EINVAL)
        return self._create_node(parent, name, mode, uid, gid, rdev)

    def mkdir(self, parent: int, name: bytes, mode: int, uid: int = 0, gid: int = 0) -> Inode:
        return self._create_node(parent, name, stat.S_IFDIR | (mode & 0o7777), uid, gid)

    def symlink(self, parent: int, name: bytes, target: bytes, uid: int = 0, gid: int = 0) -> Inode:
        if len(target) >= BLOCK:
            raise FsError(errno.ENAMETOOLONG)
        ino = self._create_node(parent, name, stat.S_IFLNK | 0o777, uid, gid)
        self.write(ino.addr, 0, target, touch=False)
        return ino

    def readlink(self, ino: int) -> bytes:
        i = self.inode(ino)
        if not stat.S_ISLNK(i.mode):
            raise FsError(errno.EINVAL)
        return self.read(ino, 0, i.size)

    def link(self, ino: int, parent: int, name: bytes) -> Inode:
        self._check_writable()
        self._check_name(name)
        target, pino = self.inode(ino), self.inode(parent)
        if target.is_dir:
            raise FsError(errno.EPERM)
        if self.dir(pino).get(name) is not None:
            raise FsError(errno.EEXIST)
        if target.nlink == 0:
            raise FsError(errno.ENOENT)
        self._dir_add(pino, name, target)
        target.nlink += 1
        target.ctime = now()
        self._dirty(target)
        return target

    def unlink(self, parent: int, name: bytes) -> None:
        self._check_writable()
        pino = self.inode(parent)
        child = self.lookup(parent, name)
        if child.is_dir:
            raise FsError(errno.EISDIR)
        self._dir_remove(pino, name)
        self._drop_link(child)

    def rmdir(self, parent: int, name: bytes) -> None:
        self._check_writable()
        if name == b".":
            raise FsError(errno.EINVAL)
        pino = self.inode(parent)
        child = self.lookup(parent, name)
        if not child.is_dir:
            raise FsError(errno.ENOTDIR)
        if len(self.dir(child)):
            raise FsError(errno.ENOTEMPTY)
        self._dir_remove(pino, name)
        pino.nlink -= 1
        self._drop_link(child)

    def rename(self, old_parent: int, old: bytes, new_parent: int, new: bytes,
               noreplace: bool = False, exchange: bool = False) -> None:
        self._check_writable()
        self._check_name(new)
        op, np = self.inode(old_parent), self.inode(new_parent)
        src = self.lookup(old_parent, old)
        hit = self.dir(np).get(new)
        dst = self.inode(hit[0]) if hit else None
        if exchange:
            raise FsError(errno.EINVAL)  # RENAME_EXCHANGE is not supported
        if dst is src:
            return
        if dst is not None and noreplace:
            raise FsError(errno.EEXIST)
        if src.is_dir:
            # A directory may not move below itself.
            a = np
            while True:
                if a is src:
                    raise FsError(errno.EINVAL)
                if a.addr == self.root:
                    break
                a = self.inode(a.parent)
        if dst is not None:
            if src.is_dir and not dst.is_dir:
                raise FsError(errno.ENOTDIR)
            if dst.is_dir and not src.is_dir:
                raise FsError(errno.EISDIR)
            if dst.is_dir and len(self.dir(dst)):
                raise FsError(errno.ENOTEMPTY)
        # Remove the target first so the new entry can reuse its room; nothing in between can
        # fail except allocating a directory block, and then we put the target back.
        if dst is not None:
            self._dir_remove(np, new)
        self._dir_remove(op, old)
        try:
            self._dir_add(np, new, src)
        except FsError:
            self._dir_add(op, old, src)
            if dst is not None:
                self._dir_add(np, new, dst)
            raise
        if dst is not None:
            if dst.is_dir:
                np.nlink -= 1
            self._drop_link(dst)
        if src.is_dir and op is not np:
            op.nlink -= 1
            np.nlink += 1
        src.parent = np.addr if src.is_dir else src.parent
        src.ctime = now()
        self._dirty(src)

    # ------------------------------------------------------------------------------------
    # Attributes
    # ------------------------------------------------------------------------------------

    def setattr(self, ino: int, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None, atime: int | None = None,
                mtime: int | None = None) -> Inode:
        i = self.inode(ino)
        self._check_writable()
        if size is not None:
            self.truncate(ino, size)
        if mode is not None:
            i.mode = stat.S_IFMT(i.mode) | (mode & 0o7777)
        if uid is not None:
            i.uid = uid
        if gid is not None:
            i.gid = gid
        if atime is not None:
            i.atime = atime
        if mtime is not None:
            i.mtime = mtime
        i.ctime = now()
        self._dirty(i)
        return i

    def getxattr(self, ino: int, name: bytes) -> bytes:
        v = self.inode(ino).xattrs.get(name)
        if v is None:
            raise FsError(errno.ENODATA)
        return v

    def listxattr(self, ino: int) -> list[bytes]:
        return list(self.inode(ino).xattrs)

    def setxattr(self, ino: int, name: bytes, value: bytes, create: bool = False,
                 replace: bool = False) -> None:
        self._check_writable()
        if not name.startswith(b"user."):
            raise FsError(errno.EOPNOTSUPP)
        if len(name) > 255:
            raise FsError(errno.ERANGE)
        i = self.inode(ino)
        if create and name in i.xattrs:
            raise FsError(errno.EEXIST)
        if replace and name not in i.xattrs:
            raise FsError(errno.ENODATA)
        new = dict(i.xattrs)
        new[name] = value
        if len(pack_xattrs(new)) > XATTR_SIZE:
            raise FsError(errno.ENOSPC, "no room for extended attributes in the dinode")
        i.xattrs = new
        i.ctime = now()
        self._dirty(i)

    def removexattr(self, ino: int, name: bytes) -> None:
        self._check_writable()
        i = self.inode(ino)
        if name not in i.xattrs:
            raise FsError(errno.ENODATA)
        del i.xattrs[name]
        i.ctime = now()
        self._dirty(i)

    def statfs(self, fresh: bool = False) -> dict[str, int]:
        """Space and inodes from the resource groups.  `fresh` (cluster mounts): read the groups
        this node holds no lock on from the device, since other nodes change them."""
        total = self.alloc.total_blocks
        free = files = 0
        for rg in self.alloc.rgrps:
            if fresh and self.alloc.allowed is not None and rg.index not in self.alloc.allowed:
                _gen, f, d, _u, _bm = unpack_rgrp(self.read_meta(rg.entry.header))
            else:
                f, d = rg.free, rg.dinodes
            free, files = free + f, files + d
        return {"bsize": BLOCK, "blocks": total, "bfree": free, "files": files + free,
                "ffree": free, "namemax": NAME_MAX}

    # ------------------------------------------------------------------------------------
    # Reference counts (the kernel's lookups and open files)
    # ------------------------------------------------------------------------------------

    def ref(self, ino: int, n: int = 1) -> None:
        self.refs[ino] = self.refs.get(ino, 0) + n

    def unref(self, ino: int, n: int = 1) -> bool:
        """Drop kernel references; True if that freed an unlinked inode (never in a cluster:
        there free_unlinked does, once no node has it open)."""
        left = self.refs.get(ino, 0) - n
        if left > 0:
            self.refs[ino] = left
            return False
        self.refs.pop(ino, None)
        i = self.inodes.get(ino)
        if i is not None and i.nlink == 0 and not self.opts.readonly and not self.opts.cluster:
            self._destroy(i)
            return True
        return False

    def free_unlinked(self, addr: int) -> bool:
        """Free an unlinked inode nobody uses any more (the caller holds its INODE and IOPEN
        locks in EX and the locks of its resource groups); True if it was one."""
        i = self.inode(addr)
        if i.nlink != 0 or self.refs.get(addr, 0) > 0 or self.alloc.state(addr) != UNLINKED:
            return False
        self._destroy(i)
        return True

    # ------------------------------------------------------------------------------------
    # What a lock covers (cluster mounts): ogfs/glock.py calls these when a lock comes and goes
    # ------------------------------------------------------------------------------------

    def is_clean(self) -> bool:
        return not (self.dirty_inodes or self.dirty_ext or self.dirty_dirblocks
                    or self.alloc.dirty_rgrps())

    def flush_for_demote(self) -> None:
        """Before an exclusive lock leaves this node: commit, and write everything home, so
        that our journal never holds a block another node may change next (journal.py)."""
        self.commit()
        if self.uninstalled:
            self.checkpoint()

    def forget_inode(self, addr: int) -> None:
        """Drop the cached inode (and directory): the next use reads it from the device."""
        i = self.inodes.get(addr)
        if i is None:
            return
        assert i not in self.dirty_inodes and i not in self.dirty_ext, "forget a dirty inode"
        del self.inodes[addr]

    def reload_rgrp(self, index: int) -> None:
        """Read a resource group afresh: another node may have changed it while we did not hold it."""
        rg = self.alloc.rgrps[index]
        assert not rg.dirty, "reload a dirty resource group"
        rg.generation, rg.free, rg.dinodes, rg.unlinked, rg.bitmap = unpack_rgrp(
            self.read_meta(rg.entry.header))
        rg.hint = 0

    def rgrps_of(self, addr: int, from_lblk: int = 0) -> set[int]:
        """Resource groups holding an inode's blocks from logical block `from_lblk` on (and its
        dinode and extent blocks when from 0): the locks a free of them needs."""
        i = self.inode(addr)
        out = set()
        if from_lblk == 0:
            out.add(self.alloc.rgrp_of(addr).index)
            out.update(self.alloc.rgrp_of(b).index for b in i.ext_blocks)
        for lblk, p, n in i.extents:
            if lblk + n > from_lblk:
                first = p + max(0, from_lblk - lblk)
                out.update(self.alloc.rgrp_of(b).index for b in range(first, p + n, 1024))
                out.add(self.alloc.rgrp_of(p + n - 1).index)
        return out

    def lookup_addr(self, parent: int, name: bytes) -> int:
        """The inode number a name points to, without reading that inode."""
        pino = self.inode(parent)
        if name == b".":
            return parent
        if name == b"..":
            return pino.parent or self.root
        hit = self.dir(pino).get(name)
        if hit is None:
            raise FsError(errno.ENOENT)
        return hit[0]

    # ------------------------------------------------------------------------------------
    # Data
    # ------------------------------------------------------------------------------------

    def _segments(self, ino: Inode, first: int, last: int) -> Iterator[tuple[int, int | None, int]]:
        """(logical block, physical block or None, count) covering [first, last]."""
        lblk = first
        while lblk <= last:
            p, n = ino.map(lblk)
            n = min(n, last - lblk + 1)
            yield lblk, p, n
            lblk += n

    def read(self, ino: int, off: int, size: int) -> bytes:
        i = self.inode(ino)
        if i.is_dir:
            raise FsError(errno.EISDIR)
        end = min(off + size, i.size)
        if off >= end:
            return b""
        if i.stuffed is not None:
            return i.stuffed[off:end].ljust(end - off, b"\0")
        first, last = off // BLOCK, (end - 1) // BLOCK
        p, n = i.map(first)
        if p is not None and n > last - first:  # one contiguous run: no copying
            return self.dev.read_bytes(p * BLOCK + off % BLOCK, end - off)
        out = bytearray()
        for lblk, p, n in self._segments(i, first, last):
            lo = max(off, lblk * BLOCK)
            hi = min(end, (lblk + n) * BLOCK)
            if p is None:
                out += bytes(hi - lo)
            else:
                out += self.dev.read_bytes(p * BLOCK + (lo - lblk * BLOCK), hi - lo)
        return bytes(out)

    def _unstuff(self, i: Inode) -> None:
        data = i.stuffed or b""
        i.stuffed = None
        i.extents = []
        if data:
            p, _ = self._alloc(1, USED, goal=i.addr + 1)
            self.dev.write(p, data.ljust(BLOCK, b"\0"))
            i.add_extent(0, p, 1)
        self._dirty(i)

    def write(self, ino: int, off: int, data: bytes, touch: bool = True) -> int:
        self._check_writable()
        i = self.inode(ino)
        if i.is_dir:
            raise FsError(errno.EISDIR)
        if not data:
            return 0
        end = off + len(data)
        if end > MAX_FILE_SIZE:
            raise FsError(errno.EFBIG)
        if i.stuffed is not None:
            if end <= STUFF_MAX:
                buf = bytearray(i.stuffed.ljust(max(i.size, end), b"\0"))
                buf[off:end] = data
                i.stuffed = bytes(buf)
                i.size = len(buf)
                if touch:
                    i.mtime = i.ctime = now()
                self._dirty(i)
                return len(data)
            self._unstuff(i)
        if off > i.size:
            self._zero_gap(i, off)
        view = memoryview(data)
        done = off  # how far the write got: on ENOSPC it is a short write, as POSIX allows
        lblk, last_lblk = off // BLOCK, (end - 1) // BLOCK
        while lblk <= last_lblk:
            p, n = i.map(lblk)
            n = min(n, last_lblk - lblk + 1)
            new = p is None
            if new:  # a hole: allocate (the run may come back shorter than asked)
                try:
                    p, n = self._alloc(n, USED, self._goal(i, lblk))
                    i.add_extent(lblk, p, n)
                    try:
                        self._fit_ext_blocks(i)
                    except FsError:
                        i.cut_extents(lblk)
                        self.alloc.free(p, n)
                        raise
                except FsError:
                    if done == off:
                        raise
                    end = done
                    break
            assert p is not None
            lo = max(off, lblk * BLOCK)
            hi = min(end, (lblk + n) * BLOCK)
            head = lo - lblk * BLOCK
            tail = (lblk + n) * BLOCK - hi
            prefix = suffix = b""
            if head:
                prefix = (ZERO if new else self.dev.read(p))[:head]
            if tail:
                suffix = (ZERO if new else self.dev.read(p + n - 1))[BLOCK - tail:]
            body = view[lo - off:hi - off]
            if prefix or suffix:
                self.dev.write_bytes(p * BLOCK, prefix + bytes(body) + suffix)
            else:
                self.dev.write_bytes(p * BLOCK, body)
            done = hi
            lblk += n
        if end > i.size:
            i.size = end
        if touch:
            i.mtime = i.ctime = now()
        self._dirty(i)
        return end - off

    def _zero_gap(self, i: Inode, upto: int) -> None:
        """Before a file grows past its end: zero the rest of its last block up to `upto`.
        Those bytes are past the end, invisible, and may hold data from before a truncate."""
        if i.size % BLOCK == 0:
            return
        p, _ = i.map(i.size // BLOCK)
        if p is None:
            return
        lo = i.size % BLOCK
        hi = min(BLOCK, lo + (upto - i.size))
        self.dev.write_bytes(p * BLOCK + lo, bytes(hi - lo))

    def _goal(self, i: Inode, lblk: int) -> int:
        """Where a new block for logical block `lblk` would best go: right after its predecessor."""
        if lblk > 0:
            p, _ = i.map(lblk - 1)
            if p is not None:
                return p + 1
        if i.extents:
            last_l, last_p, last_n = i.extents[-1]
            return last_p + last_n
        return i.addr + 1

    def truncate(self, ino: int, size: int) -> None:
        self._check_writable()
        i = self.inode(ino)
        if i.is_dir:
            raise FsError(errno.EISDIR)
        if size > MAX_FILE_SIZE:
            raise FsError(errno.EFBIG)
        if i.stuffed is not None:
            if size <= STUFF_MAX:
                i.stuffed = i.stuffed[:size].ljust(size, b"\0")
                i.size = size
                i.mtime = i.ctime = now()
                self._dirty(i)
                return
            self._unstuff(i)
        if size < i.size:
            # The bytes past the new end of the last block stay as they are: zeroing them now
            # would change the file before the smaller size is committed.  _zero_gap clears
            # them when the file grows again.
            for p, n in i.cut_extents(-(-size // BLOCK)):
                self.alloc.free(p, n)
            self._fit_ext_blocks(i)
        else:
            self._zero_gap(i, size)
        i.size = size
        i.mtime = i.ctime = now()
        self._dirty(i)
