"""The lab images, built for real through a Docker engine, and one node container booted from them.

Slow the first time (mmdebstrap + apt: about a minute on the reference machine), seconds afterwards.
The node runs with the capabilities a lab node gets (NET_ADMIN, NET_RAW, SYS_ADMIN, /dev/fuse; never
--privileged) on an internal network, so nothing leaves the machine. Its heartbeat is configured as
fred of the seed's fred+barney pair with barney absent: after initdead fred declares barney dead and
acquires its own group (here just `smb`), which exercises the init, the resource script's status
wording (G17), ResourceManager, the FIFO message path and the log copying (G10) end to end.
"""

from __future__ import annotations

import functools
import io
import secrets
import tarfile
import time
from collections.abc import Iterator

import pytest
from support import wait_for as poll

from labctl.runtime import images  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.lab]

LAB = "test-images"
LABELS = {"labctl.lab": LAB}
CAPS = ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]

HA_CF = """\
logfile /var/log/ha-log
debugfile /var/log/ha-debug
logfacility none
use_logd no
keepalive 1
warntime 3
deadtime 4
initdead 4
udpport 694
bcast eth0
node fred barney
auto_failback on
realtime off
crm off
uuidfrom nodename
"""

SMB_CONF = """\
[global]
  server role = standalone server
  map to guest = bad user
  disable netbios = yes
  smb ports = 445
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  log file = /var/log/samba/log.%m
[tmp]
  path = /tmp
  guest ok = yes
  read only = no
"""

wait_for = functools.partial(poll, interval=0.5)  # each look runs docker exec: not too often


HOOK = """\
#!/bin/sh
echo "hook ran as $(id -un) with /run/heartbeat $(stat -c %U:%a /run/heartbeat)" \\
    >>/var/log/labctl/test-hook.log
"""


