"""The nemesis: applies a fault, heals it, and keeps its record with the lab (Jepsen's nemesis).

Invariant: a record exists before anything is touched, and says at every moment what may be in
effect. It is written as *requested* first; *since* once the kind's apply returned (the fault is
real); *healed* once its heal returned. A labctl killed between two of those leaves a record
that says "maybe": ``faults`` shows it, and ``heal`` runs the kind's heal for it, which is
idempotent. An apply that fails has undone its own steps (catalogue.py); its record keeps the
error and is healed at once, so the history still shows the attempt.

Verbs that end a fault (``recover``, ``thaw``, ``serial restore``) heal the active records of the
kinds they end on the same targets; only when there is none do they act on their own (a node down
for a reason labctl did not record).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from labctl.errors import LabStateError, UsageError
from labctl.faults.catalogue import Cut, FaultKind
from labctl.faults.kinds import KINDS
from labctl.faults.record import FaultRecord, new_id
from labctl.runtime.lab import Lab


def kind_of(name: str) -> FaultKind:
    try:
        return KINDS[name]
    except KeyError:
        raise UsageError(f"unknown fault {name!r} (known: {', '.join(KINDS)})") from None


def records(lab: Lab) -> list[FaultRecord]:
    """Every fault record of the lab, oldest first."""
    out = [FaultRecord.from_json(data) for data in lab.records.all().values()]
    return sorted(out, key=lambda r: (r.requested, r.id))


def active(lab: Lab) -> list[FaultRecord]:
    """Records that may be in effect: applied and not healed, or interrupted while applying."""
    return [r for r in records(lab) if r.healed is None]


def _save(lab: Lab, rec: FaultRecord) -> FaultRecord:
    lab.records.put(rec.id, rec.to_json())
    return rec


def apply(lab: Lab, kind: str, targets: Sequence[str], args: dict[str, Any] | None = None,
          hold: float | None = None) -> FaultRecord:
    """Apply one fault; its record once the fault is in effect (healed already if one-shot).

    ``hold``: seconds the caller means to keep it (``--for``), kept in the record as ``until``.
    """
    k = kind_of(kind)
    now = time.time()
    rec = FaultRecord(new_id(), kind, tuple(targets), dict(args or {}), requested=now,
                      until=now + hold if hold is not None else None)
    current = active(lab)
    ended = [r for r in current if r.kind in k.ends and set(r.targets) & set(rec.targets)]
    if ended:
        healed = [heal_one(lab, r) for r in ended]
        return healed[0]
    k.check(lab, rec, current)
    _save(lab, rec)
    try:
        done = k.apply(lab, rec)
    except BaseException as exc:
        _save(lab, rec.with_(healed=time.time(), detail=f"failed, undone: {exc}"))
        raise
    since = time.time()
    rec = rec.with_(since=since, detail=done.detail, undo=done.undo,
                    healed=since if k.one_shot else None)
    return _save(lab, rec)


def heal_one(lab: Lab, rec: FaultRecord) -> FaultRecord:
    """Undo one active record; the healed record."""
    if rec.healed is not None:
        raise LabStateError(f"fault {rec.id} ({rec.describe()}) is healed already")
    rec = _save(lab, rec.with_(heal_requested=time.time()))
    said = kind_of(rec.kind).heal(lab, rec)
    return _save(lab, rec.with_(healed=time.time(), detail=f"{rec.detail}; healed: {said}"))


def heal(lab: Lab, which: str) -> tuple[list[FaultRecord], list[tuple[FaultRecord, Exception]]]:
    """Heal fault ``which`` (an id) or ``all`` of them, newest first (a freeze applied after a
    partition is thawed before the partition's rules are taken out of the thawed node).

    Returns the healed records and those that could not be healed, with why; one failure does not
    stop the others."""
    current = active(lab)
    if which == "all":
        chosen = list(reversed(current))
    else:
        chosen = [r for r in current if r.id == which]
        if not chosen:
            known = {r.id: r for r in records(lab)}
            if which in known:
                raise LabStateError(f"fault {which} ({known[which].describe()}) is healed already")
            ids = ", ".join(f"{r.id} ({r.describe()})" for r in current) or "no fault is active"
            raise UsageError(f"lab {lab.name} has no fault {which!r} (active: {ids})")
    healed: list[FaultRecord] = []
    failed: list[tuple[FaultRecord, Exception]] = []
    for rec in chosen:
        try:
            healed.append(heal_one(lab, rec))
        except Exception as exc:  # a state, engine or command error: reported with the others
            failed.append((rec, exc))
    return healed, failed


def end(lab: Lab, kind: str, targets: Sequence[str]) -> list[FaultRecord]:
    """Heal the active faults of ``kind`` on ``targets`` (``disk NODE --heal``); LabStateError if none."""
    chosen = [r for r in active(lab) if r.kind == kind and set(r.targets) & set(targets)]
    if not chosen:
        raise LabStateError(f"no {kind} fault is active on {', '.join(targets)}")
    return [heal_one(lab, r) for r in reversed(chosen)]


def cuts(lab: Lab, current: Sequence[FaultRecord] | None = None) -> dict[Cut, str]:
    """Traffic cut by an active fault: (src, dst, medium) -> the fault's id."""
    out: dict[Cut, str] = {}
    for rec in current if current is not None else active(lab):
        if rec.since is not None:
            for cut in kind_of(rec.kind).cuts(lab, rec):
                out.setdefault(cut, rec.id)
    return out
