"""The one interface every probe implements, and the result it returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["Probe", "ProbeFailure", "ProbeResult", "QuickProbe"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe run found.

    `reason` is a short, low-cardinality token (``ok``, ``timeout``, ``connection_refused``,
    ``bad_status``...) fit for a metric label; `detail` is free text for humans.
    `capacity` is the share (0..1) of the local load balancer that is able to serve, when the
    probe can tell (HAProxy: UP servers / all servers); it drives weighted ECMP.
    `metrics` carries numbers the probe read (``active_connections``) for drain decisions.
    """

    ok: bool
    reason: str
    duration_s: float = 0.0
    detail: str = ""
    capacity: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False)


class ProbeFailure(Exception):
    """Raised inside a probe to fail it with a reason token; `run_probe` turns it into a result."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


class Probe(Protocol):
    """A health probe. `probe` may raise; `run_probe` owns timeout, timing and error mapping."""

    async def probe(self) -> ProbeResult: ...

    async def close(self) -> None: ...


@runtime_checkable
class QuickProbe(Probe, Protocol):
    """A probe that can also run on callbacks, with no task: the kept-alive HTTP probe, which
    a thousand checks run every second.

    `start` begins a probe that started at `started` (monotonic) and returns True, or returns
    False when it cannot (no connection to reuse: run `probe` under `run_probe` instead).
    After True, `done` is called once, possibly before `start` returns, unless `abandon` came
    first: with the result (its duration counted from `started`; never raising), or with None
    when the kept connection turned out closed before it answered (run `probe` instead).
    The caller owns the deadline: at it, `abandon`, and the probe timed out."""

    def start(self, started: float, done: Callable[[ProbeResult | None], None]) -> bool: ...

    def abandon(self) -> None: ...
