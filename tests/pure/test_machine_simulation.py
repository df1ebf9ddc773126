"""Stateful simulation of random fault schedules against the reducer and the ledger.

Hypothesis drives probe results (fresh and stale), ticks, stalls of the plugin itself (time
jumps with no events), reloads, drains, undrains, the drain file, neighbor flaps, ExaBGP
errors and restarts, ExaBGP reporting strangers, and stop. A small model kept here, apart
from the implementation, knows what the checks said and when, and the invariants are checked
against it after every step:

- a VIP is desired only while enough of its checks are UP with a fresh verdict (the time the
  plugin itself was stalled does not age a verdict), its address (if guarded) is on the host,
  not drained past its graceful-shutdown period, not stopped; while dampening suppresses it,
  only as a last resort (GRACEFUL_SHUTDOWN), never withdrawn for that alone;
- a guarded VIP whose address goes away is withdrawn in that very step;
- a stall of the plugin alone never withdraws a VIP;
- a VIP's desired route changes no more often than its causes allow (no flap without cause);
- after stop nothing is desired, whatever comes after;
- when ExaBGP answers, what it acknowledged (and holds) equals what is desired.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from announcer.core import (
    GRACEFUL_SHUTDOWN,
    Addresses,
    AddressGuard,
    Drain,
    Drained,
    DrainFile,
    DrainPhase,
    Neighbor,
    NextProbe,
    ProbeDone,
    Reload,
    RibReported,
    Stop,
    Tick,
    Undrain,
    reduce,
)
from tests.machine_harness import Harness, make_spec

A, B, C, D = "192.0.2.10/32", "192.0.2.11/32", "192.0.2.12/32", "192.0.2.13/32"
CHECKS = ("a", "b", "c")
RISE, FALL, TTL, GSHUT = 2, 1, 1.5, 0.8
STALL_AFTER = 1.0  # the reducer's Policy default
GUARDS = {A: AddressGuard.REQUIRE, D: AddressGuard.MANAGE}  # B and C: ignore
COMMON = {"required": {B: 1}, "rise": RISE, "fall": FALL, "ttl_s": TTL, "gshut_s": GSHUT}
SPEC_ONE = make_spec({A: ("a",), B: ("a", "b"), C: ("b", "c")}, guards=GUARDS, **COMMON)
# C removed, D added; the checks themselves unchanged
SPEC_TWO = make_spec({A: ("a",), B: ("a", "b"), D: ("c",)}, guards=GUARDS, **COMMON)
STRANGER = "192.0.2.99/32"


@dataclass
class CheckModel:
    health: str = "unknown"
    successes: int = 0
    failures: int = 0
    last_at: float | None = None  # last counted result
    since: float = 0.0
    transitions: int = 0


@dataclass
class Model:
    checks: dict[str, CheckModel] = field(default_factory=dict)
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (resumed at, length)
    drains: dict[str, float] = field(default_factory=dict)
    drain_file_at: float | None = None
    stopped: bool = False
    resumed_at: float = float("-inf")
    addresses: frozenset[str] | None = None  # what the host holds; None: not reported yet

    def credit(self, since: float) -> float:
        """How long the plugin was stalled after `since`: that time does not age a verdict."""
        return sum(length for at, length in self.stalls if at - length >= since - 1e-9)

    def address_ok(self, prefix: str, guarded: bool) -> bool:
        return not guarded or (
            self.addresses is not None and prefix.split("/")[0] in self.addresses
        )

    def fresh_up(self, name: str, now: float) -> bool:
        check = self.checks[name]
        if check.health != "up" or check.last_at is None:
            return False
        return now - check.last_at - self.credit(check.last_at) <= TTL + 1e-9


class Simulation(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.h = Harness(SPEC_ONE)
        self.spec = SPEC_ONE
        self.model = Model(checks={name: CheckModel() for name in CHECKS})
        self.changes: dict[str, int] = {}
        self.causes: dict[str, int] = {}
        self.exabgp_restarted = False
        self.last_was_tick = False
        self.last_was_stall = False
        self.desired_before: dict[str, object] = {}

    # ------------------------------------------------------------------ helpers
    def _step(self, event: object, dt: float) -> None:
        """One event, or a list of probe results that arrived together."""
        self.desired_before = dict(self.h.state.desired)
        self.fresh_before = {
            vip.prefix: sum(self.model.fresh_up(n, self.h.now) for n in vip.checks) >= vip.required
            for vip in self.spec.vips
        }
        if dt > STALL_AFTER:
            self.model.stalls.append((self.h.now + dt, dt))
            self.model.resumed_at = self.h.now + dt
        all_drained_before = self._all_drained()
        already = len(self.h.effects)
        if isinstance(event, list):
            self.h.step_probes(event, dt)
        else:
            self.h.step(event, dt)  # type: ignore[arg-type]
        self._check_effects(event, self.h.effects[already:], all_drained_before)
        self.last_was_tick = isinstance(event, Tick)
        self.last_was_stall = dt > STALL_AFTER
        for prefix in set(self.desired_before) | set(self.h.state.desired):
            if self.desired_before.get(prefix, "-") != self.h.state.desired.get(prefix, "-"):
                self.changes[prefix] = self.changes.get(prefix, 0) + 1

    def _all_drained(self) -> bool:
        return all(r.phase is DrainPhase.WITHDRAWN for r in self.h.state.vips.values())

    def _check_effects(self, event: object, effects: list[object], drained_before: bool) -> None:
        """The cadence: each result of a configured check gets exactly one `NextProbe`, for
        that probe, at one of the check's intervals (nothing else asks the runners to wait).
        `Drained` comes exactly when every VIP has just become withdrawn by its drain."""
        results = event if isinstance(event, list) else [event]
        expected = [
            (e.check, e.started_at)
            for e in results
            if isinstance(e, ProbeDone) and e.check in self.h.state.spec.checks
        ]
        cadence = [e for e in effects if isinstance(e, NextProbe)]
        assert [(e.check, e.after) for e in cadence] == expected, (expected, cadence)
        for e in cadence:
            check = self.h.state.spec.checks[e.check]
            intervals = (check.interval_s, check.fast_interval_s, check.confirm_interval_s)
            assert any(abs(e.at - e.after - i) < 1e-9 for i in intervals), e
        drained = [e for e in effects if isinstance(e, Drained)]
        if drained:
            assert self._all_drained(), "Drained while a VIP is not withdrawn by its drain"
        elif self._all_drained() and not drained_before and self.h.state.vips:
            assert isinstance(event, Reload), "every VIP drained, and no Drained"

    def _cause(self, prefixes: object = None) -> None:
        for prefix in (A, B, C, D) if prefixes is None else prefixes:  # type: ignore[union-attr]
            self.causes[prefix] = self.causes.get(prefix, 0) + 1

    def _vips_of(self, name: str) -> list[str]:
        return [vip.prefix for vip in self.spec.vips if name in vip.checks]

    # ------------------------------------------------------------------ rules
    @rule(
        name=st.sampled_from(CHECKS),
        ok=st.booleans(),
        dt=st.floats(0.01, 0.5),
        took=st.floats(0.0, 0.3),
        reason=st.sampled_from(["timeout", "connection_refused", "bad_status"]),
        gone=st.booleans(),
    )
    def probe(self, name: str, ok: bool, dt: float, took: float, reason: str, gone: bool) -> None:
        started = self.h.now + dt - took
        event = ProbeDone(
            name, ok, "ok" if ok else reason, started_at=started, listener_gone=gone and not ok
        )
        self._step(event, dt)
        self._model_probe(event)

    @rule(
        results=st.lists(
            st.tuples(
                st.sampled_from(CHECKS),
                st.booleans(),
                st.sampled_from(["timeout", "connection_refused", "bad_status"]),
                st.booleans(),
            ),
            min_size=2,
            max_size=8,
        ),
        dt=st.floats(0.01, 0.5) | st.floats(1.5, 3.0),  # a stall before them, sometimes
    )
    def results_arriving_together(
        self, results: list[tuple[str, bool, str, bool]], dt: float
    ) -> None:
        """The shell folds the results queued at one wake in one step: that must be exactly
        folding them one by one at that moment, same state and same effects in the same order."""
        started = self.h.now + dt - 0.01
        events = [
            ProbeDone(
                name, ok, "ok" if ok else reason, started_at=started, listener_gone=gone and not ok
            )
            for name, ok, reason, gone in results
        ]
        one_by_one, effects = self.h.state, []
        for event in events:
            one_by_one, more = reduce(one_by_one, event, self.h.now + dt)
            effects.extend(more)
        already = len(self.h.effects)
        self._step(events, dt)
        assert self.h.state == one_by_one
        assert self.h.effects[already:] == effects
        for event in events:
            self._model_probe(event)

    def _model_probe(self, event: ProbeDone) -> None:
        name, ok, reason, started = event.check, event.ok, event.reason, event.started_at
        gone = event.listener_gone
        assert started is not None
        check = self.model.checks[name]
        if not ok and started < self.model.resumed_at:
            return  # began before a stall: void
        before = check.health
        if ok:
            check.successes, check.failures = check.successes + 1, 0
            if check.successes >= RISE:
                check.health = "up"
        else:
            # a refusal while the watcher saw the listener go is certain: down at once
            certain = gone and reason == "connection_refused"
            check.successes = 0
            check.failures = max(check.failures + 1, FALL) if certain else check.failures + 1
            if check.failures >= FALL:
                check.health = "down"
        check.last_at = self.h.now
        if check.health != before:
            check.transitions += 1
            self._cause(self._vips_of(name))

    @rule(name=st.sampled_from(CHECKS))
    def failure_of_a_probe_started_before_a_stall(self, name: str) -> None:
        if self.model.resumed_at == float("-inf"):
            return
        self._step(ProbeDone(name, False, started_at=self.model.resumed_at - 0.5), 0.01)

    @rule(dt=st.floats(0.05, 0.5))
    def tick(self, dt: float) -> None:
        self._step(Tick(), dt)
        self._cause_time()

    @rule(dt=st.floats(1.5, 10.0))
    def stall(self, dt: float) -> None:
        self._step(Tick(), dt)
        self._cause_time()

    def _cause_time(self) -> None:
        # time alone may legitimately change a VIP: a TTL running out, a drain moving on, a
        # penalty decaying; each counts once per VIP it can touch
        now = self.h.now
        for vip in self.spec.vips:
            expiring = any(
                self.model.checks[n].health == "up" and not self.model.fresh_up(n, now)
                for n in vip.checks
            )
            unknown_expiring = any(
                self.model.checks[n].health == "unknown"
                and now - self.model.checks[n].since - self.model.credit(self.model.checks[n].since)
                > TTL
                for n in vip.checks
            )
            record = self.h.state.vips.get(vip.prefix)
            timed = vip.prefix in self.h.state.timed or (
                record is not None and record.dampening.penalty > 0
            )
            if expiring or unknown_expiring or timed:
                self._cause([vip.prefix])

    @rule(which=st.sampled_from([None, (A,), (B, C), (D,)]))
    def drain(self, which: tuple[str, ...] | None) -> None:
        targets = which
        self._step(Drain(targets, "sim"), 0.05)
        for prefix in targets or [v.prefix for v in self.spec.vips]:
            if prefix in self.spec.by_prefix and not self.model.stopped:
                self.model.drains.setdefault(prefix, self.h.now)
        self._cause(targets)

    @rule(which=st.sampled_from([None, (A,), (B, C)]))
    def undrain(self, which: tuple[str, ...] | None) -> None:
        targets = which
        self._step(Undrain(targets), 0.05)
        if not self.model.stopped:
            for prefix in targets or list(self.model.drains):
                self.model.drains.pop(prefix, None)
        self._cause(targets)

    @rule(present=st.booleans())
    def drain_file(self, present: bool) -> None:
        self._step(DrainFile(present), 0.05)
        if not self.model.stopped and present != (self.model.drain_file_at is not None):
            self.model.drain_file_at = self.h.now if present else None
        self._cause()

    @rule()
    def reload(self) -> None:
        new = SPEC_TWO if self.spec is SPEC_ONE else SPEC_ONE
        self._step(Reload(new), 0.05)
        if not self.model.stopped:
            self.spec = new
            for prefix in list(self.model.drains):
                if prefix not in new.by_prefix:
                    del self.model.drains[prefix]
        self._cause()

    @rule(state=st.sampled_from(["up", "down", "connected"]))
    def neighbor(self, state: str) -> None:
        self._step(Neighbor("198.51.100.1", state), 0.05)
        if state == "up":
            self.exabgp_restarted = False

    @rule()
    def exabgp_restarts(self) -> None:
        self.h.rib.clear()  # its adj-rib-out is gone; a session comes up again later
        self.exabgp_restarted = True

    @rule()
    def exabgp_reports_what_it_holds(self) -> None:
        self._step(RibReported(frozenset(self.h.rib) | {STRANGER}), 0.05)

    @rule(present=st.sets(st.sampled_from([A, D, "198.51.100.7/32"])))
    def addresses(self, present: set[str]) -> None:
        addresses = frozenset(p.split("/")[0] for p in present)
        self._step(Addresses(addresses), 0.05)
        self.model.addresses = addresses
        self._cause([A, D])

    @rule(fail=st.booleans())
    def sync(self, fail: bool) -> None:
        self.h.sync(fail=fail)
        if not fail:
            self.assert_exabgp_holds_what_is_desired()

    @precondition(lambda self: not self.model.stopped)
    @rule()
    def stop(self) -> None:
        self._step(Stop("sim"), 0.05)
        self.model.stopped = True
        self._cause()

    # ------------------------------------------------------------------ invariants
    def assert_exabgp_holds_what_is_desired(self) -> None:
        desired = self.h.state.desired
        for prefix, route in desired.items():
            assert self.h.ledger.acked.get(prefix, "?") == route, prefix
            if not self.exabgp_restarted:
                assert (prefix in self.h.rib) == (route is not None), (prefix, self.h.rib)

    @invariant()
    def announced_only_when_it_may_be(self) -> None:
        if not hasattr(self, "h") or not self.last_was_tick:
            return  # the reducer re-decides on the next tick (every 0.25 s in the plugin)
        now = self.h.now
        for vip in self.spec.vips:
            route = self.h.state.desired.get(vip.prefix)
            if route is None:
                continue
            up = sum(self.model.fresh_up(name, now) for name in vip.checks)
            assert up >= vip.required, (vip.prefix, now, self.model.checks)
            assert not self.model.stopped
            record = self.h.state.vips[vip.prefix]
            if record.dampening.suppressed:
                assert GRACEFUL_SHUTDOWN in route.communities, (vip.prefix, route)
            drained_at = self.model.drains.get(vip.prefix, self.model.drain_file_at)
            assert drained_at is None or now - drained_at < GSHUT + 1e-9, (vip.prefix, now)
        assert STRANGER not in self.h.state.desired or self.h.state.desired[STRANGER] is None

    @invariant()
    def announced_whenever_it_may_be(self) -> None:
        """The converse: checks that allow it, and nothing that forbids it, mean announced;
        and once every check is past its TTL no VIP is left undecided."""
        if not hasattr(self, "h") or not self.last_was_tick or self.model.stopped:
            return
        now = self.h.now
        for vip in self.spec.vips:
            drained = vip.prefix in self.model.drains or self.model.drain_file_at is not None
            up = sum(self.model.fresh_up(name, now) for name in vip.checks)
            guarded = vip.address is not AddressGuard.IGNORE
            address_ok = self.model.address_ok(vip.prefix, guarded)
            if up >= vip.required and not drained and address_ok:
                assert self.h.state.desired.get(vip.prefix) is not None, (vip.prefix, now)
            if guarded and self.model.addresses is None:
                continue  # the guard waits for the host's addresses: undecided is right
            if now - self.model.credit(0.0) > TTL + 1e-6:
                assert vip.prefix in self.h.state.desired, f"{vip.prefix} undecided at {now}"

    @invariant()
    def a_missing_address_withdraws_at_once(self) -> None:
        if not hasattr(self, "h"):
            return
        for vip in self.spec.vips:
            guarded = vip.address is not AddressGuard.IGNORE
            if not self.model.address_ok(vip.prefix, guarded):
                assert self.h.state.desired.get(vip.prefix) is None, (vip.prefix, self.model)

    @invariant()
    def a_stall_alone_withdraws_nothing(self) -> None:
        if not hasattr(self, "h") or not self.last_was_stall:
            return
        for prefix, before in self.desired_before.items():
            after = self.h.state.desired.get(prefix)
            if before is not None and after is None and self.fresh_before.get(prefix):
                # its checks were fresh and up when the stall began: only a drain may withdraw
                drained_at = self.model.drains.get(prefix, self.model.drain_file_at)
                assert drained_at is not None, f"{prefix} withdrawn by a stall"

    @invariant()
    def no_flap_without_cause(self) -> None:
        if not hasattr(self, "h"):
            return
        for prefix, count in self.changes.items():
            # each cause may move a VIP twice at most (e.g. a drain: graceful, then withdraw)
            assert count <= 2 * self.causes.get(prefix, 0) + 1, (prefix, count, self.causes)

    @invariant()
    def nothing_after_stop(self) -> None:
        if hasattr(self, "h") and self.model.stopped:
            assert all(route is None for route in self.h.state.desired.values())


# about 22,000 reducer steps in 7 s here; a failure's shrinking may take minutes
Simulation.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSimulation = pytest.mark.timeout(600)(Simulation.TestCase)
