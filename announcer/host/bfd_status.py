"""BFD session state, read from FRR's bfdd beside ExaBGP (`show bfd peers json` over its vty
socket, as vtysh would: `frr_vty`), for metrics and status only: it never decides anything,
and bfdd missing or unreachable is a metric and a log line, never a crash or a withdraw.

The routers act on BFD themselves (a session whose BFD goes down is torn down at once); this
lets the operator see it from the host.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from ..config import Config
from ..logs import get_logger
from .frr_vty import vty_command

__all__ = ["BfdMonitor", "parse_bfd_peers"]

log = get_logger("bfd")
QUERY_TIMEOUT_S = 2.0


def parse_bfd_peers(text: str) -> dict[str, str]:
    """`show bfd peers json` -> peer address -> status (up, down, init, adm-down)."""
    data = json.loads(text or "[]")
    if not isinstance(data, list):
        raise ValueError("show bfd peers json: not a list")
    peers: dict[str, str] = {}
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("peer"), str):
            peers[entry["peer"]] = str(entry.get("status", "unknown"))
    return peers


class BfdMonitor:
    def __init__(self, config: Config) -> None:
        bgp = config.bgp
        self.configured: tuple[str, ...] = tuple(
            n.address for n in (bgp.neighbors if bgp else []) if n.bfd is not None
        )
        self._bfdd = config.bfdd
        self.reachable: bool | None = None  # None: not asked yet
        self._status: dict[str, str] = {}

    @property
    def peers(self) -> Mapping[str, str]:
        """Every configured BFD peer: up, down, init, adm-down, or unknown (bfdd unreachable
        or not configured for that peer)."""
        return {peer: self._status.get(peer, "unknown") for peer in self.configured}

    async def run(self) -> None:
        if not self.configured:
            return
        while True:
            await self.poll_once()
            await asyncio.sleep(self._bfdd.poll_interval)

    async def poll_once(self) -> None:
        try:
            text = await self._query()
            status = parse_bfd_peers(text)
        except (OSError, ValueError, TimeoutError) as exc:
            if self.reachable is not False:
                log.error(
                    "cannot read BFD state from bfdd; the routers still act on BFD",
                    extra={"vty_socket": self._bfdd.vty_socket, "error": str(exc)[:200]},
                )
            self.reachable = False
            self._status = {}
            return
        if self.reachable is not True:
            log.info("reading BFD state from bfdd", extra={"vty_socket": self._bfdd.vty_socket})
        before = self.peers
        self.reachable = True
        self._status = status
        for peer, state in self.peers.items():
            if before.get(peer) != state:
                log.info("BFD peer %s %s", peer, state, extra={"peer": peer, "state": state})

    async def _query(self) -> str:
        return await vty_command(
            self._bfdd.vty_socket, "bfdd", "show bfd peers json", QUERY_TIMEOUT_S
        )
