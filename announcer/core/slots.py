"""Stable next hops: whether this host may hold slots now.

The routers' ECMP set is the slots (next-hop addresses on their segment); keepalived moves each
slot to its highest-priority backer that may hold it. A host may hold slots only while it
serves every VIP announced through them normally and a router can reach it: while it does not,
a slot it held would draw that VIP's traffic to a host that cannot serve it. Pure, so the
shell's writer of keepalived's track file and the tests ask the same question.
"""

from __future__ import annotations

from .errors import AnnouncerError
from .machine import State
from .model import Reason, Verdict

__all__ = ["SERVING_REASONS", "SlotRefused", "may_hold_slots", "release_file"]

# announced and taking traffic; de-preferred (dampening, hold-down) and draining are not: the
# slot should be where the routers send the traffic, on a host that takes it
SERVING_REASONS = frozenset(
    {Reason.HEALTHY, Reason.SOFT_FAILING, Reason.PANIC, Reason.DRAIN_PENDING}
)


def may_hold_slots(state: State) -> bool | None:
    """Every VIP announced through the slots is announced and serving, and some BGP session
    that is not withheld (BFD) is up. False without stable next hops and while stopping.

    None (leave keepalived's file as it is) while it cannot be known yet: a VIP undecided, or
    no session's state reported, as right after a restart of the plugin. A restarted plugin
    must not move this host's slots (and break their connections) before it has decided,
    as it leaves the routes of its predecessor alone until then."""
    stable = [vip.prefix for vip in state.spec.vips if vip.route.paths]
    if not stable or state.stopping:
        return False
    undecided = False
    for prefix in stable:
        decision = state.vips[prefix].decision
        if decision.verdict is Verdict.UNDECIDED:
            undecided = True
        elif decision.verdict is not Verdict.ANNOUNCE or decision.reason not in SERVING_REASONS:
            return False
    if undecided or not state.neighbors:
        return None
    withheld = state.withheld
    return any(status == "up" and peer not in withheld for peer, status in state.neighbors.items())


def release_file(health_file: str, vrid: int) -> str:
    """The file that hands one slot over (`announcer release-slot`): 1 puts that slot's
    keepalived instance alone into FAULT."""
    return f"{health_file}.{vrid}"


class SlotRefused(AnnouncerError):
    """A slot that cannot be handed over; the message says why."""
