"""Exec probe: run an argv (never a shell); exit status 0 means healthy.

The child gets its own session, so a timeout or cancellation kills the whole process group,
grandchildren included: a hung check script must not outlive its probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile

from .base import ProbeFailure, ProbeResult
from .configs import ExecProbeConfig
from .reasons import Reason

__all__ = ["ExecProbe", "ExecProbeConfig"]

MAX_OUTPUT_BYTES = 4096
KILL_WAIT_S = 1.0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class ExecProbe:
    def __init__(self, config: ExecProbeConfig) -> None:
        self._config = config

    async def probe(self) -> ProbeResult:
        env = {**os.environ, **self._config.env} if self._config.env else None
        # output goes to a file, not a pipe: asyncio's wait() also waits for every pipe to
        # close, so a grandchild that keeps stdout open would hold the probe (and its cleanup)
        # for as long as it lives, far past the timeout
        with tempfile.TemporaryFile() as output:
            try:
                process = await asyncio.create_subprocess_exec(
                    *self._config.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                )
            except FileNotFoundError as exc:
                raise ProbeFailure(Reason.EXEC_NOT_FOUND, str(exc)) from exc
            except PermissionError as exc:
                raise ProbeFailure(Reason.PERMISSION_DENIED, str(exc)) from exc
            try:
                status = await process.wait()
            finally:
                # also runs on timeout/cancel: the group goes, whatever it spawned
                _kill_group(process.pid)
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    # bounded: the probe's deadline must hold even if reaping is slow
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(process.wait(), KILL_WAIT_S)
            output.seek(0)
            text = output.read(MAX_OUTPUT_BYTES)
        first_line = text.decode("utf-8", errors="replace").strip().splitlines()[:1]
        detail = first_line[0][:200] if first_line else f"exit {status}"
        if status != 0:
            reason = Reason.KILLED if status < 0 else Reason.EXIT_NONZERO
            raise ProbeFailure(reason, f"exit {status}: {detail}")
        return ProbeResult(ok=True, reason=Reason.OK, detail=detail)

    async def close(self) -> None:
        return None
