"""The state of one plugin: check states, drains, decisions; turns them into desired routes.

Everything here runs on the event loop; callers pass the monotonic time in, and the decisions
themselves are made by the pure core.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from healthchecks import ProbeResult

from .config import Config, VipConfig
from .core import CheckState, Decision, Reason, Route, Verdict, decide, effective_health, step
from .logs import get_logger

__all__ = ["DrainRequest", "Engine", "route_for"]

log = get_logger("engine")


@dataclass(frozen=True, slots=True)
class DrainRequest:
    reason: str
    source: str  # api | cli | file
    since: float  # wall clock


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


Listener = Callable[[dict[str, Route | None]], None]
TransitionListener = Callable[[str, Decision, Decision], None]


class Engine:
    def __init__(
        self,
        config: Config,
        on_desired: Listener,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.config = config
        self._on_desired = on_desired
        self._on_transition = on_transition or (lambda vip, old, new: None)
        self.check_states: dict[str, CheckState] = {name: CheckState() for name in config.checks}
        self.last_results: dict[str, LastResult] = {}
        self.drains: dict[str, DrainRequest] = {}
        self.drain_file: DrainRequest | None = None
        self.decisions: dict[str, Decision] = {}
        self.changed_at: dict[str, float] = {}
        self.neighbors: dict[str, str] = {}
        self.stopping = False
        local_as = config.bgp.local_as if config.bgp else None
        self._routes = {vip.prefix: route_for(vip, local_as) for vip in config.vips}

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
        self.recompute(now)
        return state

    def drained(self, vip: VipConfig) -> DrainRequest | None:
        return self.drains.get(vip.prefix) or self.drain_file

    def decide_vip(self, vip: VipConfig, now: float) -> Decision:
        if self.stopping:
            return Decision(Verdict.WITHDRAW, Reason.SHUTDOWN)
        healths = (
            effective_health(self.check_states[name], now, self.config.checks[name].ttl_s)
            for name in vip.checks
        )
        return decide(vip.required_count(), healths, self.drained(vip) is not None)

    def recompute(self, now: float) -> None:
        desired: dict[str, Route | None] = {}
        for vip in self.config.vips:
            decision = self.decide_vip(vip, now)
            previous = self.decisions.get(vip.prefix)
            if previous != decision:
                self.decisions[vip.prefix] = decision
                self.changed_at[vip.prefix] = time.time()
                if previous is None or previous.verdict is not decision.verdict:
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
            if decision.verdict is Verdict.ANNOUNCE:
                desired[vip.prefix] = self._routes[vip.prefix]
            elif decision.verdict is Verdict.WITHDRAW:
                desired[vip.prefix] = None
        self._on_desired(desired)

    def _targets(self, vips: Iterable[str] | None) -> list[str]:
        return [v.prefix for v in self.config.vips] if not vips else list(vips)

    def drain(self, vips: Iterable[str] | None, reason: str, source: str, now: float) -> list[str]:
        targets = self._targets(vips)
        for prefix in targets:
            if prefix not in self.drains:
                self.drains[prefix] = DrainRequest(reason, source, time.time())
        log.info("drain", extra={"vips": targets, "reason": reason, "source": source})
        self.recompute(now)
        return targets

    def undrain(self, vips: Iterable[str] | None, source: str, now: float) -> list[str]:
        targets = self._targets(vips)
        for prefix in targets:
            self.drains.pop(prefix, None)
        log.info("undrain", extra={"vips": targets, "source": source})
        self.recompute(now)
        return targets

    def set_drain_file(self, present: bool, now: float) -> None:
        if present == (self.drain_file is not None):
            return
        path = self.config.drain.file
        self.drain_file = (
            DrainRequest(f"drain file {path} exists", "file", time.time()) if present else None
        )
        log.info("drain file %s", "appeared" if present else "removed", extra={"path": path})
        self.recompute(now)

    def set_neighbor(self, peer: str, state: str) -> None:
        self.neighbors[peer] = state

    def stop(self, now: float) -> None:
        self.stopping = True
        self.recompute(now)
