"""The fleet as the routers see it: who announces each VIP, and how (pure).

Each router sends every host every path it holds for the VIPs (BGP ADD-PATH). Each host tags
what it announces with a large community `ASN:HOST:MARK`: HOST names the host (its BGP
router id as a 32-bit number) and MARK what the path means (`Mark`). The tag, never the next
hop, attributes a path: a router may rewrite next hops, and the next hop a host sees on its
own paths depends on the router's update groups.

A router's view is *known* only while its session is up, it sends paths with path ids
(ADD-PATH negotiated for the VIP's family), and it has had time to send them all: its
End-of-RIB, or `view_after_s` after the session came up (routers send End-of-RIB only to peers
that advertise graceful restart, which a load balancer must not: a dead host's paths would
stay). An unknown view is never read as "nobody announces": the reducer then decides exactly
as it does without a fleet.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

__all__ = [
    "MARK_CODES",
    "SOFT_REASONS",
    "AddPathNegotiated",
    "FleetCount",
    "FleetSpec",
    "Mark",
    "ReceivedPath",
    "RouterView",
    "RoutesReceived",
    "Seen",
    "Threshold",
    "VipFleet",
    "carries",
    "count_fleet",
    "family_of",
    "host_id",
    "host_name",
    "only_transient",
    "read_tag",
    "slot_backed_elsewhere",
    "tag",
    "updated_view",
    "view_problem",
]


class Mark(StrEnum):
    """What a host's path says about it. Only NORMAL counts as serving normally."""

    NORMAL = "normal"
    FAILING = "failing"  # its checks failed softly: asking the fleet before it withdraws
    PANIC = "panic"  # its checks fail softly, but too few others serve: it keeps serving
    DRAIN_PENDING = "drain_pending"  # asked to drain: waiting to see who else is
    DRAINING = "draining"  # graceful shutdown, the withdraw follows
    DEPREFERRED = "depreferred"  # dampened or held down (graceful shutdown community)


MARK_CODES: Mapping[Mark, int] = {mark: code for code, mark in enumerate(Mark, start=1)}
_MARK_OF_CODE = {code: mark for mark, code in MARK_CODES.items()}

# the load balancer accepts connections and answers, but its health says no: the failures a
# shared dependency (or a bad health-check change) causes on every host at once. Anything else
# (nothing listens, a timeout, a missing address, a stopped host) is a hard failure and always
# withdraws.
SOFT_REASONS = frozenset({"bad_status", "body_mismatch", "below_min_up", "backend_missing"})

GSHUT = (65535, 0)


@dataclass(frozen=True, slots=True)
class Threshold:
    """`N` hosts, or `P%` of the hosts the routers show for the VIP (this one included)."""

    count: int | None = None
    percent: float | None = None

    def need(self, fleet_size: int) -> int:
        if self.percent is not None:
            return math.ceil(self.percent / 100.0 * fleet_size - 1e-9)
        return self.count or 0

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True, slots=True)
class FleetSpec:
    host_id: int  # this host's BGP router id as a number: the HOST of its tags
    community_asn: int = 65534  # the tag's global administrator: one value for the fleet
    settle_s: float = 0.3  # how long a host waits to see others' marks (> the routers' delay)
    panic_exit_s: float = 3.0  # enough others serve this long before a panic ends
    view_after_s: float = 3.0  # a session this old has sent its paths, End-of-RIB or not
    max_paths: int = 64  # per VIP and router: more are dropped (an outsider cannot grow us)


@dataclass(frozen=True, slots=True)
class VipFleet:
    min_serving: Threshold | None = None  # panic below this (None: never panic)
    drain_min_serving: Threshold | None = None  # refuse drains below this (None: no budget)


@dataclass(frozen=True, slots=True)
class Seen:
    host: int | None  # None: a path without our tag (another speaker, an older version)
    mark: Mark
    next_hop: str | None = None  # with stable next hops: the slot the path goes through


@dataclass(frozen=True, slots=True)
class ReceivedPath:
    prefix: str
    path_id: str | None  # None: the router does not send ADD-PATH
    large_communities: tuple[tuple[int, int, int], ...] = ()
    communities: tuple[tuple[int, int], ...] = ()
    next_hop: str | None = None


