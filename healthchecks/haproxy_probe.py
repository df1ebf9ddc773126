"""HAProxy runtime API probe (`show stat` over the stats socket).

Healthy when the backend has at least `min_up` (or `min_up_ratio` of its) servers UP and, if a
frontend is named, that frontend is OPEN. Reports capacity = UP servers / servers, for weighting,
and the current sessions, for drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import math
from dataclasses import dataclass

from .base import ProbeFailure, ProbeResult
from .configs import HaproxyProbeConfig
from .reasons import Reason

__all__ = ["HaproxyProbe", "HaproxyProbeConfig", "StatRow", "backend_health", "parse_show_stat"]

MAX_REPLY_BYTES = 4 * 1024 * 1024
# servers in these states take traffic; "no check" servers are used by HAProxy without checks
_SERVING = ("UP", "NOLB", "no check")


@dataclass(frozen=True, slots=True)
class StatRow:
    proxy: str
    service: str
    status: str
    current_sessions: int


@dataclass(frozen=True, slots=True)
class BackendHealth:
    up: int
    total: int
    backend_status: str | None
    current_sessions: int


def parse_show_stat(text: str) -> list[StatRow]:
    """Parse `show stat` CSV (first line `# pxname,svname,...`)."""
    if not text.startswith("# "):
        raise ProbeFailure(Reason.BAD_REPLY, f"not show stat output: {text[:60]!r}")
    reader = csv.DictReader(io.StringIO(text[2:]))
    rows: list[StatRow] = []
    for record in reader:
        if not record.get("pxname"):
            continue
        scur = record.get("scur") or "0"
        rows.append(
            StatRow(
                proxy=record["pxname"],
                service=record.get("svname") or "",
                status=record.get("status") or "",
                current_sessions=int(scur) if scur.isdigit() else 0,
            )
        )
    return rows


def backend_health(rows: list[StatRow], backend: str) -> BackendHealth:
    servers = [r for r in rows if r.proxy == backend and r.service not in ("FRONTEND", "BACKEND")]
    summary = next((r for r in rows if r.proxy == backend and r.service == "BACKEND"), None)
    if summary is None:
        raise ProbeFailure(Reason.BACKEND_MISSING, f"no backend {backend!r} in show stat")
    up = sum(1 for s in servers if s.status.startswith(_SERVING))
    return BackendHealth(up, len(servers), summary.status, summary.current_sessions)


async def _open(socket: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if socket.startswith("/"):
        return await asyncio.open_unix_connection(socket, limit=MAX_REPLY_BYTES)
    host, _, port = socket.rpartition(":")
    return await asyncio.open_connection(host.strip("[]"), int(port), limit=MAX_REPLY_BYTES)


class HaproxyProbe:
    def __init__(self, config: HaproxyProbeConfig) -> None:
        self._config = config

    async def _show_stat(self) -> str:
        reader, writer = await _open(self._config.socket)
        try:
            writer.write(b"show stat\n")
            await writer.drain()
            reply = await reader.read(MAX_REPLY_BYTES)
            while chunk := await reader.read(MAX_REPLY_BYTES):
                reply += chunk
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return reply.decode("utf-8", errors="replace")

    async def probe(self) -> ProbeResult:
        rows = parse_show_stat(await self._show_stat())
        config = self._config
        full = False
        if config.frontend is not None:
            front = next(
                (r for r in rows if r.proxy == config.frontend and r.service == "FRONTEND"), None
            )
            if front is None:
                raise ProbeFailure(Reason.FRONTEND_MISSING, f"no frontend {config.frontend!r}")
            # FULL (at maxconn) is a busy frontend, not a dead one: withdrawing it at peak load
            # would push the peak onto the other hosts. It stays up, with no spare capacity.
            full = front.status == "FULL"
            if front.status not in ("OPEN", "FULL"):
                raise ProbeFailure(
                    Reason.FRONTEND_CLOSED, f"frontend {config.frontend} {front.status}"
                )
        health = backend_health(rows, config.backend)
        capacity = health.up / health.total if health.total and not full else 0.0
        metrics = {
            "servers_up": float(health.up),
            "servers_total": float(health.total),
            "active_connections": float(health.current_sessions),
        }
        detail = f"{health.up}/{health.total} servers up" + (", frontend FULL" if full else "")
        needed = 1
        if config.min_up is not None:
            needed = config.min_up
        elif config.min_up_ratio is not None:
            needed = max(1, math.ceil(config.min_up_ratio * health.total - 1e-9))
        if health.up < needed:
            raise ProbeFailure(Reason.BELOW_MIN_UP, f"{detail}, need {needed}")
        return ProbeResult(
            ok=True, reason=Reason.OK, detail=detail, capacity=capacity, metrics=metrics
        )

    async def close(self) -> None:
        return None
