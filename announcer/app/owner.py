"""The one task that owns the state: it reads the event queue, calls the reducer, carries out
the effects, hands the full desired set to the reconciler and publishes the new snapshot.

Everything else only posts events (probe runners, the ticker, the API, ExaBGP's reader) and
reads `owner.state`, an immutable value: nobody can change the state behind the reducer's back.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable

from ..core import (
    CheckChanged,
    DrainAnswered,
    Drained,
    Effect,
    Event,
    Log,
    NextProbe,
    ProbeAgain,
    ProbeDone,
    Restate,
    SaveDrains,
    Started,
    State,
    Tick,
    Transition,
    reduce,
    reduce_probes,
    route_views,
)
from ..exabgp.reconciler import Reconciler
from ..logs import get_logger

__all__ = ["EffectHandlers", "StateOwner"]

log = get_logger("state")


class EffectHandlers:
    """What the shell does for each kind of effect (the defaults do nothing)."""

    def __init__(
        self,
        on_transition: Callable[[Transition], None] | None = None,
        next_probe: Callable[[NextProbe], None] | None = None,
        probe_again: Callable[[tuple[str, ...]], None] | None = None,
        restate: Callable[[], None] | None = None,
        save_drains: Callable[[SaveDrains], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        drained: Callable[[], None] | None = None,
        drain_answered: Callable[[DrainAnswered], None] | None = None,
        on_state: Callable[[State], None] | None = None,
    ) -> None:
        self.on_transition = on_transition or (lambda effect: None)
        self.next_probe = next_probe or (lambda effect: None)
        self.probe_again = probe_again or (lambda checks: None)
        self.restate = restate or (lambda: None)
        self.save_drains = save_drains or (lambda effect: None)
        self.on_tick = on_tick or (lambda: None)
        self.drained = drained or (lambda: None)
        self.drain_answered = drain_answered or (lambda effect: None)
        self.on_state = on_state or (lambda state: None)  # after every step that changed it


class StateOwner:
    def __init__(self, state: State, reconciler: Reconciler, handlers: EffectHandlers) -> None:
        self.state = state
        self._reconciler = reconciler
        self._handlers = handlers
        self._queue: collections.deque[tuple[Event, asyncio.Future[State] | None]] = (
            collections.deque()
        )
        self._wake = asyncio.Event()
        self.heartbeat = time.monotonic()  # the last tick this task processed

    def post(self, event: Event) -> None:
        self._queue.append((event, None))
        self._wake.set()

    def submit(self, event: Event) -> asyncio.Future[State]:
        """Post an event; the future gets the state once it is folded in."""
        future: asyncio.Future[State] = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        self._wake.set()
        return future

    async def run(self) -> None:
        self.apply(Started(), time.monotonic())  # start-up took what it took: not a stall
        while True:
            await self._wake.wait()
            self._wake.clear()
            queue = self._queue
            while queue:
                results = self._take_results()
                if results:
                    self.apply_probes(results, time.monotonic())
                    continue
                event, future = queue.popleft()
                state = self.apply(event, time.monotonic())
                if future is not None and not future.done():
                    future.set_result(state)

    def _take_results(self) -> list[ProbeDone]:
        """The probe results at the head of the queue, which came in together and are folded
        together (posted, not submitted: nobody waits on them)."""
        results: list[ProbeDone] = []
        queue = self._queue
        while queue:
            event, future = queue[0]
            if future is not None or not isinstance(event, ProbeDone):
                break
            queue.popleft()
            results.append(event)
        return results

    def apply(self, event: Event, now: float) -> State:
        """One step: reduce, then carry out the effects. Synchronous, so it can also serve the
        last-resort shutdown path when the task itself is gone."""
        state = self._publish(*reduce(self.state, event, now))
        if isinstance(event, Tick):
            self.heartbeat = now
            self._handlers.on_tick()
        return state

    def apply_probes(self, results: list[ProbeDone], now: float) -> State:
        """Probe results that arrived together, in one step (see `reduce_probes`)."""
        return self._publish(*reduce_probes(self.state, results, now))

    def _publish(self, state: State, effects: tuple[Effect, ...]) -> State:
        before, self.state = self.state, state
        for effect in effects:
            self._carry_out(effect)
        if state is not before:
            self._handlers.on_state(state)
        if (
            state.desired is not before.desired
            or state.bfd_up is not before.bfd_up
            or state.spec is not before.spec
        ):
            spec = state.spec
            self._reconciler.set(
                route_views(state.desired, spec.neighbors, spec.bfd_gated, state.withheld),
                spec.path_ids,
            )
        return state

    def _carry_out(self, effect: Effect) -> None:
        match effect:
            case NextProbe():  # first: one for every probe result
                self._handlers.next_probe(effect)
            case Log(level=level, message=message, fields=fields):
                log.log(logging.getLevelName(level.upper()), message, extra=dict(fields))
            case Transition(prefix=prefix, new=new):
                log.info(
                    "vip %s: %s (%s)",
                    prefix,
                    new.verdict,
                    new.reason,
                    extra={
                        "event": "vip_changed",
                        "vip": prefix,
                        "verdict": str(new.verdict),
                        "reason": str(new.reason),
                    },
                )
                self._handlers.on_transition(effect)
            case CheckChanged(
                check=check, new=health, reason=reason, detail=detail, evidence=evidence
            ):
                log.info(
                    "check %s is %s",
                    check,
                    health,
                    extra={
                        "event": "check_changed",
                        "check": check,
                        "health": str(health),
                        "reason": reason,
                        "detail": detail,
                        "evidence": evidence,
                    },
                )
            case ProbeAgain(checks=checks):
                self._handlers.probe_again(checks)
            case Restate():
                self._handlers.restate()
            case SaveDrains():
                self._handlers.save_drains(effect)
            case Drained():
                self._handlers.drained()
            case DrainAnswered():
                self._handlers.drain_answered(effect)
