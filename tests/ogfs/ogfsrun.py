"""Running the ogfs commands as a node runs them, on loop devices and real FUSE mounts.

The commands run under Debian's /usr/bin/python3 (which has python3-pyfuse3 and python3-trio), with
only this repository's `ogfs` package importable.  Loop devices and FUSE mounts need root; tests
that use them carry the `slow` marker.  Fixtures built on these: tests/ogfs/conftest.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

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
