"""Injected disk faults (ogfs/diskfault.py) in ogfs's block layer (ogfs/blockdev.py), on a plain
file, with OGFS_DISKFAULT pointing at a control file of the test's own.  The same on a real
mount: tests/ogfs/test_diskfault_mount.py (not test_diskfault.py: the test directories are no
packages, so their modules share one namespace and pytest refuses two of one name)."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from support import wait_for

from ogfs import diskfault, fsck
from ogfs.blockdev import Device
from ogfs.cmd import tool
from ogfs.fs import Filesystem, Options
from ogfs.layout import BLOCK
from ogfs.mkfs import mkfs


@pytest.fixture
def control(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "run" / "diskfault.json"
    monkeypatch.setenv("OGFS_DISKFAULT", str(path))
    return path


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(64 * BLOCK)
    return str(path)


def inject(**kw: object) -> None:
    diskfault.save(diskfault.Fault(**kw))  # type: ignore[arg-type]


def block(n: int) -> bytes:
    return bytes([n]) * BLOCK


def on_disk(image: str, blk: int) -> bytes:
    with open(image, "rb") as f:
        f.seek(blk * BLOCK)
        return f.read(BLOCK)


def sees(dev: Device, fault: bool) -> None:
    """Wait until the device has looked at the control file again (reads are unharmed here)."""
    wait_for(lambda: (dev.read(0), (dev.faults.fault is not None) == fault)[1], 2, "the device to look")


def io_error(call: object) -> OSError:
    with pytest.raises(OSError) as e:
        call()  # type: ignore[operator]
    assert e.value.errno == errno.EIO
    return e.value


# -- the healthy path ------------------------------------------------------------------------

def test_without_a_control_file_the_device_is_unchanged(control: Path, image: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(diskfault.os, "stat", lambda p, *a, **k: (stats.append(p), real_stat(p, *a, **k))[1])
    dev = Device(image)
    started = time.monotonic()
    for i in range(2000):
        dev.write(i % 60 + 1, block(i % 250))
        assert dev.read(i % 60 + 1) == block(i % 250)
    dev.flush()
    elapsed = time.monotonic() - started
    dev.close()
    assert dev.withdrawn is None and dev.writes == 2000
    # The control file is looked at once a POLL, not once an I/O.
    looks = [p for p in stats if p == str(control)]
    assert 1 <= len(looks) <= 2 + elapsed / diskfault.POLL


def test_a_fault_for_another_device_is_ignored(control: Path, image: str, tmp_path: Path) -> None:
    inject(device=str(tmp_path / "other.img"), errors="all")
    dev = Device(image)
    dev.write(1, block(1))
    assert dev.read(1) == block(1) and dev.faults.fault is None
    link = tmp_path / "by-name"
    link.symlink_to(image)
    inject(device=str(link), errors="read")  # the same device under another name: it applies
    named = Device(image)
    io_error(lambda: named.read(1))


# -- errors ------------------------------------------------------------------------------------

def test_write_errors_after_n_withdraw_the_device(control: Path, image: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    dev = Device(image)
    for i in range(5):  # I/Os before the fault does not count towards `after`
        dev.write(10 + i, block(9))
    inject(errors="write", after=2)
    sees(dev, fault=True)
    dev.write(1, block(1))
    dev.write(2, block(2))
    with caplog.at_level(logging.ERROR, logger="ogfs"):
        err = io_error(lambda: dev.write(3, block(3)))
    assert isinstance(err, diskfault.InjectedError)
    assert dev.withdrawn and "write at block 3" in dev.withdrawn
    assert any(r.getMessage().startswith("withdrawn: ") for r in caplog.records)
    # Withdrawn: nothing more reaches the disk, even once the disk is healthy again.
    diskfault.clear()
    sees(dev, fault=False)
    io_error(lambda: dev.write(4, block(4)))
    io_error(dev.flush)
    assert dev.read(1) == block(1)  # reads go on
    assert [on_disk(image, b) for b in (1, 2, 3, 4)] == [block(1), block(2), bytes(BLOCK), bytes(BLOCK)]
    dev.close()
    fresh = Device(image)  # a new open (a remount) starts healthy
    fresh.write(4, block(4))
    assert on_disk(image, 4) == block(4)


def test_read_errors_fail_reads_only_and_heal(control: Path, image: str) -> None:
    dev = Device(image)
    dev.write(1, block(1))
    inject(errors="read", after=1)
    fresh = Device(image)  # sees the fault at its first I/O
    assert fresh.read(1) == block(1)
    io_error(lambda: fresh.read(1))
    io_error(lambda: fresh.read_bytes(BLOCK, 10))
    fresh.write(2, block(2))
    fresh.flush()
    assert fresh.withdrawn is None and on_disk(image, 2) == block(2)
    diskfault.clear()
    assert wait_for(lambda: _reads(fresh, 1), 2, "reads to heal") == block(1)


def _reads(dev: Device, blk: int) -> bytes | None:
    try:
        return dev.read(blk)
    except OSError:
        return None


def test_all_errors_fail_reads_writes_and_flush(control: Path, image: str) -> None:
    inject(errors="all")
    dev = Device(image)
    io_error(lambda: dev.read(1))
    assert dev.withdrawn is None  # a read error is that read's alone
    io_error(dev.flush)
    assert dev.withdrawn and "flush" in dev.withdrawn


# -- slow and hang -----------------------------------------------------------------------------

def test_slow_delays_every_io(control: Path, image: str) -> None:
    inject(slow_ms=60)
    dev = Device(image)
    started = time.monotonic()
    dev.write(1, block(1))
    assert dev.read(1) == block(1)
    assert time.monotonic() - started >= 0.12
    diskfault.clear()
    sees(dev, fault=False)
    started = time.monotonic()
    dev.read(1)
    assert time.monotonic() - started < 0.05


def test_hang_blocks_until_cleared(control: Path, image: str) -> None:
    inject(hang=True)
    dev = Device(image)
    done = threading.Event()
    got: list[bytes] = []

    def reader() -> None:
        got.append(dev.read(0))
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert not done.wait(0.3), "a hung disk answered"
    cleared = time.monotonic()
    diskfault.clear()
    assert done.wait(2), "clearing the fault did not free the hung I/O"
    assert time.monotonic() - cleared < 0.25
    t.join(1)
    assert got == [bytes(BLOCK)]


def test_a_malformed_control_file_is_ignored_and_said(control: Path, image: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    control.parent.mkdir(parents=True)
    control.write_text('{"errors": "sometimes"}')
    with caplog.at_level(logging.ERROR, logger="ogfs"):
        dev = Device(image)
        dev.write(1, block(1))
    assert dev.read(1) == block(1)
    assert "ignored" in caplog.text and "sometimes" in caplog.text


# -- the filesystem on a withdrawn device ------------------------------------------------------

@pytest.fixture
def fs_image(tmp_path: Path) -> str:
    path = tmp_path / "fs.img"
    with open(path, "wb") as f:
        f.truncate(64 << 20)
    mkfs(str(path), "nolock", "", 2, 4, 64, force=True)
    return str(path)


def test_a_write_error_withdraws_the_filesystem_without_half_a_transaction(
        control: Path, fs_image: str, caplog: pytest.LogCaptureFixture) -> None:
    fs = Filesystem(fs_image, Options())
    kept = fs.create(fs.root, b"kept", 0o644)
    fs.write(kept.addr, 0, b"k" * 10000)
    fs.fsync()
    inject(errors="write")
    sees(fs.dev, fault=True)
    lost = fs.create(fs.root, b"lost", 0o644)
    with caplog.at_level(logging.ERROR, logger="ogfs"):
        io_error(lambda: fs.write(lost.addr, 0, b"l" * 10000))  # the data write fails
        fs.group_commit()    # the group commit must not raise: the daemon's timer calls it
        fs.after_op()
        io_error(fs.fsync)   # but fsync says the disk failed
        fs.unmount()         # and unmounting works, writing nothing
    assert fs.dropped_commits > 0
    assert "dropping the group commit" in caplog.text
    assert "unmounted with its journal" in caplog.text
    diskfault.clear()
    rep = fsck.full(fs_image)
    assert rep.errors == [], rep.errors
    again = Filesystem(fs_image, Options())  # a remount replays the journal up to the last commit
    assert again.read(again.lookup_addr(again.root, b"kept"), 0, 20000) == b"k" * 10000
    assert b"lost" not in dict(again.readdir(again.root))
    again.unmount()
    assert fsck.full(fs_image).errors == []


def test_a_withdrawn_cluster_mount_refuses_to_checkpoint(control: Path, fs_image: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    fs = Filesystem(fs_image, Options())
    fs.opts.cluster = True  # (the allocator stays unrestricted: only the withdraw rule differs)
    f = fs.create(fs.root, b"f", 0o644)
    inject(errors="write")
    sees(fs.dev, fault=True)
    io_error(lambda: fs.write(f.addr, 0, b"x" * 10000))
    fs.group_commit()  # dropped: nothing reaches the disk, no lock leaves because of it
    with caplog.at_level(logging.ERROR, logger="ogfs"):
        io_error(fs.checkpoint)  # a lock may leave after a checkpoint: the daemon must stop
    assert "must not give up its locks" in caplog.text
    fs.dev.close()


# -- ogfs_tool diskfault -------------------------------------------------------------------

def test_tool_sets_shows_and_clears(control: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["diskfault", "show"]) == 0
    assert json.loads(capsys.readouterr().out) is None
    assert tool.main(["diskfault", "set", "--device", "/dev/sda3", "--errors", "write", "--after", "7"]) == 0
    assert json.loads(control.read_text()) == {"device": "/dev/sda3", "errors": "write", "after": 7,
                                               "slow_ms": 0, "hang": False}
    assert not list(control.parent.glob("*.tmp*"))  # written whole, then renamed
    capsys.readouterr()
    assert tool.main(["diskfault", "show"]) == 0
    assert json.loads(capsys.readouterr().out)["after"] == 7
    assert tool.main(["diskfault", "set", "--hang"]) == 0
    assert json.loads(control.read_text())["hang"] is True
    assert tool.main(["diskfault", "clear"]) == 0
    assert not control.exists()
    assert tool.main(["diskfault", "clear"]) == 0  # clearing a healthy disk is fine


@pytest.mark.parametrize("args", [
    [], ["set"], ["set", "--errors", "sometimes"], ["set", "--slow", "-5"], ["set", "--slow", "x"],
    ["set", "--slow", "0"], ["set", "--hang", "--errors", "read"], ["set", "--slow", "5", "--after", "2"],
    ["set", "--device", "sda3", "--hang"], ["unplug"],
])
def test_tool_bad_arguments_exit_2(control: Path, args: list[str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        tool.main(["diskfault", *args])
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not control.exists()


def test_tool_show_says_when_the_file_is_malformed(control: Path, capsys: pytest.CaptureFixture[str]) -> None:
    control.parent.mkdir(parents=True)
    control.write_text("[1, 2]")
    assert tool.main(["diskfault", "show"]) == 1
    assert "JSON object" in capsys.readouterr().err
