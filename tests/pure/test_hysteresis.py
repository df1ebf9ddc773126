from hypothesis import given
from hypothesis import strategies as st

from announcer.core import (
    CheckState,
    Evidence,
    Health,
    effective_health,
    evidence_of,
    is_confirming,
    next_probe_in,
    step,
)


def run(results, rise=3, fall=3):
    state = CheckState()
    for t, ok in enumerate(results):
        state = step(state, ok, rise, fall, float(t))
    return state


def test_starts_unknown_and_needs_exactly_rise_successes():
    assert run([True, True]).health is Health.UNKNOWN
    assert run([True, True, True]).health is Health.UP


def test_needs_exactly_fall_failures_to_go_down():
    up = [True] * 3
    assert run([*up, False, False]).health is Health.UP
    assert run([*up, False, False, False]).health is Health.DOWN


def test_a_success_resets_the_failure_streak():
    assert run([True] * 3 + [False, False, True, False, False]).health is Health.UP


def test_unknown_goes_down_after_fall_failures():
    assert run([False, False, False]).health is Health.DOWN


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 6), st.integers(1, 6))
def test_health_follows_the_latest_complete_streak(results, rise, fall):
    """UP iff the latest `rise` successes in a row end after the latest `fall` failures in a
    row; UNKNOWN if neither ever happened."""
    state = run(results, rise, fall)
    up_ends = [
        i for i in range(len(results)) if i + 1 >= rise and all(results[i + 1 - rise : i + 1])
    ]
    down_ends = [
        i for i in range(len(results)) if i + 1 >= fall and not any(results[i + 1 - fall : i + 1])
    ]
    last_up, last_down = max(up_ends, default=-1), max(down_ends, default=-1)
    if last_up == last_down == -1:
        assert state.health is Health.UNKNOWN
    else:
        assert state.health is (Health.UP if last_up > last_down else Health.DOWN)


@given(st.lists(st.booleans(), max_size=60))
def test_never_up_without_rise_consecutive_successes(results):
    state = CheckState()
    for t, ok in enumerate(results):
        new = step(state, ok, 3, 3, float(t))
        if new.health is Health.UP and state.health is not Health.UP:
            assert results[max(0, t - 2) : t + 1] == [True, True, True]
        state = new


def test_confirming_while_the_latest_results_disagree():
    assert is_confirming(CheckState())
    up = run([True] * 3)
    assert not is_confirming(up)
    assert is_confirming(step(up, False, 3, 3, 10.0))
    down = run([False] * 3)
    assert not is_confirming(down)
    assert is_confirming(step(down, True, 3, 3, 10.0))


def test_a_verdict_past_its_ttl_counts_as_down():
    up = run([True] * 3)  # last result at t=2
    assert effective_health(up, now=4.0, ttl_s=3.0) is Health.UP
    assert effective_health(up, now=5.5, ttl_s=3.0) is Health.DOWN


def test_ttl_does_not_raise_unknown_or_down():
    assert effective_health(CheckState(), 100.0, 1.0) is Health.UNKNOWN
    assert effective_health(run([False] * 3), 100.0, 1.0) is Health.DOWN


def test_the_cadence_follows_the_folded_state():
    """The interval exactly when the result leaves nothing to confirm (the reducer knows the
    folded state: no probe more at the fast interval once a change is settled)."""
    for health in Health:
        for successes, failures in ((0, 0), (1, 0), (2, 0), (0, 1), (0, 2)):
            state = CheckState(health, successes, failures)
            for ok in (True, False):
                folded = step(state, ok, rise=3, fall=3, now=1.0)
                delay = next_probe_in(folded, ok, Evidence.DEFINITE, 1.0, 0.05, 0.02)
                assert (delay == 1.0) is (not is_confirming(folded)), (state, ok, delay)


def test_evidence_weighs_what_the_failure_said():
    assert evidence_of(False, "timeout") is Evidence.WEAK
    assert evidence_of(False, "connection_reset", listener_gone=True) is Evidence.WEAK
    assert evidence_of(False, "bad_status") is Evidence.DEFINITE
    assert evidence_of(False, "connection_refused") is Evidence.DEFINITE
    assert evidence_of(False, "connection_refused", listener_gone=True) is Evidence.CERTAIN
    # a bad status comes from a listener that is there, whatever the watcher thinks
    assert evidence_of(False, "bad_status", listener_gone=True) is Evidence.DEFINITE


def test_only_a_certain_failure_skips_the_count():
    up = run([True] * 3)
    assert step(up, False, 3, 3, 10.0, Evidence.DEFINITE).health is Health.UP
    assert step(up, False, 3, 3, 10.0, Evidence.CERTAIN).health is Health.DOWN
    # a success after it starts the rise count as usual
    down = step(up, False, 3, 3, 10.0, Evidence.CERTAIN)
    assert step(down, True, 3, 3, 11.0).health is Health.DOWN


def test_the_next_probe_comes_sooner_the_stronger_the_evidence():
    up = run([True] * 3)
    down = run([False] * 3)

    def delay(state, ok, evidence):
        return next_probe_in(step(state, ok, 3, 3, 9.0, evidence), ok, evidence, 1.0, 0.05, 0.02)

    assert delay(up, True, Evidence.DEFINITE) == 1.0  # settled
    assert delay(up, False, Evidence.WEAK) == 0.05  # a timeout: give it time
    assert delay(up, False, Evidence.DEFINITE) == 0.02  # a refusal: count quickly
    assert delay(up, False, Evidence.CERTAIN) == 1.0  # down at once: settled
    assert delay(down, False, Evidence.DEFINITE) == 1.0  # settled down
    assert delay(down, True, Evidence.DEFINITE) == 0.05  # rise at the fast interval
    assert delay(CheckState(), True, Evidence.DEFINITE) == 0.05  # start-up rises fast too
    assert delay(run([False, True, True]), True, Evidence.DEFINITE) == 1.0  # the rise is done
