"""The one function that builds the route ExaBGP carries for a VIP in a given state.

The running plugin (through the reducer) and `announcer plan` both call it, so what `plan`
prints is exactly what the plugin sends.
"""

from __future__ import annotations

from dataclasses import replace

from .drain import GRACEFUL_SHUTDOWN
from .fleet import FleetSpec, Mark, tag
from .model import Reason, Route
from .spec import VipSpec
from .weight import bandwidth_community

__all__ = ["DEPREFERRED", "base_route", "build_route", "mark_of"]

# announced, but as a last-resort path only (RFC 8326: receivers set local-preference 0)
DEPREFERRED = frozenset({Reason.DRAINING, Reason.SUPPRESSED, Reason.HOLD_DOWN})

_MARKS = {
    Reason.SOFT_FAILING: Mark.FAILING,
    Reason.PANIC: Mark.PANIC,
    Reason.DRAIN_PENDING: Mark.DRAIN_PENDING,
    Reason.DRAINING: Mark.DRAINING,
    Reason.SUPPRESSED: Mark.DEPREFERRED,
    Reason.HOLD_DOWN: Mark.DEPREFERRED,
}


def mark_of(reason: Reason) -> Mark:
    """What an announced VIP's path tells the fleet."""
    return _MARKS.get(reason, Mark.NORMAL)


def base_route(
    prefix: str,
    *,
    next_hop: str = "self",
    med: int = 100,
    origin: str = "igp",
    local_as: int | None = None,
    as_path_prepend: int = 0,
    communities: tuple[str, ...] = (),
    large_communities: tuple[str, ...] = (),
    extended_communities: tuple[str, ...] = (),
    paths: tuple[tuple[int, str], ...] = (),
) -> Route:
    # ExaBGP sends a given AS_PATH as it is, without adding its own AS: N extra copies of our
    # AS therefore means N + 1 in all
    as_path = (local_as,) * (as_path_prepend + 1) if local_as and as_path_prepend else ()
    return Route(
        prefix=prefix,
        next_hop=next_hop,
        med=med,
        origin=origin,
        as_path=as_path,
        communities=communities,
        large_communities=large_communities,
        extended_communities=extended_communities,
        paths=paths,
    )


def build_route(
    vip: VipSpec, reason: Reason, weight_level: float = 1.0, fleet: FleetSpec | None = None
) -> Route:
    """The route for an announced VIP: GRACEFUL_SHUTDOWN while draining or de-preferred
    (dampening, hold-down), link bandwidth when weighted (scaled by the capacity level), and
    with a fleet the tag that tells the other hosts who this is and how it serves."""
    route = vip.route
    if fleet is not None:
        route = replace(
            route, large_communities=(*route.large_communities, tag(fleet, mark_of(reason)))
        )
    communities = route.communities
    if reason in DEPREFERRED and GRACEFUL_SHUTDOWN not in communities:
        communities += (GRACEFUL_SHUTDOWN,)
    extended = route.extended_communities
    if vip.weight is not None:
        extended += (bandwidth_community(vip.weight.asn, vip.weight.bandwidth_mbps, weight_level),)
    if communities is route.communities and extended is route.extended_communities:
        return route
    return replace(route, communities=communities, extended_communities=extended)
