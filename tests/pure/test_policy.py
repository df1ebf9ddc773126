from hypothesis import given
from hypothesis import strategies as st

from announcer.core import Health, Reason, Verdict, decide

healths = st.lists(st.sampled_from(list(Health)), min_size=1, max_size=8)


@given(healths, st.integers(1, 8), st.booleans())
def test_never_announces_unless_enough_checks_are_up(checks, required, drained):
    decision = decide(required, checks, drained)
    if decision.verdict is Verdict.ANNOUNCE:
        assert not drained
        assert sum(h is Health.UP for h in checks) >= required


@given(healths, st.integers(1, 8))
def test_withdraws_when_no_outcome_of_the_unknowns_could_be_enough(checks, required):
    up = sum(h is Health.UP for h in checks)
    unknown = sum(h is Health.UNKNOWN for h in checks)
    verdict = decide(required, checks, drained=False).verdict
    if up >= required:
        assert verdict is Verdict.ANNOUNCE
    elif up + unknown < required:
        assert verdict is Verdict.WITHDRAW
    else:
        assert verdict is Verdict.UNDECIDED


@given(healths, st.integers(1, 8))
def test_drained_is_always_withdrawn(checks, required):
    assert decide(required, checks, drained=True).reason is Reason.DRAINED


def test_all_any_and_n():
    up, down, unknown = Health.UP, Health.DOWN, Health.UNKNOWN
    assert decide(2, [up, up], False).verdict is Verdict.ANNOUNCE  # all
    assert decide(2, [up, down], False).verdict is Verdict.WITHDRAW
    assert decide(1, [down, up], False).verdict is Verdict.ANNOUNCE  # any
    assert decide(2, [up, unknown, down], False).verdict is Verdict.UNDECIDED
    assert decide(2, [down, unknown, down], False).reason is Reason.CHECKS_DOWN
