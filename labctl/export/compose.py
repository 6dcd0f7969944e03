"""``labctl export compose``: a lab plan written as a docker-compose project (file format 2.4).

The project comes from the same ``make_plan`` as ``labctl up``: every container of the plan is a
service with the plan's image, capabilities, limits, outer address, extra_hosts, tmpfs, volumes and
labels (so ``labctl status --lab``, ``list``, ``fail``, ``recover``, ``logs`` and ``exec`` work on
it). What ``up`` does at run time and compose cannot is done inside the containers
(docs/runtime.md, "compose"):

- **the disk**: loop devices get their numbers when attached, after the file is written. A
  long-running ``disk`` service (node image, CAP_SYS_ADMIN, the host's /dev, the loop device
  rules) makes and formats the image on its first start, attaches one loop device per partition,
  lists them with their major:minor in ``/disk/loops``, reports healthy, and detaches them on
  SIGTERM (``docker-compose stop``/``down``): the teardown hook compose lacks.
- **the partitions in the nodes**: a pre-heartbeat hook (``05-disk``) makes ``/dev/sda1``... with
  mknod from that list; both nodes open the same loop devices (one page cache per partition).
- **the rendered files**: bind-mounted read-only at ``/etc/labctl/files`` and copied into place
  with their modes at every start (heartbeat refuses an authkeys that is not 0600; git keeps only
  the executable bit).

The export is deterministic (no timestamps, a fixed placeholder heartbeat secret unless one is
given, a fixed outer /24), so ``compose/two-node/`` is checked in and a unit test compares it with
a fresh export. The lab name is ``${LABCTL_LAB:-<lab>}`` in every name and label.
"""

from __future__ import annotations

import os
import stat
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path, PurePosixPath
from typing import Any

from labctl.errors import UsageError
from labctl.export.yamltext import Alias, Anchor, Note, dump
from labctl.plan import ContainerSpec, ImageKind, LabPlan, make_plan
from labctl.plan.names import LABEL_HELPER_IMAGE, LABEL_LAB, LABEL_SOURCE, LABEL_TOPOLOGY, PREFIX, labels
from labctl.render.disk import DISK_MOUNT, IMAGE_PATH, LOOPS_FILE
from labctl.render.files import RenderedFile
from labctl.render.lan import DEFAULT_POOL, OUTER_PREFIX
from labctl.runtime.context import DEFAULT_SOCKET
from labctl.topology.model import Topology

COMPOSE_FILE = "docker-compose.yml"
FORMAT_VERSION = "2.4"  # docker-compose 1.29: depends_on conditions, device_cgroup_rules, pids_limit
MARKER = "labctl export compose:"  # the first words of the compose file: what a re-export may replace
LAB_VARIABLE = "LABCTL_LAB"
# The default pool's last /24: compose cannot ask the engine for a free subnet, and labctl up takes
# the first free ones of the same pool, so this is the one an up reaches last.
DEFAULT_SUBNET = list(DEFAULT_POOL.subnets(new_prefix=OUTER_PREFIX))[-1]
# A fixed heartbeat secret keeps the export reproducible (the checked-in copy equals a fresh export).
# It protects nothing: it is in the export directory for anyone to read. --secret gives another.
PLACEHOLDER_SECRET = "labctl-compose-placeholder-not-secret"

FILES_DIR = "files"  # files/<service>/modes and files/<service>/tree/<path in the container>
FILES_MOUNT = "/etc/labctl/files"  # ./files/<service>, read-only, in every service
NODE_DISK_MOUNT = "/var/lib/labctl/disk"  # the disk volume, read-only, in the nodes (the loops file)
DISK_PROGRAM = "/usr/local/lib/labctl/labctl-disk"
DISK_HOOK = "/etc/labctl/pre-heartbeat.d/05-disk"  # after 00-lan; before 10-ogfs-slotwatch reads the cidev
DISK_READY = "/run/labctl-disk.ready"  # on the disk service's tmpfs: gone when it stops
DISK = "disk"  # the disk service's name (and its container's suffix)
DISK_MEMORY = 256 << 20  # as labctl up's disk helper: mkfs.ogfs of a large disk is the biggest job
DISK_PIDS = 64
DISK_STOP_GRACE = 30  # seconds: detaching takes well under one
HEADER_WIDTH = 98
HEALTH_INTERVAL = "1s"  # how soon the nodes start after the disk is ready (each check is one exec)
TMPFS_RUN = "/run:rw,nosuid,nodev,mode=0755"

