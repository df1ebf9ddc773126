"""Notice a dead load balancer at once: hold an idle connection to it and report when it closes.

A probe finds a stopped nginx only at its next run, up to a whole interval later. A stopped
or killed server closes its connections, and the kernel does so for a killed one, so an idle
connection held open to the same port ends the moment the service does. The watcher then asks
for a probe right away, and says what it saw (`listener_gone`): the probe and the hysteresis
decide, so a watcher can make detection faster and the evidence stronger, but never withdraws
by itself.

A reload is not a stop: `nginx -s reload`, nginx's binary upgrade and HAProxy's master-worker
reload keep the listening socket and retire the old workers, which close their idle
connections. So when the held connection ends, the watcher connects again at once: if the
listener answers, it was a reload, and the checks are left alone; only a refused connection
wakes them. A new connection that is accepted but then reset without an answer counts as
refused: that is a dying server whose listening socket outlived its workers for a moment
(nginx's master after SIGTERM). For an HTTP endpoint the held connection is a real idle
keep-alive connection (one HEAD of the check's own path, answered, then nothing): old workers
close those at once when they retire, where a connection that never sent a request would keep
an old nginx worker alive until `client_header_timeout`, an old HAProxy until `timeout client`.

A server that closes keep-alive connections at once (nginx with `keepalive_timeout 0`) gets a
bare connection instead, one that never sends a request: it lasts until the server's header
timeout, and keeps a reloaded server's old worker alive that long.

While the service is down the watcher tries to connect every `DOWN_RETRY_S`: a refused connect
on the same host costs microseconds, and the first one that succeeds wakes the checks, so a
restarted service is probed within milliseconds of listening again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from yarl import URL

from .exec_probe import ExecProbeConfig
from .haproxy_probe import HaproxyProbeConfig
from .http_probe import HttpProbeConfig
from .nginx_probe import NginxProbeConfig
from .tcp_probe import TcpProbeConfig

__all__ = ["DOWN_RETRY_S", "Endpoint", "Watcher", "endpoint_of"]

log = logging.getLogger("healthchecks.watch")

# a connection the server closes sooner than this was not a real idle connection (a server
# that closes idle sockets at once): back off instead of asking for probes in a loop
MIN_LIFETIME_S = 1.0
KEEP_ALIVE_TIMEOUT_S = 1.0
# kept-alive connections in a row that the server ends at once before a bare one is held
BARE_AFTER = 3
# while nothing listens: how often to try again (a restart is noticed this fast)
DOWN_RETRY_S = 0.025


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str = ""
    port: int = 0
    path: str = ""  # a UNIX socket
    # HTTP: the path to HEAD so that the held connection is an idle keep-alive one (not part of
    # the endpoint's identity: every check of a host:port shares one watcher)
    http_path: str | None = field(default=None, compare=False)

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
            plain = url.scheme == "http"
            return Endpoint(
                url.host or "",
                url.port or (80 if plain else 443),
                http_path=(url.raw_path or "/") if plain else None,
            )
        case TcpProbeConfig():
            return Endpoint(config.host, config.port)
        case HaproxyProbeConfig():
            if config.socket.startswith("/"):
                return Endpoint(path=config.socket)
            host, _, port = config.socket.rpartition(":")
            return Endpoint(host.strip("[]"), int(port))
    return None


class _Unserved(OSError):
    """Accepted, then closed or reset before any answer: a server on its way out."""


async def _connect(
    endpoint: Endpoint, bare: bool = False
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if endpoint.path:
        return await asyncio.open_unix_connection(endpoint.path)
    reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    if endpoint.http_path is not None and not bare:
        try:
            await asyncio.wait_for(_keep_alive(endpoint, reader, writer), KEEP_ALIVE_TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            # RuntimeError: uvloop's answer to a write on a connection the server has reset
            writer.close()
            raise _Unserved(f"{endpoint}: closed without an answer") from exc
        except (TimeoutError, asyncio.LimitOverrunError):
            pass  # slow or odd, but there: hold the bare connection, as for a TCP endpoint
    return reader, writer


async def _keep_alive(
    endpoint: Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One HEAD request, its answer read to the end: the connection is now an idle
    keep-alive connection (a HEAD answer has no body)."""
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    writer.write(
        f"HEAD {endpoint.http_path} HTTP/1.1\r\nHost: {host}\r\n"
        "User-Agent: announcer-watch\r\nConnection: keep-alive\r\n\r\n".encode("ascii")
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")


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


class Watcher:
    """Hold a connection to `endpoint`, forever (`run`). When it ends, connect again at once:
    refused (or reset unanswered) means the service stopped: `listener_gone` becomes true and
    `on_change` is called; a new connection that works was a reload, and nothing is called.
    While the service is down, try every `down_retry_s`; the first connection that works
    clears `listener_gone` and calls `on_change` again (the service is probably back)."""

    def __init__(
        self,
        endpoint: Endpoint,
        on_change: Callable[[], None],
        retry_s: float,
        down_retry_s: float = DOWN_RETRY_S,
    ) -> None:
        self.endpoint = endpoint
        self.listener_gone = False
        self._on_change = on_change
        self._retry_s = retry_s
        self._down_retry_s = down_retry_s
        # the server closes keep-alive connections at once (nginx `keepalive_timeout 0`):
        # hold a connection that sent nothing instead (it lasts until the server's header
        # timeout, and keeps a reloaded server's old worker that long)
        self._bare = False
        self._short_keep_alives = 0  # kept-alive connections in a row that ended at once

    async def run(self) -> None:
        """Forever; an unexpected error is logged and the watch starts over (a watcher that
        died quietly would leave its checks to the probe interval)."""
        while True:
            try:
                await self._watch()
            except Exception:
                log.warning("watch of %s failed; starting over", self.endpoint, exc_info=True)
                self.listener_gone = False
                await asyncio.sleep(self._down_retry_s)

    async def _watch(self) -> None:
        backoff = 0.05
        was_down = False
        just_lost = False  # the held connection has just ended
        short = False  # ...and it lived less than MIN_LIFETIME_S
        while True:
            try:
                reader, writer = await _connect(self.endpoint, self._bare)
            except OSError:
                if just_lost:
                    self.listener_gone = True  # the listener is gone too: a stop, not a reload
                    log.info("%s: the held connection ended and nothing listens", self.endpoint)
                    self._on_change()
                just_lost = False
                was_down = True
                await asyncio.sleep(self._down_retry_s)
                continue
            if was_down:
                was_down = False
                self.listener_gone = False
                log.info("%s: listening again", self.endpoint)
                self._on_change()
            if short:
                # a server that closes idle connections at once: do not reconnect in a loop
                # (the reconnect itself came first: a stop is still seen at once)
                await asyncio.sleep(backoff)
            just_lost = False
            connected_at = time.monotonic()
            await _hold(reader, writer)
            just_lost = True
            short = time.monotonic() - connected_at < MIN_LIFETIME_S
            if not self._bare and self.endpoint.http_path is not None:
                # a few in a row, not one: two reloads in quick succession end one early too
                self._short_keep_alives = self._short_keep_alives + 1 if short else 0
                if self._short_keep_alives >= BARE_AFTER:
                    self._bare = True  # no keep-alive: hold a bare connection instead
                    short = False
                    log.info(
                        "%s closes idle keep-alive connections at once: holding a bare connection",
                        self.endpoint,
                    )
            backoff = min(backoff * 2, self._retry_s) if short else 0.05
