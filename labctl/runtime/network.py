"""The lab's outer network: one internal Docker bridge on a subnet free on this engine.

Docker sees only the outer network; the topology's own subnet lives on a VXLAN inside the lab's
hosts (render/lan.py, assets/labctl-lan), so labs of the same topology run side by side and the
engine's host never gets a route into the lab's addresses (docs/runtime.md, "Lab addresses").

- ``internal=True``: no route out of the machine, nothing published.
- The subnet comes from a pool (default 10.213.0.0/16, one /24 a lab; ``up --pool``,
  ``LABCTL_POOL``). Docker refuses a subnet that overlaps another network's, which makes the
  choice safe under concurrency: two ``up``s that pick the same /24 at once get one network and
  one refusal, and the loser picks again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from ipaddress import IPv4Network, ip_network

import docker
import docker.errors
import docker.types
from docker.models.networks import Network

from labctl.errors import UsageError
from labctl.plan.model import NetworkSpec
from labctl.render.lan import DEFAULT_POOL, OUTER_PREFIX
from labctl.runtime.engine import EngineError, LabStateError


class SubnetTaken(LabStateError):
    """Another network took the subnet between the look and the create: pick again."""


def parse_pool(text: str, where: str = "--pool") -> IPv4Network:
    try:
        pool = ip_network(text, strict=True)
    except ValueError as exc:
        raise UsageError(f"{where} {text!r}: not an IPv4 network ({exc})") from None
    if pool.version != 4 or pool.prefixlen > OUTER_PREFIX or not pool.is_private:
        raise UsageError(f"{where} {text!r}: a private IPv4 network of /{OUTER_PREFIX} or larger "
                         f"(e.g. {DEFAULT_POOL}), split into one /{OUTER_PREFIX} per lab")
    assert isinstance(pool, IPv4Network)
    return pool


def used_subnets(client: docker.DockerClient) -> list[IPv4Network]:
    out = []
    for net in client.networks.list():
        try:
            net.reload()
        except docker.errors.NotFound:
            continue
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            with_subnet = cfg.get("Subnet")
            if not with_subnet:
                continue
            try:
                other = ip_network(with_subnet, strict=False)
            except ValueError:
                continue
            if isinstance(other, IPv4Network):
                out.append(other)
    return out


def free_subnets(client: docker.DockerClient, pool: IPv4Network, skip: Iterable[IPv4Network] = ()
                 ) -> Iterator[IPv4Network]:
    """The pool's /24s that overlap no network on the engine (nor ``skip``), lowest first."""
    taken = [*used_subnets(client), *skip]
    for candidate in pool.subnets(new_prefix=OUTER_PREFIX):
        if not any(candidate.overlaps(t) for t in taken):
            yield candidate


def create(client: docker.DockerClient, spec: NetworkSpec) -> Network:
    pool = docker.types.IPAMPool(subnet=str(spec.subnet), gateway=str(spec.gateway))
    try:
        return client.networks.create(
            spec.name,
            driver="bridge",
            internal=spec.internal,
            ipam=docker.types.IPAMConfig(pool_configs=[pool]),
            labels=spec.labels,
            check_duplicate=True,
        )
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc)
        if "overlap" in text.lower():
            raise SubnetTaken(f"subnet {spec.subnet} was taken meanwhile ({text})") from None
        raise EngineError(f"cannot create network {spec.name}: {text}") from None
