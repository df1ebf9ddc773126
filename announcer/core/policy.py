"""Per-VIP decision: do its required checks allow an announcement?"""

from __future__ import annotations

from collections.abc import Iterable

from .hysteresis import Health
from .model import Decision, Reason, Verdict

__all__ = ["decide"]


def decide(required: int, healths: Iterable[Health], drained: bool) -> Decision:
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
