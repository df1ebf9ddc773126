"""Composition root of `announcer run`: wiring, and one `asyncio.TaskGroup` that runs it all.

Whatever ends the run (SIGTERM, ExaBGP leaving, an exception in any task), the last-resort path
withdraws every VIP (and every prefix a reload removed or ExaBGP reported) before the process
exits, unless ExaBGP itself is gone (its routes went with it). That path cannot raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from healthchecks import Probe, ProbeResult

from ..api.context import ApiState
from ..api.listener import ConnectionGuard, bind_api_socket, connection_limit, starting_protocol
from ..api.metrics import Metrics
from ..config import Config, load_config
from ..core import (
    Addresses,
    BfdPeers,
    CheckState,
    Drain,
    DrainFile,
    DrainPhase,
    Health,
    Neighbor,
    NeighborState,
    ProbeDone,
    RestoreDrains,
    RibReported,
    Stop,
    Tick,
    Transition,
    evidence_of,
    initial_state,
    next_probe_in,
)
from ..core import Reload as ReloadEvent
from ..core.errors import AnnouncerError
from ..exabgp.pipe import ExabgpSession, LineChannel, StdioChannel
from ..exabgp.reconciler import Reconciler
from ..host.addresses import AddressError, AddressWatcher
from ..host.bfd_status import BfdMonitor
from ..host.secrets import SecretError, read_token
from ..logs import get_logger
from ..probing.build import BrokenProbe, build_all, build_or_broken
from ..probing.scheduler import CheckRunner, Watchers
from ..specs import spec_from_config
from .address_keeper import AddressKeeper
from .drain_store import DrainStore
from .owner import EffectHandlers, StateOwner
from .watchdog import Watchdog

__all__ = ["Plugin", "run_plugin"]

log = get_logger("app")
TICK_S = 0.25
# an API connection quiet this long is closed (Prometheus reconnects for its next scrape)
API_IDLE_S = 10.0
# the API starts once every VIP is decided (loading its web server is a tenth of a second of
# CPU that start-up spends deciding instead), or after this long
API_AFTER_S = 2.0
ADDRESS_DUMP_TIMEOUT_S = 5.0
# a `show adj-rib out` that went unanswered is asked again, backing off to this
RIB_RETRY_FIRST_S = 0.5
RIB_RETRY_MAX_S = 30.0
# ExaBGP sends SIGKILL 2 s after SIGTERM when it stops a helper: finish the withdraw before
SHUTDOWN_WITHDRAW_TIMEOUT_S = 1.5
# ANNOUNCER_FAULT_HOOK=1 lets tests make a task fail on purpose (SIGUSR2): the supervision
# path must then withdraw everything. Off unless that variable is set.
FAULT_HOOK_ENV = "ANNOUNCER_FAULT_HOOK"


class _Finished(Exception):
    """Raised inside the task group to end the run on purpose (stop, ExaBGP gone)."""


class InjectedFault(RuntimeError):
    """The fault hook fired (tests only)."""


def load_token(path: str | None) -> tuple[str | None, bool]:
    """The API token, and whether POSTs may be served at all (not when the file is unusable:
    unreadable, open to other users, or a token too short to be safe)."""
    if path is None:
        return None, True
    try:
        return read_token(path), True
    except SecretError as exc:
        log.error("api.token_file refused; POST endpoints disabled", extra={"error": str(exc)})
        return None, False


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
        self.drain_store = DrainStore(config.drain.state_file, self.metrics.observe_drains_saved)
        self.watchdog = Watchdog()
        self.owner = StateOwner(
            initial_state(spec_from_config(config), time.monotonic()),
            self.reconciler,
            EffectHandlers(
                on_transition=self._on_transition,
                probe_again=self._probe_again,
                restate=self._restate,
                save_drains=self.drain_store.save,
                on_tick=self.watchdog.ping,
            ),
        )
        restored = self.drain_store.load()
        if restored:
            self.owner.apply(RestoreDrains(restored), time.monotonic())
        # BFD state changes go straight to the reducer: announcements to a router wait for
        # the BFD session to it (the gate)
        self.bfd = BfdMonitor(config, lambda up: self.owner.post(BfdPeers(up)))
        self.address_watcher = AddressWatcher(lambda present: self.owner.post(Addresses(present)))
        self.addresses = AddressKeeper(lambda: self.config, self.reconciler)
        self.metrics.attach(self.owner, self.reconciler, lambda: self.session.pending, self.bfd)
        self.metrics.prepare_vips([vip.prefix for vip in config.vips])
        self.runners: dict[str, CheckRunner] = {}
        self.watchers = Watchers()
        self._check_tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._fault: asyncio.Future[None] | None = None
        self._api_cleanup: Callable[[], Awaitable[None]] | None = None
        self._api_socket: socket.socket | None = None
        self._early_api: asyncio.Server | None = None
        token, posts_allowed = load_token(config.api.token_file)
        self.api_state = ApiState(
            self.owner, self.reconciler, self.metrics, lambda: self.session.pending, token, self.bfd
        )
        self.api_state.posts_allowed = posts_allowed
        self.api_state.drain_state = self._drain_state
        self.api_state.reload = self.reload
        self._reload_lock = asyncio.Lock()
        self.stop_requested = asyncio.Event()
        self.stop_reason = ""
        self.exit_status = 0

    # ---------------------------------------------------------------- callbacks
    def _on_result(
        self, check: str, result: ProbeResult, started: float, listener_gone: bool
    ) -> float:
        self.metrics.observe_probe(check, result)
        event = ProbeDone(
            check,
            result.ok,
            result.reason,
            result.detail,
            result.duration_s,
            result.capacity,
            result.metrics.get("active_connections"),
            started,
            listener_gone,
        )
        # the cadence comes from the last published state: the result is folded in by the
        # state task, in order, without the runner waiting for it
        record = self.owner.state.checks.get(check)
        self.owner.post(event)
        spec = self.config.checks.get(check)
        if spec is None:
            return 1.0  # a check a reload removed: its runner is being cancelled
        return next_probe_in(
            record.state if record is not None else CheckState(),
            result.ok,
            evidence_of(result.ok, result.reason, listener_gone),
            spec.interval,
            spec.fast_interval,
            spec.confirm_interval,
        )

    def _drain_state(self) -> dict[str, Any] | None:
        store = self.drain_store
        if store.path is None:
            return None
        return {"file": store.path, "saved": store.saved, "error": store.error}

    def _on_neighbor(self, event: NeighborState) -> None:
        self.owner.post(Neighbor(event.peer, event.state))

    def _on_transition(self, effect: Transition) -> None:
        self.metrics.observe_transition(effect.prefix, effect.old, effect.new)

    def _probe_again(self, checks: tuple[str, ...]) -> None:
        for name in checks:
            runner = self.runners.get(name)
            if runner is not None:
                runner.probe_now()

    def _restate(self) -> None:
        self.reconciler.restate()
        self._spawn(self._ask_rib(), "adj-rib-out")

    def _spawn(self, coroutine: Coroutine[Any, Any, object], name: str) -> None:
        """A short side job; its failure is logged, it never takes the plugin down."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_done)

    def _side_done(self, task: asyncio.Task[Any]) -> None:
        self._side_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "side task failed", extra={"task": task.get_name()}, exc_info=task.exception()
            )

    async def _ask_rib(self) -> None:
        """Ask ExaBGP what it holds; the reducer withdraws whatever this config does not want."""
        delay = RIB_RETRY_FIRST_S
        while (held := await self.session.adj_rib_out()) is None:
            if not self.session.expect_acks:
                log.warning("without acks ExaBGP's adj-rib-out cannot be read; stale routes stay")
                return
            log.warning("cannot read ExaBGP's adj-rib-out; asking again", extra={"in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, RIB_RETRY_MAX_S)
        self.owner.post(RibReported(held))

    def request_stop(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            log.info("stopping", extra={"reason": reason})
            self.stop_requested.set()

    def probe_all_now(self) -> None:
        self._probe_again(tuple(self.runners))

    def inject_fault(self) -> None:
        if self._fault is not None and not self._fault.done():
            self._fault.set_exception(InjectedFault("fault hook (SIGUSR2)"))

    # ---------------------------------------------------------------- checks
    def _used_checks(self, config: Config) -> list[str]:
        return sorted({name for vip in config.vips for name in vip.checks})

    def _start_checks(self, probes: dict[str, Probe]) -> None:
        """Run the given probes (new or changed checks); stop runners no longer wanted."""
        used = set(self._used_checks(self.config))
        for name in list(self.runners):
            if name not in used or name in probes:
                self._check_tasks.pop(name).cancel()
                del self.runners[name]
        assert self._group is not None
        for name in sorted(probes):
            spec = self.config.checks[name]
            runner = CheckRunner(name, spec, probes[name], self._on_result, self.watchers)
            self.runners[name] = runner
            self._check_tasks[name] = self._group.create_task(runner.run(), name=f"check:{name}")

    async def reload(self) -> list[str]:
        """Load the config file again, as a transaction: parse, validate and build every new or
        changed probe first; switch only if all of it succeeded. Returns the problems."""
        if self.config_path is None:
            return ["this plugin was not started from a config file"]
        async with self._reload_lock:
            return await self._reload(self.config_path)

    async def _reload(self, path: str) -> list[str]:
        try:
            # off the event loop: a large file takes seconds to parse, and probes, acks and
            # the API must go on meanwhile (the parse is bounded in size and alias expansion)
            config = await asyncio.to_thread(load_config, path)
            changed = [
                name
                for name in self._used_checks(config)
                if name not in self.runners or self.runners[name].spec != config.checks[name]
            ]
            # the token is re-read, so a rotated one takes effect; an unusable one is refused
            token = read_token(config.api.token_file) if config.api.token_file else None
            probes = await build_all(config.checks, changed)
            # the last step that can fail: assign the addresses of new `manage` VIPs
            await self.addresses.assign_for(config)
        except AnnouncerError as exc:
            problems = exc.problems
            self.metrics.observe_reload(ok=False)
            log.error("reload refused; the running configuration stays", extra={"errors": problems})
            return problems
        # from here on nothing can fail
        if config.api != self.config.api or config.exabgp != self.config.exabgp:
            log.warning("api: and exabgp: changes take effect at the next restart")
        self.config = config
        self.bfd.configure(config)
        self.api_state.token, self.api_state.posts_allowed = token, True
        self.drain_store.path = config.drain.state_file
        self._start_checks(probes)
        await self.owner.submit(ReloadEvent(spec_from_config(config), frozenset(changed)))
        self.metrics.prepare_vips([vip.prefix for vip in config.vips])
        self.metrics.observe_reload(ok=True)
        return []

    def reload_in_background(self) -> None:
        self._spawn(self.reload(), "reload")

    # ---------------------------------------------------------------- tasks
    async def _tick(self) -> None:
        """Time for the reducer, the drain file, and the loop's own lag (a stall of ours)."""
        expected = time.monotonic()
        while True:
            now = time.monotonic()
            self.metrics.observe_loop_lag(max(0.0, now - expected))
            drain_file = self.config.drain.file
            if drain_file is not None:
                present = os.path.exists(drain_file)
                if present != (self.owner.state.drain_file is not None):
                    self.owner.post(
                        DrainFile(present, f"drain file {drain_file} exists", time.time())
                    )
            self.owner.post(Tick())
            expected = time.monotonic() + TICK_S
            await asyncio.sleep(TICK_S)

    async def _read_exabgp(self) -> None:
        await self.session.read_forever()
        raise _Finished(f"ExaBGP: {self.session.close_reason}")

    async def _startup(self) -> None:
        try:
            await self.addresses.assign_for(self.config)
        except AddressError as exc:
            log.critical(str(exc))
            self.exit_status = 2
            raise _Finished("cannot assign the VIP addresses") from None
        if self.config.exabgp.ack == "auto":
            await self.session.enable_acks()
        await self.session.probe_barrier()
        assert self._group is not None
        self._group.create_task(self.address_watcher.run(), name="addresses")
        self._group.create_task(self.addresses.run(), name="address-keeper")
        self._group.create_task(self.reconciler.run(), name="reconciler")
        self._spawn(self._ask_rib(), "adj-rib-out")
        used = self._used_checks(self.config)
        self._start_checks({name: build_or_broken(name, self.config.checks[name]) for name in used})
        broken = [name for name in used if isinstance(self.runners[name].probe, BrokenProbe)]
        if broken:
            log.error(
                "checks whose probe cannot be built fail until fixed", extra={"checks": broken}
            )
        log.info("started", extra={"vips": len(self.config.vips), "checks": len(self.runners)})
        # the checks rise meanwhile; a guarded VIP stays undecided until the addresses are
        # known (the reducer waits for the first report), so nothing is announced before
        self._spawn(self._wait_for_addresses(), "first-addresses")
        # the API once every VIP is decided: its web server is the slowest thing to load (a
        # tenth of a second of CPU, with the event loop blocked), and a cold start's
        # announcements should not wait for it
        self._spawn(self._serve_api_once_settled(), "api")

    async def _wait_for_stop(self) -> None:
        await self.stop_requested.wait()
        if self.config.drain.on_stop and not self.session.closed.is_set():
            await self._drain_before_stop()
        raise _Finished(self.stop_reason)

    async def _wait_for_fault(self) -> None:
        self._fault = asyncio.get_running_loop().create_future()
        await self._fault

    async def _drain_before_stop(self) -> None:
        """drain.on_stop: graceful-shutdown every VIP, wait for the drain, then return."""
        drain = self.config.drain
        await self.owner.submit(
            Drain(None, f"stopping ({self.stop_reason})", "signal", time.time(), persist=False)
        )
        self.stop_requested.clear()  # a second signal cuts the wait short
        deadline = (
            time.monotonic()
            + drain.gshut_period
            + (drain.max_wait if drain.connections_below is not None else 0)
            + 1.0
        )
        while time.monotonic() < deadline:
            vips = self.owner.state.vips
            if all(record.phase is DrainPhase.WITHDRAWN for record in vips.values()):
                break
            if self.stop_requested.is_set() or self.session.closed.is_set():
                break
            await asyncio.sleep(0.1)
        log.info("drained before stopping")

    async def _wait_for_addresses(self) -> None:
        try:
            await asyncio.wait_for(self.address_watcher.ready.wait(), ADDRESS_DUMP_TIMEOUT_S)
        except TimeoutError:
            log.error("cannot read the host's addresses; guarded VIPs stay withdrawn")

    async def _open_api(self) -> None:
        """Bind the API's socket now, and answer `503 starting` on it until the API proper
        takes over: from the first moment no caller is refused."""
        api = self.config.api
        if not api.listen:
            return
        try:
            self._api_socket = bind_api_socket(api.host, api.port)
        except OSError as exc:
            log.error(
                "cannot listen for the API; running without it",
                extra={"listen": api.listen, "error": exc.strerror},
            )
            return
        self._early_api = await asyncio.get_running_loop().create_server(
            starting_protocol(self._start_progress), sock=self._api_socket
        )

    def _start_progress(self) -> dict[str, Any]:
        state = self.owner.state
        checks = [n for n, r in state.checks.items() if r.state.health is Health.UNKNOWN]
        vips = [vip.prefix for vip in state.spec.vips if vip.prefix not in state.desired]
        return {
            "pending": {
                "checks_without_verdict": len(checks),
                "vips_undecided": len(vips),
                "first": (checks + vips)[:10],
            }
        }

    async def _serve_api_once_settled(self) -> None:
        deadline = time.monotonic() + API_AFTER_S
        while time.monotonic() < deadline and not self._decided():
            await asyncio.sleep(0.05)
        await self._serve_api()

    def _decided(self) -> bool:
        """Every check has a verdict and every VIP a decision (a guarded VIP waits for the
        host's addresses)."""
        state = self.owner.state
        return all(
            record.state.health is not Health.UNKNOWN for record in state.checks.values()
        ) and all(vip.prefix in state.desired for vip in state.spec.vips)

    async def _serve_api(self) -> None:
        if self._api_socket is None or self._early_api is None:
            return
        from aiohttp import web  # here: loading it is a tenth of a second of start-up

        from ..api.server import build_app

        runner = web.AppRunner(
            build_app(self.api_state),
            handle_signals=False,
            access_log=None,
            keepalive_timeout=API_IDLE_S,
        )
        await runner.setup()
        assert runner.server is not None
        # each check holds a probe connection and a watcher's: those, and the pipes, stay free
        reserved = 2 * len(self.config.checks) + 64
        guard = ConnectionGuard(runner.server, connection_limit(reserved))
        self.api_state.guard = guard
        # the listening socket passes over without a moment closed: a duplicate keeps it open
        # while the early responder lets go of it (connections wait in its backlog meanwhile)
        handed_over = self._api_socket.dup()
        self._early_api.close()
        server = await asyncio.get_running_loop().create_server(guard, sock=handed_over)

        async def cleanup() -> None:
            server.close()
            guard.close()
            await runner.cleanup()

        self._api_cleanup = cleanup
        log.info(
            "API listening", extra={"listen": self.config.api.listen, "connections": guard.limit}
        )

    async def run(self) -> int:
        """Run until stopped; return the exit status."""
        status = 0
        await self._open_api()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._read_exabgp(), name="exabgp-reader")
                group.create_task(self.owner.run(), name="state")
                group.create_task(self._tick(), name="tick")
                group.create_task(self._startup(), name="startup")
                group.create_task(self._wait_for_stop(), name="stop")
                group.create_task(self.bfd.run(), name="bfd")
                if os.environ.get(FAULT_HOOK_ENV) == "1":
                    group.create_task(self._wait_for_fault(), name="fault-hook")
        except* _Finished as ended:
            log.info("run ended", extra={"reason": str(ended.exceptions[0])})
            status = self.exit_status
        except* Exception as failed:
            log.critical("task failed; withdrawing every VIP", exc_info=failed.exceptions[0])
            status = 1
        finally:
            self._group = None
            await self._last_resort()
            await self.addresses.release_all(self.session.closed.is_set())
            for task in list(self._side_tasks):
                task.cancel()
            self.watchers.close()
            if self._api_cleanup is not None:
                with contextlib.suppress(Exception):
                    await self._api_cleanup()
            if self._early_api is not None:
                self._early_api.close()
            if self._api_socket is not None:
                self._api_socket.close()
            self.session.close()
        return status

    async def _last_resort(self) -> None:
        """Withdraw everything this plugin may have announced. Never raises."""
        try:
            await self._withdraw_everything()
        except Exception:
            log.critical("could not withdraw on shutdown", exc_info=True)

    async def _withdraw_everything(self) -> None:
        if self.session.closed.is_set():
            log.info(
                "ExaBGP is gone; its routes went with it",
                extra={"reason": self.session.close_reason},
            )
            return
        prefixes = {vip.prefix for vip in self.config.vips}
        try:
            state = self.owner.apply(Stop(self.stop_reason or "shutdown"), time.monotonic())
            prefixes |= set(state.desired) | state.retired
        except Exception:  # a broken reducer must not stop the withdraw of what we know
            log.critical(
                "the reducer failed at stop; withdrawing the configured VIPs", exc_info=True
            )
        # the task group cancelled the reader: acks need a reader again
        reader = asyncio.get_running_loop().create_task(self.session.read_forever())
        try:
            unconfirmed = await self.reconciler.withdraw_all(
                sorted(prefixes), SHUTDOWN_WITHDRAW_TIMEOUT_S
            )
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if unconfirmed:
            log.error("withdraw not confirmed by ExaBGP", extra={"vips": unconfirmed})
        else:
            log.info("withdrew every VIP", extra={"vips": len(prefixes)})


async def run_plugin(
    config: Config, channel: LineChannel | None = None, config_path: str | None = None
) -> int:
    plugin = Plugin(config, channel or await StdioChannel.open(), config_path)
    loop = asyncio.get_running_loop()
    handlers = {
        signal.SIGTERM: lambda: plugin.request_stop("SIGTERM"),
        signal.SIGINT: lambda: plugin.request_stop("SIGINT"),
        signal.SIGUSR1: plugin.probe_all_now,
        signal.SIGHUP: plugin.reload_in_background,
    }
    if os.environ.get(FAULT_HOOK_ENV) == "1":
        handlers[signal.SIGUSR2] = plugin.inject_fault
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:
        return await plugin.run()
    finally:
        for signum in handlers:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
