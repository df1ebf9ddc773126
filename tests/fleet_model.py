"""Several hosts' reducers and a model of their routers, for the fleet simulation.

Each router holds, per host whose session to it is up, the route the host desires (ExaBGP is
taken as instant: the reconciler's own path is tested elsewhere) and sends every change back
to every host, itself included, as ADD-PATH paths (path id = the host's number), after a
random delay, in order per session. Time is a number the model moves in fixed steps; each step
every host gets a probe result (its condition: ok, a soft or a hard failure) and a tick.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from announcer.core import (
    AddPathNegotiated,
    CheckSpec,
    DampeningPolicy,
    Drain,
    DrainAnswered,
    DrainTiming,
    Event,
    FleetSpec,
    Neighbor,
    Policy,
    ProbeDone,
    ReceivedPath,
    Route,
    RoutesReceived,
    Spec,
    State,
    Threshold,
    Tick,
    Undrain,
    VipFleet,
    VipSpec,
    base_route,
    initial_state,
    reduce,
)
from announcer.core.drain import DrainPhase
from announcer.core.fleet import count_fleet

VIP = "192.0.2.10/32"
FAMILY = "ipv4 unicast"
ROUTERS = ("198.51.100.1", "198.51.100.2")
REASONS = {"soft": "bad_status", "hard": "connection_refused"}
STEP_S = 0.05
SETTLE_S = 0.3
MAX_DELAY_S = 0.1  # the routers pass an update on within this (settle >= twice it)
PANIC_EXIT_S = 1.5
VIEW_AFTER_S = 1.0
ONE = Threshold(count=1)


def host_spec(
    index: int,
    min_serving: Threshold | None,
    drain_min_serving: Threshold | None,
    fleet: bool = True,
) -> Spec:
    return Spec(
        checks={"web": CheckSpec(rise=2, fall=2, ttl_s=3.4)},
        vips=(
            VipSpec(
                VIP,
                ("web",),
                1,
                base_route(VIP),
                fleet=VipFleet(min_serving, drain_min_serving) if fleet else VipFleet(),
            ),
        ),
        policy=Policy(dampening=DampeningPolicy(), drain=DrainTiming(0.5)),
        neighbors=ROUTERS,
        fleet=FleetSpec(
            host_id=index + 1,
            settle_s=SETTLE_S,
            panic_exit_s=PANIC_EXIT_S,
            view_after_s=VIEW_AFTER_S,
        )
        if fleet
        else None,
    )


def received(route: Route | None, host: int) -> RoutesReceived:
    """What a router sends the hosts when `host`'s path changed (peer filled in later)."""
    path_id = str(host + 1)
    if route is None:
        return RoutesReceived("", withdrawn=((VIP, path_id),))
    large = tuple(
        (int(a), int(b), int(c)) for a, b, c in (x.split(":") for x in route.large_communities)
    )
    communities = tuple((int(a), int(b)) for a, b in (x.split(":") for x in route.communities))
    return RoutesReceived("", announced=(ReceivedPath(VIP, path_id, large, communities),))


@dataclass
class Host:
    index: int
    state: State
    condition: str = "ok"  # ok | soft | hard
    answers: list[DrainAnswered] = field(default_factory=list)
    changes: int = 0  # how often its desired route changed
    budgeted: bool = False  # its drain was granted while its view of the fleet was known

    @property
    def route(self) -> Route | None:
        return self.state.desired.get(VIP)

    @property
    def drained(self) -> bool:
        """A granted drain (pending ones still serve)."""
        entry = self.state.drains.get(VIP)
        return entry is not None and entry.pending_until is None

    @property
    def sees_fleet(self) -> bool:
        """A router's view of the fleet is known to this host (else it decides as without a
        fleet: operations.md, "When the view is unknown")."""
        return count_fleet(self.state.fleet, ROUTERS, VIP, self.index + 1) is not None

    @property
    def could_serve(self) -> bool:
        return self.condition != "hard" and not self.drained


