"""The reducer: `step(state, event, now) -> (state, effects)`, where every decision is made.

One immutable `State` holds everything the plugin knows: each check's hysteresis and last
result, each VIP's decision, dampening, drain and weight, the neighbors, and the **full**
desired route set that the reconciler makes ExaBGP hold. Events come from the shell (probe
results, ticks, operator requests, reloads of an already built config, ExaBGP neighbor events,
stop); effects go back to it (log lines, metric transitions, "probe again", "re-state", "save
the drains"). Time is always passed in; nothing here sleeps, reads a clock or does I/O.

Fail-closed rules that live here and nowhere else:
- a VIP is announced only while enough of its checks are UP with a fresh verdict; an UP older
  than its TTL, or an UNKNOWN that lasts longer than it, counts as DOWN;
- a gap between events longer than `Policy.stall_after_s` is the plugin's own stall: verdicts do
  not age by it, failures of probes that started before it are not counted, and every check is
  probed again at once;
- after `Stop`, every VIP (and every prefix a reload removed or ExaBGP reported) is withdrawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from .addresses import AddressGuard
from .chunked import ChunkedEditor, ChunkedMap
from .dampening import Dampening, current, record_flap
from .drain import DrainPhase, drain_phase
from .fleet import (
    SOFT_REASONS,
    AddPathNegotiated,
    FleetCount,
    RouterView,
    RoutesReceived,
    Threshold,
    count_fleet,
    family_of,
    only_transient,
    updated_view,
)
from .hysteresis import (
    CheckState,
    Health,
    effective_health,
    evidence_of,
    next_probe_in,
    shifted,
    ttl_expiry,
)
from .hysteresis import step as fold_result
from .model import Decision, Reason, Route, Verdict
from .policy import decide, finalize
from .routes import build_route
from .spec import Spec, VipSpec
from .weight import quantise

__all__ = [
    "UNDECIDED",
    "Addresses",
    "BfdPeers",
    "CheckChanged",
    "CheckRecord",
    "Drain",
    "DrainAnswered",
    "DrainEntry",
    "DrainFile",
    "Drained",
    "Effect",
    "Event",
    "LastProbe",
    "Level",
    "Log",
    "Neighbor",
    "NextProbe",
    "ProbeAgain",
    "ProbeDone",
    "Reload",
    "Restate",
    "RestoreDrains",
    "RestoredDrain",
    "RibReported",
    "SaveDrains",
    "Started",
    "State",
    "Stop",
    "Tick",
    "Transition",
    "Undrain",
    "VipRecord",
    "initial_state",
    "step",
]

UNDECIDED = Decision(Verdict.UNDECIDED, Reason.WAITING_FOR_CHECKS)
_HEALTHY = Decision(Verdict.ANNOUNCE, Reason.HEALTHY)
_CHECKS_DOWN = Decision(Verdict.WITHDRAW, Reason.CHECKS_DOWN)
_PANIC = Decision(Verdict.ANNOUNCE, Reason.PANIC)


# ------------------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class ProbeDone:
    check: str
    ok: bool
    reason: str = "ok"
    detail: str = ""
    duration_s: float = 0.0
    capacity: float | None = None
    active_connections: float | None = None
    started_at: float | None = None  # monotonic; a failure that began before a stall is void
    # the endpoint's watcher saw its held connection end and a new one refused (and has not
    # connected since): a refusal is then certain evidence that nothing listens
    listener_gone: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: TTLs, drains, dampening and hold-downs move on."""


@dataclass(frozen=True, slots=True)
class Started:
    """The state task is running, or the plugin's start-up is over: the time before it is no
    stall of ours."""


@dataclass(frozen=True, slots=True)
class Drain:
    vips: tuple[str, ...] | None  # None: every VIP
    reason: str = ""
    source: str = "api"
    wall: float = 0.0  # for people only
    persist: bool = True
    # an operator's request under the VIPs' drain budget (`fleet.drain_min_serving`): granted
    # or refused by `DrainAnswered(request)`. Without it (forced, the drain file, a stop) the
    # drain starts at once.
    budget: bool = False
    request: int = 0


@dataclass(frozen=True, slots=True)
class Undrain:
    vips: tuple[str, ...] | None
    source: str = "api"


@dataclass(frozen=True, slots=True)
class DrainFile:
    present: bool
    reason: str = "drain file exists"
    wall: float = 0.0


@dataclass(frozen=True, slots=True)
class RestoredDrain:
    prefix: str
    reason: str
    source: str
    since_wall: float
    completed: bool


@dataclass(frozen=True, slots=True)
class RestoreDrains:
    """Drains read from the state file at start-up."""

    drains: tuple[RestoredDrain, ...]


@dataclass(frozen=True, slots=True)
class Reload:
    """A new configuration, already validated and with every probe built (the shell's
    transaction): it can no longer fail. `reset_checks` are checks whose probe changed."""

    spec: Spec
    reset_checks: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Neighbor:
    peer: str
    state: str  # up | down | connected


@dataclass(frozen=True, slots=True)
class RibReported:
    """The prefixes ExaBGP holds in its adj-rib-out (asked at start and on session up)."""

    prefixes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Addresses:
    """Every address assigned to a local interface (from netlink: the whole set, each time)."""

    present: frozenset[str]


@dataclass(frozen=True, slots=True)
class BfdPeers:
    """The BGP peers whose BFD session is up right now (from bfdd: the whole set, each time;
    empty while bfdd cannot be reached)."""

    up: frozenset[str]


@dataclass(frozen=True, slots=True)
class Keepalived:
    """Whether keepalived runs (stable next hops with its pid file: on every change)."""

    running: bool


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str = ""


Event = (
    ProbeDone
    | Tick
    | Started
    | Drain
    | Undrain
    | DrainFile
    | RestoreDrains
    | Reload
    | Neighbor
    | RibReported
    | Addresses
    | BfdPeers
    | Keepalived
    | RoutesReceived
    | AddPathNegotiated
    | Stop
)


