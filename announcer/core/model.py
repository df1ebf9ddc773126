"""Small immutable values the decision core works with."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Decision", "Reason", "Route", "Verdict"]


class Verdict(StrEnum):
    ANNOUNCE = "announce"
    WITHDRAW = "withdraw"
    # not enough is known yet: leave whatever ExaBGP has alone (an earlier instance's route
    # stays until we have a verdict, so a plugin restart does not flap a healthy VIP)
    UNDECIDED = "undecided"


class Reason(StrEnum):
    """Why a VIP is where it is. Used as log field and metric label: keep it low-cardinality."""

    HEALTHY = "healthy"
    CHECKS_DOWN = "checks_down"
    WAITING_FOR_CHECKS = "waiting_for_checks"
    DRAINING = "draining"  # announced with GRACEFUL_SHUTDOWN, withdraw to follow
    DRAINED = "drained"
    # flap dampening or the hold-down de-prefer a healthy VIP (announced with
    # GRACEFUL_SHUTDOWN): it takes no traffic while another host announces it normally, and
    # still serves when every host is held, so a per-host penalty never empties the fleet
    SUPPRESSED = "suppressed"
    HOLD_DOWN = "hold_down"  # too soon after the last withdraw to be a preferred path again
    ADDRESS_MISSING = "address_missing"  # the VIP is not assigned to a local interface
    SHUTDOWN = "shutdown"
    # the fleet (`fleet:`): the checks fail softly (the load balancer answers, its health says
    # no); announced, marked, while the host sees whether enough others serve normally
    SOFT_FAILING = "soft_failing"
    # ...and too few do: announced (marked panic) so the fleet keeps serving, as Envoy's
    # panic mode balances over every host when too few are healthy
    PANIC = "panic"
    DRAIN_PENDING = "drain_pending"  # a drain under a budget, waiting to see who else drains
    # stable next hops: keepalived is not running, so no slot this host announces a path
    # through could move to it (and a slot whose other backers fail would be a black hole)
    KEEPALIVED_DOWN = "keepalived_down"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: Reason


@dataclass(frozen=True, slots=True)
class Route:
    """A VIP route exactly as ExaBGP should carry it. Equality means "no update needed"."""

    prefix: str
    next_hop: str = "self"
    med: int = 100
    origin: str = "igp"
    as_path: tuple[int, ...] = ()
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    extended_communities: tuple[str, ...] = ()
    # stable next hops: one ADD-PATH path per slot this host backs, as (path id, the slot's
    # address); `next_hop` is then unused. Empty: one path, to `next_hop`
    paths: tuple[tuple[int, str], ...] = ()

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.prefix
