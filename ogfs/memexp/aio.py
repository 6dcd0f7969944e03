"""Framed messages over trio streams (the same frames as protocol.send/recv)."""

from __future__ import annotations

from typing import Any

import trio

from .protocol import decode, encode, frame_length


class Channel:
    """One framed, bidirectional connection.  Sends are serialised so frames never interleave."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._buf = bytearray()
        self._send_lock = trio.Lock()

    async def send(self, op: str, **fields: Any) -> None:
        data = encode(op, **fields)
        async with self._send_lock:
            await self.stream.send_all(data)

    async def send_many(self, msgs: list[dict[str, Any]]) -> None:
        """Several messages (dicts with "op"), in one write."""
        data = b"".join(encode(m["op"], **{k: v for k, v in m.items() if k not in ("op", "v")})
                        for m in msgs)
        async with self._send_lock:
            await self.stream.send_all(data)

    async def _exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def recv(self) -> dict[str, Any]:
        return decode(await self._exactly(frame_length(await self._exactly(4))))

    async def aclose(self) -> None:
        await self.stream.aclose()