# ----------------------------------------------------------------------------------- effects
class Level(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Log:
    level: Level
    message: str
    fields: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class Transition:
    prefix: str
    old: Decision
    new: Decision


@dataclass(frozen=True, slots=True)
class CheckChanged:
    check: str
    old: Health
    new: Health
    reason: str
    detail: str
    evidence: str = "weak"  # how strongly the deciding result spoke (hysteresis.Evidence)


@dataclass(frozen=True, slots=True)
class NextProbe:
    """Probe `check` again at `at` (monotonic), the cadence after its probe that started at
    `after`: one for every result of a configured check."""

    check: str
    after: float
    at: float


@dataclass(frozen=True, slots=True)
class ProbeAgain:
    checks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Restate:
    """Forget what ExaBGP acknowledged and send the whole desired set again."""


@dataclass(frozen=True, slots=True)
class Drained:
    """Every VIP's drain has reached its withdraw (drain-before-stop waits for this)."""


@dataclass(frozen=True, slots=True)
class DrainAnswered:
    """The answer to a `Drain` request: granted (every VIP drains) or refused (none does),
    and for a refusal, per VIP, why."""

    request: int
    granted: bool
    refused: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SaveDrains:
    drains: tuple[tuple[str, DrainEntry], ...]  # only those to persist


Effect = (
    NextProbe
    | Log
    | Transition
    | CheckChanged
    | ProbeAgain
    | Restate
    | SaveDrains
    | Drained
    | DrainAnswered
)


# ------------------------------------------------------------------------------------- state
@dataclass(frozen=True, slots=True)
class LastProbe:
    ok: bool
    reason: str
    detail: str
    duration_s: float
    at: float
    capacity: float | None = None
    active_connections: float | None = None


@dataclass(frozen=True, slots=True)
class CheckRecord:
    state: CheckState
    effective: Health = Health.UNKNOWN  # what the last decision used (TTL applied)
    last: LastProbe | None = None


@dataclass(frozen=True, slots=True)
class DrainEntry:
    reason: str
    source: str
    since_wall: float
    requested_at: float  # monotonic: the phases are timed from here
    persist: bool = True
    completed: bool = False  # once withdrawn, it stays withdrawn (busy connections or not)
    # a drain under a budget: announced DRAIN_PENDING until then, then granted or dropped
    pending_until: float | None = None
    request: int = 0


@dataclass(frozen=True, slots=True)
class VipRecord:
    decision: Decision = UNDECIDED
    health: Verdict = Verdict.UNDECIDED  # the checks' last decided verdict, for dampening
    dampening: Dampening = field(default_factory=Dampening)
    withdrawn_at: float | None = None
    weight: float | None = None
    phase: DrainPhase = DrainPhase.NONE
    changed_at: float | None = None
    soft_since: float | None = None  # the checks have failed softly since (with a fleet)
    panic_clear_since: float | None = None  # in panic, and enough others serve since


@dataclass(frozen=True, slots=True)
class State:
    spec: Spec
    checks: Mapping[str, CheckRecord]
    vips: Mapping[str, VipRecord]
    desired: Mapping[str, Route | None]  # the full set; a prefix missing is undecided
    drains: Mapping[str, DrainEntry] = field(default_factory=dict)
    drain_file: DrainEntry | None = None
    neighbors: Mapping[str, str] = field(default_factory=dict)
    retired: frozenset[str] = frozenset()  # to withdraw: removed by reload, left by others
    stopping: bool = False
    addresses: frozenset[str] | None = None  # the host's addresses; None until first reported
    last_event_at: float | None = None
    resumed_at: float = float("-inf")  # failures of probes started before this do not count
    stalls: int = 0
    last_stall_s: float = 0.0
    # VIPs whose decision can change with time alone (drain, dampening decay, hold-down)
    timed: frozenset[str] = frozenset()
    # no check's effective health changes with time alone before this (monotonic; -inf:
    # look at the next tick): the tick scans every check's TTL only from then on
    ttl_due_at: float = -math.inf
    bfd_up: frozenset[str] = frozenset()  # peers whose BFD session bfdd reports up
    fleet: Mapping[str, RouterView] = field(default_factory=dict)  # per router: its paths
    # stable next hops: whether keepalived runs (None: not watched, or not reported yet)
    keepalived: bool | None = None

    @property
    def withheld(self) -> frozenset[str]:
        """Peers that get nothing from this host now: their BFD session is not up (or bfdd
        is not answering), so they could not see this host die. Fail closed: at start, until
        bfdd says up."""
        return self.spec.bfd_gated - self.bfd_up

    def drain_of(self, prefix: str) -> DrainEntry | None:
        return self.drains.get(prefix) or self.drain_file

    def neighbor_states(self) -> dict[str, str]:
        """Every configured peer, "idle" until ExaBGP reports a state (a wrong password or a
        router that never answers gets no further), and any other peer ExaBGP reported."""
        return {peer: "idle" for peer in self.spec.neighbors} | dict(self.neighbors)


def initial_state(spec: Spec, now: float) -> State:
    checks = ChunkedMap.of({name: CheckRecord(CheckState(since=now)) for name in spec.checks})
    vips = ChunkedMap.of({vip.prefix: VipRecord() for vip in spec.vips})
    return State(spec=spec, checks=checks, vips=vips, desired={}, last_event_at=now)


# -------------------------------------------------------------------------------- the reducer
class _Step:
    """Accumulates one step's changes; each table is copied at most once, on first write."""

    def __init__(self, state: State, now: float) -> None:
        self.state = state
        self.now = now
        self.effects: list[Effect] = []
        self.checks: ChunkedEditor[str, CheckRecord] | None = None
        self.vips: ChunkedEditor[str, VipRecord] | None = None
        self.desired: dict[str, Route | None] | None = None
        self.drains: dict[str, DrainEntry] | None = None
        self.drain_file = state.drain_file
        self.timed: set[str] | None = None
        self.drains_changed = False
        # a drain was asked for, or reached its withdraw: see whether every VIP is drained
        self.drain_progressed = False
        # the state's other fields, as this step leaves them (written by the handlers)
        self.spec = state.spec
        self.stopping = state.stopping
        self.retired = state.retired
        self.addresses = state.addresses
        self.neighbors = state.neighbors
        self.bfd_up = state.bfd_up
        self.fleet = state.fleet
        self.keepalived = state.keepalived
        self.resumed_at = state.resumed_at
        self.stalls = state.stalls
        self.last_stall_s = state.last_stall_s
        self.ttl_due_at = state.ttl_due_at
        # VIPs of a check whose effective health changed while deciding another VIP
        self.stale: set[str] = set()
        # the VIPs of the current round of `decide` not decided yet (the one being decided
        # among them): they will see a changed effective health without being marked stale
        self._ahead: set[str] = set()

    # copy-on-write accessors
    def w_checks(self) -> MutableMapping[str, CheckRecord]:
        # every probe result writes its check's record: the table is a ChunkedMap, whose
        # editor copies the chunk written to, not the whole table (O(sqrt N) a step)
        if self.checks is None:
            self.checks = ChunkedMap.of(self.state.checks).editor()
        return self.checks

    def w_vips(self) -> MutableMapping[str, VipRecord]:
        if self.vips is None:
            self.vips = ChunkedMap.of(self.state.vips).editor()
        return self.vips

    def w_desired(self) -> dict[str, Route | None]:
        if self.desired is None:
            self.desired = dict(self.state.desired)
        return self.desired

    def w_drains(self) -> dict[str, DrainEntry]:
        if self.drains is None:
            self.drains = dict(self.state.drains)
        return self.drains

    def w_timed(self) -> set[str]:
        if self.timed is None:
            self.timed = set(self.state.timed)
        return self.timed

    def r_checks(self) -> Mapping[str, CheckRecord]:
        return self.checks if self.checks is not None else self.state.checks

    def r_vips(self) -> Mapping[str, VipRecord]:
        return self.vips if self.vips is not None else self.state.vips

    def r_drains(self) -> Mapping[str, DrainEntry]:
        return self.drains if self.drains is not None else self.state.drains

    def log(self, level: Level, message: str, **fields: object) -> None:
        self.effects.append(Log(level, message, tuple(fields.items())))

    def save_drains_if_changed(self) -> None:
        """One SaveDrains per event that changed a drain (the end of each event's step)."""
        if self.drains_changed:
            self.drains_changed = False
            drains = self.r_drains()
            self.effects.append(
                SaveDrains(
                    tuple(
                        (p, d)
                        for p, d in sorted(drains.items())
                        if d.persist and d.pending_until is None
                    )
                )
            )

    def end_of_event(self) -> None:
        """The effects owed once per event: the drains to save, and `Drained` when a drain
        asked for, or one that reached its withdraw, leaves every VIP withdrawn."""
        self.save_drains_if_changed()
        if self.drain_progressed:
            self.drain_progressed = False
            if all(record.phase is DrainPhase.WITHDRAWN for record in self.r_vips().values()):
                self.effects.append(Drained())

    def finish(self) -> tuple[State, tuple[Effect, ...]]:
        state = self.state
        self.end_of_event()
        desired = self.desired
        # a table nobody wrote is the same object as before: the owner compares by identity
        # to see whether the reconciler must look again
        new = State(
            spec=self.spec,
            checks=state.checks if self.checks is None else self.checks.freeze(),
            vips=state.vips if self.vips is None else self.vips.freeze(),
            desired=state.desired if desired is None or desired == state.desired else desired,
            drains=state.drains if self.drains is None else self.drains,
            drain_file=self.drain_file,
            neighbors=self.neighbors,
            retired=self.retired,
            stopping=self.stopping,
            addresses=self.addresses,
            last_event_at=self.now,
            resumed_at=self.resumed_at,
            stalls=self.stalls,
            last_stall_s=self.last_stall_s,
            timed=state.timed if self.timed is None else frozenset(self.timed),
            ttl_due_at=self.ttl_due_at,
            bfd_up=self.bfd_up,
            fleet=self.fleet,
            keepalived=self.keepalived,
        )
        return new, tuple(self.effects)

    # ------------------------------------------------------------------------ decisions

    def _active_connections(self) -> float | None:
        name = self.spec.policy.connections_check
        record = self.r_checks().get(name) if name else None
        return record.last.active_connections if record and record.last else None

    def _phase(self, entry: DrainEntry | None) -> DrainPhase:
        """Where a drain is now (pure: `_remember_withdrawn` records the end)."""
        if entry is None:
            return DrainPhase.NONE
        if entry.completed:
            return DrainPhase.WITHDRAWN
        if entry.pending_until is not None:
            return DrainPhase.NONE  # not granted yet: serving as before
        return drain_phase(
            entry.requested_at, self.now, self.spec.policy.drain, self._active_connections()
        )

    def _remember_withdrawn(self, prefix: str, entry: DrainEntry) -> None:
        """A drain that reached its withdraw stays there: connections coming back must not
        re-announce a drained VIP."""
        done = replace(entry, completed=True)
        if prefix in self.r_drains():
            self.w_drains()[prefix] = done
            self.drains_changed = True
        elif entry is self.drain_file:
            self.drain_file = done

    def _effective(self, name: str) -> Health:
        record = self.r_checks().get(name)
        spec = self.spec.checks.get(name)
        if record is None or spec is None:
            return Health.DOWN
        health = effective_health(record.state, self.now, spec.ttl_s)
        if health is not record.effective:
            self.w_checks()[name] = CheckRecord(record.state, health, record.last)
            # every VIP of this check must see the change, not only the one being decided:
            # those decided before it in this round are decided again
            ahead = self._ahead
            self.stale.update(p for p in self.spec.vips_of_check.get(name, ()) if p not in ahead)
        return health

    def decide(self, prefixes: Iterable[str]) -> None:
        """Decide these VIPs again, in configuration order: the same events always give the
        same command stream, whatever order a set of prefixes happens to iterate in."""
        spec = self.spec
        todo = {prefix for prefix in prefixes if prefix in spec.position}
        while todo:
            self._ahead = set(todo)
            for prefix in sorted(todo, key=spec.position.__getitem__):
                self._decide_vip(spec.by_prefix[prefix])
                self._ahead.discard(prefix)
            # a check's health changes at most once per step (one `now`): this ends
            todo, self.stale = {p for p in self.stale if p in spec.position}, set()
        self._ahead = set()

    def _decide_vip(self, vip: VipSpec) -> None:
        prefix = vip.prefix
        before = self.r_vips().get(prefix) or VipRecord()
        health = decide(vip.required, [self._effective(name) for name in vip.checks])
        if vip.address is not AddressGuard.IGNORE and self.addresses is None:
            health = UNDECIDED  # the host's addresses are not known yet: leave ExaBGP alone
        damp, health_verdict = self._dampen(prefix, before, health.verdict)
        entry = self.r_drains().get(prefix) or self.drain_file
        phase = self._phase(entry)
        if phase is DrainPhase.WITHDRAWN and entry is not None and not entry.completed:
            self._remember_withdrawn(prefix, entry)
        decision = finalize(
            health,
            phase,
            damp.suppressed,
            self._held_down(before),
            self.stopping,
            self._address_missing(vip),
            self.keepalived is False and bool(vip.route.paths),
        )
        if entry is not None and entry.pending_until is not None and decision == _HEALTHY:
            decision = Decision(Verdict.ANNOUNCE, Reason.DRAIN_PENDING)
        decision, soft_since, clear_since = self._fleet_guard(vip, before, decision)
        weight = self._weight(vip, before.weight)
        self._record(
            prefix, before, decision, health_verdict, damp, weight, phase, soft_since, clear_since
        )
        is_timed = (
            entry is not None
            or damp.penalty > 0
            or decision.reason is Reason.HOLD_DOWN
            or decision.reason is Reason.SOFT_FAILING
            or clear_since is not None
        )
        if is_timed != (prefix in (self.timed if self.timed is not None else self.state.timed)):
            (self.w_timed().add if is_timed else self.w_timed().discard)(prefix)
        self._set_desired(prefix, decision, vip, weight)

    # ----------------------------------------------------------------------- the fleet
    def fleet_count(self, prefix: str, rank: bool = False) -> FleetCount | None:
        fleet = self.spec.fleet
        if fleet is None:
            return None
        return count_fleet(self.fleet, self.spec.neighbors, prefix, fleet.host_id, rank)

    def _soft(self, vip: VipSpec) -> bool:
        """Every check of the VIP that is not UP failed softly last time: the load balancer
        answered, and its health said no (`SOFT_REASONS`)."""
        records = self.r_checks()
        for name in vip.checks:
            record = records.get(name)
            if record is None:
                return False
            if record.effective is Health.UP:
                continue
            last = record.last
            if last is None or not (last.ok or last.reason in SOFT_REASONS):
                return False
        return True

    def _fleet_guard(
        self, vip: VipSpec, before: VipRecord, decision: Decision
    ) -> tuple[Decision, float | None, float | None]:
        """A withdraw for soft check failures, weighed against the fleet (`fleet.min_serving`):
        first announce FAILING for `settle_s`, so that hosts failing at the same instant see
        each other; then withdraw if enough others serve normally, else keep serving in PANIC,
        which ends only once enough others have served for `panic_exit_s`. Anything else, or a
        view no router gives, decides as without a fleet. Returns the decision, since when the
        checks fail softly, and since when a panic could end."""
        fleet, threshold = self.spec.fleet, vip.fleet.min_serving
        if fleet is None or threshold is None or decision != _CHECKS_DOWN or not self._soft(vip):
            return decision, None, None
        now = self.now
        soft_since = before.soft_since if before.soft_since is not None else now
        count = self.fleet_count(vip.prefix)
        was = before.decision
        if count is None:
            if was.reason is Reason.PANIC and only_transient(
                self.fleet, self.spec.neighbors, family_of(vip.prefix)
            ):
                return _PANIC, soft_since, None  # a router restarting: hold until it is known
            return decision, soft_since, None
        if (
            was.verdict is Verdict.ANNOUNCE
            and was.reason is not Reason.PANIC
            and now - soft_since < fleet.settle_s
        ):
            return Decision(Verdict.ANNOUNCE, Reason.SOFT_FAILING), soft_since, None
        if count.normal < threshold.need(count.size):
            if was.reason is not Reason.PANIC:
                self.log(
                    Level.WARNING,
                    f"vip {vip.prefix}: checks fail softly and too few hosts serve it: "
                    "panic, still announced",
                    vip=vip.prefix,
                    serving=count.normal,
                    need=threshold.need(count.size),
                    router=count.router,
                )
            return _PANIC, soft_since, None
        if was.reason is Reason.PANIC:
            clear = before.panic_clear_since if before.panic_clear_since is not None else now
            if now - clear < fleet.panic_exit_s:
                return _PANIC, soft_since, clear
        return decision, soft_since, None

    def _dampen(
        self, prefix: str, before: VipRecord, verdict: Verdict
    ) -> tuple[Dampening, Verdict]:
        """The VIP's flap record after the checks' verdict, decayed to now, and the verdict it
        remembers (an undecided verdict changes neither)."""
        policy = self.spec.policy.dampening
        damp, remembered = before.dampening, before.health
        if verdict is not Verdict.UNDECIDED:
            # as in BGP route flap damping, a withdrawal is what costs: coming back is free
            if (
                policy is not None
                and before.health is Verdict.ANNOUNCE
                and verdict is Verdict.WITHDRAW
            ):
                was_suppressed = damp.suppressed
                damp = record_flap(damp, self.now, policy)
                if damp.suppressed and not was_suppressed:
                    self.log(
                        Level.WARNING,
                        f"vip {prefix} suppressed: flapping",
                        vip=prefix,
                        penalty=round(damp.penalty),
                    )
            remembered = verdict
        if policy is not None:
            damp = current(damp, self.now, policy)
        return damp, remembered

    def _held_down(self, before: VipRecord) -> bool:
        """Within `min_announce_interval` of the VIP's last withdraw: not announced yet."""
        interval = self.spec.policy.min_announce_interval_s
        return (
            interval > 0
            and (
                before.decision.verdict is Verdict.WITHDRAW
                or before.decision.reason is Reason.HOLD_DOWN
            )
            and before.withdrawn_at is not None
            and self.now - before.withdrawn_at < interval
        )

    def _record(
        self,
        prefix: str,
        before: VipRecord,
        decision: Decision,
        health: Verdict,
        damp: Dampening,
        weight: float | None,
        phase: DrainPhase,
        soft_since: float | None = None,
        panic_clear_since: float | None = None,
    ) -> None:
        """Store the VIP's new record; a changed decision is a `Transition`."""
        now = self.now
        record = VipRecord(
            decision=decision,
            health=health,
            dampening=damp,
            withdrawn_at=before.withdrawn_at,
            weight=weight,
            phase=phase,
            changed_at=before.changed_at,
            soft_since=soft_since,
            panic_clear_since=panic_clear_since,
        )
        if phase is DrainPhase.WITHDRAWN and before.phase is not DrainPhase.WITHDRAWN:
            self.drain_progressed = True
        if decision != before.decision:
            newly_withdrawn = decision.verdict is Verdict.WITHDRAW and (
                before.decision.verdict is not Verdict.WITHDRAW
            )
            record = replace(
                record, changed_at=now, withdrawn_at=now if newly_withdrawn else record.withdrawn_at
            )
            self.effects.append(Transition(prefix, before.decision, decision))
        if record != before:
            self.w_vips()[prefix] = record

    def _address_missing(self, vip: VipSpec) -> bool:
        if vip.address is AddressGuard.IGNORE or self.addresses is None:
            return False
        return not vip.on_host(self.addresses)

    def _weight(self, vip: VipSpec, level: float | None) -> float | None:
        if vip.weight is None:
            return None
        source = vip.weight.from_check
        record = self.r_checks().get(source) if source else None
        capacity = record.last.capacity if record and record.last else None
        if capacity is not None:
            level = quantise(level, capacity, vip.weight.steps)
        return 1.0 if level is None else level

    def _set_desired(
        self, prefix: str, decision: Decision, vip: VipSpec, weight: float | None
    ) -> None:
        desired = self.desired if self.desired is not None else self.state.desired
        if decision.verdict is Verdict.ANNOUNCE:
            route = build_route(
                vip, decision.reason, 1.0 if weight is None else weight, self.spec.fleet
            )
            if desired.get(prefix, ...) != route:
                self.w_desired()[prefix] = route
        elif decision.verdict is Verdict.WITHDRAW:
            if prefix not in desired or desired[prefix] is not None:
                self.w_desired()[prefix] = None
        elif prefix in desired:
            # undecided: leave ExaBGP alone (a predecessor's route stays until the verdict)
            del self.w_desired()[prefix]

    def decide_all(self) -> None:
        self.decide(vip.prefix for vip in self.spec.vips)
        desired = self.desired if self.desired is not None else self.state.desired
        retired = self.retired
        known = self.spec.by_prefix
        for prefix in list(desired):
            if prefix not in known and prefix not in retired:
                del self.w_desired()[prefix]
        for prefix in retired:
            if prefix not in known and (prefix not in desired or desired[prefix] is not None):
                self.w_desired()[prefix] = None


def _check_stall(s: _Step) -> None:
    """A gap longer than the stall threshold is the plugin's own: verdicts must not age by it."""
    last = s.state.last_event_at
    if last is None:
        return
    gap = s.now - last
    if gap <= s.spec.policy.stall_after_s:
        return
    s.w_checks()
    assert s.checks is not None
    for name, record in s.checks.items():
        s.checks[name] = replace(record, state=shifted(record.state, gap))
    s.resumed_at, s.stalls, s.last_stall_s = s.now, s.state.stalls + 1, gap
    s.ttl_due_at = -math.inf
    s.effects.append(ProbeAgain(tuple(sorted(s.spec.checks))))
    s.log(
        Level.WARNING,
        "the plugin itself was not running; verdicts kept, probing again",
        stalled_s=round(gap, 3),
    )


def _on_probe(s: _Step, event: ProbeDone) -> None:
    spec = s.spec.checks.get(event.check)
    record = s.r_checks().get(event.check)
    if spec is None or record is None:
        return  # a result from a check a reload removed
    last = LastProbe(
        event.ok,
        event.reason,
        event.detail,
        event.duration_s,
        s.now,
        event.capacity,
        event.active_connections,
    )
    void = not event.ok and event.started_at is not None and event.started_at < s.resumed_at
    evidence = evidence_of(event.ok, event.reason, event.listener_gone)
    state = (
        record.state
        if void
        else fold_result(record.state, event.ok, spec.rise, spec.fall, s.now, evidence)
    )
    # the constructor, not dataclasses.replace: this runs for every probe result
    s.w_checks()[event.check] = CheckRecord(state, record.effective, last)
    if state is not record.state:
        s.ttl_due_at = min(s.ttl_due_at, ttl_expiry(state, s.now, spec.ttl_s))
    started = s.now if event.started_at is None else event.started_at
    delay = next_probe_in(
        state, event.ok, evidence, spec.interval_s, spec.fast_interval_s, spec.confirm_interval_s
    )
    s.effects.append(NextProbe(event.check, started, started + delay))
    if state.health is not record.state.health:
        s.effects.append(
            CheckChanged(
                event.check,
                record.state.health,
                state.health,
                event.reason,
                event.detail,
                str(evidence),
            )
        )
    elif not void and not event.ok and record.state.failures == 0:
        # the first failure of a run: what is being confirmed, and why (operators read this
        # line, and the benchmark's failover breakdown its fields)
        s.log(
            Level.INFO,
            f"check {event.check} failed, confirming",
            event="check_failed",
            check=event.check,
            reason=event.reason,
            detail=event.detail,
            evidence=str(evidence),
        )
    affected: set[str] = set()
    if _effective_changed(s, event.check) or (
        s.spec.fleet is not None and _softness_changed(record.last, last)
    ):
        affected.update(s.spec.vips_of_check.get(event.check, ()))
    affected.update(s.spec.weighted_by.get(event.check, ()))
    if event.check == s.spec.policy.connections_check and (s.r_drains() or s.drain_file):
        affected.update(s.spec.by_prefix)
    if affected:
        s.decide(affected)


def _softness_changed(before: LastProbe | None, after: LastProbe) -> bool:
    """A failing check's failure changed kind (soft to hard or back): with a fleet, that
    changes whether its VIPs may panic."""

    def soft(last: LastProbe | None) -> bool:
        return last is not None and (last.ok or last.reason in SOFT_REASONS)

    return soft(before) != soft(after)


def _effective_changed(s: _Step, name: str) -> bool:
    record = s.r_checks()[name]
    spec = s.spec.checks[name]
    return effective_health(record.state, s.now, spec.ttl_s) is not record.effective


def _on_tick(s: _Step) -> None:
    due: set[str] = set(s.state.timed)
    if s.spec.fleet is not None:
        due.update(_complete_views(s))
        _settle_drains(s)
    if s.drain_file is not None:
        due.update(s.spec.by_prefix)
    # every check's TTL, four times a second, once one can have run out (not every tick:
    # ten thousand checks take 50 ms to look at); the loop is _effective_changed, inlined
    now = s.now
    if now > s.ttl_due_at:
        records, specs, due_at = s.r_checks(), s.spec.checks, math.inf
        for name, spec in specs.items():
            record = records[name]
            health = effective_health(record.state, now, spec.ttl_s)
            if health is not record.effective:
                due.update(s.spec.vips_of_check.get(name, ()))
            if health is not Health.DOWN:
                due_at = min(due_at, ttl_expiry(record.state, now, spec.ttl_s))
        s.ttl_due_at = due_at
    if due:
        s.decide(due)


def _targets(s: _Step, vips: tuple[str, ...] | None) -> list[str]:
    return [vip.prefix for vip in s.spec.vips] if vips is None else list(vips)


def _budgets(s: _Step, targets: Iterable[str]) -> dict[str, Threshold]:
    """The targets whose drain a budget limits and whose fleet view is known."""
    if s.spec.fleet is None:
        return {}
    budgets = {}
    for prefix in targets:
        threshold = s.spec.by_prefix[prefix].fleet.drain_min_serving
        if threshold is None or prefix in s.r_drains():
            continue
        if s.fleet_count(prefix) is not None:  # an unknown view: as without a fleet
            budgets[prefix] = threshold
    return budgets


def _over_budget(
    s: _Step, budgets: Mapping[str, Threshold], rank: bool
) -> tuple[tuple[str, str], ...]:
    """The VIPs this host's drain would leave with too few hosts serving, and why."""
    refused = []
    for prefix, threshold in budgets.items():
        count = s.fleet_count(prefix, rank)
        if count is None:
            continue  # the view went away meanwhile: as without a fleet
        need = threshold.need(count.size)
        if count.normal < need:
            ahead = f", {count.leaving} drain(s) ahead of this host's" if count.leaving else ""
            refused.append(
                (
                    prefix,
                    f"{count.normal} other host(s) serve it on {count.router}{ahead}; "
                    f"the budget keeps {need} ({threshold})",
                )
            )
    return tuple(refused)


def _on_drain(s: _Step, event: Drain) -> None:
    targets = [p for p in _targets(s, event.vips) if p in s.spec.by_prefix]
    budgets = _budgets(s, targets) if event.budget else {}
    refused = _over_budget(s, budgets, rank=False)
    if refused:
        s.log(
            Level.WARNING,
            "drain refused: too few hosts would serve",
            vips=targets,
            refused=[prefix for prefix, _ in refused],
            source=event.source,
        )
        s.effects.append(DrainAnswered(event.request, False, refused))
        return
    drains = s.w_drains()
    pending_until = s.now + s.spec.fleet.settle_s if budgets and s.spec.fleet else None
    for prefix in targets:
        if prefix not in drains:
            drains[prefix] = DrainEntry(
                event.reason,
                event.source,
                event.wall,
                s.now,
                event.persist,
                # all of the request waits, budgeted or not: granted or refused as one
                pending_until=pending_until,
                request=event.request,
            )
            s.drains_changed = True
    if pending_until is None:
        s.log(Level.INFO, "drain", vips=targets, reason=event.reason, source=event.source)
        s.effects.append(DrainAnswered(event.request, True))
        s.drain_progressed = True
    else:
        # announce DRAIN_PENDING first: a host asking at the same instant sees it before
        # either decides (`_settle_drains`)
        s.log(Level.INFO, "drain pending: seeing who else drains", vips=targets)
    s.decide(targets)


def _settle_drains(s: _Step) -> None:
    """Pending drains whose wait is over: granted if the budget still holds once the other
    hosts' pending drains that rank before this host's (a lower host id) are counted as gone,
    else dropped. Two hosts asking at the same instant see each other's DRAIN_PENDING: the
    lower id goes, the other backs off."""
    drains = s.r_drains()
    due: dict[int, list[str]] = {}
    for prefix, entry in drains.items():
        if entry.pending_until is not None and entry.pending_until <= s.now:
            due.setdefault(entry.request, []).append(prefix)
    for request, prefixes in sorted(due.items()):
        # a VIP without a budget (or whose view went away) does not hold the others back
        budgets = {
            p: t for p in prefixes if (t := s.spec.by_prefix[p].fleet.drain_min_serving) is not None
        }
        refused = _over_budget(s, budgets, rank=True)
        writable = s.w_drains()
        if refused:
            for prefix in prefixes:
                del writable[prefix]
            s.log(
                Level.WARNING,
                "drain backed off: another host's drain came first",
                vips=prefixes,
                refused=[prefix for prefix, _ in refused],
            )
        else:
            for prefix in prefixes:
                writable[prefix] = replace(writable[prefix], pending_until=None, requested_at=s.now)
            s.log(Level.INFO, "drain", vips=prefixes, source=writable[prefixes[0]].source)
            s.drain_progressed = True
        s.drains_changed = True
        s.effects.append(DrainAnswered(request, not refused, refused))
        s.decide(prefixes)


def _fleet_vips(s: _Step) -> list[str]:
    return [vip.prefix for vip in s.spec.vips if vip.fleet.min_serving is not None]


def _complete_views(s: _Step) -> list[str]:
    """Sessions up for `view_after_s` have sent their paths: their views are complete. The
    guarded VIPs to decide again."""
    fleet = s.spec.fleet
    assert fleet is not None
    changed = False
    views = dict(s.fleet)
    for peer, view in s.fleet.items():
        if (
            view.up_at is not None
            and view.addpath
            and not view.addpath <= view.complete
            and s.now - view.up_at >= fleet.view_after_s
        ):
            views[peer] = replace(view, complete=view.complete | view.addpath)
            changed = True
    if not changed:
        return []
    s.fleet = views
    return _fleet_vips(s)


def _set_view(s: _Step, peer: str, view: RouterView) -> None:
    s.fleet = {**s.fleet, peer: view}


def _on_routes(s: _Step, event: RoutesReceived) -> None:
    fleet = s.spec.fleet
    if fleet is None:
        return
    view = s.fleet.get(event.peer)
    if view is None or view.up_at is None:
        return  # not from a session we know is up (a late line): nothing to hold
    new, touched = updated_view(view, event, fleet, s.spec.by_prefix)
    if new is view:
        return
    _set_view(s, event.peer, new)
    if new.complete != view.complete:
        s.decide(_fleet_vips(s))
    else:
        s.decide(p for p in touched if s.spec.by_prefix[p].fleet.min_serving is not None)


def _on_negotiated(s: _Step, event: AddPathNegotiated) -> None:
    if s.spec.fleet is None:
        return
    # the OPENs are exchanged: a new session, whose `up` follows
    _set_view(s, event.peer, RouterView(addpath=event.families, carried=event.carried))
    if not event.families:
        s.log(
            Level.WARNING,
            f"router {event.peer} sends no ADD-PATH paths: fleet view unknown from it",
            peer=event.peer,
        )


def _fleet_session(s: _Step, peer: str, state: str) -> None:
    """A session's state, for its view: up starts the wait for its paths, down forgets them."""
    view = s.fleet.get(peer)
    if state == "up":
        if view is None:
            _set_view(s, peer, RouterView(up_at=s.now))
        elif view.up_at is None:
            _set_view(s, peer, replace(view, up_at=s.now))
    elif state == "down" and view is not None:
        _set_view(s, peer, RouterView())
        s.decide(_fleet_vips(s))


def _on_undrain(s: _Step, event: Undrain) -> None:
    targets = _targets(s, event.vips)
    drains = s.w_drains()
    for prefix in targets:
        entry = drains.pop(prefix, None)
        if entry is not None:
            s.drains_changed = True
            if entry.pending_until is not None:
                s.effects.append(DrainAnswered(entry.request, False, ((prefix, "undrained"),)))
    s.log(Level.INFO, "undrain", vips=targets, source=event.source)
    s.decide(targets)


def _on_drain_file(s: _Step, event: DrainFile) -> None:
    if event.present == (s.drain_file is not None):
        return
    s.drain_file = (
        DrainEntry(event.reason, "file", event.wall, s.now, persist=False)
        if event.present
        else None
    )
    s.log(Level.INFO, "drain file " + ("appeared" if event.present else "removed"))
    s.decide_all()


def _on_restore(s: _Step, event: RestoreDrains) -> None:
    drains = s.w_drains()
    restored = []
    for saved in event.drains:
        if saved.prefix in s.spec.by_prefix:
            # timed from now (monotonic), never from the wall clock: a drain that had not
            # finished gets its whole graceful-shutdown period again; one that had stays done
            drains[saved.prefix] = DrainEntry(
                saved.reason, saved.source, saved.since_wall, s.now, True, saved.completed
            )
            restored.append(saved.prefix)
    if restored:
        s.log(Level.INFO, "drains restored", vips=sorted(restored))
        s.decide(restored)


def _on_reload(s: _Step, event: Reload) -> None:
    old, new = s.state.spec, event.spec
    s.ttl_due_at = -math.inf  # new and changed checks: look at every TTL at the next tick
    checks = s.w_checks()
    for name in list(checks):
        if name not in new.checks:
            del checks[name]
    reset = []
    for name, check in new.checks.items():
        if name not in checks or name in event.reset_checks or old.checks.get(name) != check:
            checks[name] = CheckRecord(CheckState(since=s.now))
            reset.append(name)
    removed = [prefix for prefix in old.by_prefix if prefix not in new.by_prefix]
    vips = s.w_vips()
    drains = s.w_drains()
    for prefix in removed:
        vips.pop(prefix, None)
        if drains.pop(prefix, None) is not None:
            s.drains_changed = True
    for prefix in new.by_prefix:
        vips.setdefault(prefix, VipRecord())
    retired = (s.state.retired | frozenset(removed)) - frozenset(new.by_prefix)
    s.spec, s.retired = new, retired
    s.log(
        Level.INFO,
        "configuration reloaded",
        vips_added=sorted(set(new.by_prefix) - set(old.by_prefix)),
        vips_removed=sorted(removed),
        checks_reset=sorted(reset),
    )
    s.decide_all()


def _on_neighbor(s: _Step, event: Neighbor) -> None:
    if s.state.neighbors.get(event.peer) != event.state:
        s.neighbors = {**s.state.neighbors, event.peer: event.state}
    if s.spec.fleet is not None:
        _fleet_session(s, event.peer, event.state)
    if event.state == "up":
        # a new session: make sure ExaBGP holds exactly what we want
        s.effects.append(Restate())


def _on_rib(s: _Step, event: RibReported) -> None:
    strangers = frozenset(p for p in event.prefixes if p not in s.spec.by_prefix)
    if strangers - s.state.retired:
        s.log(
            Level.WARNING,
            "ExaBGP holds routes this configuration does not want; withdrawing them",
            prefixes=sorted(strangers - s.state.retired)[:20],
        )
        s.retired = s.state.retired | strangers
        s.decide_all()


def _on_addresses(s: _Step, event: Addresses) -> None:
    before = s.state.addresses
    if event.present == before:
        return
    s.addresses = event.present
    changed = []
    for vip in s.spec.vips:
        if vip.address is AddressGuard.IGNORE:
            continue
        now_present = vip.on_host(event.present)
        # the first report decides every guarded VIP (it was waiting for it)
        if before is None or now_present != vip.on_host(before):
            changed.append(vip.prefix)
            if before is not None or not now_present:
                s.log(
                    Level.INFO if now_present else Level.WARNING,
                    f"vip {vip.prefix}: address "
                    + ("assigned" if now_present else "not assigned to any interface"),
                    vip=vip.prefix,
                )
    s.decide(changed)


def _on_bfd(s: _Step, event: BfdPeers) -> None:
    before = s.state.bfd_up
    if event.up == before:
        return
    s.bfd_up = event.up
    for peer in sorted(s.spec.bfd_gated & (before ^ event.up)):
        if peer in event.up:
            s.log(Level.INFO, f"BFD to {peer} is up: announcing to it", peer=peer)
        else:
            s.log(
                Level.WARNING,
                f"BFD to {peer} is not up: withdrawing every VIP from it",
                peer=peer,
                reason="bfd_down",
            )


def _on_keepalived(s: _Step, event: Keepalived) -> None:
    if event.running == s.state.keepalived:
        return
    s.keepalived = event.running
    stable = [vip.prefix for vip in s.spec.vips if vip.route.paths]
    if event.running:
        s.log(Level.INFO, "keepalived is running: the slots can move to this host again")
    else:
        s.log(
            Level.ERROR,
            "keepalived is not running: withdrawing every VIP announced through the slots",
            reason=str(Reason.KEEPALIVED_DOWN),
        )
    s.decide(stable)


def _on_stop(s: _Step, event: Stop) -> None:
    s.stopping = True
    s.log(Level.INFO, "stopping: withdrawing every VIP", reason=event.reason)
    s.decide_all()
    desired = s.w_desired()
    for prefix in desired:
        desired[prefix] = None
    for prefix in s.spec.by_prefix:
        desired[prefix] = None


def step(state: State, event: Event, now: float) -> tuple[State, tuple[Effect, ...]]:
    """Fold one event into the state. Pure: the same inputs always give the same outputs."""
    s = _Step(state, now)
    if state.stopping and not isinstance(event, ProbeDone | Tick | Neighbor):
        # nothing but bookkeeping after stop: what is desired stays "nothing"
        return s.finish()
    if not isinstance(event, Started):
        _check_stall(s)
    match event:
        case ProbeDone():
            _on_probe(s, event)
        case Tick() | Started():
            _on_tick(s)
        case Drain():
            _on_drain(s, event)
        case Undrain():
            _on_undrain(s, event)
        case DrainFile():
            _on_drain_file(s, event)
        case RestoreDrains():
            _on_restore(s, event)
        case Reload():
            _on_reload(s, event)
        case Neighbor():
            _on_neighbor(s, event)
        case RibReported():
            _on_rib(s, event)
        case Addresses():
            _on_addresses(s, event)
        case BfdPeers():
            _on_bfd(s, event)
        case Keepalived():
            _on_keepalived(s, event)
        case RoutesReceived():
            _on_routes(s, event)
        case AddPathNegotiated():
            _on_negotiated(s, event)
        case Stop():
            _on_stop(s, event)
    return s.finish()


def step_probes(
    state: State, events: Iterable[ProbeDone], now: float
) -> tuple[State, tuple[Effect, ...]]:
    """Fold probe results that arrived together, all at one `now`: the same state and the
    same effects, in the same order, as folding `step` over them one by one, but the state and
    its check table are copied once for all of them, not once per result (a thousand checks
    send a thousand results a second)."""
    s = _Step(state, now)
    _check_stall(s)  # once: after the first result no time has passed
    for event in events:
        _on_probe(s, event)
        s.end_of_event()
    return s.finish()
