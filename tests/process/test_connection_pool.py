"""HTTP checks of one endpoint share its kept-alive connections (`ConnectionPools`): a thousand
checks against one nginx hold a handful of connections, not a thousand, and every way an
exchange can end (an answer, a close, a deadline, a refusal) gives its slot back.

A local asyncio server stands for nginx and counts the connections it accepted and holds."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import pytest
import uvloop

from healthchecks import ConnectionPools, HttpProbe, HttpProbeConfig, run_probe
from healthchecks._lean_http import ConnectionPool


@dataclass
class Server:
    port: int
    accepted: int = 0
    open_now: int = 0
    most_open: int = 0
    delay_s: float = 0.0
    close_after_answer: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    async def stop(self) -> None:
        """As nginx stops: the listener goes, and every connection with it."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.accepted += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        state.writers.append(writer)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if state.delay_s:
                    await asyncio.sleep(state.delay_s)
                if state.close_after_answer:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
                    )
                    await writer.drain()
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            state.open_now -= 1
            writer.close()

    state.server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    state.port = state.server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        state.server.close()
        for writer in state.writers:
            writer.close()
        with contextlib.suppress(Exception):
            await state.server.wait_closed()


def probes(count: int, url: str, pools: ConnectionPools) -> list[HttpProbe]:
    return [HttpProbe(HttpProbeConfig(url=f"{url}?v={i}"), pools) for i in range(count)]


async def test_a_thousand_checks_of_one_endpoint_share_a_few_connections(server: Server):
    pools = ConnectionPools(max_size=8)
    checks = probes(1000, server.url, pools)
    try:
        for _ in range(2):  # all at once, twice: the second round reuses what the first opened
            results = await asyncio.gather(*(run_probe(p, 2.0) for p in checks))
            assert all(r.ok for r in results), {r.reason for r in results}
        assert server.accepted <= 8, server.accepted
        assert server.most_open <= 8
        assert len(pools.get("127.0.0.1", server.port)) <= 8
        # the callback path (QuickProbe.start) takes an idle connection too
        done: list[object] = []
        assert checks[0].start(time.monotonic(), done.append)
        while not done:
            await asyncio.sleep(0.01)
        assert getattr(done[0], "ok", False)
        assert server.accepted <= 8
    finally:
        pools.close()


async def test_a_slow_endpoint_gets_the_connections_its_waiting_checks_need(server: Server):
    """A health endpoint that takes 200 ms, 200 checks probing at once with a 0.5 s timeout:
    each needs a connection of its own for that moment. A small cap would queue them past
    their deadlines: false failures of a healthy service."""
    server.delay_s = 0.2
    pools = ConnectionPools()
    checks = probes(200, server.url, pools)
    try:
        results = await asyncio.gather(*(run_probe(p, 0.5) for p in checks))
        assert all(r.ok for r in results), {r.reason for r in results}
        assert server.accepted <= 200
    finally:
        pools.close()


async def test_without_pools_each_check_keeps_its_own_connection(server: Server):
    """The breaking case the pool exists for: one connection per check."""
    checks = [HttpProbe(HttpProbeConfig(url=f"{server.url}?v={i}")) for i in range(50)]
    try:
        results = await asyncio.gather(*(run_probe(p, 2.0) for p in checks))
        assert all(r.ok for r in results)
        assert server.accepted == 50
    finally:
        for probe in checks:
            await probe.close()


async def test_a_stopped_server_is_seen_by_every_check_at_once(server: Server):
    pools = ConnectionPools(max_size=4)
    checks = probes(40, server.url, pools)
    try:
        assert all(r.ok for r in await asyncio.gather(*(run_probe(p, 1.0) for p in checks)))
        await server.stop()
        await asyncio.sleep(0.05)  # the closes reach the client
        results = await asyncio.gather(*(run_probe(p, 1.0) for p in checks))
        assert {r.reason for r in results} == {"connection_refused"}
        # nothing is left out or opening: each refusal gave its slot to the next
        assert len(pools.get("127.0.0.1", server.port)) == 0
    finally:
        pools.close()


