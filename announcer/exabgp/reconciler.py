"""Makes ExaBGP hold the desired route set; the only owner of what ExaBGP acknowledged.

Level-triggered, as MetalLB's `session.Set`: the state owner hands over the **full** desired
set after every change (`set`), and the reconciler sends the difference against the pure
`Ledger` in one batch, folds the answers back, and retries what failed with capped backoff.
`restate` (a session came up) forgets the ledger, so everything decided is sent again.

The desired set comes as views, one per target (`route_views`): one for every peer at once
(plain commands), or, where announcements are gated by BFD, one per peer, each with a ledger
of its own and commands that name the peer (`neighbor ADDRESS announce ...`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from ..core import Ledger, Route, answered, batch_commands, combined, restated
from ..core.reconcile import Target, plan_views
from ..logs import get_logger
from .pipe import AckResult, ExabgpSession

__all__ = ["Reconciler"]

log = get_logger("reconciler")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
_ANSWER = {AckResult.DONE: True, AckResult.ERROR: False, AckResult.TIMEOUT: None}


def _kind(line: str) -> str:
    """announce or withdraw, with or without a `neighbor ADDRESS` selector in front."""
    return "announce" if " announce " in f" {line} " else "withdraw"


class Reconciler:
    def __init__(
        self,
        session: ExabgpSession,
        on_commands: Callable[[str, AckResult], None] | None = None,
    ) -> None:
        self._session = session
        self._on_commands = on_commands or (lambda kind, result: None)
        self.views: Mapping[Target, Mapping[str, Route | None]] = {None: {}}
        # per prefix with stable next hops, every path id it has had in this run: a withdraw
        # removes them all (a reload that drops a slot must not leave its path behind)
        self.path_ids: dict[str, tuple[int, ...]] = {}
        self._path_ids_from: Mapping[str, tuple[int, ...]] | None = None
        self.ledgers: dict[Target, Ledger] = {None: Ledger()}
        self._combined: tuple[tuple[Ledger, ...], Mapping[str, Route | None]] = ((), {})
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._retry_s = RETRY_FIRST_S
        self._retry_handle: asyncio.TimerHandle | None = None

    @property
    def acked(self) -> Mapping[str, Route | None]:
        """What ExaBGP holds per prefix, over every peer (see `combined`); worked out once
        per change of the ledgers (status and metrics ask per VIP)."""
        ledgers = tuple(self.ledgers.values())
        if len(ledgers) == 1:
            return ledgers[0].acked
        cached = self._combined[0]
        if len(cached) != len(ledgers) or any(
            a is not b for a, b in zip(cached, ledgers, strict=True)
        ):
            self._combined = (ledgers, combined(self.ledgers))
        return self._combined[1]

    @property
    def errors(self) -> int:
        return sum(ledger.errors for ledger in self.ledgers.values())

    def set(
        self,
        views: Mapping[Target, Mapping[str, Route | None]],
        path_ids: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        """Take the full desired set, per target (immutable: the owner publishes new views
        each change), and the path ids of the prefixes with stable next hops. A target seen
        for the first time starts unknown; one no longer there is forgotten."""
        if path_ids is not None and path_ids is not self._path_ids_from:
            self._path_ids_from = path_ids  # one spec's: merged once, not on every change
            for prefix, ids in path_ids.items():
                known = self.path_ids.get(prefix, ())
                if not set(ids) <= set(known):
                    self.path_ids[prefix] = tuple(sorted({*known, *ids}))
        if views is self.views:
            return
        if views.keys() != self.ledgers.keys():
            self.ledgers = {target: self.ledgers.get(target, Ledger()) for target in views}
        self.views = views
        self._kick()

    def restate(self) -> None:
        self.ledgers = {target: restated(ledger) for target, ledger in self.ledgers.items()}
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
        views, ledgers = self.views, self.ledgers
        commands: list[tuple[str, tuple[str, ...]]] = []
        owners: list[tuple[Target, ...]] = []  # the targets each command answers for
        announced = withdrawn = 0
        for selector, targets, changes in plan_views(views, ledgers):
            batch = batch_commands(
                changes.announce, changes.withdraw, selector, self.path_ids, changes.stale
            )
            commands += batch
            owners += [targets] * len(batch)
            announced += len(changes.announce)
            withdrawn += len(changes.withdraw)
        if not commands:
            self._idle.set()
            return True
        started = time.monotonic()
        epochs = {target: ledger.epoch for target, ledger in ledgers.items()}
        results = await self._session.send([line for line, _ in commands])
        before = self.errors
        for target in views:
            mine = [i for i, owner in enumerate(owners) if target in owner]
            if not mine or target not in self.ledgers:
                continue
            desired = views[target]
            sent = [[(prefix, desired[prefix]) for prefix in commands[i][1]] for i in mine]
            self.ledgers[target] = answered(
                self.ledgers[target], sent, [_ANSWER[results[i]] for i in mine], epochs[target]
            )
        for (line, _), result in zip(commands, results, strict=True):
            self._on_commands(_kind(line), result)
            if result is not AckResult.DONE:
                log.error(
                    "ExaBGP did not accept a command",
                    extra={"result": str(result), "command": line[:300]},
                )
        failed = self.errors - before
        log.info(
            "routes synced",
            extra={
                "event": "routes_synced",
                "announced": announced,
                "withdrawn": withdrawn,
                "commands": len(commands),
                "failed": failed,
                "seconds": round(time.monotonic() - started, 4),
            },
        )
        if failed:
            self._schedule_retry()
            return False
        self._retry_s = RETRY_FIRST_S
        if self.views is not views or any(
            self.ledgers[t].epoch != e for t, e in epochs.items() if t in self.ledgers
        ):
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
        """Withdraw every given prefix from every peer, whatever the ledgers say; return those
        not confirmed."""
        commands = batch_commands((), prefixes, path_ids=self.path_ids)
        results = await self._session.send([line for line, _ in commands], timeout_s=timeout_s)
        # plain withdraws reach every peer: each ledger learns what was acknowledged (the
        # address keeper removes a `manage` address only once its withdraw is)
        sent = [[(prefix, None) for prefix in covered] for _, covered in commands]
        answers = [_ANSWER[result] for result in results]
        self.ledgers = {
            target: answered(ledger, sent, answers, ledger.epoch)
            for target, ledger in self.ledgers.items()
        }
        unconfirmed: list[str] = []
        for (_, covered), result in zip(commands, results, strict=True):
            self._on_commands("withdraw", result)
            if result is not AckResult.DONE:
                unconfirmed.extend(covered)
        return unconfirmed
