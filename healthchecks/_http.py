"""HTTP plumbing shared by the http and nginx probes: one session per probe, bounded reads."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from yarl import URL

from ._lean_http import build_request, lean_get

__all__ = ["HttpClient", "HttpTarget", "Response"]

MAX_BODY_BYTES = 64 * 1024


class HttpTarget(BaseModel):
    """Where and how to fetch: the part of a config that the http and nginx probes share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http:// or https:// URL")
    host: str | None = Field(default=None, description="Host header to send")
    ca_file: str | None = Field(default=None, description="CA bundle to verify HTTPS against")
    insecure: bool = Field(default=False, description="do not verify HTTPS certificates")
    reuse_connections: bool = Field(
        default=False, description="keep connections open between probes (hides a dead listener)"
    )

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
        return value

    @field_validator("host")
    @classmethod
    def _host_is_printable(cls, value: str | None) -> str | None:
        if value is not None and (not value or not value.isprintable() or " " in value):
            raise ValueError(f"{value!r} is not a valid Host header")
        return value


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: str


class HttpClient:
    """Fetches the probe's URL. By default every probe opens a fresh connection (the lean client
    below): a listener that died is seen on the next probe rather than hidden behind a pooled
    socket, and a probe costs a fraction of a general HTTP client. `reuse_connections` keeps an
    aiohttp session with a pool instead."""

    def __init__(self, target: HttpTarget) -> None:
        self._target = target
        self._session: aiohttp.ClientSession | None = None
        url = URL(target.url)
        self._host = url.host or ""
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._path = url.raw_path_qs or "/"
        default_port = (url.scheme == "https" and self._port == 443) or (
            url.scheme == "http" and self._port == 80
        )
        literal = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = target.host or (literal if default_port else f"{literal}:{self._port}")
        self._request = build_request(self._path, self._host_header)
        self._ssl_context: ssl.SSLContext | None = None
        if url.scheme == "https":
            context = ssl.create_default_context(cafile=target.ca_file)
            if target.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl_context = context

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl_context or True, limit=4)
            self._session = aiohttp.ClientSession(
                connector=connector,
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "announcer-healthcheck"},
            )
        return self._session

    async def get(self) -> Response:
        if not self._target.reuse_connections:
            status, body = await lean_get(
                self._host,
                self._port,
                self._request,
                ssl_context=self._ssl_context,
                server_hostname=self._target.host or self._host,
                limit=MAX_BODY_BYTES,
            )
            return Response(status, body.decode("utf-8", errors="replace"))
        headers = {"Host": self._target.host} if self._target.host else None
        async with self._get_session().get(
            self._target.url, headers=headers, allow_redirects=False
        ) as response:
            raw = await response.content.read(MAX_BODY_BYTES)
            return Response(response.status, raw.decode("utf-8", errors="replace"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
