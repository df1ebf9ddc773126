"""What each probe is configured with: pydantic models only, so that reading a configuration
(`announcer check`, the plugin's start-up and reloads) does not import asyncio, the HTTP
client or any probe."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "PROBE_TYPES",
    "ExecProbeConfig",
    "HaproxyProbeConfig",
    "HttpProbeConfig",
    "HttpTarget",
    "NginxProbeConfig",
    "ProbeConfig",
    "TcpProbeConfig",
]


class HttpTarget(BaseModel):
    """Where and how to fetch: the part of a config that the http and nginx probes share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http:// or https:// URL")
    host: str | None = Field(default=None, description="Host header to send")
    ca_file: str | None = Field(default=None, description="CA bundle to verify HTTPS against")
    insecure: bool = Field(default=False, description="do not verify HTTPS certificates")
    reuse_connections: bool = Field(
        default=True,
        description="keep the connection open between probes (a stopped server closes it, so "
        "a dead listener is still seen at once); false: a new connection for every probe",
    )

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        # the standard library's split, not yarl's URL (the probe's client parses it again):
        # reading a thousand checks' URLs is a tenth of the time, and yarl is not imported
        problem = f"{value!r} is not an http:// or https:// URL with a host"
        try:
            url = urlsplit(value)
            port = url.port  # a port that is not a number from 0 to 65535: ValueError
        except ValueError as exc:
            raise ValueError(f"{problem}: {exc}") from None
        if url.scheme not in ("http", "https") or not url.hostname or port == 0:
            raise ValueError(problem)
        return value

    @field_validator("host")
    @classmethod
    def _host_is_printable(cls, value: str | None) -> str | None:
        if value is not None and (not value or not value.isprintable() or " " in value):
            raise ValueError(f"{value!r} is not a valid Host header")
        return value


class HttpProbeConfig(HttpTarget):
    type: Literal["http"] = "http"
    expect_status: list[int] = Field(
        default_factory=lambda: [200], min_length=1, description="status codes that pass"
    )
    expect_body: str | None = Field(default=None, description="substring the body must hold")
    expect_body_regex: str | None = Field(default=None, description="regex the body must match")

    @field_validator("expect_status")
    @classmethod
    def _statuses_are_http(cls, value: list[int]) -> list[int]:
        for status in value:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status code (100-599)")
        return value

    @field_validator("expect_body_regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from exc
        return value


class NginxProbeConfig(HttpTarget):
    type: Literal["nginx"] = "nginx"


class TcpProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["tcp"] = "tcp"
    host: str = Field(default="127.0.0.1", description="address to connect to")
    port: int = Field(ge=1, le=65535, description="port to connect to")
    send: str | None = Field(default=None, description="text to send once connected")
    expect: str | None = Field(default=None, description="text the reply must contain")


class ExecProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["exec"] = "exec"
    argv: list[str] = Field(min_length=1, description="program and arguments; never a shell")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment")

    @field_validator("argv")
    @classmethod
    def _argv_has_no_nul(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("argv[0] must name a program")
        for arg in value:
            if "\x00" in arg:
                raise ValueError(f"{arg!r} contains a NUL byte")
        return value


class HaproxyProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["haproxy"] = "haproxy"
    socket: str = Field(description="UNIX socket path, or host:port of a TCP stats socket")
    backend: str = Field(min_length=1, description="backend whose servers must be UP")
    frontend: str | None = Field(default=None, description="frontend that must be OPEN")
    min_up: int | None = Field(default=None, ge=1, description="UP servers needed (default 1)")
    min_up_ratio: float | None = Field(
        default=None, gt=0, le=1, description="share of servers that must be UP"
    )

    @field_validator("socket")
    @classmethod
    def _socket_is_path_or_hostport(cls, value: str) -> str:
        if value.startswith("/"):
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is neither an absolute socket path nor host:port")
        return value

    @model_validator(mode="after")
    def _one_threshold(self) -> HaproxyProbeConfig:
        if self.min_up is not None and self.min_up_ratio is not None:
            raise ValueError("give min_up or min_up_ratio, not both")
        return self


ProbeConfig = Annotated[
    HttpProbeConfig | TcpProbeConfig | ExecProbeConfig | HaproxyProbeConfig | NginxProbeConfig,
    Field(discriminator="type"),
]

PROBE_TYPES: dict[str, type[ProbeConfig]] = {
    "http": HttpProbeConfig,
    "tcp": TcpProbeConfig,
    "exec": ExecProbeConfig,
    "haproxy": HaproxyProbeConfig,
    "nginx": NginxProbeConfig,
}
