"""What the API's handlers work with: the state owner and the rest of the running plugin.

Apart from the web server itself (api/server.py), so that the plugin can build it before it
loads the web server, which it does only once the checks run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..core import DrainAnswered
from .listener import ConnectionGuard
from .metrics import Metrics
from .sources import AckSource, BfdSource, StateSource

__all__ = ["ApiState"]


class ApiState:
    def __init__(
        self,
        owner: StateSource,
        reconciler: AckSource,
        metrics: Metrics,
        pending: Callable[[], int],
        token: str | None,
        bfd: BfdSource | None = None,
    ) -> None:
        self.owner = owner
        self.bfd = bfd
        self.reconciler = reconciler
        self.metrics = metrics
        self.pending = pending
        self.token = token
        self.posts_allowed = True
        self.reload: Callable[[], Awaitable[list[str]]] | None = None
        # drain.state_file: where, whether the drains in force are written there, and why not
        self.drain_state: Callable[[], dict[str, Any] | None] = lambda: None
        self.guard: ConnectionGuard | None = None
        # stable next hops: the slots this host backs, and handing some over (SlotKeeper)
        self.slots: Callable[[], dict[str, Any]] = lambda: {"enabled": False}
        self.hand_over: Callable[[list[str], bool], Awaitable[list[str]]] | None = None
        # drain requests waiting for the reducer's answer (`DrainAnswered`), by request number
        self.drain_answers: dict[int, asyncio.Future[DrainAnswered]] = {}
        self._requests = 0

    def drain_request(self) -> tuple[int, asyncio.Future[DrainAnswered]]:
        self._requests += 1
        future: asyncio.Future[DrainAnswered] = asyncio.get_running_loop().create_future()
        self.drain_answers[self._requests] = future
        return self._requests, future

    def answer_drain(self, effect: DrainAnswered) -> None:
        future = self.drain_answers.pop(effect.request, None)
        if future is not None and not future.done():
            future.set_result(effect)
