"""pyfuse3 glue: kernel requests in, Filesystem calls out.

Each handler is an `async def` that never awaits while it touches the filesystem, so handlers
run one at a time and every operation is atomic with respect to commits (see fs.py).  Errors
become the right errno; anything unexpected is logged with its traceback and the caller gets
EIO, never a crash of the daemon.

Inode numbers are dinode block addresses, except that the kernel insists the root is 1.
"""

from __future__ import annotations

import errno
import logging
import os
import reprlib
import stat
from collections.abc import Callable
from functools import wraps
from typing import Any

import pyfuse3

from .fs import Filesystem, FsError
from .inode import Inode

log = logging.getLogger("ogfs")


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    async def wrapper(self: Operations, *args: Any) -> Any:
        try:
            return await fn(self, *args)
        except FsError as e:
            raise pyfuse3.FUSEError(e.errno) from None
        except pyfuse3.FUSEError:
            raise
        except Exception:
            shown = ", ".join(reprlib.repr(a) for a in args[:3])
            log.exception("%s(%s) failed", fn.__name__, shown)
            raise pyfuse3.FUSEError(errno.EIO) from None
        finally:
            self.fs.after_op()
    return wrapper


class Operations(pyfuse3.Operations):
    supports_dot_lookup = True
    enable_writeback_cache = False  # the cache would outlive our locks (ogfs.md 3.2)

    def __init__(self, fs: Filesystem, cache_timeout: float) -> None:
        super().__init__()
        self.fs = fs
        self.timeout = cache_timeout  # 0 in a cluster: another node may change anything
        self.handles: dict[int, tuple[int, bool]] = {}  # fh -> (inode, O_APPEND)
        self.dirhandles: dict[int, list[tuple[bytes, int]]] = {}
        self._next_fh = 1

    # -- inode numbers ------------------------------------------------------------------

    def _addr(self, ino: int) -> int:
        return self.fs.root if ino == pyfuse3.ROOT_INODE else ino

    def _ino(self, addr: int) -> int:
        return pyfuse3.ROOT_INODE if addr == self.fs.root else addr

    def _entry(self, i: Inode, counted: bool = True) -> pyfuse3.EntryAttributes:
        """Attributes for the kernel; `counted` entries add one to the kernel's lookup count."""
        if counted:
            i.refs += 1
        e = pyfuse3.EntryAttributes()
        e.st_ino = self._ino(i.addr)
        e.generation = 0
        e.entry_timeout = self.timeout
        e.attr_timeout = self.timeout
        e.st_mode = i.mode
        e.st_nlink = i.nlink
        e.st_uid = i.uid
        e.st_gid = i.gid
        e.st_rdev = i.rdev
        e.st_size = i.size
        e.st_blksize = 4096
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
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any) -> pyfuse3.EntryAttributes:
        return self._entry(self.fs.lookup(self._addr(parent_inode), name))

    @_errors
    async def forget(self, inode_list: list[tuple[int, int]]) -> None:
        for ino, n in inode_list:
            self.fs.unref(self._addr(ino), n)

    @_errors
    async def getattr(self, inode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        return self._entry(self.fs.inode(self._addr(inode)), counted=False)

    @_errors
    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: Any, fh: int | None,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        i = self.fs.setattr(
            self._addr(inode),
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            size=attr.st_size if fields.update_size else None,
            atime=attr.st_atime_ns if fields.update_atime else None,
            mtime=attr.st_mtime_ns if fields.update_mtime else None)
        return self._entry(i, counted=False)

    @_errors
    async def readlink(self, inode: int, ctx: Any) -> bytes:
        return self.fs.readlink(self._addr(inode))

    @_errors
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        s = self.fs.statfs()
        d = pyfuse3.StatvfsData()
        d.f_bsize = d.f_frsize = s["bsize"]
        d.f_blocks, d.f_bfree, d.f_bavail = s["blocks"], s["bfree"], s["bfree"]
        d.f_files, d.f_ffree, d.f_favail = s["files"], s["ffree"], s["ffree"]
        d.f_namemax = s["namemax"]
        return d

    # -- namespace ----------------------------------------------------------------------

    @_errors
    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        return self._entry(self.fs.create(self._addr(parent_inode), name, mode, ctx.uid, ctx.gid, rdev))

    @_errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        return self._entry(self.fs.mkdir(self._addr(parent_inode), name, mode, ctx.uid, ctx.gid))

    @_errors
    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        return self._entry(self.fs.symlink(self._addr(parent_inode), name, target, ctx.uid, ctx.gid))

    @_errors
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: Any) -> pyfuse3.EntryAttributes:
        return self._entry(self.fs.link(self._addr(inode), self._addr(new_parent_inode), new_name))

    @_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self.fs.unlink(self._addr(parent_inode), name)

    @_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self.fs.rmdir(self._addr(parent_inode), name)

    @_errors
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int,
                     name_new: bytes, flags: int, ctx: Any) -> None:
        self.fs.rename(self._addr(parent_inode_old), name_old, self._addr(parent_inode_new), name_new,
                       noreplace=bool(flags & pyfuse3.RENAME_NOREPLACE),
                       exchange=bool(flags & pyfuse3.RENAME_EXCHANGE))

    # -- files --------------------------------------------------------------------------

    def _fileinfo(self, addr: int, flags: int) -> pyfuse3.FileInfo:
        fh = self._fh()
        self.handles[fh] = (addr, bool(flags & os.O_APPEND))
        # direct_io: no page cache, so another node's write is read at once (ogfs.md 3.2).
        return pyfuse3.FileInfo(fh=fh, direct_io=True, keep_cache=False)

    @_errors
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        addr = self._addr(inode)
        i = self.fs.inode(addr)
        if flags & os.O_TRUNC and not stat.S_ISDIR(i.mode):
            self.fs.truncate(addr, 0)
        return self._fileinfo(addr, flags)

    @_errors
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        i = self.fs.create(self._addr(parent_inode), name, mode, ctx.uid, ctx.gid)
        return self._fileinfo(i.addr, flags), self._entry(i)

    @_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        return self.fs.read(self.handles[fh][0], off, size)

    @_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        addr, append = self.handles[fh]
        if append:
            off = self.fs.inode(addr).size
        return self.fs.write(addr, off, buf)

    @_errors
    async def flush(self, fh: int) -> None:
        pass

    @_errors
    async def release(self, fh: int) -> None:
        self.handles.pop(fh, None)

    @_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        self.fs.fsync()

    # -- directories ----------------------------------------------------------------------

    @_errors
    async def opendir(self, inode: int, ctx: Any) -> int:
        fh = self._fh()
        # A snapshot: readdir offsets stay valid while the directory changes underneath.
        self.dirhandles[fh] = self.fs.readdir(self._addr(inode))
        return fh

    @_errors
    async def readdir(self, fh: int, start_id: int, token: Any) -> None:
        entries = self.dirhandles[fh]
        for k in range(start_id, len(entries)):
            name, addr = entries[k]
            try:
                i = self.fs.inode(addr)
            except FsError:
                continue  # removed since opendir
            if not pyfuse3.readdir_reply(token, name, self._entry(i, counted=False), k + 1):
                break
            i.refs += 1  # readdirplus: the kernel now holds a lookup for it

    @_errors
    async def releasedir(self, fh: int) -> None:
        self.dirhandles.pop(fh, None)

    @_errors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        self.fs.fsync()

    # -- extended attributes ----------------------------------------------------------------

    @_errors
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        self.fs.setxattr(self._addr(inode), name, value)

    @_errors
    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        return self.fs.getxattr(self._addr(inode), name)

    @_errors
    async def listxattr(self, inode: int, ctx: Any) -> list[bytes]:
        return self.fs.listxattr(self._addr(inode))

    @_errors
    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        self.fs.removexattr(self._addr(inode), name)
