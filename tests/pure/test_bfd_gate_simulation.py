"""Random schedules of BFD changes, health changes, failed commands, sessions coming up and a
stop, against the reducer and the per-peer ledgers: a router whose BFD session is not up is
never sent a route, and once a pass goes through, every router holds exactly what it may."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from announcer.core import BfdPeers, Neighbor, ProbeDone, Stop, Tick
from tests.machine_harness import VIP, VIP2, Harness, make_spec

R1, R2, R3 = "198.51.100.1", "198.51.100.2", "2001:db8::1"
GATED = frozenset({R1, R3})
SPEC = make_spec({VIP: ("a",), VIP2: ("b",)}, neighbors=(R1, R2, R3), bfd_gated=GATED)


class GateSimulation(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.h = Harness(SPEC)
        self.stopped = False
        self.bfd_up: frozenset[str] = frozenset()  # the model: what bfdd said last
        self.sent: list[tuple[frozenset[str], str]] = []  # (peers withheld then, command)

    @property
    def withheld(self) -> frozenset[str]:
        """Worked out here from the events, not read from the reducer."""
        return GATED - self.bfd_up

    def _sync(self, fail: bool) -> None:
        withheld = self.withheld
        self.sent += [(withheld, line) for line in self.h.sync(fail=fail)]

    @rule(check=st.sampled_from(["a", "b"]), ok=st.booleans())
    def probe(self, check: str, ok: bool) -> None:
        self.h.step(ProbeDone(check, ok), 0.1)

    @rule(up=st.sets(st.sampled_from([R1, R2, R3])))
    def bfd(self, up: set[str]) -> None:
        self.h.step(BfdPeers(frozenset(up)), 0.05)
        self.bfd_up = frozenset(up)

    @rule(peer=st.sampled_from([R1, R2, R3]))
    def session_up(self, peer: str) -> None:
        self.h.step(Neighbor(peer, "up"), 0.05)

    @rule()
    def tick(self) -> None:
        self.h.step(Tick(), 0.25)

    @rule(fail=st.booleans())
    def sync(self, fail: bool) -> None:
        self._sync(fail)

    @rule()
    def stop(self) -> None:
        self.h.step(Stop("sim"), 0.05)
        self.stopped = True

    @invariant()
    def no_route_is_ever_sent_to_a_withheld_router(self) -> None:
        for withheld, line in self.sent:
            for peer in withheld:
                assert not line.startswith(f"neighbor {peer} announce"), (withheld, line)

    @invariant()
    def after_a_pass_every_router_holds_exactly_what_it_may(self) -> None:
        self._sync(fail=False)
        state = self.h.state
        for peer in SPEC.neighbors:
            held = set(self.h.peer_ribs.get(peer, {}))
            may = (
                set()
                if peer in self.withheld or self.stopped
                else {prefix for prefix, route in state.desired.items() if route is not None}
            )
            assert held == may, (peer, held, may, self.withheld)


GateSimulation.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_gate_simulation = GateSimulation.TestCase
