"""Drives the pure core as the shell does: reducer -> full desired set -> ledger -> commands.

No asyncio and no clock: time is a number the test moves. The ExaBGP side is a RIB that
answers each command `done`, or `error` when the test says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from announcer.core import (
    AddressGuard,
    CheckSpec,
    DampeningPolicy,
    DrainTiming,
    Event,
    Ledger,
    Policy,
    ProbeDone,
    Restate,
    Spec,
    State,
    VipSpec,
    WeightSpec,
    answered,
    base_route,
    batch_commands,
    initial_state,
    plan,
    plan_views,
    reduce,
    reduce_probes,
    restated,
    route_views,
)

VIP, VIP2 = "192.0.2.10/32", "192.0.2.11/32"


def make_spec(
    vips: dict[str, tuple[str, ...]] | None = None,
    *,
    required: dict[str, int] | None = None,
    rise: int = 2,
    fall: int = 2,
    ttl_s: float = 3.4,
    gshut_s: float = 1.9,
    dampening: bool = True,
    min_announce_interval_s: float = 0.0,
    weighted: dict[str, str] | None = None,
    guards: dict[str, AddressGuard] | None = None,
    neighbors: tuple[str, ...] = (),
    bfd_gated: frozenset[str] = frozenset(),
) -> Spec:
    vips = vips if vips is not None else {VIP: ("web",)}
    checks = sorted({name for names in vips.values() for name in names})
    return Spec(
        checks={name: CheckSpec(rise, fall, ttl_s) for name in checks},
        vips=tuple(
            VipSpec(
                prefix,
                names,
                (required or {}).get(prefix, len(names)),
                base_route(prefix),
                WeightSpec(65001, 8, (weighted or {}).get(prefix), 4)
                if prefix in (weighted or {})
                else None,
                (guards or {}).get(prefix, AddressGuard.IGNORE),
            )
            for prefix, names in vips.items()
        ),
        policy=Policy(
            dampening=DampeningPolicy() if dampening else None,
            min_announce_interval_s=min_announce_interval_s,
            drain=DrainTiming(gshut_s),
        ),
        neighbors=neighbors,
        bfd_gated=bfd_gated,
    )


@dataclass
class Harness:
    spec: Spec
    now: float = 0.0
    state: State = field(init=False)
    ledger: Ledger = field(default_factory=Ledger)
    rib: dict[str, str] = field(default_factory=dict)
    effects: list[object] = field(default_factory=list)
    # with BFD-gated peers: a ledger and an adj-rib-out per peer (commands name their peer)
    peer_ledgers: dict[str, Ledger] = field(default_factory=dict)
    peer_ribs: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = initial_state(self.spec, self.now)

    def step(self, event: Event, dt: float = 0.1) -> None:
        """Only the reducer: nothing is sent."""
        self.now += dt
        self.state, effects = reduce(self.state, event, self.now)
        self.effects.extend(effects)
        if any(isinstance(effect, Restate) for effect in effects):
            self.ledger = restated(self.ledger)
            self.peer_ledgers = {peer: restated(lg) for peer, lg in self.peer_ledgers.items()}

    def step_probes(self, results: list[ProbeDone], dt: float = 0.1) -> None:
        """Results that arrived together, folded in one step as the shell does."""
        self.now += dt
        self.state, effects = reduce_probes(self.state, results, self.now)
        self.effects.extend(effects)

    def sync(self, fail: bool = False) -> list[str]:
        """One reconcile pass; ExaBGP answers every command `done` (or `error`)."""
        if self.spec.bfd_gated:
            return self._sync_per_peer(fail)
        desired = self.state.desired
        changes = plan(desired, self.ledger.acked)
        commands = batch_commands(changes.announce, changes.withdraw)
        if not fail:
            for line, covered in commands:
                for prefix in covered:
                    if line.startswith("announce"):
                        self.rib[prefix] = line
                    else:
                        self.rib.pop(prefix, None)
        sent = [[(prefix, desired[prefix]) for prefix in covered] for _, covered in commands]
        self.ledger = answered(self.ledger, sent, [not fail] * len(commands), self.ledger.epoch)
        return [line for line, _ in commands]

    def _sync_per_peer(self, fail: bool) -> list[str]:
        """As the reconciler does where BFD gates announcements: a view and a ledger per peer;
        one plain batch when every peer needs the same, else commands that name their peer."""
        spec, lines = self.state.spec, []
        views = route_views(self.state.desired, spec.neighbors, spec.bfd_gated, self.state.withheld)
        ledgers = {peer: self.peer_ledgers.get(peer, Ledger()) for peer in views}
        for selector, peers, changes in plan_views(views, ledgers):
            commands = batch_commands(changes.announce, changes.withdraw, selector)
            for peer in peers:
                assert peer is not None
                rib = self.peer_ribs.setdefault(peer, {})
                if not fail:
                    for line, covered in commands:
                        for prefix in covered:
                            if " announce " in f" {line} ":
                                rib[prefix] = line
                            else:
                                rib.pop(prefix, None)
                desired = views[peer]
                sent = [[(p, desired[p]) for p in covered] for _, covered in commands]
                ledgers[peer] = answered(
                    ledgers[peer], sent, [not fail] * len(commands), ledgers[peer].epoch
                )
            lines += [line for line, _ in commands]
        self.peer_ledgers.update({peer: ledger for peer, ledger in ledgers.items() if peer})
        return lines

    def run(self, event: Event, dt: float = 0.1) -> list[str]:
        self.step(event, dt)
        return self.sync()
