"""Probe scheduling: a watcher event wakes the checks of an endpoint soon, but not in
lock-step (a thousand checks must neither hit one nginx together nor stay synchronised)."""

from __future__ import annotations

import asyncio
import time

from announcer.config import CheckConfig
from announcer.probing.scheduler import WAKE_SPREAD_S, CheckRunner, Watchers
from healthchecks import TcpProbe, TcpProbeConfig


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
    runners = [
        CheckRunner(f"c{i}", spec, TcpProbe(TcpProbeConfig(port=port)), sink, watchers)
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
    runner = CheckRunner("c", spec, SlowProbe(), lambda *args: 20.0)
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
