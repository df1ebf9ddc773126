"""A minimal HTTP/1.1 GET client on asyncio's protocol layer, one exchange at a time.

Health probes of a thousand VIPs a second make the HTTP client the plugin's main cost, and a
general client (pools, cookies, redirects, compression) spends most of its time on features a
probe never uses. This one reads at most `limit` bytes of body and understands Content-Length,
chunked encoding and read-until-close. Nothing else.

`LeanClient` keeps its one connection open between probes when the server allows it (HTTP/1.1,
no `Connection: close`, a body framed and read whole): no connect, accept and close per probe,
which is most of a probe's cost on both sides. A reused connection that the server closed just
as the request went out is retried once on a new connection (a GET is idempotent); any other
failure is the probe's. A listener that goes away still shows at once: stopping servers close
their connections, and the next probe then connects afresh and is refused.

Clients of one plain-HTTP endpoint can share a `ConnectionPool`: ten thousand checks against
one nginx then hold about as many connections as probes are in flight at once (a handful),
not one each, which neither the plugin's loop (a connect costs far more than a request on an
open connection) nor the server's `worker_connections` would bear.

`LeanClient.start` is the same exchange without a task: on a kept connection it sends at once
and hands the answer to a callback from the protocol's own `data_received`. A thousand probes a
second then cost one send and one receive each, not a task and a chain of coroutines.
"""

from __future__ import annotations

import asyncio
import collections
import re
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

__all__ = [
    "BadResponse",
    "ConnectionPool",
    "ConnectionPools",
    "LeanClient",
    "Stale",
    "build_request",
]

MAX_HEAD_BYTES = 16 * 1024
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?:\r|$)")
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked")
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:[^\r]*close")
_NO_LINGER = struct.pack("ii", 1, 0)
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BadResponse(Exception):
    pass


class Stale(Exception):
    """A reused connection ended before any byte of the answer: send again on a new one."""


Answer = tuple[int, bytes]  # status, body (at most `limit` bytes)


class _Reply(Protocol):
    """Where a connection delivers one exchange's outcome: a future (`get`) or a callback
    (`start`)."""

    def done(self) -> bool: ...

    def set_result(self, result: Answer, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class _CallbackReply:
    """A reply that calls back at once, from the protocol's own callback: no future, no task."""

    __slots__ = ("_client", "_connection", "_deliver", "_done")

    def __init__(
        self,
        client: LeanClient,
        connection: _Connection,
        deliver: Callable[[Answer | BaseException], None],
    ) -> None:
        self._client = client
        self._connection = connection
        self._deliver = deliver
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Answer, /) -> None:
        if not self._done:
            self._done = True
            self._client.finished(self._connection)
            self._deliver(result)

    def set_exception(self, exception: BaseException, /) -> None:
        if not self._done:
            self._done = True
            # as in `_exchange`: what arrives later on this connection would be out of step
            self._client.drop(self._connection)
            self._deliver(exception)

    def abandon(self) -> None:
        """The caller gave up (its deadline): nothing is delivered any more."""
        if not self._done:
            self._done = True
            self._client.drop(self._connection)


