"""Stable next hops on this host: tell keepalived whether this host may hold slots, and watch
keepalived itself.

The health file is keepalived's `track_file` (`announcer keepalived-config`): 0 while the
reducer's state says this host may hold slots (`core.slots.may_hold_slots`), 1 otherwise, so a
host that stops serving hands its slots to their next backer at once (keepalived's FAULT state
sends a priority-0 advertisement). Written on every change, atomically (a rename: keepalived
watches the file with inotify and must never read half a value).

keepalived itself is watched through its pid file: while it is not running, the reducer hears
`Keepalived(False)` (the VIPs announced through the slots are withdrawn: no slot can move here)
and the slots' addresses are removed from the interface, since a killed keepalived leaves them
behind and two hosts would then answer for one slot.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from ..config import Config, StableNextHopsConfig
from ..core import Event, Keepalived, State
from ..core.fleet import slot_backed_elsewhere
from ..core.slots import SlotRefused, may_hold_slots, release_file
from ..host.addresses import AddressError, unassign
from ..logs import get_logger

__all__ = ["SlotKeeper", "keepalived_running", "write_health"]

log = get_logger("slots")
WATCH_INTERVAL_S = 0.1  # a read and a kill(0): about 30 microseconds
REMOVAL_RETRY_S = 5.0  # a removal the kernel refused (no CAP_NET_ADMIN) is tried this often
RELEASE_TIMEOUT_S = 2.0  # keepalived drops a released slot's address in milliseconds
# after the address went, before the release file is cleared: the other backer becomes master
# within its skew time of the priority-0 advertisement (a few advertisement intervals at most)
RELEASE_HOLD_S = 0.5


def write_health(path: str, may_hold: bool) -> None:
    """0 or 1 into the health file, replaced in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.tmp")
    scratch.write_text("0\n" if may_hold else "1\n")
    os.replace(scratch, target)


