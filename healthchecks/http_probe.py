"""HTTP(S) GET probe: expected status set, optional body substring or regex."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from ._http import HttpClient
from ._lean_http import Answer, ConnectionPools, Stale
from .base import ProbeFailure, ProbeResult
from .configs import HttpProbeConfig
from .reasons import Reason
from .runner import failed_result

__all__ = ["HttpProbe", "HttpProbeConfig"]


class HttpProbe:
    """A `QuickProbe`: on a kept connection it also runs on callbacks (`start`)."""

    def __init__(self, config: HttpProbeConfig, pools: ConnectionPools | None = None) -> None:
        self._config = config
        self._client = HttpClient(config, pools)
        self._regex = re.compile(config.expect_body_regex) if config.expect_body_regex else None
        self._reads_body = config.expect_body is not None or self._regex is not None
        self._started = 0.0
        self._done: Callable[[ProbeResult | None], None] | None = None

    async def probe(self) -> ProbeResult:
        status, body = await self._client.get_bytes()
        return ProbeResult(ok=True, reason=Reason.OK, detail=self._judge(status, body))

    def start(self, started: float, done: Callable[[ProbeResult | None], None]) -> bool:
        self._started, self._done = started, done
        return self._client.start(self._deliver)

    def abandon(self) -> None:
        self._done = None
        self._client.abandon()

    def _deliver(self, answer: Answer | BaseException) -> None:
        done, self._done = self._done, None
        if done is None:
            return
        if isinstance(answer, Stale):
            done(None)
        elif isinstance(answer, BaseException):
            done(failed_result(answer, self._started))
        else:
            try:
                detail = self._judge(*answer)
            except ProbeFailure as exc:
                done(failed_result(exc, self._started))
            else:
                done(ProbeResult(True, Reason.OK, time.monotonic() - self._started, detail))

    def _judge(self, status: int, body: bytes) -> str:
        """The result's detail if the answer passes; ProbeFailure if not."""
        if status not in self._config.expect_status:
            raise ProbeFailure(Reason.BAD_STATUS, f"HTTP {status}")
        if self._reads_body:
            text = body.decode("utf-8", errors="replace")
            expected = self._config.expect_body
            if expected is not None and expected not in text:
                raise ProbeFailure(Reason.BODY_MISMATCH, f"body lacks {expected!r}")
            if self._regex is not None and not self._regex.search(text):
                raise ProbeFailure(
                    Reason.BODY_MISMATCH, f"body does not match {self._regex.pattern!r}"
                )
        return f"HTTP {status}"

    async def close(self) -> None:
        await self._client.close()
