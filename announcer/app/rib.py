"""What ExaBGP holds: asked at start and after every session comes up (`show adj-rib out
json`), so the reducer can withdraw what this configuration does not want (a predecessor's VIP,
one removed while the plugin was down)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..core import Event, RibReported
from ..exabgp.pipe import ExabgpSession
from ..logs import get_logger

__all__ = ["ask_adj_rib_out"]

log = get_logger("app")
# a `show adj-rib out` that went unanswered is asked again, backing off to this
RIB_RETRY_FIRST_S = 0.5
RIB_RETRY_MAX_S = 30.0


async def ask_adj_rib_out(session: ExabgpSession, post: Callable[[Event], None]) -> None:
    """Ask until ExaBGP answers, then post `RibReported`."""
    delay = RIB_RETRY_FIRST_S
    while (held := await session.adj_rib_out()) is None:
        if not session.expect_acks:
            log.warning("without acks ExaBGP's adj-rib-out cannot be read; stale routes stay")
            return
        log.warning("cannot read ExaBGP's adj-rib-out; asking again", extra={"in_s": delay})
        await asyncio.sleep(delay)
        delay = min(delay * 2, RIB_RETRY_MAX_S)
    post(RibReported(held))
