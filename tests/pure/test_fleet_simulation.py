"""The fleet: three to five hosts' reducers and their routers (tests/fleet_model.py), driven
by random schedules of soft and hard failures, recoveries, drains (several at the same
instant), undrains and router restarts. Invariants:

- while any host could serve (its checks fail softly at worst, it is not drained) and sees a
  router's view of the fleet, every router that is up holds the VIP from someone, but for at
  most the routers' delivery delay;
- drains under a budget never leave fewer hosts than it keeps, even when asked at once (a
  drain granted while the host saw no view is granted as without a fleet, and not counted);
- the fleet settles: once the causes stop, nothing changes any more, and the number of route
  changes is bounded by the number of causes (no oscillation);
- with no router sending ADD-PATH paths, every host decides exactly as without a fleet.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core import Drain, Reason, Threshold, Verdict, VipFleet
from tests.fleet_model import (
    MAX_DELAY_S,
    PANIC_EXIT_S,
    ROUTERS,
    STEP_S,
    VIEW_AFTER_S,
    VIP,
    FleetModel,
)

WARM_UP_S = VIEW_AFTER_S + 1.0  # the checks rise, the views complete
STEPS = {"n": 0}  # steps simulated over the whole run (the issue asks for at least 5,000)

cause = st.one_of(
    st.tuples(st.just("condition"), st.integers(0, 4), st.sampled_from(["ok", "soft", "hard"])),
    st.tuples(st.just("all"), st.sampled_from(["ok", "soft"]), st.just("")),
    st.tuples(st.just("drain"), st.integers(0, 4), st.just("")),
    st.tuples(st.just("drain_together"), st.integers(0, 4), st.integers(0, 4)),
    st.tuples(st.just("drain_together"), st.integers(0, 4), st.integers(0, 4)),
    st.tuples(st.just("undrain"), st.integers(0, 4), st.just("")),
    st.tuples(st.just("router_restart"), st.integers(0, 1), st.just("")),
)
schedule = st.lists(st.tuples(cause, st.floats(0.0, 3.0)), min_size=1, max_size=12)


def _apply(model: FleetModel, what: tuple[str, object, object]) -> None:
    kind, a, b = what
    n = len(model.hosts)
    match kind:
        case "condition":
            model.hosts[int(a) % n].condition = str(b)  # type: ignore[call-overload]
        case "all":
            for host in model.hosts:
                host.condition = str(a)
        case "drain":
            model.drain(int(a) % n)  # type: ignore[call-overload]
        case "drain_together":
            first, second = int(a) % n, int(b) % n  # type: ignore[call-overload]
            model.drain(first)
            if second != first:
                model.drain(second)
        case "undrain":
            model.undrain(int(a) % n)  # type: ignore[call-overload]
        case "router_restart":
            router = ROUTERS[int(a)]  # type: ignore[call-overload]
            model.router_down(router)
            model.pending_up[router] = model.now + 0.5


class Watch:
    """Checks the invariants on every step."""

    def __init__(self, model: FleetModel, budget_keeps: int, check: bool = True) -> None:
        self.model = model
        self.check = check
        self.budget_keeps = budget_keeps
        self.empty_since: dict[str, float | None] = dict.fromkeys(ROUTERS)
        self.longest_gap = 0.0

    def step(self) -> None:
        model = self.model
        for router, at in list(model.pending_up.items()):
            if model.now >= at:
                model.router_up(router)
                del model.pending_up[router]
        model.step()
        STEPS["n"] += 1
        if model.now < WARM_UP_S or not self.check:
            return
        # a host that sees no router's view decides as without a fleet (both routers
        # restarting, or just back): the fleet's guarantees start when one sees again
        could = any(host.could_serve and host.sees_fleet for host in model.hosts)
        for router in ROUTERS:
            if not model.up[router] or not could or model.announcers(router):
                self.empty_since[router] = None
                continue
            since = self.empty_since[router]
            if since is None:
                self.empty_since[router] = since = model.now
            gap = round(model.now - since, 6)  # whole steps: no float residue at the bound
            self.longest_gap = max(self.longest_gap, gap)
            assert gap <= MAX_DELAY_S + 2 * STEP_S, (
                f"{router} has had no announcer for {gap:.2f}s while a host could serve",
                [(h.condition, h.state.vips[VIP].decision) for h in model.hosts],
            )
        n = len(model.hosts)
        # a drain asked while the host's view is unknown (its routers down or just up) is
        # granted as without a fleet (operations.md): the budget holds for the others
        assert model.granted_drains(budgeted=True) <= n - self.budget_keeps, (
            "drains went past the budget",
            [(h.index, h.state.drains.get(VIP)) for h in model.hosts],
        )


@settings(max_examples=100, deadline=None)
@given(
    hosts=st.integers(3, 5),
    seed=st.integers(0, 2**16),
    min_serving=st.integers(1, 2),
    keeps=st.integers(1, 4),
    plan=schedule,
)
def test_the_fleet_keeps_serving_keeps_its_drain_budget_and_settles(
    hosts: int, seed: int, min_serving: int, keeps: int, plan: list[tuple[object, float]]
) -> None:
    keeps = min(keeps, hosts - 1)
    model = FleetModel(hosts, seed, Threshold(count=min_serving), Threshold(count=keeps))
    watch = Watch(model, keeps)
    while model.now < WARM_UP_S:
        watch.step()
    causes = 0
    for what, wait in plan:
        _apply(model, what)  # type: ignore[arg-type]
        causes += 1
        end = model.now + wait
        while model.now < end:
            watch.step()
    # settled: the panic exits, the drains and rises are all over well within this
    end = model.now + PANIC_EXIT_S + 4.0
    while model.now < end:
        watch.step()
    routes = [host.route for host in model.hosts]
    changes = [host.changes for host in model.hosts]
    end = model.now + 6.0
    while model.now < end:
        watch.step()
    assert [host.route for host in model.hosts] == routes, "the fleet kept changing"
    assert [host.changes for host in model.hosts] == changes
    # start-up is two changes at most (announce, a mark); each cause a handful at most
    for host in model.hosts:
        assert host.changes <= 2 + 5 * causes, (host.index, host.changes, causes)


@settings(max_examples=40, deadline=None)
@given(hosts=st.integers(3, 4), seed=st.integers(0, 2**16), plan=schedule)
def test_without_add_path_paths_every_host_decides_as_without_a_fleet(
    hosts: int, seed: int, plan: list[tuple[object, float]]
) -> None:
    with_fleet = FleetModel(hosts, seed, add_path=False)
    without = FleetModel(hosts, seed, fleet=False)
    watches = [Watch(with_fleet, 0, check=False), Watch(without, 0, check=False)]

    def both() -> None:
        for watch in watches:
            watch.step()
        for a, b in zip(with_fleet.hosts, without.hosts, strict=True):
            assert a.state.vips[VIP].decision == b.state.vips[VIP].decision
            assert (a.route is None) == (b.route is None)
            if a.route is not None and b.route is not None:
                untagged = dataclasses.replace(
                    a.route, large_communities=a.route.large_communities[:-1]
                )
                assert untagged == b.route

    while with_fleet.now < WARM_UP_S:
        both()
    for what, wait in plan:
        for model in (with_fleet, without):
            _apply(model, what)  # type: ignore[arg-type]
        end = with_fleet.now + wait
        while with_fleet.now < end:
            both()
    for a, b in zip(with_fleet.hosts, without.hosts, strict=True):
        assert [x.granted for x in a.answers] == [x.granted for x in b.answers]
        assert all(x.granted for x in a.answers)


def test_enough_steps_were_simulated() -> None:
    """Runs after the two above in this file (pytest keeps file order)."""
    if STEPS["n"]:
        assert STEPS["n"] >= 5000, STEPS["n"]


# ------------------------------------------------------------------- scenarios, one by one
def _run(model: FleetModel, seconds: float) -> None:
    end = model.now + seconds
    while model.now < end:
        model.step()


def _reasons(model: FleetModel) -> list[Reason]:
    return [host.state.vips[VIP].decision.reason for host in model.hosts]


def test_every_host_failing_softly_at_once_keeps_the_vip_in_panic_then_the_recovered_one_alone():
    model = FleetModel(3, seed=1)
    _run(model, WARM_UP_S)
    assert _reasons(model) == [Reason.HEALTHY] * 3
    for host in model.hosts:
        host.condition = "soft"
    gap = 0.0
    for _ in range(int(3.0 / STEP_S)):
        model.step()
        if not model.announcers(ROUTERS[0]):
            gap += STEP_S
    assert gap == 0.0
    assert _reasons(model) == [Reason.PANIC] * 3
    assert sorted(model.announcers(ROUTERS[0])) == [0, 1, 2]
    model.hosts[0].condition = "ok"
    _run(model, PANIC_EXIT_S + 1.0)
    assert _reasons(model) == [Reason.HEALTHY, Reason.CHECKS_DOWN, Reason.CHECKS_DOWN]
    assert model.announcers(ROUTERS[0]) == [0]


def _all_in_panic(seed: int) -> FleetModel:
    """Three hosts whose checks all fail softly, two seconds on: every one in panic."""
    model = FleetModel(3, seed)
    _run(model, WARM_UP_S)
    for host in model.hosts:
        host.condition = "soft"
    _run(model, 2.0)
    assert _reasons(model) == [Reason.PANIC] * 3
    return model


def test_a_hard_failure_withdraws_even_when_nobody_else_serves():
    model = _all_in_panic(seed=2)
    model.hosts[1].condition = "hard"
    _run(model, 1.0)
    assert _reasons(model) == [Reason.PANIC, Reason.CHECKS_DOWN, Reason.PANIC]
    assert sorted(model.announcers(ROUTERS[0])) == [0, 2]
    for host in model.hosts:
        host.condition = "hard"
    _run(model, 1.0)
    assert model.announcers(ROUTERS[0]) == []


def test_one_host_failing_softly_while_others_serve_withdraws_after_the_settle():
    model = FleetModel(3, seed=3)
    _run(model, WARM_UP_S)
    model.hosts[2].condition = "soft"
    seen = []
    for _ in range(int(1.0 / STEP_S)):
        model.step()
        seen.append(model.hosts[2].state.vips[VIP].decision.reason)
    assert Reason.SOFT_FAILING in seen
    assert seen[-1] is Reason.CHECKS_DOWN
    assert model.hosts[2].state.vips[VIP].decision.verdict is Verdict.WITHDRAW


def test_two_drains_asked_at_the_same_instant_under_a_budget_of_one_the_lower_id_wins():
    model = FleetModel(3, seed=4, drain_min_serving=Threshold(count=2))
    _run(model, WARM_UP_S)
    first, second = model.drain(1), model.drain(0)
    _run(model, 1.0)
    answers = {a.request: a.granted for host in model.hosts for a in host.answers}
    assert answers == {first: False, second: True}
    assert [host.drained for host in model.hosts] == [True, False, False]
    # a third host asking now is refused at once
    third = model.drain(2)
    assert model.hosts[2].answers[-1].request == third
    assert not model.hosts[2].answers[-1].granted
    # once host 0 is undrained, host 1 gets its turn
    model.undrain(0)
    _run(model, 1.0)
    again = model.drain(1)
    _run(model, 1.0)
    assert model.hosts[1].answers[-1].request == again
    assert model.hosts[1].answers[-1].granted


def test_a_router_restart_does_not_end_a_panic():
    model = _all_in_panic(seed=5)
    model.router_down(ROUTERS[0])
    model.router_down(ROUTERS[1])
    _run(model, 0.5)
    model.router_up(ROUTERS[0])
    model.router_up(ROUTERS[1])
    model.step()
    assert sorted(model.announcers(ROUTERS[0])) == [0, 1, 2]
    _run(model, VIEW_AFTER_S + 1.0)
    assert _reasons(model) == [Reason.PANIC] * 3


def test_a_drain_of_several_vips_is_granted_or_refused_as_a_whole():
    """Host 2 asks to drain the VIP (under a budget) and another VIP without a budget at the
    same instant as host 1 asks for the VIP: host 1 ranks first, so host 2's request is
    refused when the wait is over, and neither of its VIPs drains."""
    model = FleetModel(3, seed=6, drain_min_serving=Threshold(count=2))
    host = model.hosts[2]
    spec = host.state.spec
    free = dataclasses.replace(spec.vips[0], prefix="192.0.2.11/32", fleet=VipFleet())
    host.state = dataclasses.replace(
        host.state, spec=dataclasses.replace(spec, vips=(*spec.vips, free))
    )
    _run(model, WARM_UP_S)
    first = model.drain(1)
    model.apply(host, Drain((VIP, free.prefix), "sim", budget=True, request=99))
    assert host.state.drains[free.prefix].pending_until is not None  # waits with the other
    _run(model, 1.0)
    answer = next(a for a in host.answers if a.request == 99)
    assert not answer.granted and [vip for vip, _ in answer.refused] == [VIP]
    assert host.state.drains == {}
    assert next(a for a in model.hosts[1].answers if a.request == first).granted
