"""Per-check rise/fall hysteresis, from an initial unknown state, weighed by the evidence.

A check becomes UP after `rise` consecutive successes and DOWN after `fall` consecutive
failures; until then it is UNKNOWN. While a change is being confirmed the scheduler probes
sooner than `interval`, how much sooner depending on what the failure said:

- WEAK: the probe could not tell (a timeout, a reset, a TLS error): a slow or overloaded server
  looks like this for a moment, so the next probes wait `fast_interval`.
- DEFINITE: the service answered, and the answer was no (a refused connection, a bad status, a
  closed frontend): the next probes follow at `confirm_interval`, so `fall` still counts
  repeated answers but the count takes tens of milliseconds.
- CERTAIN: the listener is gone. The connection the watcher held to it ended, a new one was
  refused, and this probe was refused too: three observations of one fact, so the check is DOWN
  at once. A reload never looks like this (nginx and HAProxy keep the listening socket).

Successes always confirm at `fast_interval`: `rise` guards against a service that comes back
for a moment, and that takes time to see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from .reasons import DEFINITE_REASONS, NOTHING_LISTENS

__all__ = [
    "DEFINITE_REASONS",
    "CheckState",
    "Evidence",
    "Health",
    "effective_health",
    "evidence_of",
    "is_confirming",
    "next_probe_in",
    "shifted",
    "step",
]


class Health(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class Evidence(StrEnum):
    WEAK = "weak"
    DEFINITE = "definite"
    CERTAIN = "certain"


def evidence_of(ok: bool, reason: str, listener_gone: bool = False) -> Evidence:
    """How strongly one probe result speaks. `listener_gone`: the endpoint's watcher saw its
    held connection end and a new connection refused, and has not connected since."""
    if ok:
        return Evidence.DEFINITE
    if listener_gone and reason in NOTHING_LISTENS:
        return Evidence.CERTAIN
    return Evidence.DEFINITE if reason in DEFINITE_REASONS else Evidence.WEAK


@dataclass(frozen=True, slots=True)
class CheckState:
    health: Health = Health.UNKNOWN
    successes: int = 0
    failures: int = 0
    changed_at: float | None = None
    last_result_at: float | None = None
    # when this check's state began (start-up, or a reload that changed the check): an UNKNOWN
    # that lasts longer than the TTL counts as DOWN, so a check that never gives a verdict
    # cannot keep a predecessor's route in place
    since: float | None = None


def step(
    state: CheckState,
    ok: bool,
    rise: int,
    fall: int,
    now: float,
    evidence: Evidence = Evidence.WEAK,
) -> CheckState:
    """Fold one probe result into the state (a CERTAIN failure counts as `fall` failures)."""
    if ok:
        successes, failures = state.successes + 1, 0
        flips = state.health is not Health.UP and successes >= rise
        health = Health.UP if flips else state.health
    else:
        successes = 0
        failures = max(state.failures + 1, fall if evidence is Evidence.CERTAIN else 0)
        flips = state.health is not Health.DOWN and failures >= fall
        health = Health.DOWN if flips else state.health
    return CheckState(
        health, successes, failures, now if flips else state.changed_at, now, state.since
    )


def is_confirming(state: CheckState) -> bool:
    """True while the latest results disagree with the settled health (or nothing is settled)."""
    match state.health:
        case Health.UNKNOWN:
            return True
        case Health.UP:
            return state.failures > 0
        case Health.DOWN:
            return state.successes > 0


def next_probe_in(
    state: CheckState,
    ok: bool,
    evidence: Evidence,
    interval: float,
    fast_interval: float,
    confirm_interval: float,
) -> float:
    """Seconds from a probe's start to the next one, given the check's `state` with that
    probe's result (`ok`, `evidence`) folded in: `interval` when nothing is being confirmed,
    else by the evidence (above)."""
    if not is_confirming(state):
        return interval
    if ok or evidence is Evidence.WEAK:
        return fast_interval
    return confirm_interval


def effective_health(state: CheckState, now: float, ttl_s: float) -> Health:
    """The health to act on: a verdict older than its time-to-live counts as DOWN, so a probe
    that hangs (or a scheduler that died) cannot keep a route announced; so does an UNKNOWN
    that has lasted longer than the TTL."""
    if state.health is Health.UP:
        if state.last_result_at is None or now - state.last_result_at > ttl_s:
            return Health.DOWN
    elif state.health is Health.UNKNOWN and state.since is not None and now - state.since > ttl_s:
        return Health.DOWN
    return state.health


def ttl_expiry(state: CheckState, now: float, ttl_s: float) -> float:
    """When `effective_health` of this state next changes with time alone (inf: never; `now`:
    it already has, or does now). A result can only make the moment later, or create one no
    earlier than `now`: so the earliest over all checks, kept as results come, tells the
    tick when a scan of every check's TTL can find something."""
    if state.health is Health.UP:
        if state.last_result_at is None:
            return now
        at = state.last_result_at + ttl_s
    elif state.health is Health.UNKNOWN and state.since is not None:
        at = state.since + ttl_s
    else:
        return math.inf
    return max(at, now)


def shifted(state: CheckState, seconds: float) -> CheckState:
    """The state with every timestamp moved `seconds` later: the plugin was not running for
    that long, so its verdicts must not age by it."""

    def later(at: float | None) -> float | None:
        return None if at is None else at + seconds

    return CheckState(
        state.health,
        state.successes,
        state.failures,
        later(state.changed_at),
        later(state.last_result_at),
        later(state.since),
    )
