"""The lab plan: what a lab consists of, as plain data (model.py), made by one pure function
(build.py) from the topology and the options, with one module per host kind (kinds/)."""

from labctl.plan.build import disk_volume_name, lan_name, make_plan
from labctl.plan.model import (
    ContainerSpec,
    DiskSpec,
    ImageKind,
    LabPlan,
    NetworkSpec,
    PartitionDevice,
    Role,
    VolumeMount,
    VolumeSpec,
)

__all__ = [
    "ContainerSpec",
    "DiskSpec",
    "ImageKind",
    "LabPlan",
    "NetworkSpec",
    "PartitionDevice",
    "Role",
    "VolumeMount",
    "VolumeSpec",
    "disk_volume_name",
    "lan_name",
    "make_plan",
]