# What the images run when a container sets no entrypoint or command (images/*/Dockerfile; a unit
# test reads them): the export puts the copying step in front, so it must name them.
IMAGE_ENTRYPOINT: dict[ImageKind, tuple[str, ...]] = {
    "node": ("/usr/local/sbin/labctl-init",),
    "client": ("/usr/bin/tini", "--"),
    "base": (),
}
IMAGE_COMMAND: dict[ImageKind, tuple[str, ...]] = {"node": (), "client": ("sleep", "infinity"), "base": ()}

_LAB = "\x00lab\x00"  # stands for the lab name until the last pass writes ${LABCTL_LAB:-<lab>}

INSTALL_SCRIPT = f"""\
set -eu
while read -r mode path; do
    case "$mode" in ""|"#"*) continue ;; esac
    case "$path" in
        */) install -d -m "$mode" "$path" ;;
        *) install -D -m "$mode" "{FILES_MOUNT}/tree$path" "$path" ;;
    esac
done <{FILES_MOUNT}/modes
exec "$@"
"""

INSTALL_NOTE = f"""\
Every service's entrypoint: copy its files from {FILES_MOUNT} (./files/<service>, bind-mounted
read-only) into place with the modes listed in ./files/<service>/modes, then exec the command (the
image's own program stays PID 1). Copied, not bind-mounted file by file: heartbeat refuses an
authkeys that is not 0600, and git keeps only the executable bit (a checkout makes it 0644, owned
by whoever cloned); a copy is the container's own file with the plan's mode, as labctl up's
put_archive makes it. Every start copies again, so an edit under ./files takes effect at the next
start of that container."""


TOPOLOGY_NOTE = """\
The topology's text, in the labels of the nodes and the client (labctl.topology): labctl's
verbs rebuild the lab's model from the engine alone, as for a lab made by labctl up."""


@dataclass(frozen=True)
class ExportFile:
    """One file of the export: ``path`` relative to the export directory."""

    path: str
    content: str
    mode: int = 0o644


# --------------------------------------------------------------------------- in-container programs


def render_disk_program(plan: LabPlan) -> str:
    """The disk service's program (``start`` by default, ``check`` for the healthcheck)."""
    disk = plan.topology.disk
    attach = "\n    ".join(f'attach {p.name} {p.start} {p.size} || fail "cannot attach {p.name} of $img"'
                           for p in disk.partitions)
    names = ", ".join(p.name for p in disk.partitions)
    return f"""\
#!/bin/sh
# labctl export compose: the disk service of lab {plan.lab} (docs/runtime.md, "compose").
# Loop devices get their numbers only when attached, so compose cannot map them the way labctl up
# does; this long-running service does what up's disk helper and down's detach helper do:
#   start    detach loop devices an earlier run left (it was killed before it could); make and
#            format the image on the first start only (format-disk.sh: the cidev, then mkfs.ogfs;
#            {DISK_MOUNT}/formatted marks it done), later starts attach again; one loop device per
#            partition ({names}); list "partition /dev/loopN major:minor" in {LOOPS_FILE}
#            (the nodes' hook 05-disk makes /dev/sda1... from it); then report healthy and wait.
#   SIGTERM  (docker-compose stop, down) detach every loop device of the image, exit 0.
#   check    the healthcheck: started, and the {len(disk.partitions)} loop devices listed still attached.
set -u
img={IMAGE_PATH}
loops={LOOPS_FILE}
formatted={DISK_MOUNT}/formatted
ready={DISK_READY}
parts={len(disk.partitions)}

say() {{ echo "labctl-disk: $*"; }}
attached() {{ losetup --list --noheadings --output NAME --associated "$img" 2>/dev/null; }}
detach() {{
    for dev in $(attached); do
        losetup --detach "$dev" && say "detached $dev"
    done
}}
attach() {{  # partition offset size
    dev=$(losetup --find --show --offset "$2" --sizelimit "$3" "$img") || return 1
    echo "$1 $dev" >>"$loops"
}}
fail() {{
    say "$*" >&2
    detach
    exit 1
}}

if [ "${{1:-start}}" = check ]; then  # every second: shell builtins and sysfs only
    [ -e "$ready" ] || exit 1
    n=0
    while read -r part dev majmin; do
        [ -e "/sys/dev/block/$majmin/loop" ] || {{ say "$dev ($part) is not attached any more"; exit 1; }}
        n=$((n + 1))
    done <"$loops"
    [ "$n" -eq "$parts" ] || {{ say "$n of $parts partitions in $loops"; exit 1; }}
    exit 0
fi

stop() {{
    rm -f "$ready"
    [ -e "$img" ] && detach
    rm -f "$loops"
    say "stopped"
    exit 0
}}
trap stop TERM INT
rm -f "$ready"
if [ -e "$img" ] && [ -n "$(attached)" ]; then
    say "loop devices an earlier run left attached:"
    detach
fi
if [ -e "$formatted" ] && [ -e "$img" ]; then
    : >"$loops"
    {attach}
    say "attached $img again (formatted on an earlier start)"
else
    sh {plan.disk.script} || fail "making the disk failed"
    : >"$formatted"
    say "made $img: the cidev and an ogfs filesystem (lock protocol {plan.lockproto})"
fi
while read -r part dev _; do
    majmin=$(cat "/sys/block/${{dev#/dev/}}/dev") || fail "no major:minor for $dev"
    echo "$part $dev $majmin"
done <"$loops" >"$loops.new" || fail "cannot list the loop devices"
mv "$loops.new" "$loops" || fail "cannot write $loops"
while read -r line; do say "$line"; done <"$loops"
: >"$ready"
while :; do
    sleep infinity &
    wait $!
done
"""


