"""Owns the difference between the routes we want and what ExaBGP has acknowledged.

Level-triggered: whenever anything changes, the whole desired set is compared with the
acknowledged set and only the difference is sent, in one batch. A command that fails or is
not acknowledged leaves its prefixes unknown, and they are retried with capped backoff.
Everything is re-stated when we start and when a neighbor comes up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping

from .core import Route, batch_commands, plan
from .exabgp_io import AckResult, ExabgpSession
from .logs import get_logger

__all__ = ["Reconciler"]

log = get_logger("reconciler")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0


class Reconciler:
    def __init__(
        self,
        session: ExabgpSession,
        on_commands: Callable[[str, AckResult], None] | None = None,
    ) -> None:
        self._session = session
        self._on_commands = on_commands or (lambda kind, result: None)
        self.desired: dict[str, Route | None] = {}
        self.acked: dict[str, Route | None] = {}
        self.acked_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._retry_s = RETRY_FIRST_S
        self._retry_handle: asyncio.TimerHandle | None = None
        self.errors = 0
        # bumped by restate(): acks for commands sent before it must not count as current
        self._epoch = 0
        # prefixes whose desired route changed (or failed) since they were last sent
        self._dirty: set[str] = set()

    def update(
        self, desired: Mapping[str, Route | None], undecided: Iterable[str] = (), full: bool = False
    ) -> None:
        """Take new desired routes. `full`: `desired` is the whole set (a prefix missing from it
        is undecided); otherwise only these prefixes changed (and `undecided` are left alone)."""
        changed = False
        if full:
            for prefix in set(self.desired) - set(desired):
                del self.desired[prefix]
        for prefix in undecided:
            self.desired.pop(prefix, None)
        for prefix, route in desired.items():
            if prefix not in self.desired or self.desired[prefix] != route:
                self.desired[prefix] = route
                self._dirty.add(prefix)
                changed = True
        if changed:
            self._kick()

    def restate(self) -> None:
        """Forget what we believe ExaBGP has, so everything decided is sent again."""
        self.acked.clear()
        self._dirty.update(self.desired)
        self._epoch += 1
        self._kick()

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self) -> None:
        """Until the acknowledged state matches the desired one (for tests and shutdown)."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.sync_once()

    async def sync_once(self) -> bool:
        """Send the current difference once. True when nothing is left to do."""
        dirty, self._dirty = self._dirty, set()
        desired = {prefix: self.desired[prefix] for prefix in dirty if prefix in self.desired}
        changes = plan(desired, self.acked)
        if not changes:
            self._idle.set()
            return True
        commands = batch_commands(changes.announce, changes.withdraw)
        started, epoch = time.monotonic(), self._epoch
        results = await self._session.send([line for line, _ in commands])
        restated = epoch != self._epoch
        failed = 0
        for (line, prefixes), result in zip(commands, results, strict=True):
            kind = "announce" if line.startswith("announce") else "withdraw"
            self._on_commands(kind, result)
            for prefix in prefixes:
                if restated:
                    continue
                if result is AckResult.DONE:
                    self.acked[prefix] = desired[prefix]
                    self.acked_at[prefix] = time.time()
                else:
                    self.acked.pop(prefix, None)
                    self._dirty.add(prefix)
            if result is not AckResult.DONE:
                failed += 1
                log.error(
                    "ExaBGP did not accept a command",
                    extra={"result": str(result), "command": line[:300]},
                )
        log.info(
            "routes synced",
            extra={
                "announced": len(changes.announce),
                "withdrawn": len(changes.withdraw),
                "commands": len(commands),
                "failed": failed,
                "seconds": round(time.monotonic() - started, 4),
            },
        )
        if failed:
            self.errors += failed
            self._schedule_retry()
            return False
        self._retry_s = RETRY_FIRST_S
        if self._dirty:
            self._kick()
            return False
        self._idle.set()
        return True

    def _schedule_retry(self) -> None:
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        delay, self._retry_s = self._retry_s, min(self._retry_s * 2, RETRY_MAX_S)
        log.warning("retrying failed commands", extra={"in_seconds": delay})
        self._retry_handle = asyncio.get_running_loop().call_later(delay, self._kick)

    async def withdraw_all(self, prefixes: list[str], timeout_s: float) -> list[str]:
        """Withdraw every given prefix, whatever we believe; return those not confirmed."""
        self.desired = dict.fromkeys(prefixes)
        commands = batch_commands((), prefixes)
        results = await self._session.send([line for line, _ in commands], timeout_s=timeout_s)
        unconfirmed: list[str] = []
        for (_, covered), result in zip(commands, results, strict=True):
            self._on_commands("withdraw", result)
            if result is not AckResult.DONE:
                unconfirmed.extend(covered)
        return unconfirmed
