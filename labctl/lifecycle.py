"""A lab's life: ``up`` (plan, claim, apply, wait until the share serves) and ``down``.

``up`` in order: the plan is made first (pure: a bad lab name or lock protocol is refused with
exit 2 before the engine is asked anything); the images are built when missing; the claim makes
this ``up`` the only one of its lab name (exit 3 otherwise); the disk is checked against the
engine's free space (exit 2, with the figures; only the claim existed, and it goes); then one
transaction creates the outer network on a free /24 of the pool, the volumes, the disk, the
containers, starts them and waits until the client can write to the share. Anything that fails,
Ctrl-C or SIGTERM undoes all of it.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Network

from labctl.errors import UsageError
from labctl.observe.boot import wait_serving
from labctl.observe.share import ShareProbe
from labctl.plan import LabPlan, make_plan
from labctl.render.authkeys import new_secret
from labctl.render.lan import DEFAULT_POOL
from labctl.runtime import apply, disk, images, network
from labctl.runtime.engine import connect, remove_container
from labctl.runtime.lab import Lab
from labctl.runtime.teardown import DownResult, Progress, remove_lab
from labctl.topology.model import Topology
from labctl.topology.units import format_size

POOL_ENV = "LABCTL_POOL"


@dataclass
class UpResult:
    lab: str
    topology: Topology
    plan: LabPlan
    images: dict[images.ImageKind, str]
    seconds_images: float
    seconds_boot: float
    seconds_serving: float
    share: ShareProbe


def default_serve_timeout(topology: Topology) -> float:
    """Initdead (a lone node waits that long for its peer) plus takeover and image-build slack."""
    return topology.heartbeat.initdead_ms / 1000 + topology.heartbeat.deadtime_ms / 1000 + 150


def subnet_pool(text: str | None = None) -> IPv4Network:
    """``--pool``, else ``$LABCTL_POOL``, else the default pool."""
    if text:
        return network.parse_pool(text)
    env = os.environ.get(POOL_ENV)
    return network.parse_pool(env, f"${POOL_ENV}") if env else DEFAULT_POOL


def up(
    topology: Topology,
    *,
    lab: str | None = None,
    lockproto: str = "memexp",
    pool: IPv4Network | None = None,
    no_cache: bool = False,
    keep_on_failure: bool = False,
    serve_timeout: float | None = None,
    progress: Progress | None = None,
) -> UpResult:
    progress = progress or Progress()
    if topology.source is None:
        raise ValueError("up needs a topology loaded from a file (its text goes into the lab's labels)")
    text = topology.source.read_text(encoding="utf-8")
    secret = new_secret()

    def plan_on(outer: IPv4Network | None) -> LabPlan:
        return make_plan(topology, lab=lab, lockproto=lockproto, outer=outer, secret=secret,
                         topology_text=text)

    plan = plan_on(None)  # refuses a bad lab name or lock protocol before the engine is asked
    pool = pool or subnet_pool()
    client = connect()
    started = time.monotonic()
    tags = images.ensure_images(client, progress.build, no_cache)
    t_images = time.monotonic() - started
    boot_started = time.monotonic()
    claim = apply.claim(client, plan.claim, tags)
    # After the claim only this up runs the lab's helpers; the free-space helper (a container run,
    # ~0.25 s) overlaps the leftovers look. A refusal removes the claim alone: nothing else exists.
    with ThreadPoolExecutor(max_workers=1) as pool_:
        free_f = pool_.submit(disk.free_space, client, plan.lab, tags["base"])
        try:
            apply.check_no_leftovers(client, plan)
            free = free_f.result()
            if free is not None and topology.disk.size > free:
                raise UsageError(f"{topology.source}: disk.size: {format_size(topology.disk.size)} is more "
                                 f"than the engine has free for volumes ({free / (1 << 30):.1f} GiB in its "
                                 "data root): a smaller disk, or free space on the engine")
        except BaseException:
            free_f.result()  # its helper is gone before the claim goes
            remove_container(claim)  # what is there is not this up's: only the claim goes
            raise
    with apply.Transaction(client, plan.lab, progress, keep_on_failure):
        plan = apply.create_network(client, plan_on, pool, progress)
        made = apply.build(client, plan, tags, progress)
        apply.start(plan, made, progress)
        t_boot = time.monotonic() - boot_started
        handle = Lab(client, plan.lab, topology, lockproto)
        probe = wait_serving(handle, serve_timeout or default_serve_timeout(topology), progress.waiting)
    return UpResult(plan.lab, topology, plan, tags, t_images, t_boot, time.monotonic() - boot_started, probe)


def down(name: str, progress: Progress | None = None) -> DownResult:
    """Remove every container, loop device, volume and network labelled ``labctl.lab=<name>``."""
    from labctl.runtime.lab import check_lab_name

    check_lab_name(name)
    return remove_lab(connect(), name, progress or Progress())