def render_disk_hook(spec: ContainerSpec) -> str:
    """The node's pre-heartbeat hook that makes its partitions from the disk service's list."""
    lines = [
        "#!/bin/sh",
        '# labctl export compose: the shared disk\'s partitions in this node, before heartbeat',
        '# (docs/runtime.md, "compose"). labctl up maps each loop device with --device; compose',
        "# cannot, since the disk service attaches them at run time. It lists them in the disk volume;",
        "# this makes the device nodes (CAP_MKNOD, a Docker default; the device cgroup rule b 7:* lets",
        "# the node open loop devices). Every node opens the same loop devices: one page cache per",
        "# partition, as ogfs needs.",
        "set -eu",
        f"loops={NODE_DISK_MOUNT}/loops",
        '[ -s "$loops" ] || { echo "05-disk: no $loops: the disk service is not running" >&2; exit 1; }',
        "node() {  # partition path",
        '    dev=$(awk -v p="$1" \'$1 == p { print $2 }\' "$loops")',
        '    majmin=$(awk -v p="$1" \'$1 == p { print $3 }\' "$loops")',
        '    if [ -z "$majmin" ] || [ ! -e "/sys/dev/block/$majmin/loop" ]; then',
        '        echo "05-disk: $loops names no attached loop device for $1" >&2',
        "        exit 1",
        "    fi",
        '    rm -f "$2"',
        '    mknod -m 0660 "$2" b "${majmin%:*}" "${majmin#*:}"',
        '    chgrp disk "$2"',
        '    echo "05-disk: $2 is $dev ($majmin)"',
        "}",
    ]
    lines += [f"node {p.partition} {p.path}" for p in spec.partitions]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the project


CLAIM = "claim"  # the service that stands for labctl up's claim container (labctl-<lab>.lab)


def _stable_source(topology: Topology) -> str:
    """The topology's file name only: the export must not depend on where the checkout is."""
    return topology.source.name if topology.source else f"{topology.name}.yaml"


def _size(n: int) -> str | int:
    return f"{n >> 20}m" if n and n % (1 << 20) == 0 else n


def _service_files(name: str, files: list[RenderedFile], dirs: tuple[str, ...] = ()) -> list[ExportFile]:
    base = f"{FILES_DIR}/{name}"
    out = [ExportFile(f"{base}/tree{f.path}", f.content, f.mode) for f in files]
    modes = [f"{f.mode:04o} {f.path}" for f in files] + [f"0755 {d.rstrip('/')}/" for d in dirs]
    head = (f"# mode path: what {name}'s entrypoint copies from {FILES_MOUNT}/tree into place at every "
            "start (labctl export compose)")
    modes.sort(key=lambda m: m.split()[1])
    out.append(ExportFile(f"{base}/modes", "\n".join([head, *modes]) + "\n"))
    return out


