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
import functools
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from . import mountopts
from .fs import Filesystem, MountError, Options
from .layout import BLOCK, SB_BLOCK, Superblock

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


def read_superblock(device: str) -> Superblock:
    with open(device, "rb") as f:
        f.seek(SB_BLOCK * BLOCK)
        try:
            return Superblock.unpack(f.read(BLOCK))
        except Exception as e:  # noqa: BLE001
            raise MountError(f"{device}: no ogfs filesystem ({e})") from None


def serve(opts: mountopts.MountOptions, ready_fd: int | None) -> int:
    import pyfuse3
    import trio

    from . import cluster
    from .fuse_ops import Operations

    def ready(msg: str) -> None:
        nonlocal ready_fd
        if ready_fd is not None:
            os.write(ready_fd, (msg + "\n").encode())
            os.close(ready_fd)
            ready_fd = None

    run = mountopts.run_paths(opts.mountpoint)
    state: dict[str, Any] = {"terminated": False, "fs": None, "cm": None, "mounted": False}

    async def main() -> None:
        sb = read_superblock(opts.device)
        proto = opts.lockproto or sb.lockproto
        async with trio.open_nursery() as nursery:
            if proto == "memexp":
                cm = await cluster.mount_cluster(opts.device, sb, opts.hostdata,
                                                 opts.locktable or sb.locktable, opts.readonly,
                                                 opts.commit, opts.barrier, nursery)
                # cache= applies to attributes only, withdrawn as the glocks leave (fuse_ops.py)
                fs, locks, cache = cm.fs, cm.glocks, opts.cache_timeout
                state["cm"] = cm
            else:
                jid = resolve_jid(opts, sb.locktable)
                fs = Filesystem(opts.device, Options(jid=jid, readonly=opts.readonly,
                                                     commit_interval=opts.commit, barrier=opts.barrier))
                locks, cache = None, opts.cache_timeout
            state["fs"] = fs
            for jid, n in fs.replayed.items():
                log.info("jid=%d: Replaying journal... replayed %d transaction(s); Done", jid, n)
            crash = os.environ.get("OGFS_CRASH_AFTER_WRITES")
            if crash:  # test hook: die by SIGKILL instead of the Nth device write from now on
                fs.dev.crash_after = fs.dev.writes + int(crash)
                fs.dev.on_crash = lambda: os.kill(os.getpid(), signal.SIGKILL)
            ops = Operations(fs, cache_timeout=cache, locks=locks)
            state["ops"] = ops
            fuse_opts = {f"fsname={opts.device}", "subtype=ogfs", "allow_other", "default_permissions"}
            if opts.readonly:
                fuse_opts.add("ro")
            try:
                pyfuse3.init(ops, opts.mountpoint, fuse_opts)
            except Exception as e:  # noqa: BLE001
                raise MountError(f"cannot mount on {opts.mountpoint}: {e}") from None
            state["mounted"] = True
            if state["cm"] is not None:  # from now on the glocks reach the kernel and the handles
                hooks = cluster.cache_hooks(state["cm"])
                hooks.forget_kernel_attrs, hooks.on_iopen_wanted = ops.forget_attrs, ops.iopen_wanted
                hooks.pin_before_unlock = ops.pin_before_unlock
            os.makedirs(os.path.dirname(run.pid), exist_ok=True)
            with open(run.pid, "w") as f:
                f.write(f"{os.getpid()}\n")
            nursery.start_soon(committer, fs)
            nursery.start_soon(on_signals)
            nursery.start_soon(control, fs, proto)
            if state["cm"] is not None:
                cm = state["cm"]
                cm.lease.on_fenced = functools.partial(cluster.run_fenced_hook, opts.mountpoint)
                if cm.lease.fenced is not None:  # fenced before the hook was set
                    cluster.run_fenced_hook(opts.mountpoint, cm.lease.fenced)
                nursery.start_soon(cluster.slot_writer, cm)
            ready(f"OK jid={fs.jid}")
            log.info("mounted %s on %s: jid=%d, lockproto=%s%s", opts.device, opts.mountpoint, fs.jid,
                     proto, ", first mounter" if state["cm"] and state["cm"].first else "")
            await pyfuse3.main()
            finish(fs)
            if state["cm"] is not None:
                await cluster.leave(state["cm"])
            nursery.cancel_scope.cancel()

    def finish(fs: Filesystem) -> None:
        cm = state["cm"]
        if cm is not None:  # no callback may touch the filesystem or the kernel from here on
            hooks = cluster.cache_hooks(cm)
            hooks.fs, hooks.forget_kernel_attrs, hooks.on_iopen_wanted = None, None, None
            hooks.pin_before_unlock = None
        fs.unmount()
        state["fs"] = None
        if fs.dev.withdrawn is None:
            log.info("unmounted %s: journal %d clean", opts.mountpoint, fs.jid)
        else:
            log.info("unmounted %s: withdrawn, journal %d left dirty", opts.mountpoint, fs.jid)

    async def committer(fs: Filesystem) -> None:
        while True:
            await trio.sleep(opts.commit if opts.commit > 0 else 1.0)
            fs.group_commit()

    async def on_signals() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as sigs:
            async for _ in sigs:
                log.info("signal: unmounting %s", opts.mountpoint)
                state["terminated"] = True
                pyfuse3.terminate()
                return

    async def control(fs: Filesystem, proto: str) -> None:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(run.sock):
            os.unlink(run.sock)
        await sock.bind(run.sock)
        sock.listen(4)
        while True:
            conn, _ = await sock.accept()
            with conn:
                req = (await conn.recv(4096)).decode().strip()
                data = memoryview((json.dumps(answer(fs, proto, req)) + "\n").encode())
                while data:  # a socket send may take only part of a large answer
                    data = data[await conn.send(data):]

    def answer(fs: Filesystem, proto: str, req: str) -> dict[str, Any]:
        if req == "sync":
            fs.fsync()
        cm = state["cm"]
        counters = {**fs.counters, "journal_used": fs.log.used, "journal_blocks": fs.log.region.length,
                    "dirty": fs.dirty_count(), "inodes_cached": len(fs.inodes),
                    "device_writes": fs.dev.writes, "blocks_allocated": fs.alloc.allocated,
                    "blocks_freed": fs.alloc.freed}
        out: dict[str, Any] = {"device": opts.device, "mountpoint": opts.mountpoint, "jid": fs.jid,
                               "hostdata": opts.hostdata, "lockproto": proto, "readonly": opts.readonly,
                               "replayed": fs.replayed, "withdrawn": fs.dev.withdrawn,
                               "statfs": fs.statfs(fresh=cm is not None)}
        if cm is not None:
            counters.update(cm.glocks.counters)
            counters.update(cm.client.counters)
            out["first"] = cm.first
            out["epoch"] = cm.client.epoch
            out["glocks"] = cm.glocks.dump()
            out["inflight"] = [h.describe() for h in state["ops"].inflight]
            lease = cm.lease
            out["lease"] = {"mount_id": f"{lease.slot.mount_id:016x}", "renewals": lease.renewals,
                            "fenced": lease.fenced.describe() if lease.fenced else None}
            out["fences"] = [{"jid": r.cid, "how": r.how, "unfenced": r.unfenced, "time_ns": r.time_ns,
                              "text": r.describe()} for r in cm.fences]
        out["counters"] = counters
        return out

    code = 0
    try:
        trio.run(main)
    except MountError as e:
        log.error("mount failed: %s", e)
        ready(f"ERR {e}")
        code = 32
    except BaseException:
        log.exception("daemon failed")
        ready("ERR the daemon failed; see its log")
        code = 1
    finally:
        fs = state["fs"]
        if fs is not None:
            try:
                fs.unmount()
            except Exception:
                log.exception("final commit failed")
                code = 1
        if state["mounted"]:
            pyfuse3.close(unmount=state["terminated"] or code != 0)
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
