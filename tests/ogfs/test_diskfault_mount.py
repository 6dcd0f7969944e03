"""Injected disk faults on a real mount: the daemon, FUSE, a loop device, `ogfs_tool diskfault`.

A write error withdraws the mount: writes and fsync fail with EIO, the log says "withdrawn:",
the daemon still answers and unmounts, and the disk holds no half transaction (fsck.ogfs -n is
clean, the journal holds what it held before the fault, a remount finds every fsync'd file).
A read error fails that request only; once the fault is cleared the data reads back.  The
control file is the test's own (OGFS_DISKFAULT), never the host's /run/ogfs/diskfault.json.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ogfsrun import LoopDevice, Mount, ogfs_cmd
from support import wait_for

from ogfs import diskfault, mountopts

pytestmark = pytest.mark.slow

DATA = os.urandom(64 << 10)


@pytest.fixture
def fault_env(tmp_path: Path) -> dict[str, str]:
    return {"OGFS_DISKFAULT": str(tmp_path / "diskfault.json")}


@pytest.fixture
def mount(loopdev: LoopDevice, tmp_path: Path, fault_env: dict[str, str]) -> Iterator[Mount]:
    ogfs_cmd("mkfs.ogfs", "-p", "nolock", "-j", "2", "-J", "8", "-q", loopdev, check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    m = Mount(loopdev.path, mnt)
    m.mount(env=fault_env)
    try:
        yield m
    finally:
        tool(fault_env, "diskfault", "clear")
        m.tear_down()


def tool(env: dict[str, str], *args: object) -> str:
    return ogfs_cmd("ogfs_tool", *args, env=env, check=True).stdout


def inject(env: dict[str, str], device: str, *args: str) -> None:
    tool(env, "diskfault", "set", "--device", device, *args)
    # The daemon looks at the control file at its first I/O once POLL has passed since its
    # last look; make sure it has, so the next I/O is the first to see the fault.
    time.sleep(2 * diskfault.POLL)


def daemon_log(m: Mount) -> str:
    return Path(mountopts.run_paths(str(m.path)).log).read_text()


def pending(env: dict[str, str], device: str) -> int:
    return json.loads(tool(env, "journals", device, "--json"))[0]["transactions"]


def write_file(path: Path, data: bytes, fsync: bool = True) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def overwrite(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def eio(call: object) -> None:
    with pytest.raises(OSError) as e:
        call()  # type: ignore[operator]
    assert e.value.errno == errno.EIO, e.value


@pytest.mark.parametrize(("after", "fsync"), [(0, False), (2, True), (2, False)],
                         ids=["data-write-fails", "commit-fails-in-fsync", "commit-fails-on-the-timer"])
def test_a_write_error_withdraws_the_mount(mount: Mount, loopdev: LoopDevice, fault_env: dict[str, str],
                                           after: int, fsync: bool) -> None:
    write_file(mount.path / "kept", DATA)
    before = pending(fault_env, loopdev.path)
    pid = mount.pid()
    inject(fault_env, loopdev.path, "--errors", "write", "--after", str(after))
    if after == 0:
        # The file's data block is the first write: the write itself fails.
        eio(lambda: write_file(mount.path / "lost", DATA[:4096], fsync=False))
    elif fsync:
        # The data block and the journal's descriptor go through, the commit block fails: a
        # transaction without its commit block, which replay never counts.  fsync says so.
        eio(lambda: write_file(mount.path / "lost", DATA[:4096]))
    else:
        # The same, but the daemon's commit timer meets the error, where nobody can be told:
        # before the withdraw that ended the daemon.
        write_file(mount.path / "lost", DATA[:4096], fsync=False)
        wait_for(lambda: "withdrawn: " in daemon_log(mount), 5, "the commit timer to meet the error")
    eio(lambda: write_file(mount.path / "later", DATA))  # withdrawn: every write fails now
    eio(lambda: overwrite(mount.path / "kept", b"x" * 4096))
    assert wait_for(lambda: "withdrawn: " in daemon_log(mount), 5, "the withdraw in the daemon log")
    assert (mount.path / "kept").read_bytes() == DATA  # reads go on
    failed = re.search(r"withdrawn: \S+: write at block (\d+) failed", daemon_log(mount))
    assert failed, daemon_log(mount)
    j0 = json.loads(tool(fault_env, "getsb", loopdev.path, "--json"))["journals"][0]
    assert (j0["start"] <= int(failed[1]) < j0["start"] + j0["blocks"]) == (after == 2)

    counters = json.loads(tool(fault_env, "counters", mount.path, "--json"))
    assert counters["commits"] >= 1
    os.kill(pid, 0)  # alive

    mount.umount()  # with the disk still failing: the daemon writes nothing and exits
    assert not mount.is_mounted()
    log = daemon_log(mount)
    assert "daemon failed" not in log and "final commit failed" not in log, log
    assert "withdrawn, journal 0 left dirty" in log, log
    if after and not fsync:  # the timer met the error: its commit was dropped, the daemon lived on
        assert "dropping the group commit" in log, log

    tool(fault_env, "diskfault", "clear")
    res = ogfs_cmd("fsck.ogfs", "-n", loopdev)
    assert res.returncode == 0 and "clean" in res.stdout, res.stdout + res.stderr
    assert pending(fault_env, loopdev.path) == before  # no new transaction, whole or half

    mount.mount(env=fault_env)  # a remount replays the journal: every fsync'd file is there
    assert (mount.path / "kept").read_bytes() == DATA
    assert not (mount.path / "later").exists()
    mount.umount()
    assert ogfs_cmd("fsck.ogfs", "-n", loopdev).returncode == 0


def test_a_read_error_fails_that_request_and_heals(mount: Mount, loopdev: LoopDevice,
                                                   fault_env: dict[str, str]) -> None:
    write_file(mount.path / "data", DATA)
    inject(fault_env, loopdev.path, "--errors", "read")
    eio((mount.path / "data").read_bytes)
    eio((mount.path / "data").read_bytes)
    json.loads(tool(fault_env, "counters", mount.path, "--json"))  # the daemon still answers
    assert json.loads(tool(fault_env, "diskfault", "show"))["errors"] == "read"

    tool(fault_env, "diskfault", "clear")

    def reads() -> bytes | None:
        try:
            return (mount.path / "data").read_bytes()
        except OSError:
            return None

    assert wait_for(reads, 2, "the data to read back") == DATA
    write_file(mount.path / "after", DATA[:5000])  # not withdrawn: a read error is no write error
    assert "withdrawn" not in daemon_log(mount)
    mount.umount()
    res = ogfs_cmd("fsck.ogfs", "-n", loopdev)
    assert res.returncode == 0, res.stdout + res.stderr