def _labels(spec_labels: Mapping[str, str], source: str) -> dict[str, Any]:
    out: dict[str, Any] = dict(spec_labels)
    out[LABEL_LAB] = _LAB
    if LABEL_SOURCE in out:
        out[LABEL_SOURCE] = source
    if LABEL_TOPOLOGY in out:
        out[LABEL_TOPOLOGY] = Alias("topology")  # the text once, under x-topology
    return out


def _name(plan: LabPlan, name: str) -> str:
    prefix = f"{PREFIX}{plan.lab}-"
    if not name.startswith(prefix):
        raise ValueError(f"{name!r} is not a name of lab {plan.lab}")
    return f"{PREFIX}{_LAB}-{name[len(prefix):]}"


def compose_project(
    topology: Topology,
    *,
    lab: str | None = None,
    lockproto: str = "memexp",
    subnet: IPv4Network = DEFAULT_SUBNET,
    secret: str = PLACEHOLDER_SECRET,
    topology_text: str | None = None,
    tags: Mapping[ImageKind, str] | None = None,
) -> dict[str, ExportFile]:
    """Every file of the export, by its path relative to the export directory."""
    if topology_text is None:
        if topology.source is None:
            raise ValueError("export needs the topology's text (it goes into the lab's labels)")
        topology_text = topology.source.read_text(encoding="utf-8")
    if tags is None:
        from labctl.runtime.images import ImageSet

        tags = ImageSet.compute().as_dict()
    plan = make_plan(topology, lab=lab, lockproto=lockproto, outer=subnet, secret=secret,
                     topology_text=topology_text)
    taken = {c.host for c in plan.containers} & {DISK, CLAIM}
    if taken:
        raise UsageError(f"a host named {taken.pop()!r} would clash with the compose project's "
                         "service of that name")
    source = _stable_source(topology)
    files: list[ExportFile] = []
    services: dict[str, Any] = {}
    volume_keys = {v.name: v.role for v in plan.volumes}

    def mounts(spec: ContainerSpec) -> list[str]:
        out = [f"{volume_keys[m.volume]}:{m.target}" + (":ro" if m.read_only else "") for m in spec.mounts]
        return out

    # the disk service first: every node waits for it to be healthy
    disk_files = [*plan.disk.files, RenderedFile(DISK_PROGRAM, render_disk_program(plan), 0o755)]
    files += _service_files(DISK, disk_files)
    from labctl.runtime.disk import LOOP_RULES

    services[DISK] = Note({
        "image": tags["node"],
        "container_name": f"{PREFIX}{_LAB}-{DISK}",
        "hostname": DISK,
        "labels": _labels(labels(plan.lab, "disk"), source),
        "entrypoint": Alias("install"),
        "command": [DISK_PROGRAM],
        "network_mode": "none",
        "cap_add": ["SYS_ADMIN"],
        "device_cgroup_rules": list(LOOP_RULES),
        "tmpfs": [TMPFS_RUN],
        "volumes": [f"disk:{DISK_MOUNT}", "/dev:/dev", f"./{FILES_DIR}/{DISK}:{FILES_MOUNT}:ro"],
        "mem_limit": _size(DISK_MEMORY),
        "memswap_limit": _size(DISK_MEMORY),
        "pids_limit": DISK_PIDS,
        "healthcheck": {
            "test": ["CMD", DISK_PROGRAM, "check"],
            "interval": HEALTH_INTERVAL,
            "timeout": "10s",
            "retries": 3,
            "start_period": "300s",
        },
        "stop_signal": "SIGTERM",
        "stop_grace_period": f"{DISK_STOP_GRACE}s",
    }, "The shared disk: makes and formats disk.img on its first start, attaches one loop device per\n"
       "partition and lists them in the disk volume's `loops`; on SIGTERM (stop, down) detaches them.\n"
       "The host's /dev and the loop device rules, like labctl up's disk helper; no network. Stop it\n"
       "only after the nodes (docker-compose stop and down do): they use its loop devices.")

    claim = plan.claim
    services[CLAIM] = Note({
        "image": tags[claim.image],
        "container_name": f"{PREFIX}{_LAB}.lab",  # names.claim_name, with the lab as a variable
        "hostname": claim.hostname,
        "labels": _labels(claim.labels, source),
        "entrypoint": ["true"],
        "network_mode": "none",
        "cap_drop": list(claim.cap_drop),
        "mem_limit": _size(claim.memory),
        "memswap_limit": _size(claim.memory),
        "pids_limit": claim.pids,
    }, "The lab's record: its labels say what the lab is (the topology, the outer subnet), and its\n"
       "files keep the fault records (docs/faults.md). It exits at once and is never started again:\n"
       "docker cp reads and writes a stopped container's files.")

    nodes = [c.host for c in plan.containers if c.role == "node"]
    has_cable = any(c.role == "cable" for c in plan.containers)
    for spec in plan.containers:
        extra: list[RenderedFile] = []
        if spec.partitions:
            extra.append(RenderedFile(DISK_HOOK, render_disk_hook(spec), 0o755))
        files += _service_files(spec.host, [*spec.files, *extra], spec.dirs)
        argv = [*(spec.entrypoint if spec.entrypoint is not None else IMAGE_ENTRYPOINT[spec.image]),
                *(spec.command if spec.command is not None
                  else IMAGE_COMMAND[spec.image] if spec.entrypoint is None else ())]
        if spec.role == "switch":  # its plugs and its lab name it by container name
            argv = [_LAB if a == plan.lab else
                    a.replace(f"={PREFIX}{plan.lab}-", f"={PREFIX}{_LAB}-") for a in argv]
        svc: dict[str, Any] = {
            "image": tags[spec.image],
            "container_name": _name(plan, spec.name),
            "hostname": spec.hostname,
            "labels": _labels(spec.labels, source),
            "entrypoint": Alias("install"),
            "command": argv,
        }
        if spec.network is None:
            svc["network_mode"] = "none"
        else:
            svc["networks"] = {"lan": {"ipv4_address": str(spec.address)}}
        if spec.extra_hosts:
            svc["extra_hosts"] = [f"{h}:{ip}" for h, ip in spec.extra_hosts.items()]
        if spec.cap_add:
            svc["cap_add"] = list(spec.cap_add)
        if spec.cap_drop:
            svc["cap_drop"] = list(spec.cap_drop)
        if spec.role in ("node", "client"):
            # what labctl up adds on engines that confine containers with AppArmor (docker-default
            # denies mount(2), which FUSE needs); an engine without AppArmor ignores it
            svc["security_opt"] = ["apparmor=unconfined"]
        if spec.devices:
            svc["devices"] = list(spec.devices)
        if spec.partitions:
            svc["device_cgroup_rules"] = ["b 7:* rwm"]
        if spec.tmpfs:
            svc["tmpfs"] = [f"{path}:{opts}" if opts else path for path, opts in spec.tmpfs.items()]
        vols = mounts(spec)
        if spec.partitions:
            vols.append(f"disk:{NODE_DISK_MOUNT}:ro")
        vols.append(f"./{FILES_DIR}/{spec.host}:{FILES_MOUNT}:ro")
        if spec.engine_socket is not None:  # the power switch (docs/security.md): Docker's default
            vols.append(f"{DEFAULT_SOCKET}:{spec.engine_socket}")  # socket, compose's own engine
        svc["volumes"] = vols
        svc["mem_limit"] = _size(spec.memory)
        svc["memswap_limit"] = _size(spec.memory)  # no swap on top, as labctl up
        svc["pids_limit"] = spec.pids
        svc["stop_signal"] = spec.stop_signal
        if spec.stop_timeout is not None:
            svc["stop_grace_period"] = f"{spec.stop_timeout}s"
        deps: dict[str, dict[str, str]] = {}
        if spec.role == "node":
            deps[DISK] = {"condition": "service_healthy"}
            if has_cable:
                deps["cable"] = {"condition": "service_started"}
        elif spec.role == "client":
            deps.update({n: {"condition": "service_started"} for n in nodes})
        if deps:
            svc["depends_on"] = deps
        services[spec.host] = Note(svc, _service_note(plan, spec))

    net = plan.network
    data: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "x-install": Note(Anchor("install", ["/bin/sh", "-ec", INSTALL_SCRIPT, "labctl-install"]),
                          INSTALL_NOTE),
        "x-topology": Note(Anchor("topology", topology_text), TOPOLOGY_NOTE),
        "services": services,
        "networks": Note({"lan": {
            "name": _name(plan, net.name),
            "internal": net.internal,
            "labels": _labels(net.labels, source),
            "ipam": {"config": [{"subnet": str(net.subnet), "gateway": str(net.gateway)}]},
        }}, "The outer LAN: internal (no route out of the machine), on a fixed /24 (compose cannot pick a\n"
            "free one). The topology's own subnet exists only on the VXLAN inside the lab's hosts."),
        "volumes": {
            v.role: {"name": _name(plan, v.name),
                     "labels": _labels({**v.labels, **({LABEL_HELPER_IMAGE: tags["node"]}
                                                            if v.role == "disk" else {})}, source)}
            for v in plan.volumes
        },
    }
    secret_note = (f'the fixed placeholder "{PLACEHOLDER_SECRET}" (reproducible export; anyone who reads '
                   "this directory knows it: labctl export ... --secret random makes a fresh one)"
                   if secret == PLACEHOLDER_SECRET else "the one given to labctl export --secret")
    header = _header(plan, source, tags, subnet, secret_note)
    text = dump(_finish(data, plan.lab), header)
    files.insert(0, ExportFile(COMPOSE_FILE, text))
    return {f.path: f for f in files}


