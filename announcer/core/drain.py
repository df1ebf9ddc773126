"""Staged drain: announce with GRACEFUL_SHUTDOWN (65535:0), wait, then withdraw.

Receivers that honour RFC 8326 (FRR does, on eBGP) give the route local-preference 0, so the
host leaves the ECMP set at once but stays a last-resort path while its in-flight requests
finish; the withdraw comes after `gshut_period`, or later while the load balancer still has
more than `connections_below` active connections, but never after `max_wait`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["GRACEFUL_SHUTDOWN", "DrainPhase", "DrainTiming", "drain_phase"]

GRACEFUL_SHUTDOWN = "65535:0"


class DrainPhase(StrEnum):
    NONE = "none"
    GRACEFUL_SHUTDOWN = "graceful_shutdown"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class DrainTiming:
    gshut_period_s: float
    connections_below: float | None = None
    max_wait_s: float = 60.0

    @property
    def longest_s(self) -> float:
        """The longest a drain takes from request to withdraw, busy connections or not."""
        if self.connections_below is None:
            return self.gshut_period_s
        return max(self.max_wait_s, self.gshut_period_s)


def drain_phase(
    requested_at: float | None,
    now: float,
    timing: DrainTiming,
    active_connections: float | None = None,
) -> DrainPhase:
    if requested_at is None:
        return DrainPhase.NONE
    elapsed = now - requested_at
    if elapsed < timing.gshut_period_s:
        return DrainPhase.GRACEFUL_SHUTDOWN
    if (
        timing.connections_below is not None
        and elapsed < max(timing.max_wait_s, timing.gshut_period_s)
        and (active_connections is None or active_connections >= timing.connections_below)
    ):
        # unknown counts as busy: better a longer drain than cut connections
        return DrainPhase.GRACEFUL_SHUTDOWN
    return DrainPhase.WITHDRAWN