@dataclass(frozen=True, slots=True)
class RoutesReceived:
    """An UPDATE a router sent (event): paths announced, (prefix, path id)s withdrawn, or its
    End-of-RIB for a family."""

    peer: str
    announced: tuple[ReceivedPath, ...] = ()
    withdrawn: tuple[tuple[str, str | None], ...] = ()
    end_of_rib: str | None = None  # "ipv4 unicast"...


@dataclass(frozen=True, slots=True)
class AddPathNegotiated:
    """The session's capabilities (event): the families whose paths come with path ids, and
    every family the session carries (None: not said)."""

    peer: str
    families: frozenset[str]
    carried: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class RouterView:
    up_at: float | None = None  # the session came up (None: not up)
    addpath: frozenset[str] | None = None  # None: not told yet this session
    carried: frozenset[str] | None = None  # the session's families (None: not told)
    complete: frozenset[str] = frozenset()  # families whose End-of-RIB came (or time passed)
    paths: Mapping[str, Mapping[str, Seen]] = field(default_factory=dict)  # prefix → id → seen


def host_id(router_id: str) -> int:
    return int(ipaddress.IPv4Address(router_id))


def host_name(host: int | None) -> str:
    return "untagged" if host is None else str(ipaddress.IPv4Address(host))


def tag(spec: FleetSpec, mark: Mark) -> str:
    return f"{spec.community_asn}:{spec.host_id}:{MARK_CODES[mark]}"


def read_tag(
    spec: FleetSpec,
    large: Iterable[tuple[int, int, int]],
    communities: Iterable[tuple[int, int]] = (),
) -> Seen:
    """Who a path is from and what it says. An untagged path is another speaker that
    withdraws when it fails (as every announcer does): normal, unless it carries GRACEFUL_
    SHUTDOWN. A tag with an unknown mark is read as not serving normally."""
    for asn, host, code in large:
        if asn == spec.community_asn:
            return Seen(host, _MARK_OF_CODE.get(code, Mark.DEPREFERRED))
    return Seen(None, Mark.DEPREFERRED if GSHUT in communities else Mark.NORMAL)


def family_of(prefix: str) -> str:
    return "ipv6 unicast" if ":" in prefix else "ipv4 unicast"


def carries(view: RouterView | None, family: str) -> bool:
    """Whether this session carries the family at all (a router's IPv6 session does not carry
    the IPv4 VIPs): one that does not is no part of the VIP's view. Unknown: it might."""
    return view is None or view.carried is None or family in view.carried


def view_problem(view: RouterView | None, family: str) -> str | None:
    """Why this router's view of a family is not known (None: it is)."""
    if view is None or view.up_at is None:
        return "no session"
    if view.addpath is None:
        return "capabilities not reported"
    if family not in view.addpath:
        return "the router sends no ADD-PATH paths"
    if family not in view.complete:
        return "waiting for the router's paths"
    return None


# a view that is unknown for a while: the session is down or just came up. A host in panic
# holds it meanwhile (a router that restarts must not see a fleet in panic withdraw); only a
# router that sends no paths at all makes the host decide as without a fleet.
_TRANSIENT = frozenset(
    {"no session", "capabilities not reported", "waiting for the router's paths"}
)


def only_transient(views: Mapping[str, RouterView], routers: Iterable[str], family: str) -> bool:
    """No router's view of the family is known, and each will be (none lacks ADD-PATH)."""
    return all(
        view_problem(views.get(router), family) in _TRANSIENT
        for router in routers
        if carries(views.get(router), family)
    )


@dataclass(frozen=True, slots=True)
class FleetCount:
    """One router's view of one VIP, from this host: the one that leaves it worst off."""

    router: str
    normal: int  # other hosts announcing it normally
    size: int  # hosts announcing it at all, this one included
    leaving: int = 0  # others whose drain is pending and ranks before this host's


