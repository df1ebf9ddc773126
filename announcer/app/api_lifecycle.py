"""The API's life: its socket bound first thing (`503 starting` answered on it), the API proper
once every VIP is decided, and closed at the end.

The web server is the slowest thing to load (a tenth of a second of CPU with the event loop
blocked): a cold start's announcements do not wait for it, and no caller is refused meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..api.context import ApiState
from ..api.listener import ConnectionGuard, bind_api_socket, connection_limit, starting_protocol
from ..config import ApiConfig
from ..core import Health, State
from ..logs import get_logger

__all__ = ["ApiLifecycle", "decided", "start_progress"]

log = get_logger("app")
# an API connection quiet this long is closed (Prometheus reconnects for its next scrape)
API_IDLE_S = 10.0
# the API starts once every VIP is decided, or after this long
API_AFTER_S = 2.0


class ApiLifecycle:
    def __init__(
        self,
        config: ApiConfig,
        state: ApiState,
        snapshot: Callable[[], State],
    ) -> None:
        self._config = config
        self._state = state
        self._snapshot = snapshot
        self._socket: socket.socket | None = None
        self._early: asyncio.Server | None = None
        self._cleanup: Callable[[], Awaitable[None]] | None = None

    async def open(self) -> None:
        """Bind the API's socket now, and answer `503 starting` on it until the API proper
        takes over: from the first moment no caller is refused."""
        api = self._config
        if not api.listen:
            return
        try:
            self._socket = bind_api_socket(api.host, api.port)
        except OSError as exc:
            log.error(
                "cannot listen for the API; running without it",
                extra={"listen": api.listen, "error": exc.strerror},
            )
            return
        self._early = await asyncio.get_running_loop().create_server(
            starting_protocol(lambda: start_progress(self._snapshot())), sock=self._socket
        )

    async def serve_once_settled(self, reserved: int) -> None:
        """The API proper, once every VIP is decided (or after API_AFTER_S). `reserved`:
        descriptors the connection limit leaves to the probes, watchers and pipes."""
        deadline = time.monotonic() + API_AFTER_S
        while time.monotonic() < deadline and not decided(self._snapshot()):
            await asyncio.sleep(0.05)
        await self._serve(reserved)

    async def _serve(self, reserved: int) -> None:
        if self._socket is None or self._early is None:
            return
        from aiohttp import web  # here: loading it is a tenth of a second of start-up

        from ..api.server import build_app

        runner = web.AppRunner(
            build_app(self._state),
            handle_signals=False,
            access_log=None,
            keepalive_timeout=API_IDLE_S,
        )
        await runner.setup()
        assert runner.server is not None
        guard = ConnectionGuard(runner.server, connection_limit(reserved))
        self._state.guard = guard
        # the listening socket passes over without a moment closed: a duplicate keeps it open
        # while the early responder lets go of it (connections wait in its backlog meanwhile)
        handed_over = self._socket.dup()
        self._early.close()
        server = await asyncio.get_running_loop().create_server(guard, sock=handed_over)

        async def cleanup() -> None:
            server.close()
            guard.close()
            await runner.cleanup()

        self._cleanup = cleanup
        log.info("API listening", extra={"listen": self._config.listen, "connections": guard.limit})

    async def close(self) -> None:
        """Never raises."""
        if self._cleanup is not None:
            with contextlib.suppress(Exception):
                await self._cleanup()
        if self._early is not None:
            self._early.close()
        if self._socket is not None:
            self._socket.close()


def decided(state: State) -> bool:
    """Every check has a verdict and every VIP a decision (a guarded VIP waits for the
    host's addresses)."""
    return all(
        record.state.health is not Health.UNKNOWN for record in state.checks.values()
    ) and all(vip.prefix in state.desired for vip in state.spec.vips)


def start_progress(state: State) -> dict[str, Any]:
    """What `503 starting` tells a caller: how far start-up is."""
    checks = [n for n, r in state.checks.items() if r.state.health is Health.UNKNOWN]
    vips = [vip.prefix for vip in state.spec.vips if vip.prefix not in state.desired]
    return {
        "pending": {
            "checks_without_verdict": len(checks),
            "vips_undecided": len(vips),
            "first": (checks + vips)[:10],
        }
    }
