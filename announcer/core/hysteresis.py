"""Per-check rise/fall hysteresis, from an initial unknown state.

A check becomes UP after `rise` consecutive successes and DOWN after `fall` consecutive
failures; until then it is UNKNOWN. While a state change is being confirmed the scheduler
probes at the fast interval, so a change takes `fall` x `fast_interval`, not `fall` x `interval`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CheckState",
    "Health",
    "confirming_after",
    "effective_health",
    "is_confirming",
    "shifted",
    "step",
]


class Health(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


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


def step(state: CheckState, ok: bool, rise: int, fall: int, now: float) -> CheckState:
    """Fold one probe result into the state."""
    if ok:
        successes, failures = state.successes + 1, 0
        flips = state.health is not Health.UP and successes >= rise
        health = Health.UP if flips else state.health
    else:
        successes, failures = 0, state.failures + 1
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


def confirming_after(state: CheckState, ok: bool) -> bool:
    """Whether a result `ok` folded into `state` leaves a change to confirm (probe again at the
    fast interval). Lets a probe runner pick its cadence from the last published state without
    waiting for its own result to be folded in: at most one probe more at the fast interval
    than `is_confirming` of the new state would give."""
    if state.health is Health.UNKNOWN:
        return True
    return (state.health is Health.UP) != ok


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
