"""The state of one plugin: check states, drains, dampening, weights; turns them into routes.

Everything here runs on the event loop; callers pass the monotonic time in, and the decisions
themselves are made by the pure core.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from healthchecks import ProbeResult

from .config import Config, VipConfig
from .core import (
    GRACEFUL_SHUTDOWN,
    CheckState,
    Dampening,
    DampeningPolicy,
    Decision,
    DrainPhase,
    DrainTiming,
    Health,
    Reason,
    Route,
    Verdict,
    bandwidth_community,
    current,
    decide,
    drain_phase,
    effective_health,
    finalize,
    quantise,
    record_flap,
    step,
)
from .logs import get_logger

__all__ = ["DrainRequest", "Engine", "route_for"]

log = get_logger("engine")


@dataclass(frozen=True, slots=True)
class DrainRequest:
    reason: str
    source: str  # api | cli | file | signal
    since: float  # wall clock, for people
    requested_at: float  # monotonic, for the drain phases
    persist: bool = True  # kept in drain.state_file across restarts


@dataclass(frozen=True, slots=True)
class LastResult:
    result: ProbeResult
    at_wall: float
    at_monotonic: float


def route_for(vip: VipConfig, local_as: int | None) -> Route:
    # ExaBGP sends a given AS_PATH as it is, without adding its own AS: N extra copies of
    # our AS therefore means N + 1 in all
    prepend = (local_as,) * (vip.as_path_prepend + 1) if local_as and vip.as_path_prepend else ()
    return Route(
        prefix=vip.prefix,
        next_hop=vip.next_hop,
        med=vip.med,
        origin=vip.origin,
        as_path=prepend,
        communities=tuple(vip.communities),
        large_communities=tuple(vip.large_communities),
        extended_communities=tuple(vip.extended_communities),
    )


def _policy(config: Config) -> DampeningPolicy:
    d = config.dampening
    return DampeningPolicy(d.penalty, d.half_life, d.suppress, d.reuse, d.max_suppress)


def _timing(config: Config) -> DrainTiming:
    d = config.drain
    return DrainTiming(d.gshut_period, d.connections_below, d.max_wait)


# (desired routes of the VIPs just decided, those left undecided, whether that was all of them)
DesiredListener = Callable[[dict[str, Route | None], list[str], bool], None]
TransitionListener = Callable[[str, Decision, Decision], None]


class Engine:
    def __init__(
        self,
        config: Config,
        on_desired: DesiredListener,
        on_transition: TransitionListener | None = None,
        on_drains_changed: Callable[[], None] | None = None,
    ) -> None:
        self._on_desired = on_desired
        self._on_transition = on_transition or (lambda vip, old, new: None)
        self._on_drains_changed = on_drains_changed or (lambda: None)
        self.check_states: dict[str, CheckState] = {}
        self.last_results: dict[str, LastResult] = {}
        self.drains: dict[str, DrainRequest] = {}
        self.drain_file: DrainRequest | None = None
        self.decisions: dict[str, Decision] = {}
        self.phases: dict[str, DrainPhase] = {}
        self.changed_at: dict[str, float] = {}
        self.dampening: dict[str, Dampening] = {}
        self.weights: dict[str, float] = {}
        self.neighbors: dict[str, str] = {}
        self.retired: set[str] = set()
        self.stopping = False
        self._health: dict[str, Verdict] = {}
        self._withdrawn_at: dict[str, float] = {}
        self.config = config
        self._apply(config)

    # ---------------------------------------------------------------- configuration
    def _apply(self, config: Config) -> None:
        self.config = config
        self._policy = _policy(config)
        self._timing = _timing(config)
        self._local_as = config.bgp.local_as if config.bgp else None
        self._routes = {vip.prefix: route_for(vip, self._local_as) for vip in config.vips}
        for name in config.checks:
            self.check_states.setdefault(name, CheckState())
        # which VIPs a check's result can change: its own, plus all of them while draining on
        # its connection count
        self._vips_by_check: dict[str, list[VipConfig]] = {name: [] for name in config.checks}
        self._weighted_by: dict[str, list[VipConfig]] = {name: [] for name in config.checks}
        for vip in config.vips:
            for name in vip.checks:
                self._vips_by_check[name].append(vip)
            if vip.weight is not None and vip.weight.from_check is not None:
                self._weighted_by[vip.weight.from_check].append(vip)
        self._ttl = {name: spec.ttl_s for name, spec in config.checks.items()}
        self._vip_by_prefix = {vip.prefix: vip for vip in config.vips}
        # VIPs whose decision can change with time alone: drained, penalised, held down
        self._timed: set[str] = set(self.drains) & set(self._vip_by_prefix)

    def reconfigure(self, config: Config, now: float) -> dict[str, list[str]]:
        """Switch to a new config, keeping the state of everything that did not change."""
        old = self.config
        changed_checks = [
            n for n in config.checks if n in old.checks and old.checks[n] != config.checks[n]
        ]
        for name in [*changed_checks, *(n for n in old.checks if n not in config.checks)]:
            self.check_states.pop(name, None)
            self.last_results.pop(name, None)
        new_prefixes = {vip.prefix for vip in config.vips}
        removed = [vip.prefix for vip in old.vips if vip.prefix not in new_prefixes]
        for prefix in removed:
            self.retired.add(prefix)
            for table in (self.drains, self.decisions, self.phases, self.dampening, self.weights):
                table.pop(prefix, None)
        self.retired -= new_prefixes
        old_vips = {vip.prefix: vip for vip in old.vips}
        summary = {
            "checks_changed": changed_checks,
            "checks_added": [n for n in config.checks if n not in old.checks],
            "checks_removed": [n for n in old.checks if n not in config.checks],
            "vips_added": [v.prefix for v in config.vips if v.prefix not in old_vips],
            "vips_changed": [
                v.prefix for v in config.vips if v.prefix in old_vips and old_vips[v.prefix] != v
            ],
            "vips_removed": removed,
        }
        self._apply(config)
        log.info("configuration reloaded", extra=summary)
        self.recompute(now)
        return summary

    # ---------------------------------------------------------------- inputs
    def on_result(self, check: str, result: ProbeResult, now: float) -> CheckState:
        spec = self.config.checks[check]
        before = self.check_states[check]
        state = step(before, result.ok, spec.rise, spec.fall, now)
        self.check_states[check] = state
        self.last_results[check] = LastResult(result, time.time(), now)
        if state.health is not before.health:
            log.info(
                "check %s is %s",
                check,
                state.health,
                extra={
                    "check": check,
                    "health": str(state.health),
                    "reason": result.reason,
                    "detail": result.detail,
                },
            )
        elif not result.ok and before.failures == 0:
            log.info(
                "check %s failed, confirming",
                check,
                extra={"check": check, "reason": result.reason, "detail": result.detail},
            )
        if state.health is not before.health:
            self.recompute(now, self._vips_by_check[check])
        elif self._weighted_by[check]:
            self.recompute(now, self._weighted_by[check])
        if check == self.config.drain.connections_check and (self.drains or self.drain_file):
            self.recompute(now)
        return state

    def tick(self, now: float) -> None:
        """Re-decide the VIPs whose decision can change with time alone: stale checks, drains
        in progress, dampening penalties decaying, hold-downs."""
        due: dict[str, VipConfig] = {}
        if self.drain_file is not None:
            due = {vip.prefix: vip for vip in self.config.vips}
        for prefix in self._timed:
            vip = self._vip_by_prefix.get(prefix)
            if vip is not None:
                due[prefix] = vip
        for name, state in self.check_states.items():
            if state.health is not Health.UP or state.last_result_at is None:
                continue
            if now - state.last_result_at > self._ttl.get(name, float("inf")):
                for vip in self._vips_by_check.get(name, ()):
                    due[vip.prefix] = vip
        if due:
            self.recompute(now, due.values())

    def set_neighbor(self, peer: str, state: str) -> None:
        self.neighbors[peer] = state

    # ---------------------------------------------------------------- drains
    def drained(self, vip: VipConfig) -> DrainRequest | None:
        return self.drains.get(vip.prefix) or self.drain_file

    def _targets(self, vips: Iterable[str] | None) -> list[str]:
        return [v.prefix for v in self.config.vips] if not vips else list(vips)

    def drain(
        self,
        vips: Iterable[str] | None,
        reason: str,
        source: str,
        now: float,
        persist: bool = True,
    ) -> list[str]:
        targets = self._targets(vips)
        for prefix in targets:
            if prefix not in self.drains:
                self.drains[prefix] = DrainRequest(reason, source, time.time(), now, persist)
        log.info("drain", extra={"vips": targets, "reason": reason, "source": source})
        self._on_drains_changed()
        self.recompute(now)
        return targets

    def undrain(self, vips: Iterable[str] | None, source: str, now: float) -> list[str]:
        targets = self._targets(vips)
        for prefix in targets:
            self.drains.pop(prefix, None)
        log.info("undrain", extra={"vips": targets, "source": source})
        self._on_drains_changed()
        self.recompute(now)
        return targets

    def set_drain_file(self, present: bool, now: float) -> None:
        if present == (self.drain_file is not None):
            return
        path = self.config.drain.file
        self.drain_file = (
            DrainRequest(f"drain file {path} exists", "file", time.time(), now) if present else None
        )
        log.info("drain file %s", "appeared" if present else "removed", extra={"path": path})
        self.recompute(now)

    def saved_drains(self) -> dict[str, Any]:
        return {
            p: {"reason": d.reason, "source": d.source, "since": d.since}
            for p, d in self.drains.items()
            if d.persist
        }

    def restore_drains(self, saved: dict[str, Any], now: float) -> None:
        """Drains from a state file: their phase continues from when they were asked for."""
        wall = time.time()
        known = {vip.prefix for vip in self.config.vips}
        for prefix, entry in saved.items():
            if prefix in known:
                since = float(entry["since"])
                self.drains[prefix] = DrainRequest(
                    str(entry.get("reason", "")),
                    str(entry.get("source", "state")),
                    since,
                    now - max(0.0, wall - since),
                )
        if self.drains:
            log.info("drains restored", extra={"vips": sorted(self.drains)})
            self.recompute(now)

    def drains_complete(self) -> bool:
        return all(self.phases.get(v.prefix) is DrainPhase.WITHDRAWN for v in self.config.vips)

    # ---------------------------------------------------------------- decisions
    def _active_connections(self) -> float | None:
        check = self.config.drain.connections_check
        last = self.last_results.get(check) if check else None
        return last.result.metrics.get("active_connections") if last else None

    def _weight_level(self, vip: VipConfig) -> float:
        assert vip.weight is not None
        level = self.weights.get(vip.prefix)
        source = vip.weight.from_check
        last = self.last_results.get(source) if source else None
        if last is not None and last.result.capacity is not None:
            level = quantise(level, last.result.capacity, vip.weight.steps)
        level = 1.0 if level is None else level
        self.weights[vip.prefix] = level
        return level

    def _route(self, vip: VipConfig, decision: Decision) -> Route:
        route = self._routes[vip.prefix]
        extra_communities: tuple[str, ...] = ()
        if decision.reason is Reason.DRAINING:
            extra_communities = (GRACEFUL_SHUTDOWN,)
        extended = route.extended_communities
        if vip.weight is not None:
            asn = vip.weight.asn or self._local_as or 0
            extended += (
                bandwidth_community(asn, vip.weight.bandwidth_mbps, self._weight_level(vip)),
            )
        if extra_communities or extended != route.extended_communities:
            route = replace(
                route,
                communities=route.communities + extra_communities,
                extended_communities=extended,
            )
        return route

    def decide_vip(self, vip: VipConfig, now: float) -> Decision:
        prefix = vip.prefix
        healths = (
            effective_health(self.check_states[name], now, self._ttl[name]) for name in vip.checks
        )
        health = decide(vip.required_count(), healths)
        damp = self.dampening.get(prefix, Dampening())
        previous = self._health.get(prefix)
        if health.verdict is not Verdict.UNDECIDED:
            # like BGP route flap damping, a withdrawal is what costs: coming back is free
            if (
                self.config.dampening.enabled
                and previous is Verdict.ANNOUNCE
                and health.verdict is Verdict.WITHDRAW
            ):
                damp = record_flap(damp, now, self._policy)
                if damp.suppressed and not self.dampening.get(prefix, Dampening()).suppressed:
                    log.warning(
                        "vip %s suppressed: flapping",
                        prefix,
                        extra={"vip": prefix, "penalty": round(damp.penalty)},
                    )
            self._health[prefix] = health.verdict
        damp = current(damp, now, self._policy)
        self.dampening[prefix] = damp
        request = self.drained(vip)
        phase = drain_phase(
            request.requested_at if request else None, now, self._timing, self._active_connections()
        )
        self.phases[prefix] = phase
        before = self.decisions.get(prefix)
        withdrawn_at = self._withdrawn_at.get(prefix)
        held = (
            self.config.dampening.min_announce_interval > 0
            and before is not None
            and before.verdict is Verdict.WITHDRAW
            and withdrawn_at is not None
            and now - withdrawn_at < self.config.dampening.min_announce_interval
        )
        return finalize(health, phase, damp.suppressed, held, self.stopping)

    def recompute(self, now: float, vips: Iterable[VipConfig] | None = None) -> None:
        """Decide again for `vips` (all when None) and report their desired routes."""
        full = vips is None
        desired: dict[str, Route | None] = dict.fromkeys(self.retired) if full else {}
        undecided: list[str] = []
        for vip in self.config.vips if vips is None else vips:
            decision = self.decide_vip(vip, now)
            previous = self.decisions.get(vip.prefix)
            if previous != decision:
                self.decisions[vip.prefix] = decision
                self.changed_at[vip.prefix] = time.time()
                if decision.verdict is Verdict.WITHDRAW and (
                    previous is None or previous.verdict is not Verdict.WITHDRAW
                ):
                    self._withdrawn_at[vip.prefix] = now
                log.info(
                    "vip %s: %s (%s)",
                    vip.prefix,
                    decision.verdict,
                    decision.reason,
                    extra={
                        "vip": vip.prefix,
                        "verdict": str(decision.verdict),
                        "reason": str(decision.reason),
                    },
                )
                self._on_transition(
                    vip.prefix,
                    previous or Decision(Verdict.UNDECIDED, Reason.WAITING_FOR_CHECKS),
                    decision,
                )
            damp = self.dampening.get(vip.prefix)
            if (
                vip.prefix in self.drains
                or (damp is not None and damp.penalty > 0)
                or decision.reason is Reason.HOLD_DOWN
            ):
                self._timed.add(vip.prefix)
            else:
                self._timed.discard(vip.prefix)
            if decision.verdict is Verdict.ANNOUNCE:
                desired[vip.prefix] = self._route(vip, decision)
            elif decision.verdict is Verdict.WITHDRAW:
                desired[vip.prefix] = None
            else:
                undecided.append(vip.prefix)
        self._on_desired(desired, undecided, full)

    def stop(self, now: float) -> None:
        self.stopping = True
        self.recompute(now)