class FleetModel:
    def __init__(
        self,
        hosts: int,
        seed: int,
        min_serving: Threshold | None = ONE,
        drain_min_serving: Threshold | None = ONE,
        add_path: bool = True,
        fleet: bool = True,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.add_path = add_path
        self.hosts = [
            Host(i, initial_state(host_spec(i, min_serving, drain_min_serving, fleet), 0.0))
            for i in range(hosts)
        ]
        self.up = dict.fromkeys(ROUTERS, False)
        # per router: what each host's session carries to it
        self.rib: dict[str, dict[int, Route | None]] = {r: {} for r in ROUTERS}
        self._queue: list[tuple[float, int, int, Event]] = []
        self._order = 0
        self._last: dict[tuple[str, int], float] = {}
        self.requests = 0
        self.pending_up: dict[str, float] = {}  # restarting routers: when each comes back
        for router in ROUTERS:
            self.router_up(router)

    # ------------------------------------------------------------------ delivery
    def _send(self, router: str, host: int, event: Event, delay: float | None = None) -> None:
        at = self.now + (self.rng.uniform(0, MAX_DELAY_S) if delay is None else delay)
        at = max(at, self._last.get((router, host), 0.0))  # one TCP session: in order
        self._last[(router, host)] = at
        self._order += 1
        heapq.heappush(self._queue, (at, self._order, host, event))

    def apply(self, host: Host, event: Event) -> None:
        before, was_drained = host.route, host.drained
        host.state, effects = reduce(host.state, event, self.now)
        if host.drained and not was_drained:
            host.budgeted = host.sees_fleet
        host.answers += [e for e in effects if isinstance(e, DrainAnswered)]
        if host.route != before:
            host.changes += 1

    def _sync(self) -> None:
        """Each router takes each host's desired route and passes changes on."""
        for router in ROUTERS:
            if not self.up[router]:
                continue
            rib = self.rib[router]
            for host in self.hosts:
                route = host.route
                if rib.get(host.index, None) != route:
                    rib[host.index] = route
                    update = received(route, host.index)
                    for other in self.hosts:
                        self._send(router, other.index, _to(update, router))

    # ------------------------------------------------------------------ causes
    def router_down(self, router: str) -> None:
        self.up[router] = False
        self.rib[router] = {}
        for host in self.hosts:
            self._send(router, host.index, Neighbor(router, "down"), 0.0)

    def router_up(self, router: str) -> None:
        self.up[router] = True
        families = frozenset({FAMILY}) if self.add_path else frozenset()
        for host in self.hosts:
            self._send(router, host.index, AddPathNegotiated(router, families), 0.0)
            self._send(router, host.index, Neighbor(router, "up"), 0.0)

    def drain(self, index: int) -> int:
        self.requests += 1
        host = self.hosts[index]
        self.apply(host, Drain((VIP,), "sim", budget=True, request=self.requests))
        return self.requests

    def undrain(self, index: int) -> None:
        self.apply(self.hosts[index], Undrain((VIP,)))

    # ------------------------------------------------------------------ time
    def step(self) -> None:
        self.now = round(self.now + STEP_S, 6)
        queue = self._queue
        while queue and queue[0][0] <= self.now:
            _, _, index, event = heapq.heappop(queue)
            self.apply(self.hosts[index], event)
        for host in self.hosts:
            ok = host.condition == "ok"
            self.apply(host, ProbeDone("web", ok, "ok" if ok else REASONS[host.condition]))
            self.apply(host, Tick())
        self._sync()

    def announcers(self, router: str) -> list[int]:
        return [i for i, route in self.rib[router].items() if route is not None]

    def granted_drains(self, budgeted: bool = False) -> int:
        """Hosts drained; with `budgeted`, only those granted while the host's view of the
        fleet was known (else the budget does not apply: operations.md)."""
        return sum(host.drained and (host.budgeted or not budgeted) for host in self.hosts)

    def phases(self) -> list[DrainPhase]:
        return [host.state.vips[VIP].phase for host in self.hosts]


def _to(update: RoutesReceived, router: str) -> RoutesReceived:
    return RoutesReceived(router, update.announced, update.withdrawn, update.end_of_rib)