def _service_note(plan: LabPlan, spec: ContainerSpec) -> str:
    if spec.role == "node":
        return (f"Node {spec.host}: labctl-init runs the pre-heartbeat hooks (00-lan, 05-disk, ...), then "
                f"heartbeat.\nOuter address {spec.address}; the lab address lives on the VXLAN (lan.json).")
    if spec.role == "client":
        return (f"The client: makes its lab interface, then waits (docker-compose exec -T {spec.host} "
                "smbclient ...).")
    if spec.role == "cable":
        return "The serial cable's relay: no network, every capability dropped."
    if spec.role == "switch":
        return (f"The lab's power switch (STOMITH labctl, docs/fencing.md) on outer address {spec.address}:\n"
                f"every capability dropped, but the engine's socket ({DEFAULT_SOCKET}) mounted: it powers\n"
                "this lab's nodes off when the cluster asks, and nothing else (docs/security.md).")
    return f"{spec.role} {spec.host}"


def _finish(value: Any, lab: str) -> Any:
    """Every string as compose must read it: ``$`` doubled (compose interpolates every value), the lab
    name as ``${LABCTL_LAB:-<lab>}``."""
    ref = f"${{{LAB_VARIABLE}:-{lab}}}"

    def walk(v: Any) -> Any:
        if isinstance(v, Note):
            return Note(walk(v.value), v.comment)
        if isinstance(v, Anchor):
            return Anchor(v.name, walk(v.value))
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if isinstance(v, str):
            return v.replace("$", "$$").replace(_LAB, ref)
        return v

    return walk(value)


