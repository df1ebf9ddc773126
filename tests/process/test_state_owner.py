"""The state task: probe results that queue up while it is busy are all folded in, in order."""

from __future__ import annotations

import asyncio
import time

from announcer.app.owner import EffectHandlers, StateOwner
from announcer.core import Drain, Health, Neighbor, ProbeDone, initial_state
from tests.machine_harness import VIP, VIP2, make_spec


class _Reconciler:
    """Records each desired set the owner hands over (no BFD gate: one view, every peer)."""

    def __init__(self) -> None:
        self.sets: list[dict[str, object]] = []

    def set(self, views: dict[str | None, dict[str, object]], path_ids: object = None) -> None:
        assert list(views) == [None]
        self.sets.append(dict(views[None]))


async def test_results_queued_together_all_count_and_a_submitted_event_keeps_its_place():
    spec = make_spec({VIP: ("a",), VIP2: ("b",)}, rise=2, fall=2)
    reconciler = _Reconciler()
    owner = StateOwner(initial_state(spec, time.monotonic()), reconciler, EffectHandlers())  # type: ignore[arg-type]
    task = asyncio.create_task(owner.run())
    try:
        await asyncio.sleep(0)
        owner.post(Neighbor("198.51.100.1", "up"))
        # posted before the state task runs again: one wake sees them all
        for check in ("a", "b", "a", "b"):
            owner.post(ProbeDone(check, True, "ok"))
        drained = owner.submit(Drain((VIP2,)))
        owner.post(ProbeDone("b", False, "connection_refused"))
        state_at_drain = await asyncio.wait_for(drained, 2)
        await asyncio.sleep(0.01)
    finally:
        task.cancel()
    # rise 2: each check needed both of its results
    assert state_at_drain.checks["a"].state.health is Health.UP
    assert state_at_drain.checks["b"].state.health is Health.UP
    assert state_at_drain.desired[VIP] is not None
    # the drain was folded before the failure that came after it, and the failure counted
    assert VIP2 in state_at_drain.drains
    assert state_at_drain.checks["b"].state.failures == 0
    assert owner.state.checks["b"].state.failures == 1
    assert reconciler.sets and reconciler.sets[-1][VIP] is not None
