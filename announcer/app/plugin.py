"""Composition root of `announcer run`: wiring, and one `asyncio.TaskGroup` that runs it all.

Whatever ends the run (SIGTERM, ExaBGP leaving, an exception in any task), the last-resort path
withdraws every VIP (and every prefix a reload removed or ExaBGP reported) before the process
exits, unless ExaBGP itself is gone (its routes went with it). That path cannot raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from collections.abc import Coroutine
from typing import Any

from healthchecks import ProbeResult

from ..api.context import ApiState
from ..api.metrics import Metrics
from ..config import Config
from ..core import (
    Addresses,
    BfdPeers,
    Neighbor,
    NeighborState,
    ProbeDone,
    RestoreDrains,
    Started,
    Transition,
    initial_state,
)
from ..core import Reload as ReloadEvent
from ..core.errors import AnnouncerError
from ..exabgp.pipe import ExabgpSession, LineChannel, StdioChannel
from ..exabgp.reconciler import Reconciler
from ..host.addresses import AddressError, AddressWatcher
from ..host.bfd_status import BfdMonitor
from ..logs import get_logger
from ..probing.build import BrokenProbe, build_or_broken
from ..secrets import SecretError, read_token
from ..specs import spec_from_config
from .address_keeper import AddressKeeper
from .api_lifecycle import ApiLifecycle
from .checks import RunningChecks, used_checks
from .drain_store import DrainStore
from .owner import EffectHandlers, StateOwner
from .reload import Prepared, prepare
from .rib import ask_adj_rib_out
from .shutdown import drain_before_stop, withdraw_everything
from .slot_keeper import SlotKeeper
from .ticker import tick_forever
from .watchdog import Watchdog

__all__ = ["Plugin", "run_plugin"]

log = get_logger("app")
ADDRESS_DUMP_TIMEOUT_S = 5.0
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


GC_YOUNG_THRESHOLD = 100_000


def freeze_long_lived() -> None:
    """What start-up (or a reload) built lives as long as the plugin: the configuration, the
    probes, the runners, the metrics' series. Out of the cyclic collector's sight (gc.freeze),
    a full collection no longer walks all of it every few seconds: with ten thousand checks
    that walk took a second, during which every probe in flight timed out."""
    gc.collect()
    gc.freeze()
    # the objects a second of probing allocates and drops (results, futures, states) are
    # freed by reference counting; the collector need not look at them every 700
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 50)


class Plugin:
    """Wiring and lifecycle: builds the pieces, runs them in one task group, switches a
    prepared reload, and ends every run with the last-resort withdraw."""

    def __init__(
        self,
        config: Config,
        channel: LineChannel,
        config_path: str | None = None,
        tune_gc: bool = False,
    ) -> None:
        self.config = config
        self.config_path = config_path
        # the process is the plugin's own (not a test's): its collector may be tuned
        self._tune_gc = tune_gc
        self.metrics = Metrics()
        self.session = ExabgpSession(
            channel,
            expect_acks=config.exabgp.ack != "off",
            ack_timeout_s=config.exabgp.ack_timeout,
            on_neighbor=self._on_neighbor,
            on_line=self.metrics.observe_line,
            on_fleet=lambda message: self.owner.post(message),
        )
        self.reconciler = Reconciler(self.session, on_commands=self.metrics.observe_command)
        self.drain_store = DrainStore(config.drain.state_file, self.metrics.observe_drains_saved)
        self.watchdog = Watchdog()
        self.checks = RunningChecks(self._on_result)
        self._drained = asyncio.Event()
        self.slots = SlotKeeper(lambda: self.config, lambda event: self.owner.post(event))
        self.owner = StateOwner(
            initial_state(spec_from_config(config), time.monotonic()),
            self.reconciler,
            EffectHandlers(
                on_transition=self._on_transition,
                next_probe=self.checks.next_probe,
                probe_again=self.checks.probe_now,
                restate=self._restate,
                save_drains=self.drain_store.save,
                on_tick=self.watchdog.ping,
                drained=self._drained.set,
                drain_answered=lambda effect: self.api_state.answer_drain(effect),
                on_state=self.slots.publish,
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
        self._group: asyncio.TaskGroup | None = None
        self._side_tasks: set[asyncio.Task[Any]] = set()
        self._fault: asyncio.Future[None] | None = None
        token, posts_allowed = load_token(config.api.token_file)
        self.api_state = ApiState(
            self.owner, self.reconciler, self.metrics, lambda: self.session.pending, token, self.bfd
        )
        self.api_state.posts_allowed = posts_allowed
        self.api_state.drain_state = self._drain_state
        self.api_state.reload = self.reload
        self.api_state.slots = lambda: self.slots.document(self.owner.state)
        self.api_state.hand_over = lambda slots, force: self.slots.hand_over(
            self.owner.state, slots, force
        )
        self.api = ApiLifecycle(config.api, self.api_state, lambda: self.owner.state)
        self._reload_lock = asyncio.Lock()
        self.stop_requested = asyncio.Event()
        self.stop_reason = ""
        self.exit_status = 0

    # ---------------------------------------------------------------- callbacks
    def _on_result(
        self, check: str, result: ProbeResult, started: float, listener_gone: bool
    ) -> None:
        """A probe's result: its metrics, and the event (the reducer answers with the time
        of the check's next probe, `NextProbe`)."""
        self.metrics.observe_probe(check, result)
        self.owner.post(
            ProbeDone(
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

    def _restate(self) -> None:
        self.reconciler.restate()
        self._spawn(ask_adj_rib_out(self.session, self.owner.post), "adj-rib-out")

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

    def request_stop(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self.stop_reason = reason
            log.info("stopping", extra={"reason": reason})
            self.stop_requested.set()

    def probe_all_now(self) -> None:
        self.checks.probe_now()

    def inject_fault(self) -> None:
        if self._fault is not None and not self._fault.done():
            self._fault.set_exception(InjectedFault("fault hook (SIGUSR2)"))

    # ---------------------------------------------------------------- reload
    async def reload(self) -> list[str]:
        """Load the config file again, as a transaction (`reload.prepare`: everything that can
        fail, first); switch only if all of it succeeded. Returns the problems."""
        if self.config_path is None:
            return ["this plugin was not started from a config file"]
        async with self._reload_lock:
            try:
                prepared = await prepare(self.config_path, self.checks, self.addresses.assign_for)
            except AnnouncerError as exc:
                self.metrics.observe_reload(ok=False)
                log.error(
                    "reload refused; the running configuration stays",
                    extra={"errors": exc.problems},
                )
                return exc.problems
            await self._switch(prepared)
            return []

    async def _switch(self, prepared: Prepared) -> None:
        """The reload's second half: nothing here can fail."""
        config = prepared.config
        if config.api != self.config.api or config.exabgp != self.config.exabgp:
            log.warning("api: and exabgp: changes take effect at the next restart")
        self.config = config
        self.bfd.configure(config)
        self.api_state.token, self.api_state.posts_allowed = prepared.token, True
        self.drain_store.path = config.drain.state_file
        # the old runners stop before the reducer resets their checks, and the new start
        # after: no result of one definition is counted for the other
        self.checks.stop_unwanted(config, prepared.changed)
        await self.owner.submit(ReloadEvent(spec_from_config(config), frozenset(prepared.changed)))
        if self._group is not None:
            self.checks.start(self._group, config, prepared.probes)
        else:  # the run is ending
            for probe in prepared.probes.values():
                await probe.close()
        self.metrics.prepare_vips([vip.prefix for vip in config.vips])
        self.metrics.observe_reload(ok=True)
        if self._tune_gc:
            freeze_long_lived()

    def reload_in_background(self) -> None:
        self._spawn(self.reload(), "reload")

    # ---------------------------------------------------------------- tasks
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
        self._spawn(ask_adj_rib_out(self.session, self.owner.post), "adj-rib-out")
        used = used_checks(self.config)
        pools = self.checks.pools
        probes = {name: build_or_broken(name, self.config.checks[name], pools) for name in used}
        self.checks.start(self._group, self.config, probes)
        broken = [name for name, probe in probes.items() if isinstance(probe, BrokenProbe)]
        if broken:
            log.error(
                "checks whose probe cannot be built fail until fixed", extra={"checks": broken}
            )
        if self._tune_gc:
            freeze_long_lived()
        # building and starting ten thousand checks takes a second, with no event folded
        # meanwhile: that was start-up, not a stall of the plugin (which would re-probe all)
        self.owner.post(Started())
        log.info("started", extra={"vips": len(self.config.vips), "checks": len(self.checks)})
        # the checks rise meanwhile; a guarded VIP stays undecided until the addresses are
        # known (the reducer waits for the first report), so nothing is announced before
        self._spawn(self._wait_for_addresses(), "first-addresses")
        # each check holds a probe connection and a watcher's: those, and the pipes, stay free
        reserved = 2 * len(self.config.checks) + 64
        self._spawn(self.api.serve_once_settled(reserved), "api")

    async def _wait_for_stop(self) -> None:
        await self.stop_requested.wait()
        if self.config.drain.on_stop and not self.session.closed.is_set():
            self.stop_requested.clear()  # a second signal cuts the drain short
            await drain_before_stop(
                self.owner,
                self.owner.state.spec.policy.drain,
                self.stop_reason,
                self._drained,
                self.stop_requested,
                self.session.closed,
            )
        raise _Finished(self.stop_reason)

    async def _wait_for_fault(self) -> None:
        self._fault = asyncio.get_running_loop().create_future()
        await self._fault

    async def _wait_for_addresses(self) -> None:
        try:
            await asyncio.wait_for(self.address_watcher.ready.wait(), ADDRESS_DUMP_TIMEOUT_S)
        except TimeoutError:
            log.error("cannot read the host's addresses; guarded VIPs stay withdrawn")

    async def run(self) -> int:
        """Run until stopped; return the exit status."""
        status = 0
        await self.api.open()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                group.create_task(self._read_exabgp(), name="exabgp-reader")
                group.create_task(self.owner.run(), name="state")
                ticks = tick_forever(
                    lambda: self.config,
                    lambda: self.owner.state,
                    self.owner.post,
                    self.metrics.observe_loop_lag,
                )
                group.create_task(ticks, name="tick")
                group.create_task(self._startup(), name="startup")
                group.create_task(self._wait_for_stop(), name="stop")
                group.create_task(self.bfd.run(), name="bfd")
                group.create_task(self.slots.run(), name="slots")
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
            self.slots.let_go()  # first: keepalived hands the slots over in milliseconds
            await withdraw_everything(
                self.owner,
                self.reconciler,
                self.session,
                {vip.prefix for vip in self.config.vips},
                self.stop_reason or "shutdown",
            )
            await self.addresses.release_all(self.session.closed.is_set())
            for task in list(self._side_tasks):
                task.cancel()
            self.checks.close()
            await self.api.close()
            self.session.close()
        return status


async def run_plugin(
    config: Config, channel: LineChannel | None = None, config_path: str | None = None
) -> int:
    # on ExaBGP's pipes the process is the plugin's own (`announcer run`)
    own = channel is None
    plugin = Plugin(config, channel or await StdioChannel.open(), config_path, tune_gc=own)
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