def _count(paths: Mapping[str, Seen], me: int, rank: bool) -> tuple[int, int, int]:
    """(normal others, fleet size, pending drains ahead of me) in one router's paths."""
    hosts: dict[object, Mark] = {}
    for path_id, seen in paths.items():
        key: object = seen.host if seen.host is not None else ("untagged", path_id)
        if seen.host == me:
            continue
        # a host with two paths (a router with two sessions to it): its best mark counts
        if key not in hosts or seen.mark is Mark.NORMAL:
            hosts[key] = seen.mark
    normal = leaving = 0
    for key, mark in hosts.items():
        if mark is Mark.NORMAL:
            normal += 1
        elif mark is Mark.DRAIN_PENDING:
            # a pending drain still serves; with `rank`, one that ranks before this host's
            # (a lower host id) is about to leave, one after it will back off
            if rank and isinstance(key, int) and key < me:
                leaving += 1
            else:
                normal += 1
    return normal, len(hosts) + 1, leaving


def slot_backed_elsewhere(
    views: Mapping[str, RouterView], routers: Iterable[str], prefix: str, slot: str, me: int
) -> bool | None:
    """Whether another host announces `prefix` through `slot` normally on every router whose
    view is known (such a host may hold the slot: it would take it over); None: no router's
    view is known."""
    family = family_of(prefix)
    known = False
    for router in routers:
        view = views.get(router)
        if view is None or not carries(view, family) or view_problem(view, family) is not None:
            continue
        known = True
        paths = view.paths.get(prefix, {}).values()
        if not any(
            seen.next_hop == slot and seen.mark is Mark.NORMAL and seen.host not in (me, None)
            for seen in paths
        ):
            return False
    return True if known else None


def count_fleet(
    views: Mapping[str, RouterView],
    routers: Iterable[str],
    prefix: str,
    me: int,
    rank: bool = False,
) -> FleetCount | None:
    """The fewest hosts serving a VIP normally on any router whose view is known (None: no
    router's is). With `rank`, pending drains that rank before this host's count as gone."""
    family = family_of(prefix)
    worst: FleetCount | None = None
    for router in routers:
        view = views.get(router)
        if view is None or not carries(view, family) or view_problem(view, family) is not None:
            continue
        normal, size, leaving = _count(view.paths.get(prefix, {}), me, rank)
        count = FleetCount(router, normal, size, leaving)
        if worst is None or count.normal < worst.normal:
            worst = count
    return worst


def updated_view(
    view: RouterView, event: RoutesReceived, spec: FleetSpec, vips: Mapping[str, object]
) -> tuple[RouterView, frozenset[str]]:
    """The view after one UPDATE, and the VIPs whose paths changed. Only the VIPs' paths are
    kept, at most `max_paths` per VIP: a router's other routes cost nothing to hold."""
    paths = view.paths
    changed: dict[str, dict[str, Seen]] = {}  # the tables this UPDATE rewrote

    def table(prefix: str) -> dict[str, Seen]:
        if prefix not in changed:
            changed[prefix] = dict(paths.get(prefix, {}))
        return changed[prefix]

    for prefix, path_id in event.withdrawn:
        if prefix in vips and path_id is not None and path_id in table(prefix):
            del changed[prefix][path_id]
    for path in event.announced:
        if path.prefix not in vips or path.path_id is None:
            continue
        seen = read_tag(spec, path.large_communities, path.communities)
        if path.next_hop is not None:
            seen = replace(seen, next_hop=path.next_hop)
        current = table(path.prefix)
        if path.path_id in current or len(current) < spec.max_paths:
            current[path.path_id] = seen
    touched = frozenset(p for p, t in changed.items() if t != paths.get(p, {}))
    complete = view.complete
    if event.end_of_rib is not None and event.end_of_rib not in complete:
        complete = complete | {event.end_of_rib}
    if not touched and complete is view.complete:
        return view, frozenset()
    new_paths = dict(paths)
    for prefix in touched:
        if changed[prefix]:
            new_paths[prefix] = changed[prefix]
        else:
            new_paths.pop(prefix, None)
    return RouterView(view.up_at, view.addpath, view.carried, complete, new_paths), touched