def export_command(plan: LabPlan, subnet: IPv4Network) -> str:
    """The ``labctl export`` command line that writes this export (the secret left out)."""
    t = plan.topology
    words = ["labctl", "export", "compose", t.name]
    if plan.lab != t.name:
        words += ["--lab", plan.lab]
    if t.heartbeat.name != t.default_profile:
        words += ["--profile", t.heartbeat.name]
    if plan.lockproto != "memexp":
        words += ["--lockproto", plan.lockproto]
    if subnet != DEFAULT_SUBNET:
        words += ["--subnet", str(subnet)]
    return " ".join([*words, "--out", "DIR"])


def _header(plan: LabPlan, source: str, tags: Mapping[ImageKind, str], subnet: IPv4Network,
            secret_note: str) -> str:
    t = plan.topology
    client = t.client.name
    share = f"//{t.cluster.name}/{t.share.name}"
    ref = f"${{{LAB_VARIABLE}:-{plan.lab}}}"

    def para(text: str) -> str:
        return textwrap.fill(text, width=HEADER_WIDTH, break_long_words=False, break_on_hyphens=False)

    images = "\n".join(f"    {tags[k]}" for k in ("base", "node", "client"))
    return "\n\n".join([
        para(f"{MARKER} lab {plan.lab} ({source}, profile {t.heartbeat.name}, lock protocol "
             f"{plan.lockproto}) as a compose project for docker-compose 1.29 (file format "
             f"{FORMAT_VERSION}), made from the same plan as labctl up by `{export_command(plan, subnet)}`. "
             "Edit the topology and export again rather than this file. What differs from labctl up: "
             'docs/runtime.md, "compose".'),
        f"""\
  labctl build            # makes the images named here (compose cannot build them)
  docker-compose up -d    # disk (formats once, attaches), cable, nodes, client
  docker-compose exec -T {client} smbclient {share} -N -c ls   # serves a few seconds after up
  labctl status --lab {plan.lab}   # labctl's verbs work on it: status, list, fail, recover, logs, exec
  docker-compose down -v  # nodes release the group, the disk detaches its loop devices, all removed""",
        "Images (tags of this checkout's sources; without them compose tries to pull):\n" + images,
        para(f"Lab name: {ref} in every name and label; LABCTL_LAB=NAME in a .env file beside this one "
             "runs it under another name (one at a time: the outer subnet is fixed). Outer network: "
             f"{subnet}, internal, fixed because compose cannot ask the engine for a free /24 (labctl up "
             f"takes the first free ones of {DEFAULT_POOL}). Nothing is published on host ports."),
        para(f"heartbeat's authkeys secret: {secret_note}."),
    ])


