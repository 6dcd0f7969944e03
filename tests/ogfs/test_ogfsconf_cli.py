"""ogfs/sbin/ogfsconf, run as on a node: Debian's /usr/bin/python3, the ogfs package on PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ogfs import cidev, config

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = ROOT / "ogfs" / "sbin" / "ogfsconf"
SEED_FILE = ROOT / "tests" / "data" / "ogfscf.cf"
NODE_PYTHON = "/usr/bin/python3"

def ogfsconf(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: only the repo's ogfs package, not the dev virtualenv, is importable.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"}
    result = subprocess.run([NODE_PYTHON, str(SCRIPT), *map(str, args)], env=env, capture_output=True,
                            text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    for line in result.stderr.splitlines():
        assert line.startswith(("ogfsconf: ", "usage: ")), result.stderr
    return result


@pytest.fixture
def device(tmp_path: Path) -> Path:
    dev = tmp_path / "sda1.img"
    dev.write_bytes(bytes(cidev.MIN_SIZE))
    return dev


@pytest.fixture
def conf(tmp_path: Path, device: Path) -> Path:
    """The seed's file, naming the temp device as its cidev."""
    path = tmp_path / "ogfscf.cf"
    path.write_text(SEED_FILE.read_text().replace("cidev: /dev/sda1", f"cidev: {device}"))
    return path


def normalised(path: Path) -> str:
    return config.format(config.parse(path.read_text()))


def test_script_is_three_line_executable() -> None:
    lines = [line for line in SCRIPT.read_text().splitlines() if line.strip()]  # (ruff's blank line)
    assert lines[0] == "#!/usr/bin/python3" and len(lines) == 3 and "ogfs.cmd.ogfsconf" in lines[1]
    assert os.access(SCRIPT, os.X_OK)


def test_write_then_print_back(conf: Path, device: Path) -> None:
    result = ogfsconf("-c", conf)
    assert result.returncode == 0, result.stderr
    assert f"to {device}: generation 1" in result.stdout
    assert "2 nodes, lockdev 192.168.1.100:15697" in result.stdout

    printed = ogfsconf("-p", device)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == normalised(conf)
    assert config.parse(printed.stdout).cidev == str(device)

    assert "generation 2" in ogfsconf("-c", conf).stdout


def test_device_override_keeps_the_files_cidev_line(tmp_path: Path, device: Path) -> None:
    result = ogfsconf("-c", SEED_FILE, "-d", device)
    assert result.returncode == 0, result.stderr
    assert f"to {device}: generation 1" in result.stdout
    assert ogfsconf("-p", device).stdout == normalised(SEED_FILE)
    assert "cidev: /dev/sda1\n" in ogfsconf("-p", device).stdout


def test_validate_only_writes_nothing(conf: Path, device: Path) -> None:
    result = ogfsconf("-n", "-c", conf)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{conf}: OK (2 nodes, lockdev 192.168.1.100:15697, cidev {device})\n"
    assert not any(device.read_bytes())


def test_bad_file_exits_2_and_writes_nothing(conf: Path, device: Path) -> None:
    assert ogfsconf("-c", conf).returncode == 0
    before = device.read_bytes()
    conf.write_text(conf.read_text().replace("192.168.1.2 1 SM", "192.168.1.2 0 SM"))
    result = ogfsconf("-c", conf)
    assert result.returncode == 2
    assert result.stderr == f"ogfsconf: {conf}:32: node 192.168.1.2: CID 0 already used by 192.168.1.1\n"
    assert result.stdout == ""
    assert device.read_bytes() == before

    assert ogfsconf("-n", "-c", conf).returncode == 2


def test_every_problem_is_reported(conf: Path) -> None:
    text = conf.read_text().replace("timeout: 30", "timeout: 0").replace("cbport: 3001", "cbport: x")
    conf.write_text(text)
    result = ogfsconf("-n", "-c", conf)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"ogfsconf: {conf}:10: cbport: 'x' is not a port (an integer 1..65535)",
        f"ogfsconf: {conf}:13: timeout: '0' is not a positive integer (seconds)",
    ]


def test_missing_device_exits_1(conf: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dev"
    result = ogfsconf("-c", conf, "-d", missing)
    assert result.returncode == 1
    assert result.stderr == f"ogfsconf: {missing}: no such device or file\n"
    assert not missing.exists()

    result = ogfsconf("-p", missing)
    assert result.returncode == 1
    assert result.stderr == f"ogfsconf: {missing}: no such device or file\n"


def test_device_too_small_exits_1(conf: Path, device: Path) -> None:
    device.write_bytes(bytes(4096))
    result = ogfsconf("-c", conf)
    assert result.returncode == 1
    assert "device too small" in result.stderr


def test_print_blank_or_corrupt_device_exits_1(conf: Path, device: Path) -> None:
    result = ogfsconf("-p", device)
    assert result.returncode == 1
    assert "no cluster information" in result.stderr and result.stdout == ""

    assert ogfsconf("-c", conf).returncode == 0
    with open(device, "r+b") as f:
        f.seek(cidev.BLOCK + 3)
        f.write(b"!")
    result = ogfsconf("-p", device)
    assert result.returncode == 1
    assert "CRC mismatch" in result.stderr and result.stdout == ""


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = ogfsconf("-c", tmp_path / "absent.cf")
    assert result.returncode == 2
    assert result.stderr == f"ogfsconf: {tmp_path / 'absent.cf'}: cannot read: No such file or directory\n"


USAGE_ERRORS = [(), ("-n",), ("-c", "a", "-p", "b"), ("-p", "dev", "-n"), ("-p", "dev", "-d", "x")]


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = ogfsconf(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: ogfsconf")


def test_help_teaches() -> None:
    result = ogfsconf("--help")
    assert result.returncode == 0
    for fragment in ("cluster information device", "heartbeat slot", "ogfsconf -c /etc/ogfscf.cf",
                     "ogfsconf -p /dev/sda1", "node: 192.168.1.1 0 SM: manual", "exit status"):
        assert fragment in result.stdout
