"""HTTP plumbing shared by the http and nginx probes: one session per probe, bounded reads."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

from yarl import URL

from ._lean_http import Answer, ConnectionPools, LeanClient, build_request
from .configs import HttpTarget

__all__ = ["HttpClient", "HttpTarget", "Response"]

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: str


class HttpClient:
    """Fetches the probe's URL with the lean client: over one kept-alive connection by default,
    over a pool shared with the other clients of the same plain-HTTP endpoint (`pools`), or a
    fresh connection per probe (`reuse_connections: false`)."""

    def __init__(self, target: HttpTarget, pools: ConnectionPools | None = None) -> None:
        url = URL(target.url)
        host = url.host or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        path = url.raw_path_qs or "/"
        default_port = (url.scheme == "https" and port == 443) or (
            url.scheme == "http" and port == 80
        )
        literal = f"[{host}]" if ":" in host else host
        host_header = target.host or (literal if default_port else f"{literal}:{port}")
        ssl_context: ssl.SSLContext | None = None
        if url.scheme == "https":
            ssl_context = ssl.create_default_context(cafile=target.ca_file)
            if target.insecure:
                ssl_context.check_hostname = False
                ssl_context.verify_mode = ssl.CERT_NONE
        self._client = LeanClient(
            host,
            port,
            build_request(path, host_header, keep_alive=target.reuse_connections),
            ssl_context=ssl_context,
            server_hostname=target.host or host,
            limit=MAX_BODY_BYTES,
            reuse=target.reuse_connections,
            # HTTPS keeps a connection per client: a pool would have to match TLS settings
            pool=pools.get(host, port)
            if pools is not None and ssl_context is None and target.reuse_connections
            else None,
        )

    async def get(self) -> Response:
        status, body = await self.get_bytes()
        return Response(status, body.decode("utf-8", errors="replace"))

    async def get_bytes(self) -> Answer:
        return await self._client.get()

    def start(self, deliver: Callable[[Answer | BaseException], None]) -> bool:
        """`LeanClient.start`: the kept connection's exchange on callbacks (the body as bytes:
        decode it only if it is looked at)."""
        return self._client.start(deliver)

    def abandon(self) -> None:
        self._client.abandon()

    async def close(self) -> None:
        self._client.close()
