"""`run_probe`: the one place that owns a probe's deadline, timing and error mapping."""

from __future__ import annotations

import asyncio
import errno
import ssl
import time

from ._lean_http import BadResponse
from .base import Probe, ProbeFailure, ProbeResult
from .reasons import Reason

__all__ = ["failed_result", "reason_for_exception", "run_probe", "timed_out"]

_ERRNO_REASONS = {
    errno.ECONNREFUSED: Reason.CONNECTION_REFUSED,
    errno.ECONNRESET: Reason.CONNECTION_RESET,
    errno.EHOSTUNREACH: Reason.HOST_UNREACHABLE,
    errno.ENETUNREACH: Reason.NETWORK_UNREACHABLE,
    errno.ENOENT: Reason.SOCKET_MISSING,
    errno.EACCES: Reason.PERMISSION_DENIED,
    errno.EPIPE: Reason.CONNECTION_RESET,
}


def reason_for_exception(exc: BaseException) -> str:
    """Map an exception from a probe to a low-cardinality reason token."""
    if isinstance(exc, ProbeFailure):
        return exc.reason
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return Reason.TIMEOUT
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Reason.TLS_ERROR
    if isinstance(exc, ConnectionResetError):
        return Reason.CONNECTION_RESET
    if isinstance(exc, BadResponse):
        return Reason.HTTP_ERROR
    if isinstance(exc, OSError):
        return _ERRNO_REASONS.get(exc.errno or 0, Reason.OS_ERROR)
    return Reason.PROBE_ERROR


# A deadline timer that fires this much later than it was due fired late because the process
# itself was busy (a long step, a burst of ten thousand results): the answer may be waiting
# unread in the socket, as the loop runs due timers before it polls for I/O. Such a deadline
# waits GRACE_S once more, which lets one poll deliver what arrived in time.
LATE_S = 0.05
GRACE_S = 0.005


def grace_for(due: float, loop: asyncio.AbstractEventLoop) -> bool:
    """True if a deadline timer due at `due` (loop time) that just fired was so late (LATE_S)
    that it should wait GRACE_S for the I/O the loop has not read yet."""
    return loop.time() - due > LATE_S


class _Deadline:
    """What asyncio.timeout does (cancel the task at the deadline, and tell that cancellation
    from any other) in one timer and a few attribute reads: a thousand probes a second each
    start one, and asyncio.timeout's own bookkeeping cost more than a kept-alive probe."""

    __slots__ = ("_cancelling", "_graced", "_handle", "_loop", "_task", "expired")

    def __init__(self, timeout_s: float) -> None:
        task = asyncio.current_task()
        assert task is not None, "a probe runs in a task"
        self._task = task
        self._cancelling = task.cancelling()
        self.expired = False
        self._graced = False
        self._loop = loop = asyncio.get_running_loop()
        self._handle = loop.call_later(timeout_s, self._expire)

    def _expire(self) -> None:
        if not self._graced and grace_for(self._handle.when(), self._loop):
            self._graced = True
            self._handle = self._loop.call_later(GRACE_S, self._expire)
            return
        self.expired = True
        self._task.cancel()

    def end(self) -> bool:
        """Stop the clock. True: a cancellation under way is the deadline's own (a timeout),
        not the task's (which must go on)."""
        self._handle.cancel()
        return self.expired and self._task.uncancel() <= self._cancelling


def _failed(reason: str, detail: str, started: float) -> ProbeResult:
    return ProbeResult(
        ok=False, reason=reason, duration_s=time.monotonic() - started, detail=detail[:200]
    )


def failed_result(exc: BaseException, started: float) -> ProbeResult:
    """The result of a probe that started at `started` and raised `exc`."""
    return _failed(reason_for_exception(exc), str(exc) or type(exc).__name__, started)


def timed_out(timeout_s: float, started: float) -> ProbeResult:
    """The result of a probe that started at `started` and had no answer within `timeout_s`."""
    return _failed(Reason.TIMEOUT, f"no answer within {timeout_s:g}s", started)


async def run_probe(probe: Probe, timeout_s: float) -> ProbeResult:
    """Run one probe under `timeout_s`, never raising: every failure becomes a result."""
    started = time.monotonic()
    deadline = _Deadline(timeout_s)
    try:
        result = await probe.probe()
    except asyncio.CancelledError:
        if not deadline.end():
            raise
        return timed_out(timeout_s, started)
    except Exception as exc:  # a probe must never take the scheduler down
        deadline.end()
        return failed_result(exc, started)
    deadline.end()
    return ProbeResult(
        result.ok,
        result.reason,
        time.monotonic() - started,
        result.detail,
        result.capacity,
        result.metrics,
    )
