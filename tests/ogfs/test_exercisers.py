"""Filesystem exercisers this project did not write, on a real ogfs mount.

fio writes random 4 KiB blocks with crc32c checksums and reads every one back (verify_fatal);
stress-ng runs its directory, dentry, rename, link, symlink and hdd stressors with --verify.
Then fsck.ogfs -n must find the filesystem clean.
"""

from __future__ import annotations

import subprocess

import pytest
from ogfsrun import Mount, ogfs_cmd

pytestmark = pytest.mark.slow


def test_fio_verify_crc32c(mounted: Mount) -> None:
    res = subprocess.run(
        ["fio", "--name=verify", f"--directory={mounted.path}", "--rw=randwrite", "--bs=4k",
         "--size=48m", "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--ioengine=psync",
         "--numjobs=2", "--group_reporting", "--verify_state_save=0"],
        capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "err= 0" in res.stdout, res.stdout
    mounted.umount()
    assert ogfs_cmd("fsck.ogfs", "-n", mounted.device).returncode == 0


def test_stress_ng_filesystem_stressors(mounted: Mount) -> None:
    res = subprocess.run(
        ["stress-ng", "--temp-path", str(mounted.path), "--dir", "1", "--dentry", "1", "--rename", "1",
         "--link", "1", "--symlink", "1", "--hdd", "1", "--hdd-bytes", "32m", "--verify",
         "--timeout", "15s", "--metrics-brief"], capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "successful run completed" in out, out
    assert "fail" not in out.lower().replace("failed: 0", ""), out
    mounted.umount()
    fsck = ogfs_cmd("fsck.ogfs", "-n", mounted.device)
    assert fsck.returncode == 0, fsck.stdout
