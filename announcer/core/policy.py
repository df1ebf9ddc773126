"""Per-VIP decision: what the checks allow, then drain, dampening and hold-down on top."""

from __future__ import annotations

from collections.abc import Iterable

from .drain import DrainPhase
from .hysteresis import Health
from .model import Decision, Reason, Verdict

__all__ = ["decide", "finalize"]


def decide(required: int, healths: Iterable[Health], drained: bool = False) -> Decision:
    """Three-valued `at least `required` of the checks are UP`.

    ANNOUNCE when enough checks are UP; WITHDRAW when even every UNKNOWN check turning UP could
    not make enough; otherwise UNDECIDED. A drained VIP is withdrawn whatever its checks say.
    """
    if drained:
        return Decision(Verdict.WITHDRAW, Reason.DRAINED)
    up = unknown = 0
    for health in healths:
        if health is Health.UP:
            up += 1
        elif health is Health.UNKNOWN:
            unknown += 1
    if up >= required:
        return Decision(Verdict.ANNOUNCE, Reason.HEALTHY)
    if up + unknown < required:
        return Decision(Verdict.WITHDRAW, Reason.CHECKS_DOWN)
    return Decision(Verdict.UNDECIDED, Reason.WAITING_FOR_CHECKS)


def finalize(
    health: Decision,
    drain: DrainPhase = DrainPhase.NONE,
    suppressed: bool = False,
    held_down: bool = False,
    stopping: bool = False,
    address_missing: bool = False,
    keepalived_down: bool = False,
) -> Decision:
    """The decision to act on. Anything that says withdraw wins over anything that says
    announce; an operator's drain and a missing address win even over checks that cannot
    decide yet. Dampening and the hold-down never withdraw: they de-prefer (see `Reason`)."""
    if stopping:
        return Decision(Verdict.WITHDRAW, Reason.SHUTDOWN)
    if address_missing:
        return Decision(Verdict.WITHDRAW, Reason.ADDRESS_MISSING)
    if keepalived_down:
        # the checks' own withdraw says more; undecided checks must not hold a route up
        down = Decision(Verdict.WITHDRAW, Reason.KEEPALIVED_DOWN)
        return health if health.verdict is Verdict.WITHDRAW else down
    if drain is DrainPhase.WITHDRAWN:
        return Decision(Verdict.WITHDRAW, Reason.DRAINED)
    if health.verdict is not Verdict.ANNOUNCE:
        return health
    if drain is DrainPhase.GRACEFUL_SHUTDOWN:
        return Decision(Verdict.ANNOUNCE, Reason.DRAINING)
    if suppressed:
        return Decision(Verdict.ANNOUNCE, Reason.SUPPRESSED)
    if held_down:
        return Decision(Verdict.ANNOUNCE, Reason.HOLD_DOWN)
    return health
