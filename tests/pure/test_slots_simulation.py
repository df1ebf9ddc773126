"""Stable next hops: three or four hosts' reducers, keepalived moving the slots, one router
(tests/slots_model.py), driven by random schedules of failures, recoveries, drains, host
deaths and keepalived being killed. Invariants:

- the router's ECMP set (the slots some host announces a path through) is all the slots for
  as long as every slot has a backer that could serve: no host's failure, drain, death or
  return changes it, so no survivor's flow is rehashed;
- a slot moves away from its holder only when the holder itself stopped serving (failed, was
  drained, died, lost keepalived): a host that returns takes nothing from a serving holder;
- every slot in the router's set is held by a host that serves, but for at most a dead or
  silent holder's takeover (three advertisements) and a step after the last host went silent;
- a host whose load balancer fails holds no slot longer than its checks take to fall;
- once the causes stop and every host serves, every slot is held and in the router's set.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core import Reason
from tests.slots_model import MASTER_DOWN_S, REMOVAL_S, STEP_S, VIP, SlotsModel, backers

WARM_UP_S = 1.0
FALL_S = 0.3  # fall 2 at a probe per step, and the step that writes the health file
RISE_S = 0.3  # likewise, rise 2

cause = st.one_of(
    st.tuples(st.just("condition"), st.integers(0, 3), st.sampled_from(["ok", "hard"])),
    st.tuples(st.just("kill"), st.integers(0, 3), st.just("")),
    st.tuples(st.just("revive"), st.integers(0, 3), st.just("")),
    st.tuples(st.just("keepalived"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("drain"), st.integers(0, 3), st.just("")),
    st.tuples(st.just("undrain"), st.integers(0, 3), st.just("")),
)
schedule = st.lists(st.tuples(cause, st.floats(0.0, 2.0)), min_size=1, max_size=10)


def _apply(model: SlotsModel, what: tuple[str, int, object]) -> None:
    kind, index, arg = what
    index %= len(model.hosts)
    match kind:
        case "condition":
            model.hosts[index].condition = str(arg)
        case "kill":
            model.kill(index)
        case "revive":
            if not model.hosts[index].alive:
                model.revive(index)
        case "keepalived":
            model.kill_keepalived(index, bool(arg))
        case "drain":
            model.drain(index)
        case "undrain":
            model.undrain(index)


def _serves_now(model: SlotsModel, index: int) -> bool:
    host = model.hosts[index]
    entry = host.state.drains.get(VIP)
    return host.alive and host.keepalived and host.condition == "ok" and entry is None


class Watch:
    def __init__(self, model: SlotsModel) -> None:
        self.model = model
        self.unserved_since: dict[int, float | None] = dict.fromkeys(model.slots)
        self.failing_holder_since: dict[int, float | None] = dict.fromkeys(model.slots)
        self.longest_unserved = 0.0
        self.could_since: dict[int, float | None] = dict.fromkeys(range(len(model.hosts)))

    def _could_serve(self, index: int) -> bool:
        """Alive, its keepalived running, its load balancer up, not drained, for long enough
        that its checks have risen (a host that just booted announces after its rise)."""
        since, now = self.could_since[index], self.model.now
        booted = self.model.hosts[index].booted_at
        return since is not None and now - max(since, booted) >= RISE_S

    def step(self) -> None:
        model = self.model
        now = model.now
        router = model.router_slots()
        for index in self.could_since:
            if not _serves_now(model, index):
                self.could_since[index] = None
            elif self.could_since[index] is None:
                self.could_since[index] = now
        # the set holds every slot while each slot has a backer that could serve
        count = len(model.hosts)
        if all(any(self._could_serve(h) for h in backers(s, count)) for s in model.slots):
            assert router == frozenset(model.slots), (now, router)
        for number, slot in model.slots.items():
            # a slot in the router's set is served by its holder, but for a takeover
            if number in router and not model.holder_serves(number):
                since = self.unserved_since[number]
                if since is None:
                    self.unserved_since[number] = since = now
                # from the slot's last holder or backer going silent: a second death during
                # a takeover starts it again
                since = max(since, model.last_silenced)
                self.longest_unserved = max(self.longest_unserved, now - since)
                assert now - since <= MASTER_DOWN_S + 2 * STEP_S + 1e-9, (number, slot.moves)
            else:
                self.unserved_since[number] = None
            # a failing host lets go of its slots once its checks have fallen
            holder = slot.holder
            failing = holder is not None and model.hosts[holder].condition != "ok"
            failing = failing and model.hosts[holder].alive  # type: ignore[index]
            if failing:
                since = self.failing_holder_since[number]
                if since is None:
                    self.failing_holder_since[number] = since = now
                assert now - since <= max(FALL_S, REMOVAL_S + STEP_S) + 1e-9, (number, slot.moves)
            else:
                self.failing_holder_since[number] = None
        # a slot moves away from a holder only when the holder's own state changed: a serving
        # host keeps its slots (its connections, and no one else's, are the ones that move)
        for slot in model.slots.values():
            for at, source, _, _ in slot.moves:
                if at == now and source is not None:
                    assert not _serves_now(model, source), (now, slot.moves)


def _run(model: SlotsModel, seconds: float, watch: Watch | None) -> None:
    for _ in range(round(seconds / STEP_S)):
        model.step()
        if watch is not None:
            watch.step()


@settings(max_examples=150, deadline=None)
@given(hosts=st.integers(3, 4), seed=st.integers(0, 2**16), causes=schedule)
def test_the_routers_set_of_next_hops_stays_while_hosts_fail_drain_die_and_return(
    hosts: int, seed: int, causes: list[tuple[tuple[str, int, object], float]]
) -> None:
    model = SlotsModel(hosts, seed)
    _run(model, WARM_UP_S, None)
    assert model.router_slots() == frozenset(model.slots)
    assert all(model.holder_serves(s) for s in model.slots)
    watch = Watch(model)
    for what, wait_s in causes:
        _apply(model, what)
        _run(model, wait_s, watch)
    # the causes stop: every host serves again
    for index, host in enumerate(model.hosts):
        if not host.alive:
            model.revive(index)
        host.condition = "ok"
        if not host.keepalived:
            model.kill_keepalived(index, False)
        if host.state.drains:
            model.undrain(index)
    _run(model, 3.0, watch)
    assert model.router_slots() == frozenset(model.slots)
    assert all(model.holder_serves(s) for s in model.slots)


def test_a_failed_host_hands_its_slot_to_the_backup_and_takes_nothing_back_on_return() -> None:
    model = SlotsModel(3, 0)
    _run(model, WARM_UP_S, None)
    assert {s: model.slots[s].holder for s in model.slots} == {1: 0, 2: 1, 3: 2}
    model.hosts[0].condition = "hard"
    _run(model, 0.5, None)
    assert model.slots[1].holder == 1  # its backup
    assert model.router_slots() == frozenset({1, 2, 3})
    assert model.hosts[0].announced_slots == set()
    assert model.hosts[0].state.vips[VIP].decision.reason is Reason.CHECKS_DOWN
    model.hosts[0].condition = "ok"
    _run(model, 1.0, None)
    assert model.slots[1].holder == 1  # nopreempt: nothing moves back
    assert model.hosts[0].announced_slots == {1, 3}


def test_a_killed_keepalived_withdraws_the_hosts_paths() -> None:
    model = SlotsModel(3, 0)
    _run(model, WARM_UP_S, None)
    model.kill_keepalived(2, True)
    assert model.hosts[2].state.vips[VIP].decision.reason is Reason.KEEPALIVED_DOWN
    assert model.hosts[2].announced_slots == set()
    _run(model, MASTER_DOWN_S + STEP_S, None)
    assert model.slots[3].holder == 0  # slot 3's backup
    model.kill_keepalived(2, False)
    _run(model, 0.5, None)
    assert model.hosts[2].announced_slots == {2, 3}
