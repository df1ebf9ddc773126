"""Several hosts' reducers with stable next hops, keepalived moving the slots, and a router.

Slot k (k = 1..N) is backed by host k-1 (priority 200) and host k (priority 100, modulo N),
so every host backs two slots and every slot has two backers. Each host announces the VIP
with one path per slot it backs (the reducer's desired route, `Route.paths`). The router's
ECMP set is the slots some host announces a path through; who answers for a slot is
keepalived's business, modelled as VRRP with `nopreempt`: a holder keeps its slot while it may
hold slots (the health file: `may_hold_slots`); a holder that may not hands over at once (FAULT
sends priority 0); a dead holder's slot moves after three advertisements, as does that of a
holder whose keepalived was killed (whose plugin removes the address it left within
REMOVAL_S); a slot nobody holds goes to its highest-priority backer that may hold, after
three advertisements.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from announcer.core import (
    CheckSpec,
    Drain,
    DrainTiming,
    Keepalived,
    Neighbor,
    Policy,
    ProbeDone,
    Spec,
    State,
    Tick,
    Undrain,
    VipSpec,
    base_route,
    initial_state,
    reduce,
)
from announcer.core.slots import may_hold_slots

VIP = "192.0.2.10/32"
ROUTER = "198.51.100.1"
STEP_S = 0.05
ADVERT_S = 0.1
MASTER_DOWN_S = 3 * ADVERT_S
BFD_S = 0.3  # the router drops a dead host's paths this long after it died
# the plugin removes the slot addresses a killed keepalived left behind (it looks this often)
REMOVAL_S = 0.1
PRIMARY, BACKUP = 200, 100


def slot_address(slot: int) -> str:
    return f"198.51.100.{40 + slot}"


def backers(slot: int, hosts: int) -> dict[int, int]:
    """host -> priority, for slot (1..hosts)."""
    return {(slot - 1) % hosts: PRIMARY, slot % hosts: BACKUP}


def host_spec(index: int, hosts: int) -> Spec:
    slots = [s for s in range(1, hosts + 1) if index in backers(s, hosts)]
    paths = tuple((s, slot_address(s)) for s in slots)
    return Spec(
        checks={"web": CheckSpec(rise=2, fall=2, ttl_s=3.4)},
        vips=(VipSpec(VIP, ("web",), 1, base_route(VIP, paths=paths)),),
        policy=Policy(dampening=None, drain=DrainTiming(0.2)),
        neighbors=(ROUTER,),
    )


@dataclass
class Host:
    index: int
    state: State
    condition: str = "ok"  # ok | hard
    alive: bool = True
    died_at: float | None = None
    keepalived: bool = True  # its keepalived runs (killed: the reducer hears it)
    silent_since: float | None = None  # died, or its keepalived was killed
    health: bool = False  # what its plugin last wrote to keepalived's file (may hold slots)
    booted_at: float = 0.0

    @property
    def announced_slots(self) -> set[int]:
        route = self.state.desired.get(VIP)
        return {path_id for path_id, _ in route.paths} if route is not None else set()


@dataclass
class Slot:
    number: int
    holder: int | None = None
    unheld_since: float | None = 0.0  # when it last had no live holder (election timer)
    moves: list[tuple[float, int | None, int | None, str]] = field(default_factory=list)


class SlotsModel:
    def __init__(self, hosts: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.hosts = [Host(i, initial_state(host_spec(i, hosts), 0.0)) for i in range(hosts)]
        self.slots = {s: Slot(s) for s in range(1, hosts + 1)}
        self.last_silenced = float("-inf")  # the latest host death or keepalived killed
        for host in self.hosts:
            self.apply(host, Neighbor(ROUTER, "up"))
            self.apply(host, Keepalived(True))

    def apply(self, host: Host, event: object) -> None:
        host.state, _ = reduce(host.state, event, self.now)  # type: ignore[arg-type]
        written = may_hold_slots(host.state)
        if written is not None:  # undecided: the file stays as it was
            host.health = written

    # ---------------------------------------------------------------- what each side sees
    def may_hold(self, index: int) -> bool:
        """keepalived on this host runs its instances out of FAULT (the health file says 0)."""
        host = self.hosts[index]
        return host.alive and host.keepalived and host.health

    def router_slots(self) -> frozenset[int]:
        """The router's ECMP set: slots with a path from a host whose session is up (a dead
        host's paths stay until BFD says so)."""
        held: set[int] = set()
        for host in self.hosts:
            if host.alive or (host.died_at is not None and self.now - host.died_at < BFD_S):
                held |= host.announced_slots
        return frozenset(held)

    # ---------------------------------------------------------------- causes
    def kill(self, index: int) -> None:
        host = self.hosts[index]
        host.alive, host.died_at = False, self.now
        self.last_silenced = self.now
        host.silent_since = host.silent_since if host.silent_since is not None else self.now

    def revive(self, index: int) -> None:
        """The host boots again: a fresh reducer, keepalived starting in BACKUP."""
        host = self.hosts[index]
        for slot in self.slots.values():
            if slot.holder == index:  # a booted host holds nothing: its backups elect
                self._move(slot, None, "rebooted")
                slot.unheld_since = host.silent_since
        host.alive, host.died_at, host.condition, host.keepalived = True, None, "ok", True
        host.silent_since, host.booted_at = None, self.now
        host.health = False  # keepalived's init_file: nothing until the plugin decides
        host.state = initial_state(host_spec(index, len(self.hosts)), self.now)
        self.apply(host, Neighbor(ROUTER, "up"))
        self.apply(host, Keepalived(True))

    def kill_keepalived(self, index: int, killed: bool) -> None:
        host = self.hosts[index]
        host.keepalived = not killed
        if killed and host.silent_since is None:
            host.silent_since = self.last_silenced = self.now
        if not killed and host.alive:
            host.silent_since = None
        if host.alive:
            self.apply(host, Keepalived(not killed))

    def drain(self, index: int) -> None:
        self.apply(self.hosts[index], Drain((VIP,), "sim"))

    def undrain(self, index: int) -> None:
        self.apply(self.hosts[index], Undrain((VIP,)))

    # ---------------------------------------------------------------- time
    def step(self) -> None:
        self.now = round(self.now + STEP_S, 6)
        for host in self.hosts:
            if not host.alive:
                continue
            ok = host.condition == "ok"
            self.apply(host, ProbeDone("web", ok, "ok" if ok else "connection_refused"))
            self.apply(host, Tick())
        self._vrrp()

    def _vrrp(self) -> None:
        for slot in self.slots.values():
            holder = slot.holder
            if holder is not None:
                host = self.hosts[holder]
                if self.may_hold(holder):
                    continue
                if host.alive and host.keepalived:
                    # FAULT: keepalived sends priority 0 and the backups take over at once
                    self._move(slot, None, "fault")
                    slot.unheld_since = self.now - MASTER_DOWN_S
                elif host.alive and self.now - (host.silent_since or 0.0) >= REMOVAL_S:
                    # keepalived killed: the plugin removes the address it left
                    self._move(slot, None, "removed")
                    slot.unheld_since = host.silent_since
                elif slot.unheld_since is None:
                    # dead, or its keepalived killed: silence, noticed after three adverts
                    slot.unheld_since = host.silent_since
            elif slot.unheld_since is None:
                slot.unheld_since = self.now
            candidates = [
                (priority, index)
                for index, priority in backers(slot.number, len(self.hosts)).items()
                if self.may_hold(index)
            ]
            since = slot.unheld_since if slot.unheld_since is not None else self.now
            if candidates and self.now - since >= MASTER_DOWN_S - 1e-9:
                self._move(slot, max(candidates)[1], "elected")
                slot.unheld_since = None

    def _move(self, slot: Slot, to: int | None, why: str) -> None:
        slot.moves.append((self.now, slot.holder, to, why))
        slot.holder = to

    def holder_serves(self, slot: int) -> bool:
        holder = self.slots[slot].holder
        return holder is not None and self.hosts[holder].alive and self.may_hold(holder)
