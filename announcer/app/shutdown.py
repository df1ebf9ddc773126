"""The two ways a run ends with care: drain before stopping (`drain.on_stop`), and the last
resort that withdraws everything this plugin may have announced, whatever ended the run.

Both follow the reducer: the drain ends on its `Drained` effect (the drain's timing rules live
in the core alone), and the last resort applies `Stop` and withdraws what the resulting state
says, plus every configured VIP should the reducer itself fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from ..core import Drain, DrainTiming, Stop
from ..exabgp.pipe import ExabgpSession
from ..exabgp.reconciler import Reconciler
from ..logs import get_logger
from .owner import StateOwner

__all__ = ["drain_before_stop", "withdraw_everything"]

log = get_logger("app")
# the drain's own longest time, plus ticks (0.25 s) and the withdraw's answer
DRAIN_MARGIN_S = 1.0
# ExaBGP sends SIGKILL 2 s after SIGTERM when it stops a helper: finish the withdraw before
SHUTDOWN_WITHDRAW_TIMEOUT_S = 1.5


async def drain_before_stop(
    owner: StateOwner,
    timing: DrainTiming,
    reason: str,
    drained: asyncio.Event,
    cut_short: asyncio.Event,
    closed: asyncio.Event,
) -> None:
    """Drain every VIP and wait for the reducer's `Drained` (which sets `drained`), a second
    stop request (`cut_short`), or ExaBGP leaving (`closed`). The margin over the drain's own
    longest time is only a safety net: the reducer ends every drain by its clock."""
    drained.clear()
    await owner.submit(Drain(None, f"stopping ({reason})", "signal", time.time(), persist=False))
    waits = [asyncio.ensure_future(event.wait()) for event in (drained, cut_short, closed)]
    try:
        await asyncio.wait(
            waits, timeout=timing.longest_s + DRAIN_MARGIN_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for wait in waits:
            wait.cancel()
    log.info("drained before stopping" if drained.is_set() else "drain before stopping cut short")


async def withdraw_everything(
    owner: StateOwner,
    reconciler: Reconciler,
    session: ExabgpSession,
    configured: set[str],
    reason: str,
) -> None:
    """Withdraw everything this plugin may have announced. Never raises."""
    if session.closed.is_set():
        log.info("ExaBGP is gone; its routes went with it", extra={"reason": session.close_reason})
        return
    try:
        prefixes = set(configured)
        try:
            state = owner.apply(Stop(reason), time.monotonic())
            prefixes |= set(state.desired) | state.retired
        except Exception:  # a broken reducer must not stop the withdraw of what we know
            log.critical(
                "the reducer failed at stop; withdrawing the configured VIPs", exc_info=True
            )
        # the task group cancelled the reader: acks need a reader again
        reader = asyncio.get_running_loop().create_task(session.read_forever())
        try:
            unconfirmed = await reconciler.withdraw_all(
                sorted(prefixes), SHUTDOWN_WITHDRAW_TIMEOUT_S
            )
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(reader, return_exceptions=True)
    except Exception:
        log.critical("could not withdraw on shutdown", exc_info=True)
        return
    if unconfirmed:
        log.error("withdraw not confirmed by ExaBGP", extra={"vips": unconfirmed})
    else:
        log.info("withdrew every VIP", extra={"vips": len(prefixes)})
