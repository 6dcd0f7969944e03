"""The ``disk`` section: the shared disk's size and its partitions (cidev, journals, data), laid out."""

from __future__ import annotations

import re
from typing import Any, cast

from labctl.topology.model import PARTITION_ROLES, Disk, Partition, PartitionRole
from labctl.topology.problems import Checker, Invalid, key_path
from labctl.topology.units import MiB, format_size

DISK_KEYS = ("size", "fstype", "partitions")
PARTITION_KEYS = ("name", "role", "start", "size")

# Sizes the filesystem needs (docs/topology.md; ogfs design: cidev holds the config and per-node slots,
# journals are >= 8 MiB as in GFS2, the data partition holds the superblock, journals and resource groups).
ALIGN = 4096
MIN_CIDEV = 1 * MiB
MIN_JOURNAL = 8 * MiB
MIN_DATA = 64 * MiB
FIRST_PARTITION_START = 1 * MiB
# Each partition is a loop device on the host (runtime/disk.py), a pool every lab on it draws from.
MAX_PARTITIONS = 8

PARTITION_NAME_RE = re.compile(r"(?P<disk>[a-z]{2,8})(?P<num>[1-9][0-9]{0,2})\Z")
FSTYPE_RE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)?\Z")


def read_disk(c: Checker, data: Any) -> Disk | None:
    """The disk, partitions laid out (a missing start follows the previous partition, a missing last
    size fills the disk) and checked against each other and the filesystem's minimum sizes."""
    try:
        d = c.mapping(data, "disk", DISK_KEYS, required=("size", "partitions"))
    except Invalid:
        return None
    size = c.get(d, "disk", "size", c.size)
    fstype = c.get(
        d,
        "disk",
        "fstype",
        lambda p, v: c.matching(p, v, FSTYPE_RE, "a filesystem type such as ogfs"),
        "ogfs",
    )
    if size is not None and size % ALIGN:
        c.error("disk.size", f"must be a multiple of {ALIGN} bytes", d["size"])
        size = None
    if size is not None and size < FIRST_PARTITION_START + MIN_CIDEV + MIN_DATA:
        c.error(
            "disk.size",
            f"is too small: the cidev and the data partition alone need "
            f"{format_size(FIRST_PARTITION_START + MIN_CIDEV + MIN_DATA)}",
            d["size"],
        )
        size = None
    try:
        items = c.sequence(d["partitions"], "disk.partitions") if d.get("partitions") is not None else None
    except Invalid:
        items = None
    too_many = items is not None and len(items) > MAX_PARTITIONS
    if items is not None and too_many:
        c.error(
            "disk.partitions",
            f"has {len(items)} partitions, at most {MAX_PARTITIONS} are allowed (each is a loop device "
            "on the host)",
            [p.get("name") if isinstance(p, dict) else p for p in items],
        )
    if items is None or size is None or fstype is None:
        return None
    parts = _partitions(c, items, size)
    if parts is None or too_many:
        return None
    return Disk(size, parts, fstype)


