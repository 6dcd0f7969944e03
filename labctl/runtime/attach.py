"""``docker exec`` attached to this process's stdin, stdout and stderr (``labctl exec``, ``shell``).

The engine's attach socket carries the command's output multiplexed (8-byte frame headers: stream,
length) unless it has a terminal; stdin is pumped in from a thread. The user's terminal itself is
handled by labctl/terminal.py.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import sys
import threading
import time

import docker
from docker.models.containers import Container

from labctl import terminal


def attach_exec(client: docker.DockerClient, c: Container, argv: list[str], tty: bool,
                interactive: bool) -> int:
    """Run ``argv`` in ``c`` with this process's streams; its exit code."""
    api = client.api
    exec_id = api.exec_create(c.id, argv, stdin=interactive, tty=tty, stdout=True, stderr=True)["Id"]
    sock_io = api.exec_start(exec_id, socket=True, tty=tty)
    raw: socket.socket = getattr(sock_io, "_sock", sock_io)

    def pump_stdin() -> None:
        try:
            while True:
                r, _, _ = select.select([sys.stdin.fileno()], [], [], 0.5)
                if not r:
                    continue
                data = os.read(sys.stdin.fileno(), 4096)
                if not data:
                    break
                raw.sendall(data)
        except OSError:
            return
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)

    if interactive:
        threading.Thread(target=pump_stdin, daemon=True).start()
    mode = (terminal.raw_mode(lambda rows, cols: api.exec_resize(exec_id, height=rows, width=cols))
            if tty else contextlib.nullcontext())
    with mode, contextlib.closing(raw):
        _copy_output(raw, tty)
    for _ in range(50):
        info = api.exec_inspect(exec_id)
        if not info.get("Running"):
            return int(info.get("ExitCode") or 0)
        time.sleep(0.1)
    return int(api.exec_inspect(exec_id).get("ExitCode") or 0)


def _copy_output(raw: socket.socket, tty: bool) -> None:
    out, err = sys.stdout.buffer, sys.stderr.buffer
    pending = b""
    while True:
        try:
            data = raw.recv(65536)
        except OSError:
            return
        if not data:
            return
        if tty:
            out.write(data)
            out.flush()
            continue
        pending += data
        while len(pending) >= 8:
            kind, size = pending[0], struct.unpack(">I", pending[4:8])[0]
            if len(pending) < 8 + size:
                break
            stream = err if kind == 2 else out
            stream.write(pending[8 : 8 + size])
            stream.flush()
            pending = pending[8 + size :]
