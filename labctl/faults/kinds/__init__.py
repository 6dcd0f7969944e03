"""The fault catalogue: every verb labctl can break a lab with, one registration line each."""

from __future__ import annotations

from labctl.faults.catalogue import FaultKind
from labctl.faults.kinds.disk import Disk
from labctl.faults.kinds.freeze import Freeze, Thaw
from labctl.faults.kinds.lan import Isolate, LossyLan, Partition
from labctl.faults.kinds.operator import STANDBY, TAKEOVER, StomithAck
from labctl.faults.kinds.power import Fail, Recover, Shutdown
from labctl.faults.kinds.process import Kill
from labctl.faults.kinds.serial import SerialCut, SerialNoise, SerialRestore

KINDS: dict[str, FaultKind] = {k.name: k for k in (
    Fail(), Shutdown(), Recover(),
    Freeze(), Thaw(),
    Partition(), Isolate(), LossyLan(),
    SerialCut(), SerialNoise(), SerialRestore(),
    Kill(),
    Disk(),
    STANDBY, TAKEOVER, StomithAck(),
)}
