"""Probe scheduling: a watcher event wakes the checks of an endpoint soon, but not in
lock-step (a thousand checks must neither hit one nginx together nor stay synchronised); and
the task-free path of kept-alive HTTP probes keeps every promise of the task path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from announcer.config import CheckConfig
from announcer.probing.build import watched_endpoint
from announcer.probing.scheduler import WAKE_SPREAD_S, CheckRunner, Watchers
from announcer.specs import check_spec
from healthchecks import (
    HttpProbe,
    HttpProbeConfig,
    Probe,
    ProbeResult,
    TcpProbe,
    TcpProbeConfig,
)


class Paced:
    """Stands for the state owner: hands each result to `record`, which returns the delay to
    the next probe, and answers the runner with it (the reducer's `NextProbe`)."""

    def __init__(self, record: Callable[[str, ProbeResult, float, bool], float]) -> None:
        self.record = record
        self.runners: dict[str, CheckRunner] = {}

    def __call__(self, name: str, result: ProbeResult, started: float, gone: bool) -> None:
        delay = self.record(name, result, started, gone)
        self.runners[name].probe_at(started, started + delay)


def runner_for(
    name: str,
    check: CheckConfig,
    probe: Probe,
    record: Callable[[str, ProbeResult, float, bool], float],
    watchers: Watchers | None = None,
) -> CheckRunner:
    """A runner as the plugin builds one (the core's check spec, the watched endpoint)."""
    sink = record if isinstance(record, Paced) else Paced(record)
    runner = CheckRunner(
        name,
        check_spec(check),
        probe,
        sink,
        watchers,
        watched_endpoint(check) if watchers is not None else None,
    )
    sink.runners[name] = runner
    return runner


async def test_a_closed_idle_connection_wakes_every_check_of_the_endpoint_spread_out():
    held: list[asyncio.StreamWriter] = []

    async def serve(reader, writer):
        held.append(writer)
        await reader.read()  # an idle connection: held open until the server goes
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probed: dict[str, list[float]] = {}
    gone: dict[str, list[bool]] = {}

    def sink(name, result, started, listener_gone):
        probed.setdefault(name, []).append(started)
        gone.setdefault(name, []).append(listener_gone)
        return 20.0  # settled: the next probe only in 20 s

    spec = CheckConfig.model_validate(
        {"tcp": {"host": "127.0.0.1", "port": port}, "interval": "20s", "timeout": "1s"}
    )
    watchers = Watchers()
    paced = Paced(sink)
    runners = [
        runner_for(f"c{i}", spec, TcpProbe(TcpProbeConfig(port=port)), paced, watchers)
        for i in range(10)
    ]
    tasks = [asyncio.create_task(runner.run()) for runner in runners]
    try:
        while len(probed) < 10:  # every first probe done (spread over up to 0.5 s)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        closed_at = time.monotonic()
        server.close()  # the load balancer stops: no listener, its connections close
        for writer in held:
            writer.close()
        deadline = time.monotonic() + 3
        while any(len(times) < 2 for times in probed.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        second = sorted(times[1] for times in probed.values())
        assert len(second) == 10, probed
        assert second[0] - closed_at < 0.5, "the first check did not probe at once"
        assert second[-1] - second[0] >= 0.02, f"lock-step: {second}"
        assert second[-1] - second[0] <= WAKE_SPREAD_S + 0.2, f"too slow: {second}"
        # the watcher saw its connection end and the listener refuse: certain evidence
        assert all(each[:2] == [False, True] for each in gone.values()), gone
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        watchers.close()


async def test_a_wake_during_a_probe_is_not_lost():
    """The watcher may report a stop while a probe is in flight (that probe started before the
    stop and may pass): the next probe must follow at once, not an interval later."""
    started_probes: list[float] = []
    release = asyncio.Event()

    class SlowProbe:
        async def probe(self):
            started_probes.append(time.monotonic())
            if len(started_probes) == 1:
                await release.wait()
            from healthchecks import ProbeResult

            return ProbeResult(ok=True, reason="ok")

        async def close(self):
            pass

    spec = CheckConfig.model_validate(
        {
            "tcp": {"host": "127.0.0.1", "port": 1},
            "interval": "20s",
            "timeout": "10s",
            "watch": False,
        }
    )
    runner = runner_for("c", spec, SlowProbe(), lambda *args: 20.0)
    task = asyncio.create_task(runner.run())
    try:
        while not started_probes:
            await asyncio.sleep(0.01)
        runner.probe_now()  # while the first probe runs
        release.set()
        async with asyncio.timeout(2):
            while len(started_probes) < 2:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class ScriptedHttp:
    """An HTTP/1.1 server that answers request n as `script[n]` says (the last entry repeats):
    "ok", "500", "hang" (read it, never answer), "drop" (close without answering)."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.requests = 0
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> ScriptedHttp:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/health"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                action = self.script[min(self.requests, len(self.script) - 1)]
                self.requests += 1
                if action == "hang":
                    continue
                if action == "drop":
                    break
                status = b"200 OK" if action == "ok" else b"500 Internal Server Error"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 3\r\n\r\nok\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def on_both_loops(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[str], None]:
    """Run the test on asyncio's loop and on uvloop's, which the plugin runs on: their
    transports differ where a connection closes under a write."""

    def run(loop: str) -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(test())

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return pytest.mark.parametrize("loop", LOOPS)(run)


def http_spec(url: str, timeout: str = "300ms") -> CheckConfig:
    return CheckConfig.model_validate(
        {"http": {"url": url}, "interval": "20s", "timeout": timeout, "watch": False}
    )


async def run_until(runner: CheckRunner, results: list, count: int, within: float = 3.0) -> None:
    """Run until `results` (filled by the sink) holds `count` entries; the sink's delays
    pace the probes."""
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(within):
            while len(results) < count:
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    del results[count:]


@on_both_loops
async def test_kept_connection_probes_report_status_timeout_and_recover():
    """On the kept connection (the task-free path): a 500 is a bad status; no answer is a
    timeout at the deadline, and the late exchange is dropped with its connection, so the
    next probe connects afresh and passes."""
    async with ScriptedHttp(["ok", "ok", "500", "hang", "ok"]) as server:
        results: list[tuple[ProbeResult, float]] = []

        def sink(name, result, started, gone):
            results.append((result, time.monotonic() - started))
            return 0.02

        spec = http_spec(server.url)
        runner = runner_for("c", spec, HttpProbe(HttpProbeConfig(url=server.url)), sink)
        await run_until(runner, results, 5)
    reasons = [result.reason for result, _ in results]
    assert reasons == ["ok", "ok", "bad_status", "timeout", "ok"], results
    timeout_result, waited = results[3]
    assert 0.28 <= waited < 0.6 and 0.28 <= timeout_result.duration_s < 0.6, results[3]
    # one connection for the first three, a new one after the timeout
    assert server.connections == 2, server.connections


@on_both_loops
async def test_a_kept_connection_dropped_unanswered_is_retried_within_the_probe():
    """The server closes the kept connection as the next request arrives: that probe sends
    again on a new connection and passes, as a GET may."""
    async with ScriptedHttp(["ok", "drop", "ok"]) as server:
        results: list[ProbeResult] = []

        def sink(name, result, started, gone):
            results.append(result)
            return 0.02

        runner = runner_for(
            "c", http_spec(server.url), HttpProbe(HttpProbeConfig(url=server.url)), sink
        )
        await run_until(runner, results, 3)
    assert [r.reason for r in results] == ["ok", "ok", "ok"], results
    assert server.connections == 2


@on_both_loops
async def test_a_wake_during_a_kept_connection_probe_is_not_lost():
    async with ScriptedHttp(["ok"]) as server:
        started: list[float] = []
        spec = http_spec(server.url, timeout="2s")

        def sink(name, result, at, gone):
            started.append(at)
            return 20.0

        probe = HttpProbe(HttpProbeConfig(url=server.url))
        runner = runner_for("c", spec, probe, sink)
        task = asyncio.create_task(runner.run())
        try:
            async with asyncio.timeout(2):
                while not started:
                    await asyncio.sleep(0.01)
                # hold the next answer back: the wake comes while that probe is in flight
                server.script = ["ok", "hang"]
                runner.probe_now()
                await asyncio.sleep(0.05)
                assert len(started) == 1 and server.requests == 2
                server.script = ["ok"]
                runner.probe_now()  # in flight: remembered, not dropped
                for writer in server.writers:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                while len(started) < 3:
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@on_both_loops
async def test_cancelling_a_runner_abandons_its_probe_in_flight_and_reports_nothing_after():
    async with ScriptedHttp(["ok", "hang"]) as server:
        results: list[ProbeResult] = []

        def sink(name, result, started, gone):
            results.append(result)
            return 0.01

        probe = HttpProbe(HttpProbeConfig(url=server.url))
        runner = runner_for("c", http_spec(server.url, timeout="300ms"), probe, sink)
        task = asyncio.create_task(runner.run())
        while server.requests < 2:  # the second probe, on the kept connection, hangs
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        count = len(results)
        await asyncio.sleep(0.5)  # past that probe's deadline
    assert count == len(results) == 1, results


@on_both_loops
async def test_a_failing_result_sink_ends_the_runner_with_its_error():
    """A bug behind the sink must not leave a check silently unprobed: `run` raises it (the
    plugin's task group then stops, and its supervisor sees why)."""
    async with ScriptedHttp(["ok"]) as server:
        calls = 0

        def sink(name, result, started, gone):
            nonlocal calls
            calls += 1
            if calls == 3:  # on the kept connection: inside the connection's callback
                raise RuntimeError("sink bug")
            return 0.01

        probe = HttpProbe(HttpProbeConfig(url=server.url))
        runner = runner_for("c", http_spec(server.url), probe, sink)
        with pytest.raises(RuntimeError, match="sink bug"):
            async with asyncio.timeout(2):
                await runner.run()