def keepalived_running(pid_file: str) -> bool:
    """The pid file names a live process (a missing, empty or stale file: not running)."""
    try:
        pid = int(Path(pid_file).read_text().strip() or "0")
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class SlotKeeper:
    def __init__(self, config: Callable[[], Config], post: Callable[[Event], None]) -> None:
        self._config = config
        self._post = post
        self._written: tuple[str, bool] | None = None  # (file, value) last written
        self._seen: tuple[object, ...] = ()
        self._running: bool | None = None
        self._write_failed = False
        self._addresses: frozenset[str] = frozenset()  # the host's, as the state last had them
        self._removal_failed = False
        self._next_removal = 0.0  # after a failed removal, the next try waits a while

    @property
    def stable(self) -> StableNextHopsConfig | None:
        return self._config().stable_next_hops

    def publish(self, state: State) -> None:
        """After every step of the reducer: write the health file if its answer changed."""
        stable = self.stable
        if stable is None:
            return
        self._addresses = state.addresses or frozenset()
        # only what `may_hold_slots` reads; the tables are new objects only when they changed
        seen = (state.vips, state.neighbors, state.bfd_up, state.stopping, state.spec)
        if len(seen) == len(self._seen) and all(
            a is b for a, b in zip(seen, self._seen, strict=True)
        ):
            return
        self._seen = seen
        may_hold = may_hold_slots(state)
        if may_hold is not None:  # undecided: as the predecessor left it
            self._write(stable.health_file, may_hold)

    def let_go(self) -> None:
        """The plugin is ending: this host holds no slot from now on."""
        stable = self.stable
        if stable is not None:
            self._write(stable.health_file, False)

    def _write(self, path: str, may_hold: bool) -> None:
        if self._written == (path, may_hold):
            return
        try:
            write_health(path, may_hold)
        except OSError as exc:
            if not self._write_failed:
                log.error(
                    "cannot write the slots' health file: keepalived keeps its last value",
                    extra={"file": path, "error": str(exc)},
                )
            self._write_failed = True
            self._written = None
            return
        self._write_failed = False
        self._written = (path, may_hold)
        log.info(
            "this host may hold slots" if may_hold else "this host holds no slot",
            extra={"event": "slots_changed", "may_hold": may_hold},
        )

    async def run(self) -> None:
        """Watch keepalived while `keepalived_pid_file` is set."""
        while True:
            stable = self.stable
            pid_file = stable.keepalived_pid_file if stable is not None else None
            if stable is not None and pid_file is not None:
                running = keepalived_running(pid_file)
                if running != self._running:
                    self._running = running
                    self._post(Keepalived(running))
                if not running:
                    await self._remove_addresses(stable)
            elif self._running is not None:
                self._running = None
                self._post(Keepalived(True))  # no longer watched: no longer a reason
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def _remove_addresses(self, stable: StableNextHopsConfig) -> None:
        """The slots' addresses still on this host (the address watcher's view), removed."""
        now = asyncio.get_running_loop().time()
        if now < self._next_removal:
            return
        for slot in stable.slots:
            if slot.address not in self._addresses:
                continue
            try:
                removed = await unassign(slot.address, stable.interface)
            except AddressError as exc:
                if not self._removal_failed:
                    log.error(
                        "keepalived is not running and its slot address cannot be removed: "
                        "two hosts may answer for the slot",
                        extra={"address": slot.address, "error": str(exc)},
                    )
                self._removal_failed = True
                self._next_removal = now + REMOVAL_RETRY_S
                continue
            self._removal_failed = False
            if removed:
                log.warning(
                    "keepalived is not running: removed a slot's address it left behind",
                    extra={"address": slot.address, "interface": stable.interface},
                )

    # ---------------------------------------------------------------- slots, by hand
    def document(self, state: State) -> dict[str, object]:
        """Every slot this host backs: its priority here, whether this host holds it, and
        whether another host announces every slotted VIP through it normally (the routers'
        view, with `fleet:`)."""
        stable = self.stable
        if stable is None:
            return {"enabled": False}
        held = state.addresses or frozenset()
        slots = []
        for slot in stable.slots:
            slots.append(
                {
                    "address": slot.address,
                    "vrid": slot.vrid,
                    "priority": slot.priority,
                    "held": slot.address in held,
                    "backed_elsewhere": self._backed_elsewhere(state, slot.address),
                }
            )
        return {
            "enabled": True,
            "interface": stable.interface,
            "may_hold": may_hold_slots(state),
            "keepalived_running": self._running,
            "preempt": stable.preempt,
            "slots": slots,
        }

    def _backed_elsewhere(self, state: State, address: str) -> bool | None:
        """Whether another host would take the slot: it announces every slotted VIP through
        it normally on every router whose view is known (None: no view known)."""
        spec = state.spec
        if spec.fleet is None:
            return None
        answers = [
            slot_backed_elsewhere(
                state.fleet, spec.neighbors, vip.prefix, address, spec.fleet.host_id
            )
            for vip in spec.vips
            if vip.route.paths
        ]
        if not answers or any(answer is False for answer in answers):
            return False if answers else None
        return None if any(answer is None for answer in answers) else True

    async def hand_over(self, state: State, addresses: list[str], force: bool) -> list[str]:
        """Hand these slots (held here) to their other backers: each slot's instance alone
        goes to FAULT until its address has left this host, and back to BACKUP, where
        (nopreempt) it stays. Refused unless another host is seen to back every one of them,
        or `force`. Returns the slots handed over."""
        stable = self.stable
        if stable is None:
            raise SlotRefused("stable_next_hops is not configured")
        by_address = {slot.address: slot for slot in stable.slots}
        unknown = [a for a in addresses if a not in by_address]
        if unknown:
            raise SlotRefused(f"not a slot of this host: {', '.join(unknown)}")
        held = state.addresses or frozenset()
        not_held = [a for a in addresses if a not in held]
        if not_held:
            raise SlotRefused(f"not held by this host: {', '.join(not_held)}")
        if not force:
            unbacked = [a for a in addresses if self._backed_elsewhere(state, a) is not True]
            if unbacked:
                raise SlotRefused(
                    "no other host is seen to back "
                    + ", ".join(unbacked)
                    + " (it needs fleet: and another host announcing through it normally; "
                    "force to hand it over anyway: if no one takes it, its share of the "
                    "traffic is lost until this host takes it back, about a second)"
                )
        for address in addresses:
            slot = by_address[address]
            path = release_file(stable.health_file, slot.vrid)
            write_health(path, False)
            try:
                await self._gone(address, stable.interface)
                await asyncio.sleep(RELEASE_HOLD_S)
            finally:
                write_health(path, True)
            log.info(
                "slot handed over",
                extra={"event": "slot_released", "slot": address, "vrid": slot.vrid},
            )
        return addresses

    async def _gone(self, address: str, interface: str) -> None:
        """Until the address has left this host, as the address watcher reports it (its
        netlink events reach the state, and `publish` keeps the keeper's copy)."""
        deadline = asyncio.get_running_loop().time() + RELEASE_TIMEOUT_S
        while asyncio.get_running_loop().time() < deadline:
            if address not in self._addresses:
                return
            await asyncio.sleep(0.02)
        raise SlotRefused(f"keepalived did not drop {address} from {interface}")
