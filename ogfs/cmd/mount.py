"""mount.ogfs: the helper mount(8) runs for `mount -t ogfs DEV DIR -o OPTS`.

    mount.ogfs spec dir [-sfnv] [-N namespace] [-o options]

It starts the daemon (ogfsd) in its own session with its output in the log, then blocks until
the daemon says the filesystem is live (journal recovery included) or why it is not.  Exit
codes are mount(8)'s: 0 mounted, 1 bad usage, 32 mount failure.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time

from .. import mountopts

USAGE_ERR, MOUNT_FAIL = 1, 32
READY_TIMEOUT = 300  # seconds: a full journal replay of a large journal fits well inside


def is_mounted(mountpoint: str) -> bool:
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="mount.ogfs", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Mount an ogfs filesystem (called by mount -t ogfs).",
        epilog="options (-o):\n" + (mountopts.__doc__ or "").split("\n", 2)[2] +
        "\nexample:\n  mount -t ogfs -o hostdata=192.168.1.1 /dev/sda3 /ogfs")
    ap.add_argument("spec", help="the data device, e.g. /dev/sda3")
    ap.add_argument("dir", help="the mount point, e.g. /ogfs")
    ap.add_argument("-o", dest="options", default="", help="comma-separated options (see below)")
    ap.add_argument("-s", action="store_true", help="sloppy: ignore unknown options")
    ap.add_argument("-f", action="store_true", help="fake: check everything, mount nothing")
    ap.add_argument("-n", action="store_true", help="no mtab (accepted; there is no mtab)")
    ap.add_argument("-v", action="store_true", help="verbose")
    ap.add_argument("-N", dest="namespace", help="mount namespace (not supported)")
    ap.add_argument("-t", dest="type", help="type as mount(8) passes it (ignored)")
    a = ap.parse_args(argv)
    try:
        opts = mountopts.parse(a.spec, a.dir, a.options)
    except mountopts.OptionError as e:
        if not a.s:
            print(f"mount.ogfs: {e}", file=sys.stderr)
            return USAGE_ERR
        opts = mountopts.parse(a.spec, a.dir, ",".join(
            o for o in a.options.split(",") if _known(a.spec, a.dir, o)))
    if a.namespace:
        print("mount.ogfs: -N is not supported", file=sys.stderr)
        return USAGE_ERR
    if not os.path.exists(opts.device):
        print(f"mount.ogfs: {opts.device}: no such device", file=sys.stderr)
        return MOUNT_FAIL
    if not os.path.isdir(opts.mountpoint):
        print(f"mount.ogfs: {opts.mountpoint}: mount point is not a directory", file=sys.stderr)
        return MOUNT_FAIL
    if is_mounted(opts.mountpoint):
        print(f"mount.ogfs: {opts.mountpoint} is already mounted", file=sys.stderr)
        return MOUNT_FAIL
    if a.f:
        return 0
    return start_daemon(opts, a.v)


def _known(spec: str, dir_: str, item: str) -> bool:
    try:
        mountopts.parse(spec, dir_, item)
        return True
    except mountopts.OptionError:
        return False


def start_daemon(opts: mountopts.MountOptions, verbose: bool) -> int:
    run = mountopts.run_paths(opts.mountpoint)
    os.makedirs(os.path.dirname(run.log), exist_ok=True)
    r, w = os.pipe()
    with open(run.log, "ab") as logf:
        # A new session and no inherited descriptors but the log and the pipe: the daemon must
        # not hold heartbeat's pipes open (ha-stack.md G20).
        proc = subprocess.Popen(
            [sys.executable, "-m", "ogfs.daemon", opts.device, opts.mountpoint,
             "-o", opts.to_string(), "--ready-fd", str(w)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, pass_fds=(w,),
            start_new_session=True, close_fds=True)
    os.close(w)
    msg = b""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([r], [], [], 1.0)
        if ready:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            msg += chunk
            if msg.endswith(b"\n"):
                break
        elif proc.poll() is not None:
            break
    os.close(r)
    text = msg.decode(errors="replace").strip()
    if text.startswith("OK"):
        if verbose:
            print(f"mount.ogfs: {opts.device} on {opts.mountpoint}: {text[3:]}")
        return 0
    if not text:
        proc.poll()
        text = (f"the daemon exited ({proc.returncode}) without a word" if proc.returncode is not None
                else f"no answer from the daemon in {READY_TIMEOUT} s")
        if proc.returncode is None:
            proc.kill()
    print(f"mount.ogfs: {opts.device} on {opts.mountpoint}: {text.removeprefix('ERR ')}"
          f" (log: {run.log})", file=sys.stderr)
    return MOUNT_FAIL
