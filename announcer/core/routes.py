"""The one function that builds the route ExaBGP carries for a VIP in a given state.

The running plugin (through the reducer) and `announcer plan` both call it, so what `plan`
prints is exactly what the plugin sends.
"""

from __future__ import annotations

from dataclasses import replace

from .drain import GRACEFUL_SHUTDOWN
from .model import Reason, Route
from .spec import VipSpec
from .weight import bandwidth_community

__all__ = ["DEPREFERRED", "base_route", "build_route"]

# announced, but as a last-resort path only (RFC 8326: receivers set local-preference 0)
DEPREFERRED = frozenset({Reason.DRAINING, Reason.SUPPRESSED, Reason.HOLD_DOWN})


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
    )


def build_route(vip: VipSpec, reason: Reason, weight_level: float = 1.0) -> Route:
    """The route for an announced VIP: GRACEFUL_SHUTDOWN while draining or de-preferred
    (dampening, hold-down), link bandwidth when weighted (scaled by the capacity level)."""
    route = vip.route
    communities = route.communities
    if reason in DEPREFERRED and GRACEFUL_SHUTDOWN not in communities:
        communities += (GRACEFUL_SHUTDOWN,)
    extended = route.extended_communities
    if vip.weight is not None:
        extended += (bandwidth_community(vip.weight.asn, vip.weight.bandwidth_mbps, weight_level),)
    if communities is route.communities and extended is route.extended_communities:
        return route
    return replace(route, communities=communities, extended_communities=extended)