# --------------------------------------------------------------------------- writing and comparing


def _is_export(out: Path) -> bool:
    compose = out / COMPOSE_FILE
    try:
        with compose.open(encoding="utf-8") as fh:
            return fh.readline().startswith(f"# {MARKER}")
    except OSError:
        return False


def write_export(files: Mapping[str, ExportFile], out: str | Path) -> list[Path]:
    """Write the export under ``out``: a new or empty directory, or an earlier export (its ``files/``
    tree is replaced, so a removed host leaves nothing behind; other files, such as .env, stay)."""
    root = Path(out)
    if root.exists() and any(root.iterdir()) and not _is_export(root):
        raise UsageError(f"--out {root}: not empty and not a labctl compose export (no {COMPOSE_FILE} "
                         f"starting with '# {MARKER}'): name a new directory")
    old = root / FILES_DIR
    if old.exists():
        _remove_tree(old)
    written = []
    for f in files.values():
        dest = root.joinpath(*PurePosixPath(f.path).parts)
        _mkdirs(dest.parent)
        if dest.exists():
            dest.chmod(0o600)
        dest.write_text(f.content, encoding="utf-8")
        dest.chmod(f.mode)
        written.append(dest)
    return written


def _mkdirs(path: Path) -> None:
    """Directories readable by every container (the cable runs without CAP_DAC_OVERRIDE), whatever
    the umask."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        d.chmod(0o755)


def _remove_tree(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                os.unlink(full)
            else:
                os.rmdir(full)
    path.rmdir()


def differences(files: Mapping[str, ExportFile], out: str | Path) -> list[str]:
    """How the directory ``out`` differs from ``files``: as git keeps them (content and the executable
    bit; files other than the compose file and ``files/`` are not looked at)."""
    root = Path(out)
    found: dict[str, Path] = {}
    if (root / COMPOSE_FILE).exists():
        found[COMPOSE_FILE] = root / COMPOSE_FILE
    tree = root / FILES_DIR
    if tree.is_dir():
        for dirpath, _dirs, names in os.walk(tree):
            for name in names:
                full = Path(dirpath) / name
                found[full.relative_to(root).as_posix()] = full
    problems = [f"missing: {p}" for p in sorted(set(files) - set(found))]
    problems += [f"not in a fresh export: {p}" for p in sorted(set(found) - set(files))]
    for path in sorted(set(files) & set(found)):
        want, have = files[path], found[path]
        if have.read_text(encoding="utf-8") != want.content:
            problems.append(f"differs: {path}")
        elif bool(have.stat().st_mode & stat.S_IXUSR) != bool(want.mode & 0o100):
            problems.append(f"executable bit differs: {path}")
    return problems


def export_compose(topology: Topology, out: str | Path, **options: Any) -> list[Path]:
    """``compose_project`` written under ``out``."""
    return write_export(compose_project(topology, **options), out)


def resolve(value: Any, lab: str | None = None, default: str = "") -> Any:
    """What compose reads from a value of the exported file: ``${LABCTL_LAB:-x}`` as ``lab`` (or its
    default), ``$$`` as ``$`` (for tests and tools; compose does this itself)."""
    import re

    pattern = re.compile(r"\$\$|\$\{" + LAB_VARIABLE + r":-([^}]*)\}")

    def one(s: str) -> str:
        return pattern.sub(lambda m: "$" if m.group(0) == "$$" else (lab or m.group(1) or default), s)

    def walk(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return one(v) if isinstance(v, str) else v

    return walk(value)
