"""systemd's watchdog: `WATCHDOG=1` datagrams to $NOTIFY_SOCKET while the state task runs.

Under `WatchdogSec=` with `NotifyAccess=all`, a plugin whose state task is wedged stops
notifying, systemd takes the whole ExaBGP service down, and the routers drop the routes instead
of keeping them with nobody watching. The protocol is one datagram on a Unix socket
(sd_notify(3)); the maintained binding (systemd-python) needs libsystemd headers and a
compiler at install time, the pure-Python one (sdnotify) has been unmaintained since 2018, so
these few lines are ours.

The plugin is ExaBGP's child, so systemd's WATCHDOG_PID names ExaBGP, not us: it is not
checked (NotifyAccess=all is what lets a child notify for the service).
"""

from __future__ import annotations

import os
import socket
import time

from ..logs import get_logger

__all__ = ["Watchdog"]

log = get_logger("watchdog")


class Watchdog:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        self.interval_s = int(usec) / 1e6 / 2 if usec.isdigit() and int(usec) > 0 else None
        self._last = 0.0
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self._address is not None and self.interval_s is not None

    def ping(self) -> None:
        """Notify at most every half watchdog interval; never raises."""
        if not self.enabled:
            return
        assert self.interval_s is not None
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        self.notify("WATCHDOG=1")

    def notify(self, message: str) -> bool:
        if self._address is None:
            return False
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), address)
        except OSError as exc:
            log.warning("cannot notify systemd", extra={"error": str(exc)})
            return False
        self.sent += 1
        return True
