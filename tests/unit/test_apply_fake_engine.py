"""The runtime's transaction against a fake engine client (the real engine: tests/lab/).

What is checked here is the logic around the engine's answers: the claim refuses a second up of one
lab name without touching the first lab, a failed up removes every object of its lab and nothing
else, and a subnet taken by a racing up makes the outer network move to the next free /24.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv4Network
from typing import Any

import docker.errors
import pytest

from labctl.errors import LabStateError
from labctl.plan import make_plan
from labctl.runtime import apply
from labctl.runtime.teardown import Progress
from labctl.topology import load_topology

TWO = load_topology("two-node")
TAGS: dict[Any, str] = {"base": "labctl/base:x", "node": "labctl/node:x", "client": "labctl/client:x"}
_ids = itertools.count(1)


def _match(labels: dict[str, str], name: str, filters: dict[str, Any] | None) -> bool:
    for want in (filters or {}).get("label", []):
        key, _, value = want.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    names = (filters or {}).get("name")
    return not names or name == str(names).strip("^/?$")


class FakeObject:
    def __init__(self, engine: FakeEngine, kind: str, name: str, labels: dict[str, str],
                 **attrs: Any) -> None:
        self.engine, self.kind, self.name, self.labels = engine, kind, name, labels
        self.id = f"{kind}{next(_ids)}"
        self.status = "created"
        self.attrs = {"Labels": labels, **attrs}

    def remove(self, force: bool = False, v: bool = False) -> None:
        self.engine.objects.remove(self)

    def put_archive(self, path: str, data: bytes) -> bool:
        return True

    def start(self) -> None:
        self.status = "running"

    def reload(self) -> None:
        pass


class Collection:
    def __init__(self, engine: FakeEngine, kind: str) -> None:
        self.engine, self.kind = engine, kind

    def list(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[FakeObject]:
        return [o for o in self.engine.objects if o.kind == self.kind and _match(o.labels, o.name, filters)]

    def get(self, ident: str) -> FakeObject:
        for o in self.engine.objects:
            if o.kind == self.kind and ident in (o.id, o.name):
                return o
        raise docker.errors.NotFound(ident)

    def create(self, name: str, labels: dict[str, str] | None = None, ipam: Any = None,
               **_: Any) -> FakeObject:
        if self.kind == "network":
            subnet = ipam["Config"][0]["Subnet"]
            if subnet in self.engine.taken_subnets:
                raise docker.errors.APIError("Pool overlaps with other one on this address space")
            ipam_attrs = {"Config": [{"Subnet": subnet}]}
            obj = FakeObject(self.engine, "network", name, labels or {}, IPAM=ipam_attrs)
        else:
            obj = FakeObject(self.engine, self.kind, name, labels or {})
        self.engine.objects.append(obj)
        return obj


class FakeAPI:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def create_host_config(self, **kw: Any) -> dict[str, Any]:
        return kw

    def create_endpoint_config(self, **kw: Any) -> dict[str, Any]:
        return kw

    def create_networking_config(self, cfg: dict[str, Any]) -> dict[str, Any]:
        return cfg

    def create_container(self, image: str, name: str, labels: dict[str, str], **_: Any) -> dict[str, str]:
        if any(o.kind == "container" and o.name == name for o in self.engine.objects):
            raise docker.errors.APIError(f'Conflict. The container name "/{name}" is already in use')
        obj = FakeObject(self.engine, "container", name, labels)
        self.engine.objects.append(obj)
        return {"Id": obj.id}


class FakeEngine:
    def __init__(self) -> None:
        self.objects: list[FakeObject] = []
        self.taken_subnets: set[str] = set()
        self.api = FakeAPI(self)
        self.containers = Collection(self, "container")
        self.networks = Collection(self, "network")
        self.volumes = Collection(self, "volume")

    def names(self) -> list[str]:
        return sorted(o.name for o in self.objects)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


def test_second_claim_of_one_lab_is_refused_and_touches_nothing(engine: FakeEngine) -> None:
    plan = make_plan(TWO, lab="x")
    apply.claim(engine, plan.claim, TAGS)  # type: ignore[arg-type]
    before = engine.names()
    with pytest.raises(LabStateError) as err:
        apply.claim(engine, plan.claim, TAGS)  # type: ignore[arg-type]
    assert err.value.exit_code == 3 and "lab x" in str(err.value)
    assert engine.names() == before == ["labctl-x.lab"]


def test_a_failed_up_removes_its_lab_and_nothing_else(engine: FakeEngine) -> None:
    other = FakeObject(engine, "container", "labctl-y-fred", {"labctl.lab": "y", "labctl.role": "node"})
    stranger = FakeObject(engine, "container", "web", {})
    engine.objects += [other, stranger]
    plan = make_plan(TWO, lab="x")
    apply.claim(engine, plan.claim, TAGS)  # type: ignore[arg-type]
    tx = apply.Transaction(engine, "x", Progress())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="boom"), tx:
        apply.create_network(engine, lambda s: make_plan(TWO, lab="x", outer=s),  # type: ignore[arg-type]
                             IPv4Network("10.213.0.0/16"), Progress())
        assert "labctl-x-lan" in engine.names()
        raise RuntimeError("boom")
    assert engine.names() == ["labctl-y-fred", "web"]


def test_leftovers_of_an_earlier_up_are_named(engine: FakeEngine) -> None:
    labels = {"labctl.lab": "x", "labctl.role": "cable"}
    engine.objects.append(FakeObject(engine, "volume", "labctl-x-cable", labels))
    plan = make_plan(TWO, lab="x")
    with pytest.raises(LabStateError, match="labctl-x-cable.*labctl down --lab x"):
        apply.check_no_leftovers(engine, plan)  # type: ignore[arg-type]


def test_a_subnet_taken_by_a_racing_up_moves_the_lab_to_the_next(engine: FakeEngine) -> None:
    engine.taken_subnets = {"10.213.0.0/24", "10.213.1.0/24"}
    plan = apply.create_network(engine, lambda s: make_plan(TWO, lab="x", outer=s),  # type: ignore[arg-type]
                                IPv4Network("10.213.0.0/16"), Progress())
    assert str(plan.network.subnet) == "10.213.2.0/24"
    assert str(plan.container("fred").address) == "10.213.2.2"


def test_a_full_pool_is_a_lab_state_error(engine: FakeEngine) -> None:
    engine.taken_subnets = {"10.213.0.0/24"}
    with pytest.raises(LabStateError, match="no free /24 left in the subnet pool 10.213.0.0/24"):
        apply.create_network(engine, lambda s: make_plan(TWO, lab="x", outer=s),  # type: ignore[arg-type]
                             IPv4Network("10.213.0.0/24"), Progress())
