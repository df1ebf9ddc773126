"""One runner per check: probe, hand the result to the state owner, probe again when told.

The runner decides nothing: the reducer folds each result and says when the check is probed
next (the `NextProbe` effect, carried out through `probe_at`): `interval` when settled,
shorter while a change is being confirmed. The cadence does not drift (the time is counted
from the previous probe's start). A wake (the endpoint's watcher, SIGUSR1, a stall of the
plugin) probes at once, and an earlier time always wins over a later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Callable
from typing import cast

from healthchecks import (
    Endpoint,
    Probe,
    ProbeResult,
    QuickProbe,
    Watcher,
    run_probe,
)
from healthchecks.runner import GRACE_S, grace_for, timed_out

from ..core.spec import CheckSpec

__all__ = ["CheckRunner", "ResultSink", "Watchers", "burst_spread_s", "wake_spread"]

# (check, result, monotonic time the probe started, whether the endpoint's watcher says its
# listener is gone); posts and returns at once (a thousand results a second must not each wait
# for the state task). The answer comes back as `CheckRunner.probe_at`.
ResultSink = Callable[[str, ProbeResult, float, bool], None]
# A burst of probes (start-up, the checks of one endpoint woken when its idle connection
# closes, every check after a stall of the plugin) is spread, not started in one turn of the
# loop: the first at once (failover speed), the rest over WAKE_SPREAD_S, or over
# PER_PROBE_SPREAD_S per check where there are more than five hundred (about what a probe
# costs the loop). Ten thousand probes started together would stall the loop for a
# second, and the stall guard would wake them all again.
WAKE_SPREAD_S = 0.05
PER_PROBE_SPREAD_S = 0.0001


def burst_spread_s(count: int, interval_s: float, least_s: float = WAKE_SPREAD_S) -> float:
    """Over how long `count` probes woken together start (never longer than an interval)."""
    return min(interval_s, max(least_s, count * PER_PROBE_SPREAD_S))


def wake_spread(runners: list[CheckRunner], least_s: float = WAKE_SPREAD_S) -> None:
    """Probe these checks soon: the first at once, the rest spread evenly over at least
    `least_s` (0: only as much as their number needs)."""
    count = len(runners)
    if count == 0:
        return
    spread = burst_spread_s(count, min(each.spec.interval_s for each in runners), least_s)
    for index, each in enumerate(runners):
        each.probe_soon(index * spread / count)


@functools.cache
def _is_quick(kind: type[Probe]) -> bool:
    """isinstance against a runtime-checkable Protocol inspects the class every time (tens of
    microseconds): asked once per probe class, not once per check."""
    return issubclass(kind, QuickProbe)


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
            retry_s = min(runner.spec.interval_s, 4 * runner.spec.fast_interval_s)
            runners: list[CheckRunner] = []

            def on_change() -> None:
                wake_spread(list(runners))

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


class CheckRunner:
    """Probes one check for as long as `run` runs: a timer starts each probe, the result goes
    to the sink, and `probe_at` (the reducer's answer) arms the next one.

    A probe that can run on callbacks (`QuickProbe`: HTTP on a kept connection) needs no task
    at all: the timer sends, the answer arrives in the connection's callback, and the next
    timer is armed there, with the deadline as the one timer in between. Any other probe, or
    one that must connect first, runs as a short task under `run_probe`. Either way a check
    has one probe in flight at most, and `run`'s task owns the whole lifetime: cancelling it
    stops the timers, abandons the probe in flight and closes the probe."""

    def __init__(
        self,
        name: str,
        spec: CheckSpec,
        probe: Probe,
        sink: ResultSink,
        watchers: Watchers | None = None,
        endpoint: Endpoint | None = None,
        start_spread_s: float = WAKE_SPREAD_S,
    ) -> None:
        self._watchers = watchers
        # the first probes of the checks started together begin within this much time
        self._start_spread_s = start_spread_s
        self.name = name
        self.spec = spec
        self.probe = probe
        self._quick = cast(QuickProbe, probe) if _is_quick(type(probe)) else None
        self._sink = sink
        # the endpoint whose idle connection is watched (None: not watched)
        self._endpoint = endpoint
        # the one timer: until the next probe, or (a quick probe in flight) its deadline
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._due = 0.0  # when the armed timer starts the next probe (monotonic)
        self._in_flight = False
        self._started = 0.0
        self._slow: asyncio.Task[None] | None = None
        # a wake that came while a probe ran: the next probe follows at once (the probe in
        # flight may have started before what the wake reports)
        self._woken = False
        # the quick probe's deadline fired late and waits for one poll of the loop's I/O
        self._graced = False
        self._started_loop = 0.0  # the probe's start in the loop's time (its deadline's clock)
        # where a failure in a callback goes: `run` raises it, as if its own code had
        self._stopped: asyncio.Future[None] | None = None

    def probe_now(self) -> None:
        """Cut the current wait short (SIGUSR1, a stall of the plugin, the watcher)."""
        if self._in_flight or self._stopped is None:
            self._woken = True
        else:
            self._arm(0.0)

    def probe_soon(self, delay_s: float) -> None:
        if delay_s <= 0:
            self.probe_now()
        else:
            asyncio.get_running_loop().call_later(delay_s, self.probe_now)

    def probe_at(self, after: float, at: float) -> None:
        """The next probe after the one that started at `after` is due at `at` (monotonic).
        Stale answers (a newer probe started, or runs) are dropped; an earlier time armed
        meanwhile (a wake) stands."""
        if after != self._started or self._in_flight or self._stopped is None:
            return
        if self._timer is not None and self._due <= at:
            return
        self._arm(at - time.monotonic())

    async def run(self) -> None:
        if self._endpoint is not None and self._watchers is not None:
            self._watchers.add(self._endpoint, self)
        self._stopped = stopped = asyncio.get_running_loop().create_future()
        try:
            # spread the first probes of many checks a little (not a whole interval: the
            # first verdict is what start-up waits for)
            spread = random.uniform(0, min(self.spec.interval_s, self._start_spread_s))
            self._arm(0.0 if self._woken else spread)
            await stopped
        finally:
            self._stopped = None
            self._halt()
            if self._slow is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._slow
            if self._endpoint is not None and self._watchers is not None:
                self._watchers.remove(self._endpoint, self)
            await self.probe.close()

    def _halt(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._in_flight and self._quick is not None:
            self._quick.abandon()
        if self._slow is not None:
            self._slow.cancel()
        self._in_flight = False

    def _arm(self, delay_s: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._due = time.monotonic() + delay_s
        if delay_s > 0:
            self._timer = loop.call_later(delay_s, self._probe)
        else:
            self._timer = loop.call_soon(self._probe)

    def _fail(self, exc: BaseException) -> None:
        """A bug in a callback: `run` raises it (the plugin's supervisor sees it)."""
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_exception(exc)

    def _probe(self) -> None:
        self._timer = None
        self._woken = False
        self._started = started = time.monotonic()
        self._in_flight = True
        self._graced = False
        self._started_loop = asyncio.get_running_loop().time()
        try:
            quick = self._quick
            if quick is not None:
                # the deadline first: the answer may come before `start` returns
                self._timer = asyncio.get_running_loop().call_later(
                    self.spec.timeout_s, self._expire
                )
                if quick.start(started, self._quick_done):
                    return
                self._timer.cancel()
                self._timer = None
            self._run_slow(self.spec.timeout_s)
        except Exception as exc:  # handed to `run`, which raises it
            self._fail(exc)

    def _run_slow(self, timeout_s: float) -> None:
        self._slow = asyncio.get_running_loop().create_task(
            self._slow_probe(timeout_s), name=f"probe:{self.name}"
        )

    async def _slow_probe(self, timeout_s: float) -> None:
        result = await run_probe(self.probe, timeout_s)
        self._slow = None
        self._finish(result)

    def _quick_done(self, result: ProbeResult | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if result is None:
            # the kept connection closed as the request went out: connect and send again,
            # within what is left of the deadline
            self._run_slow(self._started + self.spec.timeout_s - time.monotonic())
        else:
            self._finish(result)

    def _expire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        if not self._graced and grace_for(self._started_loop + self.spec.timeout_s, loop):
            # late because the plugin was busy: what arrived in time may be unread (runner.py)
            self._graced = True
            self._timer = loop.call_later(GRACE_S, self._expire)
            return
        assert self._quick is not None
        self._quick.abandon()
        self._finish(timed_out(self.spec.timeout_s, self._started))

    def _finish(self, result: ProbeResult) -> None:
        """Every probe ends here (a callback, a timer or the short task): hand the result
        over; the next probe is armed by `probe_at`, or at once after a wake."""
        self._in_flight = False
        if self._stopped is None or self._stopped.done():
            return
        watchers, endpoint = self._watchers, self._endpoint
        try:
            if self._woken:
                self._arm(0.0)
            gone = (
                not result.ok
                and watchers is not None
                and endpoint is not None
                and watchers.listener_gone(endpoint)
            )
            self._sink(self.name, result, self._started, gone)
        except Exception as exc:  # handed to `run`, which raises it
            self._fail(exc)
