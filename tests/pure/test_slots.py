"""`may_hold_slots`: when keepalived may give this host slots, and when the plugin must leave
keepalived's file alone (a restarted plugin that has not decided yet)."""

from __future__ import annotations

from announcer.core import Keepalived, Neighbor, ProbeDone, Stop, initial_state, reduce
from announcer.core.slots import may_hold_slots
from tests.slots_model import ROUTER, host_spec


def _healthy_host():
    state = initial_state(host_spec(0, 3), 0.0)
    for now in (0.1, 0.2, 0.3):
        state, _ = reduce(state, ProbeDone("web", True, "ok"), now)
    return state


def test_undecided_or_without_any_session_state_it_leaves_the_file_alone():
    fresh = initial_state(host_spec(0, 3), 0.0)
    assert may_hold_slots(fresh) is None  # a restarted plugin moves no slot before deciding
    decided = _healthy_host()
    assert may_hold_slots(decided) is None  # no session reported yet
    up, _ = reduce(decided, Neighbor(ROUTER, "up"), 0.4)
    assert may_hold_slots(up) is True


def test_a_withdrawn_vip_a_down_session_keepalived_gone_or_a_stop_let_the_slots_go():
    state, _ = reduce(_healthy_host(), Neighbor(ROUTER, "up"), 0.4)
    down, _ = reduce(state, Neighbor(ROUTER, "down"), 0.5)
    assert may_hold_slots(down) is False
    failing = state
    for now in (0.5, 0.6, 0.7):
        failing, _ = reduce(failing, ProbeDone("web", False, "connection_refused"), now)
    assert may_hold_slots(failing) is False
    gone, _ = reduce(state, Keepalived(False), 0.5)
    assert may_hold_slots(gone) is False
    stopped, _ = reduce(state, Stop("test"), 0.5)
    assert may_hold_slots(stopped) is False
