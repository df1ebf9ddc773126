"""Notice a dead load balancer at once: hold an idle connection to it and report when it closes.

A probe finds a stopped nginx only at its next run, up to a whole interval later. A stopped
or killed server closes its connections, and the kernel does so for a killed one, so an idle
connection held open to the same port ends the moment the service does. The watcher then asks
for a probe right away; the probe (connection refused) and the hysteresis decide as usual, so
a watcher can only make detection faster, never cause a withdrawal by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from yarl import URL

from .exec_probe import ExecProbeConfig
from .haproxy_probe import HaproxyProbeConfig
from .http_probe import HttpProbeConfig
from .nginx_probe import NginxProbeConfig
from .tcp_probe import TcpProbeConfig

__all__ = ["Endpoint", "endpoint_of", "watch"]

# a connection the server closes sooner than this was not a real idle connection (a server
# that closes idle sockets at once): back off instead of asking for probes in a loop
MIN_LIFETIME_S = 1.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str = ""
    port: int = 0
    path: str = ""  # a UNIX socket

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"


def endpoint_of(
    config: HttpProbeConfig
    | TcpProbeConfig
    | ExecProbeConfig
    | HaproxyProbeConfig
    | NginxProbeConfig,
) -> Endpoint | None:
    match config:
        case HttpProbeConfig() | NginxProbeConfig():
            url = URL(config.url)
            return Endpoint(url.host or "", url.port or (443 if url.scheme == "https" else 80))
        case TcpProbeConfig():
            return Endpoint(config.host, config.port)
        case HaproxyProbeConfig():
            if config.socket.startswith("/"):
                return Endpoint(path=config.socket)
            host, _, port = config.socket.rpartition(":")
            return Endpoint(host.strip("[]"), int(port))
    return None


async def _connect(endpoint: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if endpoint.path:
        return await asyncio.open_unix_connection(endpoint.path)
    return await asyncio.open_connection(endpoint.host, endpoint.port)


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Wait until the other side closes or resets the connection."""
    try:
        while await reader.read(4096):
            pass
    except OSError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def watch(endpoint: Endpoint, on_change: Callable[[], None], retry_s: float) -> None:
    """Run forever: hold a connection to `endpoint`; call `on_change` when it ends, and when
    a connection succeeds again after failing (the service is probably back)."""
    backoff = 0.05
    was_down = False
    while True:
        try:
            reader, writer = await _connect(endpoint)
        except OSError:
            # nothing to hold (the service is down): the probes see that; try again later
            was_down = True
            await asyncio.sleep(retry_s)
            continue
        if was_down:
            was_down = False
            on_change()
        connected_at = time.monotonic()
        await _hold(reader, writer)
        on_change()
        if time.monotonic() - connected_at < MIN_LIFETIME_S:
            backoff = min(backoff * 2, retry_s)
        else:
            backoff = 0.05
        await asyncio.sleep(backoff)
