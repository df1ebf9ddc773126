"""One task per check: probe, hand the result to the engine, sleep until the next probe.

The cadence does not drift (the next probe is due `interval` after the previous one started)
and switches to `fast_interval` while the engine is confirming a change.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from healthchecks import Probe, ProbeResult, endpoint_of, run_probe, watch

from .config import CheckConfig
from .core import CheckState, is_confirming

__all__ = ["CheckRunner"]

ResultSink = Callable[[str, ProbeResult, float], CheckState]


class CheckRunner:
    def __init__(self, name: str, spec: CheckConfig, probe: Probe, sink: ResultSink) -> None:
        self.name = name
        self.spec = spec
        self.probe = probe
        self._sink = sink
        self._now = asyncio.Event()

    def probe_now(self) -> None:
        """Cut the current wait short (SIGUSR1, or anything that suspects a change)."""
        self._now.set()

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await self._now.wait()
        except TimeoutError:
            pass
        self._now.clear()

    async def run(self) -> None:
        watcher = None
        endpoint = endpoint_of(self.spec.probe) if self.spec.watch else None
        if endpoint is not None:
            watcher = asyncio.create_task(
                watch(
                    endpoint,
                    self.probe_now,
                    retry_s=min(self.spec.interval, 4 * self.spec.fast_interval),
                ),
                name=f"watch:{self.name}",
            )
        # spread the first probes of many checks over one interval, capped so start-up stays fast
        await self._sleep(random.uniform(0, min(self.spec.interval, 0.5)))
        try:
            while True:
                started = time.monotonic()
                result = await run_probe(self.probe, self.spec.timeout)
                state = self._sink(self.name, result, time.monotonic())
                delay = self.spec.fast_interval if is_confirming(state) else self.spec.interval
                await self._sleep(started + delay - time.monotonic())
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            await self.probe.close()
