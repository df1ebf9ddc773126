"""The API's socket, there from the first moment, and bounded in what a client can hold.

The socket is bound as the plugin starts, before anything else: until the API proper (aiohttp,
a tenth of a second of CPU to load, which start-up spends on its first announcements) takes it
over, a small responder answers every request `503 starting` with what is still pending, so no
caller is ever refused.

Every connection, then, goes through a guard: at most `limit` at once (below the open-file
budget, so that probes, exec checks and the ExaBGP pipe always have descriptors); when a new
one arrives at the limit, the connection that has been quiet longest is closed to make room
(an idle crowd cannot lock out `announcer status`); a connection quiet for `idle_s` is closed,
and none lives longer than `lifetime_s`, however slowly it trickles bytes.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import time
from collections.abc import Callable
from typing import Any, cast

from ..logs import get_logger

__all__ = [
    "ConnectionGuard",
    "bind_api_socket",
    "connection_limit",
    "starting_protocol",
]

log = get_logger("api")

MAX_CONNECTIONS = 256
IDLE_S = 10.0
LIFETIME_S = 60.0
# what a request head may be before the early responder gives up on it
MAX_HEAD_BYTES = 8192


def bind_api_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket for the API (OSError when the address cannot be had)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def connection_limit(reserved: int) -> int:
    """At most MAX_CONNECTIONS, and never more than half of what the open-file limit leaves
    once `reserved` descriptors (probes, watchers, pipes) are set aside."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(4, min(MAX_CONNECTIONS, (soft - reserved) // 2))


class _Starting(asyncio.Protocol):
    """Reads one request head and answers 503 with the start-up's progress, then closes."""

    def __init__(self, pending: Callable[[], dict[str, Any]]) -> None:
        self._pending = pending
        self._head = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not asyncio.Transport subclasses: no isinstance)
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._head += data
        if b"\r\n\r\n" in self._head or b"\n\n" in self._head:
            self._answer()
        elif len(self._head) > MAX_HEAD_BYTES and self._transport is not None:
            self._transport.close()

    def _answer(self) -> None:
        if self._transport is None:
            return
        body = json.dumps(
            {"error": "starting: no decisions yet", "starting": True, **self._pending()}
        ).encode()
        self._transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Retry-After: 1\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self._transport.close()
        self._transport = None


def starting_protocol(pending: Callable[[], dict[str, Any]]) -> Callable[[], asyncio.Protocol]:
    return lambda: _Starting(pending)


class _Guarded(asyncio.Protocol):
    """Passes everything to the protocol it wraps (aiohttp's), and tells the guard when bytes
    come in, so that it can close what is quiet or too old."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self.transport: asyncio.Transport | None = None
        self.opened = self.active = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._guard.admit(self)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.active = time.monotonic()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.forget(self)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class ConnectionGuard:
    """Wraps a protocol factory: at most `limit` connections, none quiet for `idle_s` or older
    than `lifetime_s`. `evicted` counts the connections it closed."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        limit: int,
        idle_s: float = IDLE_S,
        lifetime_s: float = LIFETIME_S,
    ) -> None:
        self._factory = factory
        self.limit = limit
        self._idle_s = idle_s
        self._lifetime_s = lifetime_s
        self._open: dict[_Guarded, None] = {}  # in order of arrival
        self._sweeper: asyncio.TimerHandle | None = None
        self.evicted = 0

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self, self._factory())

    @property
    def open(self) -> int:
        return len(self._open)

    def admit(self, connection: _Guarded) -> None:
        while len(self._open) >= self.limit:
            quietest = min(self._open, key=lambda c: c.active)
            self._drop(quietest, "the API's connection limit is reached")
        self._open[connection] = None
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    def forget(self, connection: _Guarded) -> None:
        self._open.pop(connection, None)

    def _drop(self, connection: _Guarded, why: str) -> None:
        self._open.pop(connection, None)
        self.evicted += 1
        log.debug("API connection closed", extra={"why": why})
        connection.close()

    def _sweep(self) -> None:
        self._sweeper = None
        now = time.monotonic()
        for connection in list(self._open):
            if now - connection.active > self._idle_s:
                self._drop(connection, "idle")
            elif now - connection.opened > self._lifetime_s:
                self._drop(connection, "open too long")
        if self._open:
            self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._open):
            connection.close()
        self._open.clear()
