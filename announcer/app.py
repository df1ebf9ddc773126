"""Composition root of `announcer run`: builds the pieces, runs them, shuts down in order.

Whatever ends the run (SIGTERM, an exception in any task), every configured VIP is withdrawn
before the process exits, unless ExaBGP itself is gone (its routes went with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from aiohttp import web

from healthchecks import ProbeResult, build_probe

from .api import ApiState, build_app
from .config import Config
from .core import CheckState, NeighborState
from .engine import Engine
from .exabgp_io import ExabgpSession, LineChannel, StdioChannel
from .logs import get_logger
from .metrics import Metrics
from .reconciler import Reconciler
from .scheduler import CheckRunner

__all__ = ["Plugin", "run_plugin"]

log = get_logger("app")
TICK_S = 0.25
# ExaBGP sends SIGKILL 2 s after SIGTERM when it stops a helper: finish the withdraw before
SHUTDOWN_WITHDRAW_TIMEOUT_S = 1.5


def read_token(path: str | None) -> tuple[str | None, bool]:
    """The API token, and whether POSTs may be served at all (not when the file is unreadable)."""
    if path is None:
        return None, True
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        log.error(
            "cannot read api.token_file; POST endpoints disabled",
            extra={"path": path, "error": exc.strerror},
        )
        return None, False
    if not token:
        log.error("api.token_file is empty; POST endpoints disabled", extra={"path": path})
        return None, False
    return token, True


class Plugin:
    def __init__(self, config: Config, channel: LineChannel) -> None:
        self.config = config
        self.metrics = Metrics()
        self.session = ExabgpSession(
            channel,
            expect_acks=config.exabgp.ack != "off",
            ack_timeout_s=config.exabgp.ack_timeout,
            on_neighbor=self._on_neighbor,
            on_line=self.metrics.observe_line,
        )
        self.reconciler = Reconciler(self.session, on_commands=self.metrics.observe_command)
        self.engine = Engine(
            config,
            on_desired=self.reconciler.set_desired,
            on_transition=self.metrics.observe_transition,
        )
        self.metrics.attach(self.engine, self.reconciler, lambda: self.session.pending)
        used = {name for vip in config.vips for name in vip.checks}
        self.runners = [
            CheckRunner(name, spec, build_probe(spec.probe), self._on_result)
            for name, spec in config.checks.items()
            if name in used
        ]
        token, posts_allowed = read_token(config.api.token_file)
        self.api_state = ApiState(
            self.engine, self.reconciler, self.metrics, lambda: self.session.pending, token
        )
        self.api_state.posts_allowed = posts_allowed
        self.stop_requested = asyncio.Event()
        self.stop_reason = ""

    def _on_result(self, check: str, result: ProbeResult, now: float) -> CheckState:
        self.metrics.observe_probe(check, result)
        return self.engine.on_result(check, result, now)

    def _on_neighbor(self, event: NeighborState) -> None:
        self.engine.set_neighbor(event.peer, event.state)
        if event.state == "up":
            # the session is new: make sure ExaBGP holds exactly what we want
            self.reconciler.restate()

    def request_stop(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            log.info("stopping", extra={"reason": reason})
            self.stop_requested.set()

    def probe_all_now(self) -> None:
        for runner in self.runners:
            runner.probe_now()

    async def _tick(self) -> None:
        drain_file = self.config.drain.file
        while True:
            now = time.monotonic()
            self.api_state.heartbeat = now
            if drain_file is not None:
                self.engine.set_drain_file(os.path.exists(drain_file), now)
            self.engine.recompute(now)  # ages verdicts past their TTL
            await asyncio.sleep(TICK_S)

    async def _serve_api(self) -> web.AppRunner | None:
        if not self.config.api.listen:
            return None
        runner = web.AppRunner(build_app(self.api_state), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.api.host, self.config.api.port)
        try:
            await site.start()
        except OSError as exc:
            log.error(
                "cannot listen for the API; running without it",
                extra={"listen": self.config.api.listen, "error": exc.strerror},
            )
            await runner.cleanup()
            return None
        log.info("API listening", extra={"listen": self.config.api.listen})
        return runner

    async def run(self) -> int:
        """Run until stopped; return the exit status."""
        reader = asyncio.create_task(self.session.read_forever(), name="exabgp-reader")
        if self.config.exabgp.ack == "auto":
            await self.session.enable_acks()
        api = await self._serve_api()
        workers = [
            asyncio.create_task(self.reconciler.run(), name="reconciler"),
            asyncio.create_task(self._tick(), name="tick"),
            *(asyncio.create_task(r.run(), name=f"check:{r.name}") for r in self.runners),
        ]
        stop = asyncio.create_task(self.stop_requested.wait(), name="stop")
        gone = asyncio.create_task(self.session.closed.wait(), name="exabgp-gone")
        log.info("started", extra={"vips": len(self.config.vips), "checks": len(self.runners)})
        done, _ = await asyncio.wait(
            [reader, stop, gone, *workers], return_when=asyncio.FIRST_COMPLETED
        )
        status = 0
        for task in done:
            if task in (stop, gone) or task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                log.critical(
                    "task failed; withdrawing every VIP",
                    exc_info=exc,
                    extra={"task": task.get_name()},
                )
                status = 1
            elif task is not reader:
                log.critical("task ended unexpectedly", extra={"task": task.get_name()})
                status = 1
        for task in [*workers, stop]:
            task.cancel()
        # bounded: the withdraw below must happen even if some task ignores its cancellation
        _, stuck = await asyncio.wait([*workers, stop], timeout=1.0)
        if stuck:
            log.error("tasks did not stop", extra={"tasks": [t.get_name() for t in stuck]})
        await self._withdraw_everything(reader)
        reader.cancel()
        gone.cancel()
        await asyncio.gather(reader, gone, return_exceptions=True)
        if api is not None:
            await api.cleanup()
        self.session.close()
        return status

    async def _withdraw_everything(self, reader: asyncio.Task[None]) -> None:
        if self.session.closed.is_set():
            log.info(
                "ExaBGP is gone; its routes went with it",
                extra={"reason": self.session.close_reason},
            )
            return
        if reader.done():  # the reader itself failed: acks need a reader
            reader = asyncio.create_task(self.session.read_forever())
        self.engine.stop(time.monotonic())
        prefixes = [vip.prefix for vip in self.config.vips]
        try:
            unconfirmed = await self.reconciler.withdraw_all(prefixes, SHUTDOWN_WITHDRAW_TIMEOUT_S)
        except (OSError, RuntimeError) as exc:
            log.error("could not withdraw on shutdown", extra={"error": str(exc)})
            return
        if unconfirmed:
            log.error("withdraw not confirmed by ExaBGP", extra={"vips": unconfirmed})
        else:
            log.info("withdrew every VIP", extra={"vips": len(prefixes)})


async def run_plugin(config: Config, channel: LineChannel | None = None) -> int:
    plugin = Plugin(config, channel or await StdioChannel.open())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, plugin.request_stop, signal.Signals(signum).name)
    loop.add_signal_handler(signal.SIGUSR1, plugin.probe_all_now)
    try:
        return await plugin.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
