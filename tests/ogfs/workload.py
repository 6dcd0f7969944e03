"""A seeded, metadata-heavy workload with a model of what the tree must look like.

Used twice: in-process against ogfs.fs.Filesystem (a crash at any device write), and through a
real FUSE mount (the daemon SIGKILLed at any device write).  `Tree` is the comparable picture:
path -> ("d",) | ("f", bytes, xattrs) | ("l", target).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

Tree = dict[str, tuple]


class Target(Protocol):
    """What the workload needs from a filesystem; paths are relative strings."""

    def mkdir(self, path: str) -> None: ...
    def write_file(self, path: str, data: bytes, fsync: bool) -> None: ...
    def append(self, path: str, data: bytes) -> None: ...
    def truncate(self, path: str, size: int) -> None: ...
    def unlink(self, path: str) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def link(self, src: str, dst: str) -> None: ...
    def symlink(self, target: str, path: str) -> None: ...
    def setxattr(self, path: str, name: str, value: bytes) -> None: ...
    def commit(self) -> None: ...


class NullTarget:
    """Accepts every operation and does nothing: to move the model alone."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kw: None


@dataclass
class Workload:
    seed: int
    ops: int = 400
    entries: dict[str, tuple] = field(default_factory=dict)  # path -> ("d",) | ("f", id) | ("l", t)
    content: dict[int, tuple[bytes, tuple]] = field(default_factory=dict)  # id -> (data, xattrs)
    snapshots: list[Tree] = field(default_factory=list)  # the tree after each operation
    durable_from: int = 0  # a recovered tree must equal a snapshot at or after this index
    precious: dict[str, bytes] = field(default_factory=dict)  # fsync'd, never touched again
    # Through a mount a file is written by two system calls, create (open O_CREAT) then write,
    # and a timer commit may fall between them: then the state with the file created empty is
    # as whole as any.  partials[k] is that state on the way to snapshots[k].
    split_creates: bool = False
    partials: dict[int, Tree] = field(default_factory=dict)
    _partial: Tree | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def tree(self) -> Tree:
        out: Tree = {}
        for p, e in self.entries.items():
            out[p] = ("f", *self.content[e[1]]) if e[0] == "f" else e
        return out

    def run(self, fs: Target) -> None:
        """Run every operation; on an exception (a crash) the snapshots stop where it happened."""
        rng = random.Random(self.seed)
        self.snapshots = [self.tree()]
        for step in range(self.ops):
            state = rng.getstate()
            self._partial = None
            try:
                self._one(rng, fs, step)
            except BaseException:
                # Crashed inside an operation: it may have reached the disk whole (say, its
                # commit was written and a checkpoint after it was not), so the state after it
                # is a valid outcome too.  Redo the model's half without a filesystem.
                rng.setstate(state)
                durable, precious = self.durable_from, dict(self.precious)
                self._one(rng, NullTarget(), step)
                self.durable_from, self.precious = durable, precious  # its fsync never returned
                self._snapshot()
                raise
            self._snapshot()

    def _snapshot(self) -> None:
        self.snapshots.append(self.tree())
        if self._partial is not None:
            self.partials[len(self.snapshots) - 1] = self._partial

    # -- choosing -----------------------------------------------------------------------------

    def _dirs(self) -> list[str]:
        return [""] + sorted(p for p, v in self.entries.items() if v[0] == "d")

    def _files(self) -> list[str]:
        return sorted(p for p, v in self.entries.items() if v[0] == "f" and p not in self.precious)

    def _new_name(self, rng: random.Random, prefix: str) -> str:
        d = rng.choice(self._dirs())
        name = f"{prefix}{rng.randrange(10**6)}"
        return f"{d}/{name}" if d else name

    def _holds_precious(self, d: str) -> bool:
        return any(p.startswith(d + "/") for p in self.precious)

    def _one(self, rng: random.Random, fs: Target, step: int) -> None:
        files = self._files()
        kind = rng.choices(
            ["create", "precious", "mkdir", "append", "truncate", "unlink", "rename", "renamedir",
             "rmdir", "link", "symlink", "xattr", "commit"],
            [20, 6, 8, 8, 5, 8, 10, 3, 3, 4, 3, 4, 6])[0]
        if kind in ("append", "truncate", "unlink", "rename", "link", "xattr") and not files:
            kind = "create"
        if kind in ("create", "precious"):
            p = self._new_name(rng, "f" if kind == "create" else "p")
            if p in self.entries:
                return
            sizes = [0, 100, 3000, 4096, 9000, 70000] if kind == "create" else [10, 5000, 40000]
            data = rng.randbytes(rng.choice(sizes))
            if self.split_creates:
                self._partial = {**self.tree(), p: ("f", b"", ())}
            fs.write_file(p, data, fsync=kind == "precious")
            ident = next(self._ids)
            self.entries[p] = ("f", ident)
            self.content[ident] = (data, ())
            if kind == "precious":
                self.precious[p] = data
                self.durable_from = step + 1  # fsync commits everything before it, too
        elif kind == "mkdir":
            p = self._new_name(rng, "d")
            if p in self.entries:
                return
            fs.mkdir(p)
            self.entries[p] = ("d",)
        elif kind == "append":
            p = rng.choice(files)
            data = rng.randbytes(rng.choice([1, 500, 5000]))
            fs.append(p, data)
            ident = self.entries[p][1]
            old, x = self.content[ident]
            self.content[ident] = (old + data, x)
        elif kind == "truncate":
            p = rng.choice(files)
            ident = self.entries[p][1]
            old, x = self.content[ident]
            size = rng.randrange(0, len(old) + 9000)
            fs.truncate(p, size)
            self.content[ident] = (old[:size].ljust(size, b"\0"), x)
        elif kind == "unlink":
            p = rng.choice(files)
            fs.unlink(p)
            del self.entries[p]
        elif kind == "rename":
            src = rng.choice(files)
            dst = rng.choice(files) if rng.random() < 0.3 else self._new_name(rng, "r")
            if dst == src or self.entries.get(dst, ("f",))[0] != "f" or dst in self.precious:
                return
            fs.rename(src, dst)
            if self.entries.get(dst) != self.entries[src]:  # two links of one inode: POSIX no-op
                self.entries[dst] = self.entries.pop(src)
        elif kind == "renamedir":
            dirs = [d for d in self._dirs() if d and not self._holds_precious(d)]
            if not dirs:
                return
            src = rng.choice(dirs)
            dst = self._new_name(rng, "d")
            if dst.startswith(src + "/") or dst in self.entries:
                return
            fs.rename(src, dst)
            for p in sorted(self.entries):
                if p == src or p.startswith(src + "/"):
                    self.entries[dst + p[len(src):]] = self.entries.pop(p)
        elif kind == "rmdir":
            empty = [d for d in self._dirs()
                     if d and not any(p.startswith(d + "/") for p in self.entries)]
            if not empty:
                return
            d = rng.choice(empty)
            fs.rmdir(d)
            del self.entries[d]
        elif kind == "link":
            src = rng.choice(files)
            dst = self._new_name(rng, "h")
            if dst in self.entries:
                return
            fs.link(src, dst)
            self.entries[dst] = self.entries[src]
        elif kind == "symlink":
            p = self._new_name(rng, "s")
            if p in self.entries:
                return
            target = rng.choice(["f1", "../x", "a/b/c" * 20])
            fs.symlink(target, p)
            self.entries[p] = ("l", target)
        elif kind == "xattr":
            p = rng.choice(files)
            v = rng.randbytes(rng.randrange(1, 60))
            fs.setxattr(p, "user.DOSATTRIB", v)
            ident = self.entries[p][1]
            self.content[ident] = (self.content[ident][0], (("user.DOSATTRIB", v),))
        elif kind == "commit":
            fs.commit()


def shape(tree: Tree) -> Tree:
    """A tree without file contents: names, types, sizes, link targets, xattrs.

    This is what the journal makes atomic.  File contents are ordered-mode data (as ext4's
    data=ordered): a new block is written before the commit that links it, so no stale bytes
    ever show, but an overwrite of a block a file already owns goes in place at once, and a
    crash before the next commit keeps it.  So contents are checked only for fsync'd files."""
    return {p: ("f", len(v[1]), v[2]) if v[0] == "f" else v for p, v in tree.items()}


def matching_snapshot(w: Workload, tree: Tree) -> int | None:
    """Index of the latest durable snapshot whose shape is the recovered tree's (or, with
    split_creates, whose partial state's shape is: a create committed before its write)."""
    want = shape(tree)
    for k in range(len(w.snapshots) - 1, w.durable_from - 1, -1):
        if shape(w.snapshots[k]) == want:
            return k
        # A partial state lies before snapshot k: durable only if k-1 is.
        if k > w.durable_from and k in w.partials and shape(w.partials[k]) == want:
            return k
    return None