def _partitions(c: Checker, items: list[Any], disk_size: int) -> tuple[Partition, ...] | None:
    parts: list[Partition] = []
    raw: list[dict[str, Any]] = []
    ok = True
    cursor: int | None = FIRST_PARTITION_START
    for i, item in enumerate(items):
        k = key_path("disk.partitions", i)
        try:
            d = c.mapping(item, k, PARTITION_KEYS, required=("name", "role"))
        except Invalid:
            ok, cursor = False, None
            continue
        name = c.get(
            d,
            k,
            "name",
            lambda p, v: c.matching(p, v, PARTITION_NAME_RE, "a partition name such as sda1"),
        )
        role = c.get(d, k, "role", lambda p, v: c.choice(p, v, PARTITION_ROLES))
        start_given = d.get("start") is not None
        size_given = d.get("size") is not None
        start = c.get(d, k, "start", c.size, cursor)
        size = c.get(d, k, "size", c.size, None)
        this_ok = name is not None and role is not None and (size is not None or not size_given)
        if start is None:
            this_ok = False
            if not start_given:
                c.error(
                    f"{k}.start",
                    "required key is missing (it defaults to the end of the previous "
                    "partition, but that one is invalid)",
                )
        if start is not None and start % ALIGN:
            c.error(f"{k}.start", f"must be a multiple of {ALIGN} bytes", d["start"])
            this_ok = False
        if size is not None and size % ALIGN:
            c.error(f"{k}.size", f"must be a multiple of {ALIGN} bytes", d["size"])
            this_ok = False
        if size is not None and size == 0:
            c.error(f"{k}.size", "must be more than 0", d["size"])
            this_ok = False
        if this_ok and start is not None and size is None:
            if i != len(items) - 1:
                c.error(
                    f"{k}.size",
                    "required key is missing (only the last partition may leave it "
                    "out, to fill the rest of the disk)",
                )
                this_ok = False
            elif start >= disk_size:
                after = "" if start_given else f" (right after {parts[-1].name})" if parts else ""
                c.error(
                    f"{k}.start",
                    f"{format_size(start)}{after} is at or beyond the end of the "
                    f"{format_size(disk_size)} disk",
                    d.get("start", format_size(start)),
                )
                this_ok = False
            else:
                size = disk_size - start
        if not this_ok or name is None or role is None or start is None or size is None:
            ok, cursor = False, None
            continue
        cursor = start + size
        parts.append(Partition(name, cast(PartitionRole, role), start, size))
        raw.append(d)
    if not ok:
        return None
    for i, part in enumerate(parts):
        k = f"disk.partitions[{i}]"
        if part.end > disk_size:
            c.error(
                f"{k}.size",
                f"{part.name} ends at {format_size(part.end)}, beyond the end of the "
                f"{format_size(disk_size)} disk",
                raw[i].get("size", format_size(part.size)),
            )
            ok = False
    disks = {m["disk"] for p in parts if (m := PARTITION_NAME_RE.match(p.name))}
    if len(disks) > 1:
        c.error(
            "disk.partitions",
            f"partitions of one disk share its device name, got {', '.join(sorted(disks))}",
            [p.name for p in parts],
        )
        ok = False
    seen: dict[str, int] = {}
    for i, part in enumerate(parts):
        if part.name in seen:
            c.error(
                f"disk.partitions[{i}].name",
                f"duplicate partition name (also disk.partitions[{seen[part.name]}])",
                part.name,
            )
            ok = False
        seen.setdefault(part.name, i)
    order = sorted(range(len(parts)), key=lambda j: parts[j].start)
    for a, b in zip(order, order[1:], strict=False):
        pa, pb = parts[a], parts[b]
        if pb.start < pa.end:
            c.error(
                f"disk.partitions[{b}].start",
                f"{pb.name} ({format_size(pb.start)}..{format_size(pb.end)}) overlaps {pa.name} "
                f"({format_size(pa.start)}..{format_size(pa.end)})",
                raw[b].get("start", format_size(pb.start)),
            )
            ok = False
    roles: list[str] = [p.role for p in parts]
    for role in ("cidev", "data"):
        if roles.count(role) != 1:
            c.error(
                "disk.partitions",
                f"needs exactly one partition with role {role}, has {roles.count(role)}",
                [f"{p.name}:{p.role}" for p in parts],
            )
            ok = False
    minimum = {"cidev": MIN_CIDEV, "journal": MIN_JOURNAL, "data": MIN_DATA}
    why = {
        "cidev": "the cluster information device",
        "journal": "a journal",
        "data": "the filesystem (superblock, journals, resource groups)",
    }
    for i, part in enumerate(parts):
        if part.size < minimum[part.role]:
            c.error(
                f"disk.partitions[{i}].size",
                f"{part.name} ({part.role}) is "
                f"{format_size(part.size)}; {why[part.role]} needs at least "
                f"{format_size(minimum[part.role])}",
                raw[i].get("size", format_size(part.size)),
            )
            ok = False
    return tuple(parts) if ok else None


# -- heartbeat
