"""nginx stub_status probe: the status page answers and parses; reports connection counts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._http import HttpClient
from .base import ProbeFailure, ProbeResult
from .configs import NginxProbeConfig
from .reasons import Reason

__all__ = ["NginxProbe", "NginxProbeConfig", "StubStatus", "parse_stub_status"]

_STUB_STATUS = re.compile(
    r"Active connections:\s*(?P<active>\d+)\s*"
    r"server accepts handled requests\s*(?P<accepts>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+)\s*"
    r"Reading:\s*(?P<reading>\d+)\s+Writing:\s*(?P<writing>\d+)\s+Waiting:\s*(?P<waiting>\d+)"
)


@dataclass(frozen=True, slots=True)
class StubStatus:
    active: int
    accepts: int
    handled: int
    requests: int
    reading: int
    writing: int
    waiting: int


def parse_stub_status(text: str) -> StubStatus:
    match = _STUB_STATUS.search(text)
    if match is None:
        raise ProbeFailure(Reason.BAD_REPLY, f"not a stub_status page: {text[:60]!r}")
    return StubStatus(**{k: int(v) for k, v in match.groupdict().items()})


class NginxProbe:
    def __init__(self, config: NginxProbeConfig) -> None:
        self._client = HttpClient(config)

    async def probe(self) -> ProbeResult:
        response = await self._client.get()
        if response.status != 200:
            raise ProbeFailure(Reason.BAD_STATUS, f"HTTP {response.status}")
        status = parse_stub_status(response.body)
        # accepts > handled means nginx dropped connections (worker_connections exhausted)
        if status.accepts > status.handled:
            dropped = status.accepts - status.handled
            detail = f"{status.active} active, {dropped} dropped since start"
        else:
            detail = f"{status.active} active"
        return ProbeResult(
            ok=True,
            reason=Reason.OK,
            detail=detail,
            metrics={
                "active_connections": float(status.active),
                "dropped_connections": float(status.accepts - status.handled),
            },
        )

    async def close(self) -> None:
        await self._client.close()
