"""Running the ogfs commands as a node runs them, on loop devices and real FUSE mounts.

The commands run under Debian's /usr/bin/python3 (which has python3-pyfuse3 and python3-trio), with
only this repository's `ogfs` package importable.  Loop devices and FUSE mounts need root; tests
that use them carry the `slow` marker.  Fixtures built on these: tests/ogfs/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
from pathlib import Path

from ogfs import mountopts

ROOT = Path(__file__).resolve().parents[2]
SBIN = ROOT / "ogfs" / "sbin"
NODE_PYTHON = "/usr/bin/python3"
NODE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"}


def ogfs_cmd(name: str, *args: object, check: bool = False, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one of the ogfs commands (mkfs.ogfs, mount.ogfs, ...) the way a node runs it."""
    res = subprocess.run([NODE_PYTHON, str(SBIN / name), *map(str, args)], env={**NODE_ENV, **(env or {})},
                         capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in res.stderr, res.stderr
    if check and res.returncode != 0:
        raise AssertionError(f"{name} {args} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


class LoopDevice:
    """A sparse file attached to a loop device; detached at teardown."""

    def __init__(self, backing: Path, size: int) -> None:
        with open(backing, "wb") as f:
            f.truncate(size)
        self.backing = backing
        self.path = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True,
                                   capture_output=True, text=True).stdout.strip()

    def detach(self) -> None:
        subprocess.run(["losetup", "-d", self.path], check=False)

    def __str__(self) -> str:
        return self.path


class Mount:
    """An ogfs filesystem mounted with the real mount.ogfs, unmounted with umount.fuse.ogfs."""

    def __init__(self, device: str, path: Path, options: str = "lockproto=nolock") -> None:
        self.device, self.path, self.options = device, path, options

    def mount(self, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return ogfs_cmd("mount.ogfs", self.device, self.path, "-o", self.options, check=True, env=env)

    def umount(self) -> subprocess.CompletedProcess[str]:
        return ogfs_cmd("umount.fuse.ogfs", self.path, check=True)

    def is_mounted(self) -> bool:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == str(self.path) for line in f)

    def force_detach(self) -> None:
        """After the daemon died: drop the dead FUSE connection."""
        if self.is_mounted():
            subprocess.run(["umount", "-l", str(self.path)], check=False)

    def pid(self) -> int:
        """The mount daemon's pid, from its pidfile (ogfs/mountopts.py run_paths)."""
        return int(Path(mountopts.run_paths(str(self.path)).pid).read_text())

    def daemon_pid(self) -> int | None:
        """The mount daemon's pid while it runs, else None."""
        try:
            pid = self.pid()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"ogfs.daemon" in cmdline else None

    def tear_down(self) -> None:
        """A fixture's last word on this mount, whatever the test left: unmount it, or else kill its
        daemon and drop the mount, and return only once the daemon is gone.  A daemon that outlived
        its test would go on writing its disk-heartbeat slot to whatever device the next test
        attaches under the same /dev/loopN."""
        pid = self.daemon_pid()
        if self.is_mounted():
            try:
                unmounted = ogfs_cmd("umount.fuse.ogfs", self.path, timeout=60).returncode == 0
            except subprocess.TimeoutExpired:
                unmounted = False
            if not unmounted:
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                subprocess.run(["umount", "-l", str(self.path)], check=False)
        if pid is not None:
            _wait_gone(pid)


def _wait_gone(pid: int) -> None:
    """Wait for a process that is not our child to exit (its pidfd becomes readable), killing it
    if it takes longer than 30 s."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not select.select([pidfd], [], [], 30)[0]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            select.select([pidfd], [], [], 30)
    finally:
        os.close(pidfd)


def tear_down_mounts_under(root: Path) -> None:
    """Tear down every mount under `root` (a test's tmp_path), for fixtures that do not keep a
    list of what the test mounted."""
    with open("/proc/self/mounts") as f:
        mine = [line.split()[1] for line in f if line.split()[1].startswith(str(root) + "/")]
    for mnt in mine:
        Mount("", Path(mnt)).tear_down()
