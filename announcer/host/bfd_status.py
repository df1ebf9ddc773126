"""BFD session state from FRR's bfdd beside ExaBGP.

bfdd pushes every state change on its control socket (`bfdctl`), and the monitor hands the
set of peers whose BFD session is up to the reducer at once (`on_change`): a peer whose
`bfd:` has the gate on gets this host's routes only while that set holds it. Fail closed:
until bfdd has answered, and whenever it cannot be reached, no peer is up. Where the control
socket cannot be used, the state is read from bfdd's vty socket every `poll_interval` (as
vtysh would: `frr_vty`), and the control socket is tried again each time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping

from ..config import Config
from ..logs import get_logger
from .bfdctl import BfdctlError, BfdNotice, follow, normalise_peer
from .frr_vty import vty_command

__all__ = ["BfdMonitor", "parse_bfd_peers"]

log = get_logger("bfd")
QUERY_TIMEOUT_S = 2.0
# after the control connection ends: try it again this soon (bfdd restarting takes longer)
RECONNECT_S = 0.2


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
    def __init__(
        self, config: Config, on_change: Callable[[frozenset[str]], None] | None = None
    ) -> None:
        self._on_change = on_change or (lambda up: None)
        self._status: dict[str, str] = {}
        self._published: frozenset[str] | None = None
        self.reachable: bool | None = None  # None: not asked yet
        self.via = ""  # control | vty: how the state is read now
        self.configure(config)

    def configure(self, config: Config) -> None:
        """The peers to follow and where bfdd is (at start, and after a reload)."""
        bgp = config.bgp
        self.configured: tuple[str, ...] = tuple(
            n.address for n in (bgp.neighbors if bgp else []) if n.bfd is not None
        )
        self._normalised = {normalise_peer(peer): peer for peer in self.configured}
        self._bfdd = config.bfdd
        self._publish()

    @property
    def peers(self) -> Mapping[str, str]:
        """Every configured BFD peer: up, down, init, adm-down, or unknown (bfdd unreachable
        or not configured for that peer)."""
        return {peer: self._status.get(peer, "unknown") for peer in self.configured}

    def _publish(self) -> None:
        up = frozenset(peer for peer, state in self.peers.items() if state == "up")
        if up != self._published:
            self._published = up
            self._on_change(up)

    def _set(self, peer: str, state: str) -> None:
        configured = self._normalised.get(normalise_peer(peer))
        if configured is None or self._status.get(configured) == state:
            return
        self._status[configured] = state
        log.info("BFD peer %s %s", configured, state, extra={"peer": configured, "state": state})
        self._publish()

    def _lost(self, how: str, error: str) -> None:
        if self.reachable is not False:
            log.error(
                "cannot read BFD state from bfdd; its peers count as down",
                extra={"via": how, "error": error[:200]},
            )
        self.reachable = False
        self._status = {}
        self._publish()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = 0.0
        while True:
            if not self.configured:
                await asyncio.sleep(self._bfdd.poll_interval)
                continue
            path = self._bfdd.control_socket
            if path is not None:
                try:
                    await follow(path, self._on_notice, QUERY_TIMEOUT_S)
                    error = "bfdd closed the control connection"
                except (OSError, BfdctlError, TimeoutError) as exc:
                    error = str(exc) or type(exc).__name__
                if self.via == "control":
                    self._lost("control socket", error)
                    self.via = ""
            # meanwhile the vty, every poll_interval; the control socket is tried far more
            # often, so a restarted bfdd is followed again within a fraction of a second
            if loop.time() >= next_poll:
                await self.poll_once()
                next_poll = loop.time() + self._bfdd.poll_interval
            await asyncio.sleep(RECONNECT_S if path is not None else self._bfdd.poll_interval)

    def _on_notice(self, notice: BfdNotice) -> None:
        if self.via != "control":
            self.via, self.reachable = "control", True
            self._status = {}
            log.info("following BFD state on bfdd's control socket")
        self._set(notice.peer, notice.state)

    async def poll_once(self) -> None:
        try:
            text = await self._query()
            status = parse_bfd_peers(text)
        except (OSError, ValueError, TimeoutError) as exc:
            self._lost("vty socket", str(exc))
            return
        if self.via != "vty":
            log.info(
                "reading BFD state from bfdd's vty socket",
                extra={"every_s": self._bfdd.poll_interval},
            )
        self.via, self.reachable = "vty", True
        for peer in self.configured:
            self._set(peer, status.get(peer, "unknown"))

    async def _query(self) -> str:
        return await vty_command(
            self._bfdd.vty_socket, "bfdd", "show bfd peers json", QUERY_TIMEOUT_S
        )
