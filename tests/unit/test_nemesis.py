"""The nemesis's bookkeeping (faults/nemesis.py) over an in-memory record store and scripted kinds.

The kinds themselves run against real labs (tests/lab/test_faults.py); here only what the
nemesis promises: a record before anything is touched, a failed apply recorded and undone, one-shot
faults healed at once, heal all newest first, verbs that end a fault heal its record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from labctl.errors import LabStateError, UsageError
from labctl.faults import nemesis
from labctl.faults.catalogue import Applied, FaultKind
from labctl.faults.kinds import KINDS
from labctl.faults.record import FaultRecord


class Store:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.writes: list[FaultRecord] = []

    def put(self, record_id: str, data: bytes) -> None:
        self.files[record_id] = data
        self.writes.append(FaultRecord.from_json(data))

    def all(self) -> dict[str, bytes]:
        return dict(self.files)


class FakeLab:
    name = "t"

    def __init__(self) -> None:
        self.records = Store()
        self.log: list[str] = []


class Scripted(FaultKind):
    """Logs what it is asked to do; fails to apply when its target is "broken"."""

    def __init__(self, name: str, one_shot: bool = False, ends: tuple[str, ...] = ()) -> None:
        self.name, self.one_shot, self.ends = name, one_shot, ends

    def check(self, lab: Any, rec: FaultRecord, active: Sequence[FaultRecord]) -> None:
        if any(r.kind == rec.kind and r.targets == rec.targets for r in active):
            raise LabStateError("already")

    def apply(self, lab: Any, rec: FaultRecord) -> Applied:
        # the record of what is about to happen is already with the lab
        assert lab.records.writes[-1].id == rec.id and lab.records.writes[-1].since is None
        if rec.targets == ("broken",):
            raise RuntimeError("the engine said no")
        lab.log.append(f"apply {rec.kind} {' '.join(rec.targets)}")
        return Applied(f"{rec.kind} done", {"step": 1})

    def heal(self, lab: Any, rec: FaultRecord) -> str:
        assert rec.undo == {"step": 1}
        lab.log.append(f"heal {rec.kind} {' '.join(rec.targets)}")
        return "undone"


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLab]:
    scripted = {k.name: k for k in (Scripted("stop"), Scripted("go", one_shot=True, ends=("stop",)),
                                    Scripted("cut"))}
    monkeypatch.setattr("labctl.faults.nemesis.KINDS", scripted)
    yield FakeLab()


def test_a_record_is_written_before_and_after_and_heal_undoes_it(lab: FakeLab) -> None:
    rec = nemesis.apply(lab, "stop", ["fred"], {"x": 1}, hold=30)
    assert rec.active and rec.since is not None and rec.since >= rec.requested
    assert rec.until is not None and rec.until - rec.requested == pytest.approx(30)
    assert [w.since is None for w in lab.records.writes] == [True, False]
    with pytest.raises(LabStateError):
        nemesis.apply(lab, "stop", ["fred"])
    healed, failed = nemesis.heal(lab, rec.id)
    assert not failed and healed[0].healed is not None and "healed: undone" in healed[0].detail
    assert lab.log == ["apply stop fred", "heal stop fred"]
    assert nemesis.active(lab) == []
    with pytest.raises(LabStateError):
        nemesis.heal(lab, rec.id)


def test_a_failed_apply_is_recorded_healed_with_its_error(lab: FakeLab) -> None:
    with pytest.raises(RuntimeError):
        nemesis.apply(lab, "cut", ["broken"])
    (rec,) = nemesis.records(lab)
    assert rec.since is None and rec.healed is not None and "the engine said no" in rec.detail
    assert nemesis.active(lab) == []


def test_heal_all_goes_newest_first_and_a_verb_that_ends_a_fault_heals_its_record(lab: FakeLab) -> None:
    nemesis.apply(lab, "stop", ["fred"])
    nemesis.apply(lab, "cut", ["fred", "barney"])
    nemesis.apply(lab, "stop", ["barney"])
    ended = nemesis.apply(lab, "go", ["barney"])
    assert ended.kind == "stop" and ended.targets == ("barney",) and ended.healed is not None
    healed, failed = nemesis.heal(lab, "all")
    assert not failed
    assert lab.log[-2:] == ["heal cut fred barney", "heal stop fred"]
    on_its_own = nemesis.apply(lab, "go", ["wilma"])
    assert on_its_own.kind == "go" and on_its_own.healed == on_its_own.since  # one-shot


def test_unknown_kinds_and_ids_are_usage_errors(lab: FakeLab) -> None:
    with pytest.raises(UsageError, match="known: stop, go, cut"):
        nemesis.apply(lab, "melt", ["fred"])
    with pytest.raises(UsageError, match="no fault 'beef00'"):
        nemesis.heal(lab, "beef00")


def test_the_catalogue_registers_every_verb_of_the_issue_once() -> None:
    assert set(KINDS) == {"fail", "shutdown", "recover", "freeze", "thaw", "partition", "isolate", "lan",
                          "serial-cut", "serial-noise", "serial-restore", "kill", "disk", "standby",
                          "takeover", "stomith-ack"}
    assert all(k.name == name and k.summary for name, k in KINDS.items())


def test_a_record_reads_back_and_describes_itself_as_its_command() -> None:
    rec = FaultRecord("abc123", "kill", ("fred",), {"process": "memexpd"}, 1.5, since=2.0)
    back = FaultRecord.from_json(rec.to_json())
    assert back == rec and back.describe() == "kill fred memexpd"
    part = FaultRecord("abc124", "partition", ("fred", "client"), {"oneway": True, "x": None}, 1.0)
    assert part.describe() == "partition fred client --oneway" and not part.active