class _Connection(asyncio.Protocol):
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._done: _Reply | None = None
        self._transport: asyncio.Transport | None = None
        self.open = False
        self.exchanges = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: trust the protocol, not the type
        self._transport = cast(asyncio.Transport, transport)
        self.open = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # a closed connection ends with a reset, as HAProxy's own checks do: no FIN
            # exchange and no TIME_WAIT socket per probe (a thousand a second add up)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)

    def send(self, request: bytes, done: _Reply) -> None:
        assert self._transport is not None
        self._buffer.clear()
        self._done = done
        self.exchanges += 1
        try:
            if self._transport.is_closing():
                # the server closed it and connection_lost has not run yet
                raise RuntimeError("closed")
            self._transport.write(request)
        except RuntimeError:  # uvloop's word for a transport closed under us
            self.open = False
            done.set_exception(
                Stale() if self._reuse_unanswered() else ConnectionResetError("closed")
            )

    def data_received(self, data: bytes) -> None:
        if self._done is None or self._done.done():
            self.close()  # nobody asked: a confused server; start afresh next time
            return
        self._buffer += data
        try:
            result = _complete(self._buffer, self._limit)
        except BadResponse as exc:
            self._fail(exc)
            return
        if result is not None:
            status, body, reusable = result
            if not reusable:
                self.close()
            self._done.set_result((status, body))
        elif len(self._buffer) > MAX_HEAD_BYTES + self._limit + 64 * 1024:
            self._fail(BadResponse("response too large"))

    def _reuse_unanswered(self) -> bool:
        """A reused connection ended before any byte of the answer: the server closed it as
        the request went out (send again on a new one: Stale)."""
        return not self._buffer and self.exchanges > 1

    def eof_received(self) -> bool:
        self.open = False
        if self._done is not None and not self._done.done():
            if self._reuse_unanswered():
                self._fail(Stale())
                return False
            try:
                result = _complete(self._buffer, self._limit, eof=True)
            except BadResponse as exc:
                self._fail(exc)
                return False
            if result is None:
                self._fail(BadResponse("connection closed before a complete response"))
            else:
                self._done.set_result(result[:2])
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._done is not None and not self._done.done():
            if self._reuse_unanswered():
                self._done.set_exception(Stale())
            else:
                self._done.set_exception(
                    exc or BadResponse("connection closed before a complete response")
                )

    def _fail(self, exc: BaseException) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.abort()


# Connections to one endpoint open or opening at once. A fast health endpoint needs a handful
# (a thousand probes a second at a fraction of a millisecond each); a slow one needs as many as
# probes wait on it at once (a thousand checks at 1 s on an endpoint that takes 250 ms: 250),
# and a probe that waited for a connection past its deadline would be a false failure. The cap
# bounds a burst of ten thousand probes, not the steady state.
MAX_POOL_SIZE = 256


class ConnectionPool:
    """Kept-alive connections to one endpoint, shared by the clients of that endpoint, at most
    `max_size` of them open or opening at once.

    A client takes one for an exchange and gives it back after a whole answer (or closed:
    the slot frees). With none idle, a client connects while fewer than `max_size` are out,
    and otherwise waits for one to come back: a burst of ten thousand probes makes at most
    `max_size` connections, not ten thousand connects that the loop cannot finish before their
    deadlines. The last given is the first taken, so a few stay busy and the rest age out."""

    def __init__(self, max_size: int = MAX_POOL_SIZE) -> None:
        self._max = max_size
        self._idle: list[_Connection] = []
        self._out: set[_Connection] = set()
        # connects under way, and slots promised to a waiter that will connect
        self._connecting = 0
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()

    def take(self) -> _Connection | None:
        """An idle open connection, now, or None."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.open:
                self._out.add(connection)
                return connection
        return None

    async def acquire(
        self, connect: Callable[[], Awaitable[_Connection]], fresh: bool = False
    ) -> _Connection:
        """An idle connection, a new one (`fresh`: never an idle one), or the next given back."""
        if not fresh and (connection := self.take()) is not None:
            return connection
        if len(self._out) + self._connecting >= self._max:
            waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                # a connection (or a slot) handed over just as the caller gave up: pass it on
                if waiter.done() and not waiter.cancelled():
                    self._pass_on(waiter.result())
                raise
            if handed is not None:
                return handed
        else:
            self._connecting += 1
        try:
            connection = await connect()
        except BaseException:
            self._connecting -= 1
            self._wake_one()
            raise
        self._connecting -= 1
        self._out.add(connection)
        return connection

    def give(self, connection: _Connection) -> None:
        """The exchange on `connection` is over: it carries the next (or, closed, its slot is
        free for a new one)."""
        if connection not in self._out:
            return
        self._out.discard(connection)
        if not connection.open:
            self._wake_one()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._out.add(connection)
                waiter.set_result(connection)
                return
        if len(self._idle) < self._max:
            self._idle.append(connection)
        else:
            connection.close()

    def _pass_on(self, handed: _Connection | None) -> None:
        if handed is None:
            self._connecting -= 1
            self._wake_one()
        else:
            self.give(handed)

    def _wake_one(self) -> None:
        """A slot is free: the first waiter connects (the slot is its own from now)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._connecting += 1
                waiter.set_result(None)
                return

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    def __len__(self) -> int:
        """Connections open or opening."""
        return len(self._idle) + len(self._out) + self._connecting