def _tar(files: dict[str, tuple[str, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _node_files() -> bytes:
    return _tar(
        {
            "/etc/ha.d/ha.cf": (HA_CF, 0o644),
            # G13: heartbeat refuses an authkeys file others can read
            "/etc/ha.d/authkeys": (f"auth 1\n1 sha1 {secrets.token_hex(16)}\n", 0o600),
            "/etc/ha.d/haresources": ("fred smb\n", 0o644),
            "/etc/samba/smb.conf": (SMB_CONF, 0o644),
            # a boot hook that leaves a line in a log the init streams
            "/etc/labctl/pre-heartbeat.d/10-test": (HOOK, 0o755),
            "/etc/labctl/pre-heartbeat.d/20-not-executable": ("#!/bin/sh\nexit 1\n", 0o644),
        }
    )


def sh(container, cmd: str) -> tuple[int, str]:
    code, out = container.exec_run(["sh", "-c", cmd], demux=False)
    return code, (out or b"").decode(errors="replace")


def wait_exit(container, timeout: float) -> dict:
    """Block until the container exits (the engine tells us), at most `timeout` seconds."""
    try:
        container.wait(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - the SDK raises its transport's timeout error
        raise AssertionError(f"{container.name} still running after {timeout:.0f} s: {exc}") from None
    container.reload()
    return container.attrs["State"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def built(engine) -> dict[str, object]:
    lines: list[tuple[str, str]] = []
    started = time.monotonic()
    tags = images.ensure_images(engine, progress=lambda kind, line: lines.append((kind, line)))
    return {"tags": tags, "lines": lines, "seconds": time.monotonic() - started}


@pytest.fixture(scope="module")
def network(engine) -> Iterator[str]:
    name = f"labctl-{LAB}"
    for old in engine.networks.list(names=[name]):
        old.remove()
    net = engine.networks.create(
        name, driver="bridge", internal=True, labels={**LABELS, "labctl.role": "net"}
    )
    try:
        yield name
    finally:
        net.remove()


def start_node(engine, tag: str, network: str, name: str, tmpfs_run: bool = True):
    for old in engine.containers.list(all=True, filters={"name": f"^{name}$"}):
        old.remove(force=True)
    container = engine.containers.create(
        tag,
        name=name,
        hostname="fred",
        cap_add=CAPS,
        devices=["/dev/fuse:/dev/fuse:rwm"],
        network=network,
        labels={**LABELS, "labctl.role": "node"},
        tmpfs={"/run": "rw,nosuid,nodev,mode=0755"} if tmpfs_run else None,
        stop_signal="SIGTERM",
    )
    container.put_archive("/", _node_files())
    container.start()
    return container


def smb_running(container) -> bool:
    return sh(container, "/etc/ha.d/resource.d/smb status")[1].strip() == "smb is running"


@pytest.fixture(scope="module")
def node(engine, built, network) -> Iterator[object]:
    container = start_node(engine, built["tags"]["node"], network, f"labctl-{LAB}-fred")
    try:
        # initdead 4 s, then barney is declared dead and fred takes its own group
        wait_for(lambda: smb_running(container), 40, "heartbeat to start smb")
        yield container
    finally:
        container.remove(force=True)


# --------------------------------------------------------------------------- the images


def test_tags_carry_input_hashes(built) -> None:
    tags = built["tags"]
    assert set(tags) == {"base", "node", "client"}
    for kind, tag in tags.items():
        repo, _, digest = tag.partition(":")
        assert repo == f"labctl/{kind}"
        assert len(digest) == 12 and all(c in "0123456789abcdef" for c in digest)
        assert images.image_tag(kind) == tag


def test_images_are_labelled(engine, built) -> None:
    for kind, tag in built["tags"].items():
        labels = engine.images.get(tag).labels
        assert labels[images.LABEL_IMAGE] == kind
        assert labels[images.LABEL_INPUTS] == tag.rpartition(":")[2]


def test_second_ensure_builds_nothing(engine, built) -> None:
    lines: list[tuple[str, str]] = []
    again = images.ensure_images(engine, progress=lambda kind, line: lines.append((kind, line)))
    assert again == built["tags"]
    assert lines == []


def test_base_has_policy_rc_d(engine, built) -> None:  # G23
    out = engine.containers.run(
        built["tags"]["base"],
        ["sh", "-c", "/usr/sbin/policy-rc.d; echo $?"],
        remove=True,
        network_mode="none",
    )
    assert out.decode().strip() == "101"


def test_client_image(engine, built) -> None:
    out = engine.containers.run(
        built["tags"]["client"],
        ["sh", "-c", "smbclient --version && nmblookup --version && python3 -V && ip -V"],
        remove=True,
        network_mode="none",
    ).decode()
    assert "Version 4.17" in out and "Python 3" in out


def test_client_pid1_stops_on_sigterm(engine, built) -> None:
    c = engine.containers.run(
        built["tags"]["client"], detach=True, network_mode="none", labels={**LABELS, "labctl.role": "client"}
    )
    try:
        started = time.monotonic()
        c.stop(timeout=10)
        assert time.monotonic() - started < 5
        assert wait_exit(c, 10)["ExitCode"] == 143  # tini reports sleep's death by SIGTERM
    finally:
        c.remove(force=True)


# --------------------------------------------------------------------------- a running node


def test_node_is_not_privileged(node) -> None:
    node.reload()
    host = node.attrs["HostConfig"]
    assert host["Privileged"] is False
    assert sorted(host["CapAdd"]) == sorted(CAPS)


def test_heartbeat_binary_and_version(node) -> None:
    code, out = sh(node, "/usr/libexec/heartbeat/heartbeat -V")
    assert code == 0 and out.startswith("3.0.6")
    code, out = sh(node, "test -x /usr/bin/cl_status && cl_status hbstatus")
    assert code == 0 and "Heartbeat is running on this machine." in out


def test_init_is_pid1_and_heartbeat_its_child(node) -> None:  # G11
    _, out = sh(node, "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /run/heartbeat.pid")
    cmdline, hbpid = out.splitlines()[:2]
    assert "labctl-init" in cmdline
    _, ppid = sh(node, f"ps -o ppid= -p {hbpid.strip()}")
    assert ppid.strip() == "1"


def test_run_directories(node) -> None:  # G5
    _, out = sh(
        node,
        "stat -c '%n %U:%G %a' /run/heartbeat /run/heartbeat/ccm /run/crm /run/resource-agents /run/lock",
    )
    got = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert got["/run/heartbeat"] == "hacluster:haclient 750"
    assert got["/run/heartbeat/ccm"] == "hacluster:haclient 750"
    assert got["/run/crm"] == "hacluster:haclient 750"
    assert got["/run/resource-agents"] == "root:root 1755"
    assert got["/run/lock"] == "root:root 1777"


def test_python_fuse_stack(node) -> None:
    code, out = sh(
        node, "python3 -c 'import pyfuse3, trio, ogfs; print(pyfuse3.__version__)' && test -c /dev/fuse"
    )
    assert code == 0, out
    assert out.strip().startswith("3.")


def test_resource_scripts_status_wording(node) -> None:  # G17, G18
    code, out = sh(node, "/etc/ha.d/resource.d/memexpd status")
    assert (code, out.strip()) == (3, "memexpd is stopped")
    code, out = sh(node, "/etc/ha.d/resource.d/memexpd stop")
    assert code == 0  # stop succeeds when already stopped
    # heartbeat started smb through ResourceManager, which judged our status text
    code, out = sh(node, "/etc/ha.d/resource.d/smb status")
    assert (code, out.strip()) == (0, "smb is running")
    # "transition" until heartbeat calls its takeover stable (about 10 s after acquiring)
    wait_for(lambda: sh(node, "cl_status rscstatus")[1].strip() == "all", 30, "rscstatus all")
    # R1 does not monitor resources (G16): stopping smb behind heartbeat's back is allowed
    assert sh(node, "/etc/ha.d/resource.d/smb stop")[0] == 0
    code, out = sh(node, "/etc/ha.d/resource.d/smb status")
    assert (code, out.strip()) == (3, "smb is stopped")
    assert sh(node, "/etc/ha.d/resource.d/smb stop")[0] == 0
    assert sh(node, "/etc/ha.d/resource.d/smb start")[0] == 0
    assert smb_running(node)


def test_no_nmbd_when_netbios_is_disabled(node) -> None:
    assert smb_running(node)
    code, _ = sh(node, "pgrep -x nmbd")
    assert code == 1


def test_smb_daemons_hold_no_inherited_pipes(node) -> None:  # G20
    _, out = sh(
        node,
        "for p in $(cat /run/samba/smbd.pid); do ls -l /proc/$p/fd/0 /proc/$p/fd/1; done",
    )
    assert "pipe:" not in out and "/dev/null" in out


def test_ogfs_modload(node) -> None:  # G1, ogfs.md 3.5
    code, out = sh(node, "modprobe ogfs && modprobe ogfs && grep -cw ogfs /proc/filesystems")
    assert code == 0, out
    assert out.strip() == "1"
    code, _ = sh(node, "grep -qw fuse /proc/filesystems")
    assert code == 0


def test_iptables_works_inside_a_node(node) -> None:
    code, out = sh(node, "iptables -S INPUT")
    assert code == 0, out


def test_docker_logs_show_ha_log(node) -> None:  # G10
    logs = node.logs().decode(errors="replace")
    assert "labctl-init: starting /usr/libexec/heartbeat/heartbeat -f" in logs
    assert "Running /etc/ha.d//resource.d/smb  start" in logs
    assert "info: Configuration validated. Starting heartbeat 3.0.6" in logs
    # boot hooks run before heartbeat, after /run is prepared; labctl/*.log lines are prefixed
    assert "labctl-init: hook /etc/labctl/pre-heartbeat.d/10-test" in logs
    assert "test-hook: hook ran as root with /run/heartbeat hacluster:750" in logs
    assert "20-not-executable: not executable, skipped" in logs


# --------------------------------------------------------------------------- ends of a node


def test_docker_stop_releases_resources_and_exits_zero(engine, built, network) -> None:  # G11
    c = start_node(engine, built["tags"]["node"], network, f"labctl-{LAB}-stop")
    try:
        wait_for(lambda: smb_running(c), 40, "heartbeat to start smb")
        started = time.monotonic()
        c.stop(timeout=60)
        state = wait_exit(c, 60)
        assert state["ExitCode"] == 0
        assert time.monotonic() - started < 30
        logs = c.logs().decode(errors="replace")
        assert "Running /etc/ha.d/resource.d/smb  stop" in logs
        assert "fred Heartbeat shutdown complete." in logs
    finally:
        c.remove(force=True)


def test_reboot_shim_fences_and_restart_clears_stale_state(engine, built, network) -> None:  # G18, G6
    # no tmpfs on /run here: what a previous boot leaves in /run must be cleaned by the init
    c = start_node(engine, built["tags"]["node"], network, f"labctl-{LAB}-fence", tmpfs_run=False)
    try:
        wait_for(lambda: smb_running(c), 40, "heartbeat to start smb")
        assert sh(c, "test -x /sbin/reboot")[0] == 0
        # a tty lock naming PID 1 (alive after any restart) and a pidfile naming heartbeat's PID
        sh(c, "echo '         1' >/run/lock/LCK..ttyS0; cat /run/heartbeat.pid >/run/memexpd.pid")
        c.exec_run(["/sbin/reboot", "-nf"], detach=True)
        state = wait_exit(c, 20)
        assert state["ExitCode"] == 100
        assert "self-fence" in c.logs().decode(errors="replace")
        c.start()
        wait_for(lambda: smb_running(c), 40, "heartbeat to start smb after the restart")
        code, out = sh(c, "ls /run/lock/ /run/*.pid; /etc/ha.d/resource.d/memexpd status")
        assert "LCK..ttyS0" not in out
        assert "/run/memexpd.pid" not in out
        assert "memexpd is stopped" in out
    finally:
        c.remove(force=True)
