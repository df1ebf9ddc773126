import pytest
from hypothesis import given
from hypothesis import strategies as st

from announcer.core import (
    Dampening,
    DampeningPolicy,
    Decision,
    DrainPhase,
    DrainTiming,
    Reason,
    Verdict,
    bandwidth_community,
    current,
    drain_phase,
    finalize,
    quantise,
    record_flap,
)
from announcer.core.routes import DEPREFERRED

HEALTHY = Decision(Verdict.ANNOUNCE, Reason.HEALTHY)
DOWN = Decision(Verdict.WITHDRAW, Reason.CHECKS_DOWN)
WAITING = Decision(Verdict.UNDECIDED, Reason.WAITING_FOR_CHECKS)


def test_drain_phases_follow_the_clock():
    timing = DrainTiming(gshut_period_s=10)
    assert drain_phase(None, 5.0, timing) is DrainPhase.NONE
    assert drain_phase(100.0, 105.0, timing) is DrainPhase.GRACEFUL_SHUTDOWN
    assert drain_phase(100.0, 110.0, timing) is DrainPhase.WITHDRAWN
    assert drain_phase(100.0, 100.0, DrainTiming(0)) is DrainPhase.WITHDRAWN


def test_drain_waits_for_connections_but_not_forever():
    timing = DrainTiming(gshut_period_s=10, connections_below=5, max_wait_s=60)
    assert drain_phase(0.0, 20.0, timing, active_connections=12) is DrainPhase.GRACEFUL_SHUTDOWN
    assert drain_phase(0.0, 20.0, timing, active_connections=None) is DrainPhase.GRACEFUL_SHUTDOWN
    assert drain_phase(0.0, 20.0, timing, active_connections=4) is DrainPhase.WITHDRAWN
    assert drain_phase(0.0, 5.0, timing, active_connections=0) is DrainPhase.GRACEFUL_SHUTDOWN
    assert drain_phase(0.0, 61.0, timing, active_connections=500) is DrainPhase.WITHDRAWN


@pytest.mark.parametrize(
    ("health", "kwargs", "expected"),
    [
        (HEALTHY, {}, (Verdict.ANNOUNCE, Reason.HEALTHY)),
        (HEALTHY, {"drain": DrainPhase.GRACEFUL_SHUTDOWN}, (Verdict.ANNOUNCE, Reason.DRAINING)),
        (HEALTHY, {"drain": DrainPhase.WITHDRAWN}, (Verdict.WITHDRAW, Reason.DRAINED)),
        (WAITING, {"drain": DrainPhase.WITHDRAWN}, (Verdict.WITHDRAW, Reason.DRAINED)),
        (
            WAITING,
            {"drain": DrainPhase.GRACEFUL_SHUTDOWN},
            (Verdict.UNDECIDED, Reason.WAITING_FOR_CHECKS),
        ),
        (DOWN, {"drain": DrainPhase.GRACEFUL_SHUTDOWN}, (Verdict.WITHDRAW, Reason.CHECKS_DOWN)),
        # a per-host penalty de-prefers, it never withdraws (the fleet may all be held)
        (HEALTHY, {"suppressed": True}, (Verdict.ANNOUNCE, Reason.SUPPRESSED)),
        (HEALTHY, {"held_down": True}, (Verdict.ANNOUNCE, Reason.HOLD_DOWN)),
        (DOWN, {"suppressed": True}, (Verdict.WITHDRAW, Reason.CHECKS_DOWN)),
        (HEALTHY, {"address_missing": True}, (Verdict.WITHDRAW, Reason.ADDRESS_MISSING)),
        (WAITING, {"address_missing": True}, (Verdict.WITHDRAW, Reason.ADDRESS_MISSING)),
        (
            HEALTHY,
            {"drain": DrainPhase.GRACEFUL_SHUTDOWN, "address_missing": True},
            (Verdict.WITHDRAW, Reason.ADDRESS_MISSING),
        ),
        (WAITING, {"stopping": True}, (Verdict.WITHDRAW, Reason.SHUTDOWN)),
    ],
)
def test_finalize(health, kwargs, expected):
    decision = finalize(health, **kwargs)
    assert (decision.verdict, decision.reason) == expected


@given(
    st.sampled_from([HEALTHY, DOWN, WAITING]),
    st.sampled_from(list(DrainPhase)),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_finalize_never_announces_what_health_does_not(
    health, drain, suppressed, held, stopping, address_missing
):
    decision = finalize(health, drain, suppressed, held, stopping, address_missing)
    if decision.verdict is Verdict.ANNOUNCE:
        assert health.verdict is Verdict.ANNOUNCE
        assert drain is not DrainPhase.WITHDRAWN and not (stopping or address_missing)
        # whatever holds a healthy VIP back only de-prefers it
        if drain is DrainPhase.GRACEFUL_SHUTDOWN or suppressed or held:
            assert decision.reason in DEPREFERRED
    elif health.verdict is Verdict.ANNOUNCE:
        assert drain is DrainPhase.WITHDRAWN or stopping or address_missing


POLICY = DampeningPolicy(penalty=1000, half_life_s=10, suppress=2500, reuse=750, max_suppress_s=60)


def test_three_quick_flaps_suppress_and_the_penalty_decays():
    state = Dampening()
    for t in (0.0, 0.2, 0.4):
        state = record_flap(state, t, POLICY)
    assert state.suppressed
    assert current(state, 10.0, POLICY).suppressed  # ~1500 after one half-life
    released = current(state, 25.0, POLICY)  # ~530 after 2.1 half-lives
    assert not released.suppressed


def test_two_flaps_do_not_suppress():
    state = record_flap(record_flap(Dampening(), 0.0, POLICY), 1.0, POLICY)
    assert not state.suppressed


@given(st.lists(st.floats(0, 0.5), min_size=1, max_size=300))
def test_suppression_never_outlasts_max_suppress(gaps):
    state, now = Dampening(), 0.0
    for gap in gaps:
        now += gap
        state = record_flap(state, now, POLICY)
    assert not current(state, now + POLICY.max_suppress_s + 0.01, POLICY).suppressed


def test_quantise_moves_in_steps_with_hysteresis():
    assert quantise(None, 0.5, 10) == pytest.approx(0.5)
    assert quantise(0.5, 0.53, 10) == pytest.approx(0.5)  # inside half a step + hysteresis
    assert quantise(0.5, 0.58, 10) == pytest.approx(0.6)
    assert quantise(None, 0.0, 10) == pytest.approx(0.1)  # never advertise zero
    assert quantise(None, 1.7, 4) == pytest.approx(1.0)


@given(st.floats(0, 1), st.floats(0, 1), st.integers(1, 20))
def test_quantise_is_a_level_near_the_capacity(previous, capacity, steps):
    level = quantise(quantise(None, previous, steps), capacity, steps)
    assert 0 < level <= 1
    assert round(level * steps, 6) == round(round(level * steps))
    assert abs(level - max(capacity, 1 / steps)) <= 1 / steps * 0.75 + 1e-9 + (
        1 / steps if capacity < 1 / steps else 0
    )


def test_bandwidth_community():
    assert bandwidth_community(65001, 1000) == "bandwidth:65001:125000000"
    assert bandwidth_community(65001, 1000, 0.5) == "bandwidth:65001:62500000"
    with pytest.raises(ValueError):
        bandwidth_community(4200000000, 1000)
