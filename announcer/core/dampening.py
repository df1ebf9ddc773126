"""Flap dampening of our own announcements, in the manner of BGP route flap damping.

Every health withdrawal of a VIP (announced, then its checks fail) adds `penalty`; coming back
is free, as in BGP route flap damping. The penalty halves every `half_life`. Past `suppress`
the VIP, once healthy again, is announced de-preferred (with the graceful-shutdown community,
never withdrawn: a fleet-wide restart must not be prolonged by it) until the penalty decays
below `reuse`. The penalty is capped so that no suppression lasts longer than `max_suppress`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Dampening", "DampeningPolicy", "current", "record_flap"]


@dataclass(frozen=True, slots=True)
class DampeningPolicy:
    penalty: float = 1000.0
    half_life_s: float = 15.0
    suppress: float = 2500.0
    reuse: float = 750.0
    max_suppress_s: float = 120.0

    @property
    def ceiling(self) -> float:
        """The most penalty that still decays to `reuse` within `max_suppress`."""
        return self.reuse * math.pow(2.0, self.max_suppress_s / self.half_life_s)


@dataclass(frozen=True, slots=True)
class Dampening:
    penalty: float = 0.0
    at: float = 0.0
    suppressed: bool = False


def _decayed(state: Dampening, now: float, policy: DampeningPolicy) -> float:
    if state.penalty <= 0:
        return 0.0
    return state.penalty * math.pow(0.5, max(0.0, now - state.at) / policy.half_life_s)


def current(state: Dampening, now: float, policy: DampeningPolicy) -> Dampening:
    """The state at `now`: decayed, and released once below `reuse`."""
    if state.penalty <= 0 and not state.suppressed:
        return state  # nothing to decay: keep the value (and its equality) as it is
    penalty = _decayed(state, now, policy)
    suppressed = state.suppressed and penalty >= policy.reuse
    if penalty < 1.0:
        penalty = 0.0
    return Dampening(penalty, now, suppressed)


def record_flap(state: Dampening, now: float, policy: DampeningPolicy) -> Dampening:
    decayed = current(state, now, policy)
    penalty = min(decayed.penalty + policy.penalty, policy.ceiling)
    return Dampening(penalty, now, decayed.suppressed or penalty >= policy.suppress)
