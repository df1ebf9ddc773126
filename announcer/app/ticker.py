"""Time for the reducer: a `Tick` four times a second (TTLs, drains, dampening and hold-downs
move on with it), the drain file looked at on each, and the event loop's own lag measured
(a stall of ours shows here first)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from ..config import Config
from ..core import DrainFile, Event, State, Tick

__all__ = ["TICK_S", "tick_forever"]

TICK_S = 0.25


async def tick_forever(
    config: Callable[[], Config],
    state: Callable[[], State],
    post: Callable[[Event], None],
    observe_lag: Callable[[float], None],
) -> None:
    expected = time.monotonic()
    while True:
        now = time.monotonic()
        observe_lag(max(0.0, now - expected))
        drain_file = config().drain.file
        if drain_file is not None:
            present = os.path.exists(drain_file)
            if present != (state().drain_file is not None):
                post(DrainFile(present, f"drain file {drain_file} exists", time.time()))
        post(Tick())
        expected = time.monotonic() + TICK_S
        await asyncio.sleep(TICK_S)
