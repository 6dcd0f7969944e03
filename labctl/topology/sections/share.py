"""The ``share`` section: the Samba share of the mounted cluster filesystem (smb.conf, haresources)."""

from __future__ import annotations

import re
from typing import Any

from labctl.topology.model import Share
from labctl.topology.problems import Checker, Invalid

SHARE_KEYS = ("name", "path", "workgroup", "force_user", "comment")

MOUNT_PATH_RE = re.compile(r"/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\Z")
SHARE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}\Z")
SHARE_RESERVED = {"global", "homes", "printers", "print$", "ipc$"}
WORKGROUP_RE = re.compile(r"[A-Za-z0-9_-]{1,15}\Z")
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")


def read_share(c: Checker, data: Any) -> Share | None:
    try:
        d = c.mapping({} if data is None else data, "share", SHARE_KEYS)
    except Invalid:
        return None
    k = "share"
    name = c.get(d, k, "name", lambda p, v: _share_name(c, p, v), "ogfs")
    path = c.get(
        d,
        k,
        "path",
        lambda p, v: c.matching(
            p,
            v,
            MOUNT_PATH_RE,
            "an absolute path of letters, digits, '.', '_', '-' (no spaces or ':': "
            "it goes on the haresources line)",
        ),
        "/ogfs",
    )
    workgroup = c.get(
        d,
        k,
        "workgroup",
        lambda p, v: c.matching(
            p, v, WORKGROUP_RE, "a workgroup name (at most 15 letters, digits, '-', '_')"
        ),
        "WORKGROUP",
    )
    user = c.get(d, k, "force_user", lambda p, v: c.matching(p, v, USER_RE, "a user name"), "root")
    comment = c.get(d, k, "comment", lambda p, v: _one_line(c, p, v), "OpenGFS cluster filesystem")
    if name is None or path is None or workgroup is None or user is None or comment is None:
        return None
    return Share(name, path, workgroup, user, comment)


def _share_name(c: Checker, key: str, value: Any) -> str:
    name = c.matching(key, value, SHARE_NAME_RE, "a share name (letters, digits, '-', '_')")
    if name.lower() in SHARE_RESERVED:
        raise c.fail(key, "is a name Samba reserves", value)
    return name


def _one_line(c: Checker, key: str, value: Any) -> str:
    text = c.string(key, value)
    if not text.isprintable():
        raise c.fail(key, "must be one line of printable text", value)
    return text
