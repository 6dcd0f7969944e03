"""The memexp wire protocol: framing, names, states, and every message (docs/memexp-protocol.md).

Frames are a 4-byte big-endian length followed by that many bytes of UTF-8 JSON, one object a
frame.  Every object carries "v" (the protocol version) and "op".  A peer that receives another
version answers ERROR and closes: no message is ever interpreted under the wrong version.

Two connections per node:
  * the lock connection: the node connects to memexpd at lockdev (the cluster IP, port 15697);
    requests go up, answers (WELCOME, MOUNTED, GRANTED, TRYFAILED, ...) come down, in order;
  * the callback connection: memexpd connects to the node at <node IP>:cbport (3001) and sends
    CB (demote a lock) and RECOVER (replay a dead node's journal); the node answers nothing there.
Tools (ogfs_tool lockdump/nodes/stomith-ack) open a lock connection and send STATUS or
STOMITH_ACK without HELLO.
"""

from __future__ import annotations

import json
import struct
from typing import Any

VERSION = 1
MAX_FRAME = 1 << 20

# Lock types: GFS's lm_interface.h numbers, plus JOURNAL (GFS2).
NONDISK, INODE, RGRP, META, IOPEN, FLOCK, PLOCK, QUOTA, JOURNAL = 1, 2, 3, 4, 5, 6, 7, 8, 9
TYPE_NAMES = {NONDISK: "nondisk", INODE: "inode", RGRP: "rgrp", META: "meta", IOPEN: "iopen",
              FLOCK: "flock", PLOCK: "plock", QUOTA: "quota", JOURNAL: "journal"}
# NONDISK lock numbers (GFS's gfs_ondisk.h)
MOUNT_LOCK, LIVE_LOCK, TRANS_LOCK, RENAME_LOCK = 0, 1, 2, 3

# States: GFS's numbers.  Compatible pairs: SH-SH and DF-DF only.
UN, EX, DF, SH = 0, 1, 2, 3
STATE_NAMES = {UN: "UN", EX: "EX", DF: "DF", SH: "SH"}

# Request flags.
TRY = 1        # do not wait: TRYFAILED if it cannot be granted now
TRY_1CB = 2    # with TRY: send the holders one callback anyway
NOEXP = 4      # may be granted over an expired node's frozen hold (recovery uses it)
PRIORITY = 8   # go to the head of the queue

Name = tuple[int, int]


def compatible(a: int, b: int) -> bool:
    """May one node hold `a` while another holds `b`?"""
    return a == UN or b == UN or (a == b and a in (SH, DF))


def name_str(name: Name) -> str:
    return f"{TYPE_NAMES.get(name[0], name[0])}:{name[1]}"


class ProtocolError(Exception):
    pass


def encode(op: str, **fields: Any) -> bytes:
    body = json.dumps({"v": VERSION, "op": op, **fields}, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(body)
    except ValueError as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(msg, dict) or "op" not in msg:
        raise ProtocolError("a message must be an object with an op")
    if msg.get("v") != VERSION:
        raise ProtocolError(f"protocol version {msg.get('v')!r}, this side speaks {VERSION}")
    return msg


def frame_length(header: bytes) -> int:
    (n,) = struct.unpack(">I", header)
    if n > MAX_FRAME:
        raise ProtocolError(f"frame of {n} bytes is larger than {MAX_FRAME}")
    return n


# ---------------------------------------------------------------------------------------------
# Blocking helpers, for tools and tests (the daemons use trio streams: ogfs/memexp/aio.py)
# ---------------------------------------------------------------------------------------------

def send(sock: Any, op: str, **fields: Any) -> None:
    sock.sendall(encode(op, **fields))


def recv(sock: Any) -> dict[str, Any]:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed")
            buf += chunk
        return buf
    return decode(exactly(frame_length(exactly(4))))
