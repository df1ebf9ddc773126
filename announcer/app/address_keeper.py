"""The addresses of `address: manage` VIPs: assigned before the first announce, removed only
once the withdraw is acknowledged and `addresses.linger` has passed.

The order matters (ExaBGP's healthcheck issue #993): an address removed before the routers
have stopped sending turns the packets still on their way into refused connections. So a VIP
removed by a reload keeps its address until ExaBGP has acknowledged the withdraw and the
linger is over; at stop, until the last-resort withdraw is acknowledged (and a short linger
that fits in the 2 s ExaBGP gives a helper between SIGTERM and SIGKILL). An address whose
withdraw was never acknowledged stays: a route that may still be out there keeps its address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..config import Config
from ..core import host_address
from ..core.address_release import OwnedAddress, at_stop, due
from ..exabgp.reconciler import Reconciler
from ..host.addresses import AddressError, assign, unassign
from ..logs import get_logger

__all__ = ["AddressKeeper"]

log = get_logger("addresses")
CHECK_EVERY_S = 0.25
STOP_LINGER_MAX_S = 0.3
_UNKNOWN = object()


def _host_prefix(address: str) -> str:
    return f"{address}/128" if ":" in address else f"{address}/32"


class AddressKeeper:
    """Assigns the managed addresses, and carries out the hand-over rule
    (`core.address_release`) four times a second while it owns any."""

    def __init__(self, config: Callable[[], Config], reconciler: Reconciler) -> None:
        self._config = config
        self._reconciler = reconciler
        self.owned: dict[str, OwnedAddress] = {}  # address -> interface, for every managed VIP

    async def assign_for(self, config: Config) -> None:
        """Assign every managed VIP's address of `config` (again, if someone removed it: a
        reload puts it back). All or nothing: on an error those this call added are removed
        again, and AddressError raised."""
        interface = config.addresses.interface
        todo = [a for vip in config.managed_vips() if (a := host_address(vip.prefix)) is not None]
        added: list[str] = []
        try:
            for address in todo:
                if await assign(address, interface):
                    log.info("address assigned", extra={"address": address, "interface": interface})
                    added.append(address)
        except AddressError:
            # undo only what this call added: an address already there may carry a route
            for address in added:
                if address not in self.owned:
                    await self._remove(address, interface)
            raise
        for address in todo:
            self.owned[address] = OwnedAddress(interface)

    def _withdrawn(self) -> set[str]:
        """The owned addresses whose route's withdraw ExaBGP acknowledged."""
        acked = self._reconciler.acked
        return {a for a in self.owned if acked.get(_host_prefix(a), _UNKNOWN) is None}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            await self.release_due(time.monotonic())

    async def release_due(self, now: float) -> None:
        if not self.owned:
            return  # nothing managed: nothing to look at, four times a second
        config = self._config()
        release = due(
            self.owned,
            {a for v in config.managed_vips() if (a := host_address(v.prefix)) is not None},
            {a for v in config.vips if (a := host_address(v.prefix)) is not None},
            self._withdrawn(),
            now,
            config.addresses.linger,
        )
        self.owned = dict(release.owned)
        for address in release.handed_over:
            log.info("address handed over (no longer managed)", extra={"address": address})
        for address, interface in release.remove:
            await self._remove(address, interface)

    async def release_all(self, session_closed: bool) -> None:
        """At stop, after the last-resort withdraw. Never raises."""
        if not self.owned:
            return
        try:
            await asyncio.sleep(min(self._config().addresses.linger, STOP_LINGER_MAX_S))
            release = at_stop(self.owned, self._withdrawn(), session_closed)
            self.owned = dict(release.owned)
            for address, interface in release.remove:
                await self._remove(address, interface)
            for address in release.owned:
                log.warning(
                    "address kept: its withdraw was not acknowledged", extra={"address": address}
                )
        except Exception:
            log.error("could not remove the managed addresses", exc_info=True)

    async def _remove(self, address: str, interface: str) -> None:
        try:
            if await unassign(address, interface):
                log.info("address removed", extra={"address": address, "interface": interface})
        except AddressError as exc:
            log.error(str(exc))
