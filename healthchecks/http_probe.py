"""HTTP(S) GET probe: expected status set, optional body substring or regex."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from ._http import HttpClient, HttpTarget
from .base import ProbeFailure, ProbeResult

__all__ = ["HttpProbe", "HttpProbeConfig"]


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


class HttpProbe:
    def __init__(self, config: HttpProbeConfig) -> None:
        self._config = config
        self._client = HttpClient(config)
        self._regex = re.compile(config.expect_body_regex) if config.expect_body_regex else None

    async def probe(self) -> ProbeResult:
        response = await self._client.get()
        if response.status not in self._config.expect_status:
            raise ProbeFailure("bad_status", f"HTTP {response.status}")
        if self._config.expect_body is not None and self._config.expect_body not in response.body:
            raise ProbeFailure("body_mismatch", f"body lacks {self._config.expect_body!r}")
        if self._regex is not None and not self._regex.search(response.body):
            raise ProbeFailure("body_mismatch", f"body does not match {self._regex.pattern!r}")
        return ProbeResult(ok=True, reason="ok", detail=f"HTTP {response.status}")

    async def close(self) -> None:
        await self._client.close()
