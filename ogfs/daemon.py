"""ogfsd: the FUSE daemon behind one ogfs mount.  `mount.ogfs` starts it and waits.

Life of a mount:
  1. open the device, pick this node's journal (hostdata= -> CID in the cidev), recover
     (lock_nolock: this node is alone, so it replays every dirty journal);
  2. mount the FUSE filesystem, then tell mount.ogfs "OK" through the readiness pipe;
  3. serve requests; commit every `commit=` seconds; answer ogfs_tool on a control socket;
  4. when the kernel unmounts it (umount.fuse.ogfs runs `umount -i`) or on SIGTERM: commit,
     checkpoint, mark the journal clean, exit.  umount.fuse.ogfs waits for that exit.

Run files live in /run/ogfs/<mount point escaped>.{pid,sock}; the log in /var/log/ogfs/.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys

from . import mountopts
from .fs import Filesystem, MountError, Options

log = logging.getLogger("ogfs")


def resolve_jid(opts: mountopts.MountOptions, locktable: str) -> int:
    """This node's journal: jid= if given, else the CID of hostdata= in the cidev."""
    if opts.jid is not None:
        return opts.jid
    if not opts.hostdata:
        return 0
    from . import cidev
    table = opts.locktable or locktable
    try:
        cfg = cidev.read_config(table)
    except Exception as e:  # noqa: BLE001 - any cidev failure is a mount failure with a reason
        raise MountError(f"hostdata={opts.hostdata}: cannot read the cluster information device "
                         f"{table}: {e}") from None
    node = cfg.node_by_ip(opts.hostdata)
    if node is None:
        known = ", ".join(n.ip for n in cfg.nodes)
        raise MountError(f"hostdata={opts.hostdata} is not a node of {table} (nodes: {known})")
    return node.cid


def open_filesystem(opts: mountopts.MountOptions) -> Filesystem:
    from .layout import SB_BLOCK, Superblock
    with open(opts.device, "rb") as f:
        f.seek(SB_BLOCK * 4096)
        try:
            sb = Superblock.unpack(f.read(4096))
        except Exception as e:  # noqa: BLE001
            raise MountError(f"{opts.device}: no ogfs filesystem ({e})") from None
    proto = opts.lockproto or sb.lockproto
    if proto != "nolock":
        raise MountError(f"lockproto={proto}: this build of ogfs mounts with lock_nolock only; "
                         f"use -o lockproto=nolock (one node at a time)")
    jid = resolve_jid(opts, sb.locktable)
    return Filesystem(opts.device, Options(jid=jid, readonly=opts.readonly,
                                           commit_interval=opts.commit, barrier=opts.barrier))


def serve(opts: mountopts.MountOptions, ready_fd: int | None) -> int:
    import pyfuse3
    import trio

    from .fuse_ops import Operations

    def ready(msg: str) -> None:
        if ready_fd is not None:
            os.write(ready_fd, (msg + "\n").encode())
            os.close(ready_fd)

    try:
        fs = open_filesystem(opts)
    except (MountError, OSError) as e:
        log.error("mount failed: %s", e)
        ready(f"ERR {e}")
        return 32
    crash = os.environ.get("OGFS_CRASH_AFTER_WRITES")
    if crash:  # test hook: die by SIGKILL instead of the Nth device write from now on
        fs.dev.crash_after = fs.dev.writes + int(crash)
        fs.dev.on_crash = lambda: os.kill(os.getpid(), signal.SIGKILL)
    for jid, n in fs.replayed.items():
        log.info("jid=%d: Replaying journal... replayed %d transaction(s); Done", jid, n)
    ops = Operations(fs, cache_timeout=opts.cache_timeout)
    fuse_opts = {f"fsname={opts.device}", "subtype=ogfs", "allow_other", "default_permissions"}
    if opts.readonly:
        fuse_opts.add("ro")
    try:
        pyfuse3.init(ops, opts.mountpoint, fuse_opts)
    except Exception as e:  # noqa: BLE001
        fs.unmount()
        log.error("FUSE mount of %s failed: %s", opts.mountpoint, e)
        ready(f"ERR cannot mount on {opts.mountpoint}: {e}")
        return 32
    run = mountopts.run_paths(opts.mountpoint)
    os.makedirs(os.path.dirname(run.pid), exist_ok=True)
    with open(run.pid, "w") as f:
        f.write(f"{os.getpid()}\n")
    terminated = False

    async def committer() -> None:
        while True:
            await trio.sleep(opts.commit if opts.commit > 0 else 1.0)
            fs.commit()

    async def on_signals(cancel: trio.CancelScope) -> None:
        nonlocal terminated
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as sigs:
            async for _ in sigs:
                log.info("signal: unmounting %s", opts.mountpoint)
                terminated = True
                pyfuse3.terminate()
                return

    async def control() -> None:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(run.sock):
            os.unlink(run.sock)
        await sock.bind(run.sock)
        sock.listen(4)
        while True:
            conn, _ = await sock.accept()
            with conn:
                req = (await conn.recv(4096)).decode().strip()
                await conn.send((json.dumps(answer(req)) + "\n").encode())

    def answer(req: str) -> dict:
        if req == "sync":
            fs.fsync()
        return {"device": opts.device, "mountpoint": opts.mountpoint, "jid": fs.jid,
                "hostdata": opts.hostdata, "lockproto": "nolock", "readonly": opts.readonly,
                "replayed": fs.replayed, "counters": {**fs.counters, "journal_used": fs.log.used,
                "journal_blocks": fs.log.region.length, "dirty": fs.dirty_count(),
                "inodes_cached": len(fs.inodes), "device_writes": fs.dev.writes,
                "blocks_allocated": fs.alloc.allocated, "blocks_freed": fs.alloc.freed},
                "statfs": fs.statfs()}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(committer)
            nursery.start_soon(on_signals, nursery.cancel_scope)
            nursery.start_soon(control)
            ready(f"OK jid={fs.jid}")
            log.info("mounted %s on %s: jid=%d, lockproto=nolock", opts.device, opts.mountpoint, fs.jid)
            await pyfuse3.main()
            nursery.cancel_scope.cancel()

    code = 0
    try:
        trio.run(main)
    except BaseException:
        log.exception("daemon failed")
        code = 1
    finally:
        try:
            fs.unmount()
            log.info("unmounted %s: journal %d clean", opts.mountpoint, fs.jid)
        except Exception:
            log.exception("final commit failed")
            code = 1
        pyfuse3.close(unmount=terminated)
        for p in (run.pid, run.sock):
            try:
                os.unlink(p)
            except OSError:
                pass
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ogfsd", description="ogfs FUSE daemon (started by mount.ogfs)")
    ap.add_argument("device")
    ap.add_argument("mountpoint")
    ap.add_argument("-o", dest="options", default="")
    ap.add_argument("--ready-fd", type=int)
    a = ap.parse_args(argv)
    try:
        opts = mountopts.parse(a.device, a.mountpoint, a.options)
    except mountopts.OptionError as e:
        if a.ready_fd is not None:
            os.write(a.ready_fd, f"ERR {e}\n".encode())
        return 1
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if opts.debug else logging.INFO,
                        format="%(asctime)s ogfsd[%(process)d]: %(message)s")
    return serve(opts, a.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
