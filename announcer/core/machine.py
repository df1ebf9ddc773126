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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from .addresses import AddressGuard
from .dampening import Dampening, current, record_flap
from .drain import DrainPhase, drain_phase
from .hysteresis import (
    CheckState,
    Health,
    effective_health,
    evidence_of,
    next_probe_in,
    shifted,
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
    """The state task is running: the time before it (start-up) is no stall of ours."""


@dataclass(frozen=True, slots=True)
class Drain:
    vips: tuple[str, ...] | None  # None: every VIP
    reason: str = ""
    source: str = "api"
    wall: float = 0.0  # for people only
    persist: bool = True


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
class SaveDrains:
    drains: tuple[tuple[str, DrainEntry], ...]  # only those to persist


Effect = NextProbe | Log | Transition | CheckChanged | ProbeAgain | Restate | SaveDrains | Drained


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


@dataclass(frozen=True, slots=True)
class VipRecord:
    decision: Decision = UNDECIDED
    health: Verdict = Verdict.UNDECIDED  # the checks' last decided verdict, for dampening
    dampening: Dampening = field(default_factory=Dampening)
    withdrawn_at: float | None = None
    weight: float | None = None
    phase: DrainPhase = DrainPhase.NONE
    changed_at: float | None = None


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
    bfd_up: frozenset[str] = frozenset()  # peers whose BFD session bfdd reports up

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
    checks = {name: CheckRecord(CheckState(since=now)) for name in spec.checks}
    vips = {vip.prefix: VipRecord() for vip in spec.vips}
    return State(spec=spec, checks=checks, vips=vips, desired={}, last_event_at=now)


# -------------------------------------------------------------------------------- the reducer
class _Step:
    """Accumulates one step's changes; each table is copied at most once, on first write."""

    def __init__(self, state: State, now: float) -> None:
        self.state = state
        self.now = now
        self.effects: list[Effect] = []
        self.checks: dict[str, CheckRecord] | None = None
        self.vips: dict[str, VipRecord] | None = None
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
        self.resumed_at = state.resumed_at
        self.stalls = state.stalls
        self.last_stall_s = state.last_stall_s
        # VIPs of a check whose effective health changed while deciding another VIP
        self.stale: set[str] = set()
        # the VIPs of the current round of `decide` not decided yet (the one being decided
        # among them): they will see a changed effective health without being marked stale
        self._ahead: set[str] = set()

    # copy-on-write accessors
    def w_checks(self) -> dict[str, CheckRecord]:
        if self.checks is None:
            self.checks = dict(self.state.checks)
        return self.checks

    def w_vips(self) -> dict[str, VipRecord]:
        if self.vips is None:
            self.vips = dict(self.state.vips)
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
                SaveDrains(tuple((p, d) for p, d in sorted(drains.items()) if d.persist))
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
            checks=state.checks if self.checks is None else self.checks,
            vips=state.vips if self.vips is None else self.vips,
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
            bfd_up=self.bfd_up,
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
        )
        weight = self._weight(vip, before.weight)
        self._record(prefix, before, decision, health_verdict, damp, weight, phase)
        is_timed = entry is not None or damp.penalty > 0 or decision.reason is Reason.HOLD_DOWN
        if is_timed != (prefix in (self.timed if self.timed is not None else self.state.timed)):
            (self.w_timed().add if is_timed else self.w_timed().discard)(prefix)
        self._set_desired(prefix, decision, vip, weight)

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
            route = build_route(vip, decision.reason, 1.0 if weight is None else weight)
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
    if _effective_changed(s, event.check):
        affected.update(s.spec.vips_of_check.get(event.check, ()))
    affected.update(s.spec.weighted_by.get(event.check, ()))
    if event.check == s.spec.policy.connections_check and (s.r_drains() or s.drain_file):
        affected.update(s.spec.by_prefix)
    if affected:
        s.decide(affected)


def _effective_changed(s: _Step, name: str) -> bool:
    record = s.r_checks()[name]
    spec = s.spec.checks[name]
    return effective_health(record.state, s.now, spec.ttl_s) is not record.effective


def _on_tick(s: _Step) -> None:
    due: set[str] = set(s.state.timed)
    if s.drain_file is not None:
        due.update(s.spec.by_prefix)
    # every check's TTL, four times a second: the loop is _effective_changed, inlined
    now, records, specs = s.now, s.r_checks(), s.spec.checks
    for name, spec in specs.items():
        record = records[name]
        if effective_health(record.state, now, spec.ttl_s) is not record.effective:
            due.update(s.spec.vips_of_check.get(name, ()))
    if due:
        s.decide(due)


def _targets(s: _Step, vips: tuple[str, ...] | None) -> list[str]:
    return [vip.prefix for vip in s.spec.vips] if vips is None else list(vips)


def _on_drain(s: _Step, event: Drain) -> None:
    targets = [p for p in _targets(s, event.vips) if p in s.spec.by_prefix]
    drains = s.w_drains()
    for prefix in targets:
        if prefix not in drains:
            drains[prefix] = DrainEntry(
                event.reason, event.source, event.wall, s.now, event.persist
            )
            s.drains_changed = True
    s.log(Level.INFO, "drain", vips=targets, reason=event.reason, source=event.source)
    s.drain_progressed = True
    s.decide(targets)


def _on_undrain(s: _Step, event: Undrain) -> None:
    targets = _targets(s, event.vips)
    drains = s.w_drains()
    for prefix in targets:
        if drains.pop(prefix, None) is not None:
            s.drains_changed = True
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
