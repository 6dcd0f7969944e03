"""Mount options of ogfs, and where a mount keeps its run files.

    hostdata=<node IP>   this node's address: selects its CID, and so its journal
    lockproto=nolock     override the superblock's lock protocol (memexp needs memexpd)
    locktable=<cidev>    override the superblock's lock table (the cidev path)
    jid=<N>              use journal N directly (testing; hostdata= is the normal way)
    commit=<seconds>     group commit interval (default 1; 0 = commit every operation)
    ro / rw              read-only mount
    barrier / nobarrier  fdatasync the device on fsync (default barrier)
    cache=<seconds>      kernel attribute and name cache (default 1); with memexp attributes
                         only, withdrawn whenever the inode's glock leaves the node
    debug                verbose daemon log
Generic options that mount(8) passes along (defaults, noatime, nosuid, _netdev, ...) are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

RUN_DIR = "/run/ogfs"
LOG_DIR = "/var/log/ogfs"

IGNORED = {"defaults", "rw", "auto", "noauto", "user", "nouser", "nosuid", "suid", "nodev", "dev",
           "noexec", "exec", "atime", "noatime", "relatime", "strictatime", "nodiratime", "_netdev",
           "sync", "async", "nofail", "loud", "silent"}


class OptionError(ValueError):
    pass


@dataclass
class MountOptions:
    device: str
    mountpoint: str
    hostdata: str | None = None
    lockproto: str | None = None
    locktable: str | None = None
    jid: int | None = None
    commit: float = 1.0
    readonly: bool = False
    barrier: bool = True
    cache_timeout: float = 1.0
    debug: bool = False

    def to_string(self) -> str:
        """Back to an -o string (for the daemon's command line)."""
        parts = [f"commit={self.commit:g}", f"cache={self.cache_timeout:g}",
                 "barrier" if self.barrier else "nobarrier"]
        for key in ("hostdata", "lockproto", "locktable", "jid"):
            v = getattr(self, key)
            if v is not None:
                parts.append(f"{key}={v}")
        if self.readonly:
            parts.append("ro")
        if self.debug:
            parts.append("debug")
        return ",".join(parts)


def _number(key: str, value: str, kind: type = float) -> float:
    try:
        v = kind(value)
    except ValueError:
        raise OptionError(f"option {key}={value}: not a number") from None
    if v < 0:
        raise OptionError(f"option {key}={value}: must not be negative")
    return v


def parse(device: str, mountpoint: str, options: str) -> MountOptions:
    o = MountOptions(os.path.abspath(device) if not device.startswith("/") else device,
                     os.path.abspath(mountpoint))
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        if key == "hostdata":
            if not value:
                raise OptionError("option hostdata= needs the node's IP address")
            o.hostdata = value
        elif key == "lockproto":
            if value not in ("nolock", "memexp"):
                raise OptionError(f"option lockproto={value}: choose nolock or memexp")
            o.lockproto = value
        elif key == "locktable":
            o.locktable = value
        elif key == "jid":
            o.jid = int(_number(key, value, int))
        elif key == "commit":
            o.commit = _number(key, value)
        elif key == "cache":
            o.cache_timeout = _number(key, value)
        elif key == "ro":
            o.readonly = True
        elif key == "barrier":
            o.barrier = value in ("", "1")
        elif key == "nobarrier":
            o.barrier = False
        elif key == "debug":
            o.debug = True
        elif key in IGNORED or key.startswith("x-"):
            continue
        else:
            raise OptionError(f"unknown option {item!r} (see mount.ogfs --help)")
    return o


@dataclass(frozen=True)
class RunPaths:
    pid: str
    sock: str
    log: str


def run_paths(mountpoint: str) -> RunPaths:
    name = os.path.abspath(mountpoint).strip("/").replace("/", "-") or "root"
    return RunPaths(f"{RUN_DIR}/{name}.pid", f"{RUN_DIR}/{name}.sock", f"{LOG_DIR}/{name}.log")