async def test_deadlines_while_waiting_or_in_flight_leak_no_slot(server: Server):
    """Probes that time out, waiting for a connection or with a request in flight, give back
    what they held: afterwards the endpoint is probed as before, within the pool's size."""
    pools = ConnectionPools(max_size=2)
    checks = probes(20, server.url, pools)
    try:
        server.delay_s = 0.3
        results = await asyncio.gather(*(run_probe(p, 0.1) for p in checks))
        assert {r.reason for r in results} == {"timeout"}
        server.delay_s = 0.0
        await asyncio.sleep(0.4)  # the late answers arrive on closed connections
        results = await asyncio.gather(*(run_probe(p, 1.0) for p in checks))
        assert all(r.ok for r in results), {r.reason for r in results}
        assert len(pools.get("127.0.0.1", server.port)) <= 2
    finally:
        pools.close()


async def test_a_connection_the_server_closes_frees_its_slot_for_a_waiter(server: Server):
    """nginx closing connections (keepalive_requests, a reload) while checks wait for one: each
    close lets the next waiting check connect."""
    server.close_after_answer = True
    pools = ConnectionPools(max_size=1)
    checks = probes(10, server.url, pools)
    try:
        results = await asyncio.gather(*(run_probe(p, 1.0) for p in checks))
        assert all(r.ok for r in results), {r.reason for r in results}
        assert server.accepted == 10
    finally:
        pools.close()


async def test_a_waiter_cancelled_as_a_connection_is_handed_to_it_passes_it_on():
    pool = ConnectionPool(max_size=1)

    class Fake:
        open = True

        def close(self) -> None:
            self.open = False

    connection = Fake()

    async def connect() -> Fake:
        return connection

    first = await pool.acquire(connect)  # type: ignore[arg-type]
    waiting = asyncio.ensure_future(pool.acquire(connect))  # type: ignore[arg-type]
    third = asyncio.ensure_future(pool.acquire(connect))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    pool.give(first)  # handed to the first waiter...
    waiting.cancel()  # ...which gives up before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await asyncio.wait_for(third, 1.0) is cast(object, connection)  # the next waiter
    pool.give(connection)  # type: ignore[arg-type]
    assert len(pool) == 1


def test_a_deadline_that_fires_late_reads_the_answer_that_came_in_time():
    """The plugin busy past a probe's deadline (a long step) with the answer already in the
    socket: the probe passes, it did not time out. Under uvloop, as the plugin runs: libuv runs
    due timers before it polls for I/O, so the deadline would otherwise win."""

    async def body() -> None:
        writers: list[asyncio.StreamWriter] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    await asyncio.sleep(0.05)  # the answer comes while the client is blocked
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    await writer.drain()

        # the server in a thread of its own: it answers while this loop is blocked
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        stop = threading.Event()
        main = asyncio.get_running_loop()

        def run_server() -> None:
            async def server_main() -> None:
                srv = await asyncio.start_server(serve, "127.0.0.1", 0)
                main.call_soon_threadsafe(ready.set_result, srv.sockets[0].getsockname()[1])
                while not stop.is_set():
                    await asyncio.sleep(0.01)
                srv.close()
                for writer in writers:
                    writer.close()
                await srv.wait_closed()

            asyncio.run(server_main())

        thread = threading.Thread(target=run_server)
        thread.start()
        pools = ConnectionPools()
        try:
            port = await ready
            (probe,) = probes(1, f"http://127.0.0.1:{port}/health", pools)
            assert (await run_probe(probe, 1.0)).ok  # a kept connection
            slow = await asyncio.gather(run_probe(probe, 0.1), blocked(0.3))
            assert getattr(slow[0], "ok", False), slow
        finally:
            pools.close()
            stop.set()
            thread.join()

    async def blocked(seconds: float) -> None:
        await asyncio.sleep(0.005)  # the request goes out first
        time.sleep(seconds)

    uvloop.run(body())
