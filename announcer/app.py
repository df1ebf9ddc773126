"""Composition root of `announcer run`: builds the pieces, runs them, shuts down in order.

Whatever ends the run (SIGTERM, an exception in any task), every configured VIP is withdrawn
before the process exits, unless ExaBGP itself is gone (its routes went with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from healthchecks import ProbeResult, build_probe

from .api import ApiState, build_app
from .config import Config, ConfigError, load_config
from .core import CheckState, NeighborState
from .engine import Engine
from .exabgp_io import ExabgpSession, LineChannel, StdioChannel
from .logs import get_logger
from .metrics import Metrics
from .reconciler import Reconciler
from .scheduler import CheckRunner, Watchers

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


def _write_atomically(path: str, data: Any) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False) as out:
        json.dump(data, out)
    os.replace(out.name, path)


class Plugin:
    def __init__(
        self, config: Config, channel: LineChannel, config_path: str | None = None
    ) -> None:
        self.config = config
        self.config_path = config_path
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
            on_desired=self.reconciler.update,
            on_transition=self.metrics.observe_transition,
            on_drains_changed=self._save_drains,
        )
        self._restore_drains()
        self.metrics.attach(self.engine, self.reconciler, lambda: self.session.pending)
        self.runners: dict[str, CheckRunner] = {}
        self.watchers = Watchers()
        self._check_tasks: dict[str, asyncio.Task[None]] = {}
        self._crashed: asyncio.Future[BaseException] | None = None
        token, posts_allowed = read_token(config.api.token_file)
        self.api_state = ApiState(
            self.engine, self.reconciler, self.metrics, lambda: self.session.pending, token
        )
        self.api_state.posts_allowed = posts_allowed
        self.api_state.reload = self.reload
        self.stop_requested = asyncio.Event()
        self.stop_reason = ""

    # ---------------------------------------------------------------- callbacks
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
        for runner in self.runners.values():
            runner.probe_now()

    # ---------------------------------------------------------------- drains on disk
    def _save_drains(self) -> None:
        path = self.config.drain.state_file
        if path is None:
            return
        try:
            _write_atomically(path, self.engine.saved_drains())
        except OSError as exc:
            log.error(
                "cannot write the drain state file", extra={"path": path, "error": exc.strerror}
            )

    def _restore_drains(self) -> None:
        path = self.config.drain.state_file
        if path is None or not os.path.exists(path):
            return
        try:
            saved = json.loads(Path(path).read_text())
            self.engine.restore_drains(saved, time.monotonic())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error(
                "cannot read the drain state file; starting undrained",
                extra={"path": path, "error": str(exc)},
            )

    # ---------------------------------------------------------------- checks
    def _start_checks(self) -> None:
        used = {name for vip in self.config.vips for name in vip.checks}
        for name in list(self.runners):
            spec = self.config.checks.get(name)
            if name not in used or spec is None or spec != self.runners[name].spec:
                self._check_tasks.pop(name).cancel()
                del self.runners[name]
        for name in sorted(used - set(self.runners)):
            spec = self.config.checks[name]
            runner = CheckRunner(
                name, spec, build_probe(spec.probe), self._on_result, self.watchers
            )
            self.runners[name] = runner
            task = asyncio.create_task(runner.run(), name=f"check:{name}")
            task.add_done_callback(self._task_done)
            self._check_tasks[name] = task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._crashed is None or self._crashed.done():
            return
        exc = task.exception()
        self._crashed.set_result(exc or RuntimeError(f"task {task.get_name()} ended"))

    def reload(self) -> list[str]:
        """Load the config file again; on any error keep running the old one."""
        if self.config_path is None:
            return ["this plugin was not started from a config file"]
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self.metrics.observe_reload(ok=False)
            problems = [str(issue) for issue in exc.issues]
            log.error("reload refused; the running configuration stays", extra={"errors": problems})
            return problems
        if config.api != self.config.api or config.exabgp != self.config.exabgp:
            log.warning("api: and exabgp: changes take effect at the next restart")
        self.config = config
        self.engine.reconfigure(config, time.monotonic())
        self._start_checks()
        self.metrics.observe_reload(ok=True)
        return []

    # ---------------------------------------------------------------- running
    async def _tick(self) -> None:
        while True:
            now = time.monotonic()
            self.api_state.heartbeat = now
            drain_file = self.config.drain.file
            if drain_file is not None:
                self.engine.set_drain_file(os.path.exists(drain_file), now)
            self.engine.tick(now)  # ages verdicts, advances drains and dampening
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

    async def _drain_before_stop(self) -> None:
        """drain.on_stop: graceful-shutdown every VIP, wait for the drain, then return."""
        drain = self.config.drain
        self.engine.drain(None, f"stopping ({self.stop_reason})", "signal", time.monotonic())
        self.stop_requested.clear()  # a second signal cuts the wait short
        deadline = (
            time.monotonic()
            + drain.gshut_period
            + (drain.max_wait if drain.connections_below is not None else 0)
            + 1.0
        )
        while not self.engine.drains_complete() and time.monotonic() < deadline:
            if self.stop_requested.is_set() or self.session.closed.is_set():
                break
            await asyncio.sleep(0.1)
        log.info("drained before stopping")

    async def run(self) -> int:
        """Run until stopped; return the exit status."""
        loop = asyncio.get_running_loop()
        self._crashed = loop.create_future()
        reader = asyncio.create_task(self.session.read_forever(), name="exabgp-reader")
        if self.config.exabgp.ack == "auto":
            await self.session.enable_acks()
        api = await self._serve_api()
        workers = [
            asyncio.create_task(self.reconciler.run(), name="reconciler"),
            asyncio.create_task(self._tick(), name="tick"),
        ]
        for task in workers:
            task.add_done_callback(self._task_done)
        self._start_checks()
        stop = asyncio.create_task(self.stop_requested.wait(), name="stop")
        gone = asyncio.create_task(self.session.closed.wait(), name="exabgp-gone")
        log.info("started", extra={"vips": len(self.config.vips), "checks": len(self.runners)})
        waited: list[asyncio.Future[Any]] = [reader, stop, gone, self._crashed]
        await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
        status = 0
        if self._crashed.done():
            log.critical("task failed; withdrawing every VIP", exc_info=self._crashed.result())
            status = 1
        elif reader.done() and not reader.cancelled() and reader.exception() is not None:
            log.critical("reading ExaBGP failed", exc_info=reader.exception())
            status = 1
        elif stop.done() and self.config.drain.on_stop and not self.session.closed.is_set():
            await self._drain_before_stop()
        tasks: list[asyncio.Task[Any]] = [*workers, *self._check_tasks.values(), stop]
        for task in tasks:
            task.cancel()
        # bounded: the withdraw below must happen even if some task ignores its cancellation
        _, stuck = await asyncio.wait(tasks, timeout=1.0)
        if stuck:
            log.error("tasks did not stop", extra={"tasks": [t.get_name() for t in stuck]})
        reader = await self._withdraw_everything(reader)
        reader.cancel()
        gone.cancel()
        await asyncio.gather(reader, gone, return_exceptions=True)
        if api is not None:
            await api.cleanup()
        self.session.close()
        return status

    async def _withdraw_everything(self, reader: asyncio.Task[None]) -> asyncio.Task[None]:
        """Withdraw every VIP; return the task reading ExaBGP (a new one if it had died)."""
        if self.session.closed.is_set():
            log.info(
                "ExaBGP is gone; its routes went with it",
                extra={"reason": self.session.close_reason},
            )
            return reader
        if reader.done():  # the reader itself failed: acks need a reader
            reader = asyncio.create_task(self.session.read_forever())
        self.engine.stop(time.monotonic())
        prefixes = [vip.prefix for vip in self.config.vips]
        try:
            unconfirmed = await self.reconciler.withdraw_all(prefixes, SHUTDOWN_WITHDRAW_TIMEOUT_S)
        except (OSError, RuntimeError) as exc:
            log.error("could not withdraw on shutdown", extra={"error": str(exc)})
            return reader
        if unconfirmed:
            log.error("withdraw not confirmed by ExaBGP", extra={"vips": unconfirmed})
        else:
            log.info("withdrew every VIP", extra={"vips": len(prefixes)})
        return reader


async def run_plugin(
    config: Config, channel: LineChannel | None = None, config_path: str | None = None
) -> int:
    plugin = Plugin(config, channel or await StdioChannel.open(), config_path)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, plugin.request_stop, signal.Signals(signum).name)
    loop.add_signal_handler(signal.SIGUSR1, plugin.probe_all_now)
    loop.add_signal_handler(signal.SIGHUP, plugin.reload)
    try:
        return await plugin.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
