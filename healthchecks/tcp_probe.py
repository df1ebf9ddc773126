"""TCP connect probe, optionally sending bytes and expecting bytes back."""

from __future__ import annotations

import asyncio
import contextlib

from .base import ProbeFailure, ProbeResult
from .configs import TcpProbeConfig
from .reasons import Reason

__all__ = ["TcpProbe", "TcpProbeConfig"]

MAX_READ_BYTES = 4096


class TcpProbe:
    def __init__(self, config: TcpProbeConfig) -> None:
        self._config = config

    async def probe(self) -> ProbeResult:
        reader, writer = await asyncio.open_connection(self._config.host, self._config.port)
        try:
            if self._config.send is not None:
                writer.write(self._config.send.encode())
                await writer.drain()
            if self._config.expect is not None:
                expected = self._config.expect.encode()
                received = b""
                while expected not in received and len(received) < MAX_READ_BYTES:
                    chunk = await reader.read(MAX_READ_BYTES)
                    if not chunk:
                        raise ProbeFailure(
                            Reason.BODY_MISMATCH, "connection closed before expected bytes"
                        )
                    received += chunk
                if expected not in received:
                    raise ProbeFailure(Reason.BODY_MISMATCH, f"no {self._config.expect!r} in reply")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return ProbeResult(ok=True, reason=Reason.OK, detail="connected")

    async def close(self) -> None:
        return None
