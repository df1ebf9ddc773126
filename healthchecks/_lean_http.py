"""A minimal HTTP/1.1 GET over one fresh connection, on asyncio's protocol layer.

Health probes of a thousand VIPs a second make the HTTP client the plugin's main cost, and a
general client (pools, cookies, redirects, compression) spends most of its time on features a
probe never uses. This one sends `Connection: close`, reads at most `limit` bytes of body, and
understands Content-Length, chunked encoding and read-until-close. Nothing else.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from typing import Any, cast

__all__ = ["BadResponse", "build_request", "lean_get"]

MAX_HEAD_BYTES = 16 * 1024
_NO_LINGER = struct.pack("ii", 1, 0)


class BadResponse(Exception):
    pass


class _Exchange(asyncio.Protocol):
    def __init__(self, request: bytes, limit: int, done: asyncio.Future[tuple[int, bytes]]) -> None:
        self._request = request
        self._limit = limit
        self._done = done
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: trust the protocol, not the type
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # close with a reset once the answer is in, as HAProxy's own checks do: no FIN
            # exchange and no TIME_WAIT socket per probe (a thousand a second add up)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        result = _complete(self._buffer, self._limit)
        if result is not None and not self._done.done():
            self._done.set_result(result)
            assert self._transport is not None
            self._transport.close()
        elif len(self._buffer) > MAX_HEAD_BYTES + self._limit + 64 * 1024:
            self._fail(BadResponse("response too large"))

    def eof_received(self) -> bool:
        result = _complete(self._buffer, self._limit, eof=True)
        if result is None:
            self._fail(BadResponse("connection closed before a complete response"))
        elif not self._done.done():
            self._done.set_result(result)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._fail(exc or BadResponse("connection closed before a complete response"))

    def _fail(self, exc: BaseException) -> None:
        if not self._done.done():
            self._done.set_exception(exc)
        if self._transport is not None:
            self._transport.abort()


def _complete(buffer: bytearray, limit: int, eof: bool = False) -> tuple[int, bytes] | None:
    """(status, body) once the buffer holds a whole response (or `limit` bytes of body)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD_BYTES or eof:
            raise BadResponse("no HTTP response head")
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BadResponse(f"not an HTTP response: {head[0][:60]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = bytes(buffer[end + 4 :])
    if "chunked" in headers.get("transfer-encoding", "").lower():
        decoded = _dechunk(body, limit)
        if decoded is None:
            return (status, body[:limit]) if eof or len(body) >= limit else None
        return status, decoded
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        wanted = min(int(length), limit)
        return (status, body[:wanted]) if len(body) >= wanted or eof else None
    if len(body) >= limit or eof or status in (204, 304) or 100 <= status < 200:
        return status, body[:limit]
    return None


def _dechunk(data: bytes, limit: int) -> bytes | None:
    out = bytearray()
    position = 0
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = data[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadResponse("bad chunk size") from None
        if size == 0:
            return bytes(out[:limit])
        start = line_end + 2
        if len(data) < start + size:
            return None
        out += data[start : start + size]
        if len(out) >= limit:
            return bytes(out[:limit])
        position = start + size + 2


def build_request(path: str, host_header: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: announcer-healthcheck\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")


async def lean_get(
    host: str,
    port: int,
    request: bytes,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    limit: int = 64 * 1024,
) -> tuple[int, bytes]:
    """Send `request` (see build_request) on a fresh connection; (status, body)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[int, bytes]] = loop.create_future()
    extra: dict[str, Any] = {}
    if ssl_context is not None:
        extra = {"ssl": ssl_context, "server_hostname": server_hostname or host}
    transport, _ = await loop.create_connection(
        lambda: _Exchange(request, limit, done), host, port, **extra
    )
    try:
        return await done
    finally:
        transport.close()
