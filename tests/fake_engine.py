"""A fake Docker engine on a UNIX socket, for the lab's power switch (runtime/assets/labctl-switch):
the two calls it makes, inspect and kill, over a few containers held in memory.  The real engine
is the lab tests' (tests/lab/test_fencing.py)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class FakeEngine(HTTPServer):
    address_family = socket.AF_UNIX

    def __init__(self, path: str) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.kills: list[str] = []
        self.on_kill: dict[str, Callable[[], None]] = {}  # container name -> what its kill does
        super().__init__(path, _Handler)  # type: ignore[arg-type]

    def server_bind(self) -> None:  # a UNIX socket has no host name to look up
        self.socket.bind(self.server_address)

    def start(self) -> FakeEngine:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


def node(lab: str, running: bool = True, paused: bool = False, role: str = "node") -> dict[str, Any]:
    """A container as the switch reads it: its labels and its state."""
    return {"labels": {"labctl.lab": lab, "labctl.role": role}, "running": running, "paused": paused}


class _Handler(BaseHTTPRequestHandler):
    server: FakeEngine

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        c = self.server.containers.get(self.path.split("/")[2])
        if c is None:
            return self._reply(404, {"message": "No such container"})
        self._reply(200, {"Config": {"Labels": c["labels"]},
                          "State": {"Running": c["running"], "Paused": c["paused"]}})

    def do_POST(self) -> None:  # noqa: N802
        name = self.path.split("/")[2]
        c = self.server.containers.get(name)
        if c is None:
            return self._reply(404, {"message": "No such container"})
        if not c["running"]:
            return self._reply(409, {"message": "is not running"})
        self.server.kills.append(name)
        if name in self.server.on_kill:
            self.server.on_kill[name]()
        c["running"] = c["paused"] = False
        self._reply(204)
