"""The fleet document served at /v1/fleet and printed by `announcer fleet`: per VIP and per
router, the hosts that announce it and how, as the routers report them (read only)."""

from __future__ import annotations

from typing import Any

from ..core import State
from ..core.fleet import carries, count_fleet, family_of, host_name, view_problem

__all__ = ["fleet_document", "fleet_views"]


def fleet_views(state: State) -> dict[str, dict[str, str]]:
    """Per router, per family its session carries: "known", or why the view is not."""
    views = {}
    for peer in state.spec.neighbors:
        view = state.fleet.get(peer)
        views[peer] = {
            family: view_problem(view, family) or "known"
            for family in ("ipv4 unicast", "ipv6 unicast")
            if carries(view, family)
        }
    return views


def fleet_document(state: State, vips: list[str] | None = None) -> dict[str, Any]:
    spec = state.spec
    fleet = spec.fleet
    if fleet is None:
        return {"enabled": False, "why": "no fleet: section in the configuration"}
    routers: dict[str, Any] = {}
    for peer, views in fleet_views(state).items():
        view = state.fleet.get(peer)
        routers[peer] = {
            "view": views,
            "add_path": None if view is None or view.addpath is None else sorted(view.addpath),
        }
    out = []
    wanted = None if vips is None else set(vips)
    for vip in spec.vips:
        if wanted is not None and vip.prefix not in wanted:
            continue
        per_router: dict[str, Any] = {}
        for peer in spec.neighbors:
            view = state.fleet.get(peer)
            if not carries(view, family_of(vip.prefix)):
                continue
            problem = view_problem(view, family_of(vip.prefix))
            paths = view.paths.get(vip.prefix, {}) if view is not None else {}
            per_router[peer] = {
                "view": problem or "known",
                "hosts": [
                    {
                        "host": host_name(seen.host),
                        "mark": seen.mark.value,
                        "path_id": path_id,
                        # with stable next hops, the slot this path goes through
                        "next_hop": seen.next_hop,
                        "self": seen.host == fleet.host_id,
                    }
                    for path_id, seen in sorted(
                        paths.items(), key=lambda item: (item[1].host or 0, item[0])
                    )
                ],
            }
        count = count_fleet(state.fleet, spec.neighbors, vip.prefix, fleet.host_id)
        record = state.vips.get(vip.prefix)
        out.append(
            {
                "prefix": vip.prefix,
                "reason": record.decision.reason.value if record else None,
                "others_serving": None if count is None else count.normal,
                "fewest_on": None if count is None else count.router,
                "min_serving": _text(vip.fleet.min_serving),
                "drain_min_serving": _text(vip.fleet.drain_min_serving),
                "routers": per_router,
            }
        )
    return {
        "enabled": True,
        "host": host_name(fleet.host_id),
        "community": f"{fleet.community_asn}:{fleet.host_id}:MARK",
        "routers": routers,
        "vips": out,
    }


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)
