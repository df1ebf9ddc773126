"""The host's addresses over netlink: watched for the address guard, and assigned or removed
(pyroute2) for VIPs with `address: manage`.

The watcher subscribes to the kernel's address events before it dumps the current set, so
nothing between the two is missed, and reports the whole set after every change: an operator
removing a VIP from `lo` reaches the reducer within milliseconds, without polling and without
running `ip`. If the socket overflows (ENOBUFS, a burst of thousands of changes), it dumps again.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.errors import AnnouncerError
from ..logs import get_logger
from .rtnetlink import (
    RECV_BYTES,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    AddressMessage,
    dump_addresses,
    parse,
)

if TYPE_CHECKING:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

# pyroute2 (for assigning addresses) is imported where it is used, in a worker thread: loading
# it takes a tenth of a second of CPU, which start-up spends probing instead

__all__ = ["AddressError", "AddressWatcher", "assign", "unassign"]

log = get_logger("addresses")

# an IPv6 address that is not usable (yet): duplicate address detection running or failed
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40
_UNUSABLE = _IFA_F_DADFAILED | _IFA_F_TENTATIVE
RESYNC_DELAY_S = 0.5


class AddressError(AnnouncerError):
    """An address could not be assigned or removed; the message says what to do."""


def _usable(message: AddressMessage) -> bool:
    return not (message.family == socket.AF_INET6 and message.flags & _UNUSABLE)


class AddressWatcher:
    """Reports every address assigned to a local interface, as one set, after each change."""

    def __init__(self, on_change: Callable[[frozenset[str]], None]) -> None:
        self._on_change = on_change
        self._held: dict[tuple[int, str], None] = {}
        self._reported: frozenset[str] | None = None
        self.ready = asyncio.Event()

    def _report(self) -> None:
        present = frozenset(address for _, address in self._held)
        if present != self._reported:
            self._reported = present
            self._on_change(present)

    def _fold(self, message: AddressMessage) -> None:
        key = (message.index, message.address)
        if message.deleted or not _usable(message):
            self._held.pop(key, None)
        else:
            self._held[key] = None

    async def run(self) -> None:
        while True:
            try:
                await self._watch()
            except Exception as exc:
                # ENOBUFS: the kernel dropped events; anything else: a broken socket. Either
                # way the set we hold may be wrong: start again from a fresh dump
                log.warning(
                    "netlink address watch interrupted; reading the addresses again",
                    extra={"error": str(exc)},
                )
                await asyncio.sleep(RESYNC_DELAY_S)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        # a raw socket read by the loop itself
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        failed: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                messages, _ = parse(sock.recv(RECV_BYTES))
                for message in messages:
                    self._fold(message)
            except Exception as exc:
                if not failed.done():
                    failed.set_exception(exc)
                return
            self._report()

        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BYTES)
            # subscribe first, dump second: a change in between waits in the socket
            sock.bind((0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
            sock.setblocking(False)
            dumped = await asyncio.to_thread(dump_addresses)
            self._held = {}
            for message in dumped:
                self._fold(message)
            self._report()
            self.ready.set()
            loop.add_reader(sock.fileno(), readable)
            await failed
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()


def _prefixlen(address: str) -> int:
    return ipaddress.ip_address(address).max_prefixlen


def _interface_index(ipr: IPRoute, interface: str) -> int:
    found = ipr.link_lookup(ifname=interface)
    if not found:
        raise AddressError(f"no interface named {interface!r} (addresses.interface)")
    return int(found[0])


def _explain(exc: NetlinkError, action: str, address: str, interface: str) -> AddressError:
    if exc.code == errno.EPERM:
        return AddressError(
            f"cannot {action} {address} on {interface}: operation not permitted. "
            "address: manage needs CAP_NET_ADMIN (systemd: AmbientCapabilities=CAP_NET_ADMIN); "
            "or assign the VIPs yourself and use address: require"
        )
    return AddressError(f"cannot {action} {address} on {interface}: {exc}")


def _assign(address: str, interface: str) -> bool:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        index = _interface_index(ipr, interface)
        try:
            ipr.addr(
                "add",
                index=index,
                address=address,
                prefixlen=_prefixlen(address),
                flags=0x02 if ":" in address else 0,  # IFA_F_NODAD: usable at once
            )
        except NetlinkError as exc:
            if exc.code == errno.EEXIST:
                return False
            raise _explain(exc, "assign", address, interface) from None
    return True


def _unassign(address: str, interface: str) -> bool:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        index = _interface_index(ipr, interface)
        try:
            ipr.addr("del", index=index, address=address, prefixlen=_prefixlen(address))
        except NetlinkError as exc:
            if exc.code in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ESRCH):
                return False
            raise _explain(exc, "remove", address, interface) from None
    return True


async def assign(address: str, interface: str) -> bool:
    """Assign the address (as a host address, no DAD) to `interface`; False if it was there
    already. Raises AddressError, with what to do, if the kernel refuses."""
    return await asyncio.to_thread(_assign, address, interface)


async def unassign(address: str, interface: str) -> bool:
    """Remove the address from `interface`; False if it was not there."""
    return await asyncio.to_thread(_unassign, address, interface)
