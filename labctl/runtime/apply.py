"""Applying a lab plan: the claim, then one transaction that undoes itself on failure or Ctrl-C.

The claim comes first: a never-started container named ``labctl-<lab>.lab``. Container names are
unique on an engine and the engine reserves them atomically, so of two ``up``s of one lab name
started at once exactly one gets the claim; the other is refused (exit 3) before it creates
anything, and never undoes the winner's objects (docs/runtime.md, "One up per lab").

After the claim, every object this ``up`` creates carries the lab's label from the moment the
engine makes it, and ``up`` refused to go on if any other object of the lab existed, so "what this
up created" is exactly "what carries the lab's label": the undo removes by label (like ``down``)
and cannot miss an object whose creation was interrupted halfway. A second Ctrl-C does not stop the
undo; SIGTERM is handled like Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from types import TracebackType

import docker
import docker.errors
from docker.models.containers import Container

from labctl.errors import LabStateError
from labctl.plan.model import ContainerSpec, ImageKind, LabPlan
from labctl.runtime import containers, disk, network
from labctl.runtime.context import engine_socket_path
from labctl.runtime.engine import EngineError, lab_objects, security_options
from labctl.runtime.teardown import Progress, remove_lab


class Interrupted(KeyboardInterrupt):
    """SIGTERM during ``up``: handled like Ctrl-C (undo, then exit)."""


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM raises like Ctrl-C while ``up`` works (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(_sig: int, _frame: object) -> None:
        raise Interrupted()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """While undoing: a second Ctrl-C or SIGTERM must not stop the cleanup halfway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {s: signal.signal(s, lambda sig, _f: got.append(sig)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------- the claim


def claim(client: docker.DockerClient, spec: ContainerSpec, tags: Mapping[ImageKind, str]) -> Container:
    """Make the lab's claim, or raise LabStateError (exit 3) naming who holds it."""
    try:
        return containers.create(client, spec, tags)
    except EngineError as exc:
        if "conflict" not in str(exc).lower() and "already in use" not in str(exc).lower():
            raise
    lab = spec.labels["labctl.lab"]
    objs = lab_objects(client, lab)
    running = sorted(c.name for c in objs.containers if c.status == "running")
    if running:
        raise LabStateError(f"lab {lab} is already up ({', '.join(running)} running): labctl status "
                            f"--lab {lab}; another lab of the same topology runs beside it with "
                            f"--lab OTHER-NAME; labctl down --lab {lab} removes this one")
    raise LabStateError(f"lab {lab} exists or another labctl up is making it right now "
                        f"({objs.describe()}): wait for it, or labctl down --lab {lab}")


def check_no_leftovers(client: docker.DockerClient, plan: LabPlan) -> None:
    """After the claim: no other object of the lab may exist (what a crash or an old labctl left), and
    no container may already have one of the plan's names."""
    objs = lab_objects(client, plan.lab)
    others = [c for c in objs.containers if c.name != plan.claim.name]
    if others or objs.networks or objs.volumes:
        left = ", ".join(sorted([c.name for c in others] + [n.name for n in objs.networks]
                                + [v.name for v in objs.volumes]))
        raise LabStateError(f"lab {plan.lab} has objects left from an earlier up ({left}): "
                            f"labctl down --lab {plan.lab} first")
    taken = [c.name for c in plan.containers
             if client.containers.list(all=True, filters={"name": f"^/?{c.name}$"})]
    if taken:
        raise LabStateError(f"containers named {', '.join(taken)} exist and are not lab {plan.lab}'s")


# --------------------------------------------------------------------------- the transaction


@dataclass
class Transaction:
    """``with Transaction(...) as tx:`` undoes everything of the lab if the block raises."""

    client: docker.DockerClient
    lab: str
    progress: Progress
    keep_on_failure: bool = False

    def __enter__(self) -> Transaction:
        self._signals = _signals_raise()
        self._signals.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._signals.__exit__(kind, exc, tb)
        if exc is None:
            return
        if self.keep_on_failure and not isinstance(exc, KeyboardInterrupt):
            self.progress.say(f"kept what was created (--keep-on-failure): labctl down --lab {self.lab} "
                              "removes it")
            return
        with _signals_held():
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self.progress.say(f"up {why}: removing what it created")
            errors = self._undo()
        if errors:
            raise EngineError(f"up {why}, and undoing it left errors:\n  " + "\n  ".join(errors)
                              + f"\n(original error: {exc})") from exc

    def _undo(self) -> list[str]:
        """Remove everything of the lab; a create abandoned in flight can land a moment later, hence
        the second look."""
        errors: list[str] = []
        for _ in range(3):
            try:
                remove_lab(self.client, self.lab, self.progress)
            except Exception as exc:  # noqa: BLE001 - report it, try again
                errors.append(str(exc))
            left = lab_objects(self.client, self.lab)
            if left.empty:
                return []
            time.sleep(0.5)
        return [*errors, f"still there: {left.describe()}"]


def create_network(client: docker.DockerClient, plan_on: Callable[[IPv4Network], LabPlan], pool: IPv4Network,
                   progress: Progress) -> LabPlan:
    """The outer network on the first free /24 of ``pool``; re-planned on the subnet a race left."""
    tried: list[IPv4Network] = []
    for _attempt in range(64):
        candidates = network.free_subnets(client, pool, tried)
        subnet = next(candidates, None)
        if subnet is None:
            raise LabStateError(f"no free /24 left in the subnet pool {pool} on this engine "
                                f"({len(tried)} taken while trying): down a lab, or name a larger pool "
                                "with --pool")
        plan = plan_on(subnet)
        try:
            net = network.create(client, plan.network)
        except network.SubnetTaken:
            tried.append(subnet)
            continue
        progress.say(f"created network {net.name} (outer {subnet}, internal; the lab's "
                     f"{plan.topology.subnet} lives on a VXLAN inside its hosts)")
        return plan
    raise LabStateError(f"could not get a subnet from {pool}: every try was taken by another up")


def build(client: docker.DockerClient, plan: LabPlan, tags: Mapping[ImageKind, str], progress: Progress
          ) -> dict[str, Container]:
    """Volumes, the disk, every container (created, not started); the containers by host."""
    for v in plan.volumes:
        disk.create_volume(client, v, tags["node"])
    loops = disk.attach_and_format(client, plan.lab, plan.disk, tags["node"])
    progress.say("attached the disk: " + ", ".join(f"{p}={loops[p]}" for p in plan.disk.partitions)
                 + f"; made the cidev and an ogfs filesystem (lock protocol {plan.lockproto})")
    sec = security_options(client)
    sock = engine_socket_path()
    made = {}
    for spec in plan.containers:
        made[spec.host] = containers.create(client, spec, tags, loops, sec, sock)
    return made


def start(plan: LabPlan, made: Mapping[str, Container], progress: Progress) -> None:
    """Start group by group: the cable, then every node together (the seed's step 9: heartbeat on
    both, nothing mounted, no lock server yet), then the client."""
    for group in sorted({c.start_group for c in plan.containers}):
        specs = [c for c in plan.containers if c.start_group == group]
        for spec in specs:
            made[spec.host].start()
        progress.say("started " + ", ".join(f"{s.host} ({s.address or 'no network'})" for s in specs))