class ConnectionPools:
    """One pool per plain-HTTP host and port, for the probes built with it; `close` ends them."""

    def __init__(self, max_size: int = MAX_POOL_SIZE) -> None:
        self._pools: dict[tuple[str, int], ConnectionPool] = {}
        self._max_size = max_size

    def get(self, host: str, port: int) -> ConnectionPool:
        pool = self._pools.get((host, port))
        if pool is None:
            pool = self._pools[(host, port)] = ConnectionPool(self._max_size)
        return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()

    def connections(self) -> int:
        return sum(len(pool) for pool in self._pools.values())


class LeanClient:
    """GETs one prepared request (see build_request) from host:port, over one kept connection
    (`reuse`), a shared pool's (`pool`, which implies reuse), or a new connection each time."""

    def __init__(
        self,
        host: str,
        port: int,
        request: bytes,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        limit: int = 64 * 1024,
        reuse: bool = True,
        pool: ConnectionPool | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._request = request
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname or host
        self._limit = limit
        self._reuse = reuse or pool is not None
        # where idle connections wait between exchanges: the pool, or the client's own one
        self._pool = pool
        self._connection: _Connection | None = None
        self._pending: _CallbackReply | None = None

    def _idle(self) -> _Connection | None:
        """An open connection to send on now (taken out of the pool, if there is one)."""
        if self._pool is not None:
            return self._pool.take()
        connection = self._connection
        return connection if connection is not None and connection.open else None

    def finished(self, connection: _Connection) -> None:
        """An exchange on `connection` ended with a whole answer: it may carry the next."""
        if not self._reuse:
            connection.close()
        elif self._pool is not None:
            self._pool.give(connection)

    async def get(self) -> Answer:
        pool = self._pool
        if pool is not None:
            connection = await pool.acquire(self._connect)
            try:
                return await self._exchange(connection)
            except Stale:
                return await self._exchange(await pool.acquire(self._connect, fresh=True))
        kept = self._idle()
        if kept is not None:
            try:
                return await self._exchange(kept)
            except Stale:
                pass
        return await self._exchange(await self._connect())

    def start(self, deliver: Callable[[Answer | BaseException], None]) -> bool:
        """Send the request on the kept connection, if one is open, and return True: `deliver`
        then gets the answer or the exception (`Stale`: the server closed the connection as
        the request went out; send again with `get`), once, possibly before this returns.
        False: no connection to reuse (use `get`, which connects)."""
        connection = self._idle() if self._reuse else None
        if connection is None:
            return False
        self._pending = reply = _CallbackReply(self, connection, deliver)
        connection.send(self._request, reply)
        return True

    def abandon(self) -> None:
        """Give up on the exchange `start` began (a deadline): it delivers nothing more, and
        its connection is closed (a late answer would be out of step)."""
        if self._pending is not None:
            self._pending.abandon()
            self._pending = None

    def drop(self, connection: _Connection) -> None:
        connection.close()
        if self._pool is not None:
            self._pool.give(connection)  # closed: its slot frees
        if self._connection is connection:
            self._connection = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(self._limit)
        try:
            if self._ssl_context is not None:
                await loop.create_connection(
                    lambda: connection,
                    self._host,
                    self._port,
                    ssl=self._ssl_context,
                    server_hostname=self._server_hostname,
                )
            else:
                await loop.create_connection(lambda: connection, self._host, self._port)
        except BaseException:
            # a deadline that cancels the connect after the connection was made, before
            # this resumed, would otherwise leave it open and unused until the server's
            # keep-alive timeout
            connection.close()
            raise
        if self._pool is None:
            self._connection = connection
        return connection

    async def _exchange(self, connection: _Connection) -> Answer:
        done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        connection.send(self._request, done)
        try:
            result = await done
        except BaseException:
            # a timeout or an error mid-answer: what arrives later would be out of step
            self.drop(connection)
            raise
        self.finished(connection)
        return result

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _complete(buffer: bytearray, limit: int, eof: bool = False) -> tuple[int, bytes, bool] | None:
    """(status, body, reusable) once the buffer holds a whole response (or `limit` bytes of
    body); `reusable`: the message ended exactly where the buffer does and the server keeps
    the connection open."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES or eof:
            raise BadResponse("no HTTP response head")
        return None
    head = bytes(buffer[:end])
    line_end = head.find(b"\r\n")
    status_line = head if line_end < 0 else head[:line_end]
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise BadResponse(f"not an HTTP response: {status_line[:60]!r}")
    status = int(parts[1])
    # the few headers that frame the message, found in the lower-cased head (a dict of every
    # header costs more than the rest of the probe)
    fields = head.lower()
    length_match = _CONTENT_LENGTH.search(fields)
    chunked = _CHUNKED.search(fields) is not None
    keep = (
        not eof
        and parts[0] == b"HTTP/1.1"
        and _CONNECTION_CLOSE.search(fields) is None
        and status >= 200
    )
    body = bytes(buffer[end + 4 :])
    if chunked:
        decoded = _dechunk(body, limit)
        if decoded is None:
            if eof:
                raise BadResponse("connection closed before the whole body")
            return None
        data, used = decoded
        return status, data, keep and used == len(body)
    if length_match is not None:
        length = int(length_match.group(1))
        wanted = min(length, limit)
        if len(body) >= wanted:
            return status, body[:wanted], keep and len(body) == length
        if eof:
            raise BadResponse("connection closed before the whole body")
        return None
    if status in (204, 304):
        return status, b"", keep and not body
    if len(body) >= limit or eof or 100 <= status < 200:
        return status, body[:limit], False  # read until close: the connection is spent
    return None


def _dechunk(data: bytes, limit: int) -> tuple[bytes, int | None] | None:
    """(body, bytes of `data` the whole message used, or None if cut at `limit`), or None
    while incomplete."""
    out = bytearray()
    position = 0
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = data[position:line_end].split(b";", 1)[0].strip(b" \t")
        if not _HEX.fullmatch(size_text):
            raise BadResponse(f"bad chunk size: {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            # the last chunk, then trailer fields (rare from a health endpoint), each a line,
            # and the empty line that ends the message
            position = line_end + 2
            while True:
                field_end = data.find(b"\r\n", position)
                if field_end < 0:
                    return None
                if field_end == position:
                    return bytes(out[:limit]), field_end + 2
                position = field_end + 2
        start = line_end + 2
        out += data[start : start + size]  # what has come of this chunk
        if len(out) >= limit:
            return bytes(out[:limit]), None
        if len(data) < start + size + 2:
            return None
        if data[start + size : start + size + 2] != b"\r\n":
            raise BadResponse("a chunk not followed by CRLF")
        position = start + size + 2


def build_request(path: str, host_header: str, keep_alive: bool = True) -> bytes:
    connection = "keep-alive" if keep_alive else "close"
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: announcer-healthcheck\r\n"
        f"Accept: */*\r\nConnection: {connection}\r\n\r\n"
    ).encode("latin-1")
