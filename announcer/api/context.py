"""What the API's handlers work with: the state owner and the rest of the running plugin.

Apart from the web server itself (api/server.py), so that the plugin can build it before it
loads the web server, which it does only once the checks run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

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
