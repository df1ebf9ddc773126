"""One task per check: probe, hand the result to the state owner, sleep until the next probe.

The cadence does not drift (the next probe is due a delay after the previous one started); the
delay comes from the result sink: `interval` when settled, shorter while a change is being
confirmed (`core.hysteresis.next_probe_in`: by how strongly the last result spoke).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from healthchecks import Endpoint, Probe, ProbeResult, Watcher, endpoint_of, run_probe

from ..config import CheckConfig

__all__ = ["CheckRunner", "ResultSink", "Watchers"]

# (check, result, monotonic time the probe started, whether the endpoint's watcher says its
# listener is gone) -> seconds from that start to the next probe; never waits (a thousand
# results a second must not each wait for the state task)
ResultSink = Callable[[str, ProbeResult, float, bool], float]
# the checks of one endpoint wake over this much time, not all at once, when its idle
# connection closes: the first at once (failover speed), the rest spread so that a thousand
# checks against one nginx neither hit it together nor stay in lock-step afterwards
WAKE_SPREAD_S = 0.05
# the first probes of all checks start within this much time of start-up
START_SPREAD_S = 0.05


class Watchers:
    """One connection watcher per endpoint, shared by every check of that endpoint: a thousand
    checks against one nginx hold one idle connection, and all probe soon when it closes."""

    def __init__(self) -> None:
        self._by_endpoint: dict[
            Endpoint, tuple[asyncio.Task[None], list[CheckRunner], Watcher]
        ] = {}

    def listener_gone(self, endpoint: Endpoint) -> bool:
        entry = self._by_endpoint.get(endpoint)
        return entry is not None and entry[2].listener_gone

    def add(self, endpoint: Endpoint, runner: CheckRunner) -> None:
        if endpoint not in self._by_endpoint:
            retry_s = min(runner.spec.interval, 4 * runner.spec.fast_interval)
            runners: list[CheckRunner] = []

            def on_change() -> None:
                count = len(runners)
                for index, each in enumerate(list(runners)):
                    each.probe_soon(index * WAKE_SPREAD_S / count)

            watcher = Watcher(endpoint, on_change, retry_s)
            task = asyncio.create_task(watcher.run(), name=f"watch:{endpoint}")
            self._by_endpoint[endpoint] = (task, runners, watcher)
        self._by_endpoint[endpoint][1].append(runner)

    def remove(self, endpoint: Endpoint, runner: CheckRunner) -> None:
        entry = self._by_endpoint.get(endpoint)
        if entry is None:
            return
        task, runners, _ = entry
        if runner in runners:
            runners.remove(runner)
        if not runners:
            task.cancel()
            del self._by_endpoint[endpoint]

    def close(self) -> None:
        for task, _, _ in self._by_endpoint.values():
            task.cancel()
        self._by_endpoint.clear()

    def __len__(self) -> int:
        return len(self._by_endpoint)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class CheckRunner:
    def __init__(
        self,
        name: str,
        spec: CheckConfig,
        probe: Probe,
        sink: ResultSink,
        watchers: Watchers | None = None,
    ) -> None:
        self._watchers = watchers
        self.name = name
        self.spec = spec
        self.probe = probe
        self._sink = sink
        self._waiter: asyncio.Future[None] | None = None
        # a wake that came while a probe ran: the next wait ends at once (the probe in flight
        # may have started before what the wake reports)
        self._woken = False

    def probe_now(self) -> None:
        """Cut the current wait short (SIGUSR1, a stall of the plugin, the watcher)."""
        if self._waiter is not None:
            _wake(self._waiter)
        else:
            self._woken = True

    def probe_soon(self, delay_s: float) -> None:
        if delay_s <= 0:
            self.probe_now()
        else:
            asyncio.get_running_loop().call_later(delay_s, self.probe_now)

    async def _sleep(self, seconds: float) -> None:
        # a bare future and one timer: a thousand checks sleep and wake every second
        if self._woken:
            self._woken = False
            return
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def run(self) -> None:
        endpoint = endpoint_of(self.spec.probe) if self.spec.watch else None
        if endpoint is not None and self._watchers is not None:
            self._watchers.add(endpoint, self)
        # spread the first probes of many checks a little (not a whole interval: the first
        # verdict is what start-up waits for)
        await self._sleep(random.uniform(0, min(self.spec.interval, START_SPREAD_S)))
        watchers = self._watchers if endpoint is not None else None
        try:
            while True:
                started = time.monotonic()
                result = await run_probe(self.probe, self.spec.timeout)
                gone = (
                    not result.ok
                    and watchers is not None
                    and endpoint is not None
                    and watchers.listener_gone(endpoint)
                )
                delay = self._sink(self.name, result, started, gone)
                await self._sleep(started + delay - time.monotonic())
        finally:
            if endpoint is not None and self._watchers is not None:
                self._watchers.remove(endpoint, self)
            await self.probe.close()
