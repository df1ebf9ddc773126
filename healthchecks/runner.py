"""`run_probe`: the one place that owns a probe's deadline, timing and error mapping."""

from __future__ import annotations

import asyncio
import errno
import ssl
import time

from ._lean_http import BadResponse
from .base import Probe, ProbeFailure, ProbeResult

__all__ = ["reason_for_exception", "run_probe"]

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection_refused",
    errno.ECONNRESET: "connection_reset",
    errno.EHOSTUNREACH: "host_unreachable",
    errno.ENETUNREACH: "network_unreachable",
    errno.ENOENT: "socket_missing",
    errno.EACCES: "permission_denied",
    errno.EPIPE: "connection_reset",
}


def reason_for_exception(exc: BaseException) -> str:
    """Map an exception from a probe to a low-cardinality reason token."""
    if isinstance(exc, ProbeFailure):
        return exc.reason
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls_error"
    if isinstance(exc, ConnectionResetError):
        return "connection_reset"
    if isinstance(exc, BadResponse):
        return "http_error"
    if isinstance(exc, OSError):
        return _ERRNO_REASONS.get(exc.errno or 0, "os_error")
    return "probe_error"


async def run_probe(probe: Probe, timeout_s: float) -> ProbeResult:
    """Run one probe under `timeout_s`, never raising: every failure becomes a result."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            result = await probe.probe()
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a probe must never take the scheduler down
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            detail = f"no answer within {timeout_s:g}s"
        return ProbeResult(
            ok=False,
            reason=reason_for_exception(exc),
            duration_s=time.monotonic() - started,
            detail=detail[:200],
        )
    return ProbeResult(
        result.ok,
        result.reason,
        time.monotonic() - started,
        result.detail,
        result.capacity,
        result.metrics,
    )
