"""Makes ExaBGP hold the desired route set; the only owner of what ExaBGP acknowledged.

Level-triggered, as MetalLB's `session.Set`: the state owner hands over the **full** desired
set after every change (`set`), and the reconciler sends the difference against the pure
`Ledger` in one batch, folds the answers back, and retries what failed with capped backoff.
`restate` (a session came up) forgets the ledger, so everything decided is sent again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from ..core import Ledger, Route, answered, batch_commands, plan, restated
from ..logs import get_logger
from .pipe import AckResult, ExabgpSession

__all__ = ["Reconciler"]

log = get_logger("reconciler")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
_ANSWER = {AckResult.DONE: True, AckResult.ERROR: False, AckResult.TIMEOUT: None}


class Reconciler:
    def __init__(
        self,
        session: ExabgpSession,
        on_commands: Callable[[str, AckResult], None] | None = None,
    ) -> None:
        self._session = session
        self._on_commands = on_commands or (lambda kind, result: None)
        self.desired: Mapping[str, Route | None] = {}
        self.ledger = Ledger()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._retry_s = RETRY_FIRST_S
        self._retry_handle: asyncio.TimerHandle | None = None

    @property
    def acked(self) -> Mapping[str, Route | None]:
        return self.ledger.acked

    @property
    def errors(self) -> int:
        return self.ledger.errors

    def set(self, desired: Mapping[str, Route | None]) -> None:
        """Take the full desired set (immutable: the owner publishes a new one each change)."""
        if desired is not self.desired:
            self.desired = desired
            self._kick()

    def restate(self) -> None:
        self.ledger = restated(self.ledger)
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
        desired = self.desired
        changes = plan(desired, self.ledger.acked)
        if not changes:
            self._idle.set()
            return True
        commands = batch_commands(changes.announce, changes.withdraw)
        started, epoch = time.monotonic(), self.ledger.epoch
        results = await self._session.send([line for line, _ in commands])
        sent = [[(prefix, desired[prefix]) for prefix in covered] for _, covered in commands]
        before = self.ledger.errors
        self.ledger = answered(self.ledger, sent, [_ANSWER[r] for r in results], epoch)
        for (line, _), result in zip(commands, results, strict=True):
            self._on_commands("announce" if line.startswith("announce") else "withdraw", result)
            if result is not AckResult.DONE:
                log.error(
                    "ExaBGP did not accept a command",
                    extra={"result": str(result), "command": line[:300]},
                )
        failed = self.ledger.errors - before
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
            self._schedule_retry()
            return False
        self._retry_s = RETRY_FIRST_S
        if self.desired is not desired or epoch != self.ledger.epoch:
            self._kick()  # changed while we were sending
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
        """Withdraw every given prefix, whatever the ledger says; return those not confirmed."""
        self.desired = dict.fromkeys(prefixes)
        commands = batch_commands((), prefixes)
        results = await self._session.send([line for line, _ in commands], timeout_s=timeout_s)
        unconfirmed: list[str] = []
        for (_, covered), result in zip(commands, results, strict=True):
            self._on_commands("withdraw", result)
            if result is not AckResult.DONE:
                unconfirmed.extend(covered)
        return unconfirmed
