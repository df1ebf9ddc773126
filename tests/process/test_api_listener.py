"""The API's connection guard, on real sockets: a limit that evicts the quietest connection,
an idle timeout, a lifetime; and the early responder's answer."""

from __future__ import annotations

import asyncio
import contextlib
import json

from announcer.api.listener import ConnectionGuard, bind_api_socket, starting_protocol


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def _serve(guard: ConnectionGuard) -> tuple[asyncio.Server, int]:
    sock = bind_api_socket("127.0.0.1", 0)
    server = await asyncio.get_running_loop().create_server(guard, sock=sock)
    return server, sock.getsockname()[1]


async def test_at_the_limit_the_quietest_connection_makes_room():
    guard = ConnectionGuard(Echo, limit=3, idle_s=60, lifetime_s=60)
    server, port = await _serve(guard)
    quiet = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    for reader, writer in quiet[1:]:
        writer.write(b"x")  # these two are active
        assert await reader.readexactly(1) == b"x"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"new")
    assert await reader.readexactly(3) == b"new"  # the newcomer is served
    with contextlib.suppress(ConnectionResetError):  # an abort may reset
        assert await asyncio.wait_for(quiet[0][0].read(), 1) == b""  # the quietest went
    assert guard.open == 3 and guard.evicted == 1
    for _, w in [*quiet, (reader, writer)]:
        w.close()
    guard.close()
    server.close()


async def _closed_after(reader: asyncio.StreamReader, started: float) -> float:
    """Seconds from `started` until the server closed (or reset) the connection."""
    with contextlib.suppress(ConnectionResetError):
        while await reader.read(1024):
            pass
    return asyncio.get_running_loop().time() - started


async def test_idle_and_old_connections_are_closed():
    guard = ConnectionGuard(Echo, limit=10, idle_s=0.5, lifetime_s=2.5)
    server, port = await _serve(guard)
    loop = asyncio.get_running_loop()
    started = loop.time()
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
    idle = asyncio.create_task(_closed_after(idle_reader, started))
    busy = asyncio.create_task(_closed_after(busy_reader, started))
    while not busy.done() and loop.time() - started < 5:
        busy_writer.write(b".")  # a byte every 0.2 s: never idle, but it grows old
        await asyncio.sleep(0.2)
    idle_closed_at, busy_closed_at = await asyncio.wait_for(asyncio.gather(idle, busy), 1)
    assert idle_closed_at < 2.0, idle_closed_at
    assert 2.4 < busy_closed_at < 4.0, busy_closed_at
    idle_writer.close()
    busy_writer.close()
    guard.close()
    server.close()


async def test_the_early_responder_answers_503_with_the_progress():
    sock = bind_api_socket("127.0.0.1", 0)
    progress = {"pending": {"checks_without_verdict": 2, "vips_undecided": 1, "first": ["web"]}}
    server = await asyncio.get_running_loop().create_server(
        starting_protocol(lambda: progress), sock=sock
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
    writer.write(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 2)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in head
    assert json.loads(body) == {"error": "starting: no decisions yet", "starting": True, **progress}
    writer.close()
    server.close()
