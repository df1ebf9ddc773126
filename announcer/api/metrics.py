"""Prometheus metrics. Events (probes, commands, transitions) are counted as they happen;
states (check health, desired and acknowledged routes, neighbors) are read from the reducer's
snapshot at scrape time, so they can never drift from what the plugin really holds."""

from __future__ import annotations

import collections
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from itertools import accumulate

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from healthchecks import ProbeResult

from .. import __version__
from ..core import (
    AddressGuard,
    Decision,
    DrainPhase,
    Health,
    Mark,
    Reason,
    State,
    Verdict,
)
from ..core.fleet import carries, count_fleet, family_of, view_problem
from ..core.slots import may_hold_slots
from .fleet import fleet_views
from .sources import AckSource, BfdSource, StateSource

__all__ = ["METRIC_NAMES", "Metrics"]

PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# every metric family this module exports (tests check docs, alerts and dashboards against it)
METRIC_NAMES = (
    "announcer_build_info",
    "announcer_check_up",
    "announcer_check_state",
    "announcer_check_last_result",
    "announcer_check_consecutive_successes",
    "announcer_check_consecutive_failures",
    "announcer_check_last_probe_age_seconds",
    "announcer_probe_duration_seconds",
    "announcer_probes_total",
    "announcer_vip_desired_state",
    "announcer_vip_acknowledged_state",
    "announcer_vip_seconds_since_change",
    "announcer_vip_transitions_total",
    "announcer_vip_drained",
    "announcer_vip_drain_phase",
    "announcer_vip_weight_ratio",
    "announcer_vip_dampening_penalty",
    "announcer_vip_suppressed",
    "announcer_vip_reason",
    "announcer_vip_address_assigned",
    "announcer_config_last_reload_successful",
    "announcer_config_last_reload_timestamp_seconds",
    "announcer_drain_state_saved",
    "announcer_bgp_neighbor_up",
    "announcer_exabgp_commands_total",
    "announcer_exabgp_lines_total",
    "announcer_exabgp_pending_commands",
    "announcer_event_loop_lag_seconds",
    "announcer_stalls_total",
    "announcer_bfd_peer_up",
    "announcer_bfdd_reachable",
    "announcer_neighbor_withheld",
    "announcer_fleet_view_known",
    "announcer_fleet_hosts",
    "announcer_fleet_others_serving",
    "announcer_slot_held",
    "announcer_slots_may_hold",
    "announcer_keepalived_running",
)


class _StateCollector(Collector):
    def __init__(
        self,
        owner: StateSource,
        reconciler: AckSource,
        pending: Callable[[], int],
        bfd: BfdSource | None = None,
    ) -> None:
        self._bfd = bfd
        self._owner = owner
        self._reconciler = reconciler
        self._pending = pending

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily | CounterMetricFamily]:
        snapshot, now = self._owner.state, time.monotonic()
        info = InfoMetricFamily("announcer_build", "Announcer version.")
        info.add_metric([], {"version": __version__})
        yield info

        up = GaugeMetricFamily(
            "announcer_check_up", "1 if the check is up after hysteresis.", labels=["check"]
        )
        state = GaugeMetricFamily(
            "announcer_check_state", "1 for the check's current state.", labels=["check", "state"]
        )
        last = GaugeMetricFamily(
            "announcer_check_last_result", "1 if the last probe succeeded.", labels=["check"]
        )
        rises = GaugeMetricFamily(
            "announcer_check_consecutive_successes",
            "Consecutive successful probes.",
            labels=["check"],
        )
        falls = GaugeMetricFamily(
            "announcer_check_consecutive_failures", "Consecutive failed probes.", labels=["check"]
        )
        age = GaugeMetricFamily(
            "announcer_check_last_probe_age_seconds",
            "Seconds since the last probe result.",
            labels=["check"],
        )
        for name, record in snapshot.checks.items():
            # what the decisions use: an up verdict past its TTL counts as down here too
            health_now = record.effective
            up.add_metric([name], 1.0 if health_now is Health.UP else 0.0)
            for health in Health:
                state.add_metric([name, health.value], 1.0 if health_now is health else 0.0)
            rises.add_metric([name], record.state.successes)
            falls.add_metric([name], record.state.failures)
            if (result := record.last) is not None:
                last.add_metric([name], 1.0 if result.ok else 0.0)
                age.add_metric([name], now - result.at)
        yield from (up, state, last, rises, falls, age)

        desired = GaugeMetricFamily(
            "announcer_vip_desired_state",
            "1 for what the plugin wants for the VIP.",
            labels=["vip", "state"],
        )
        acked = GaugeMetricFamily(
            "announcer_vip_acknowledged_state",
            "1 for what ExaBGP has acknowledged for the VIP.",
            labels=["vip", "state"],
        )
        since = GaugeMetricFamily(
            "announcer_vip_seconds_since_change",
            "Seconds since the VIP's decision changed.",
            labels=["vip"],
        )
        drained = GaugeMetricFamily(
            "announcer_vip_drained", "1 if the VIP is drained.", labels=["vip", "source"]
        )
        phase = GaugeMetricFamily(
            "announcer_vip_drain_phase", "1 for the VIP's drain phase.", labels=["vip", "phase"]
        )
        weight = GaugeMetricFamily(
            "announcer_vip_weight_ratio",
            "Capacity level advertised in the link-bandwidth community (0-1).",
            labels=["vip"],
        )
        penalty = GaugeMetricFamily(
            "announcer_vip_dampening_penalty", "Flap dampening penalty.", labels=["vip"]
        )
        suppressed = GaugeMetricFamily(
            "announcer_vip_suppressed",
            "1 while flap dampening de-prefers the VIP (announced as a last resort only).",
            labels=["vip"],
        )
        reason = GaugeMetricFamily(
            "announcer_vip_reason",
            "1 for why the VIP is where it is (one series per VIP: the current reason).",
            labels=["vip", "reason"],
        )
        assigned = GaugeMetricFamily(
            "announcer_vip_address_assigned",
            "1 if the VIP is assigned to a local interface (VIPs with address require|manage).",
            labels=["vip"],
        )
        for vip in snapshot.spec.vips:
            vip_record = snapshot.vips[vip.prefix]
            verdict = vip_record.decision.verdict
            for option in Verdict:
                desired.add_metric([vip.prefix, option.value], 1.0 if verdict is option else 0.0)
            acked_state = ack_state(self._reconciler.acked, vip.prefix)
            for acked_option in ("announced", "withdrawn", "unknown"):
                value = 1.0 if acked_state == acked_option else 0.0
                acked.add_metric([vip.prefix, acked_option], value)
            if vip_record.changed_at is not None:
                since.add_metric([vip.prefix], now - vip_record.changed_at)
            request = snapshot.drain_of(vip.prefix)
            drained.add_metric(
                [vip.prefix, request.source if request else ""], 1.0 if request else 0.0
            )
            for phase_option in DrainPhase:
                value = 1.0 if vip_record.phase is phase_option else 0.0
                phase.add_metric([vip.prefix, phase_option.value], value)
            if vip_record.weight is not None:
                weight.add_metric([vip.prefix], vip_record.weight)
            damp = vip_record.dampening
            penalty.add_metric([vip.prefix], damp.penalty)
            suppressed.add_metric([vip.prefix], 1.0 if damp.suppressed else 0.0)
            reason.add_metric([vip.prefix, vip_record.decision.reason.value], 1.0)
            if vip.address is not AddressGuard.IGNORE:
                present = vip.on_host(snapshot.addresses)
                assigned.add_metric([vip.prefix], 1.0 if present else 0.0)
        yield from (desired, acked, since, drained, phase, weight, penalty, suppressed)
        yield from (reason, assigned)

        neighbors = GaugeMetricFamily(
            "announcer_bgp_neighbor_up", "1 if ExaBGP reports the session up.", labels=["neighbor"]
        )
        for peer, peer_state in snapshot.neighbor_states().items():
            neighbors.add_metric([peer], 1.0 if peer_state == "up" else 0.0)
        yield neighbors
        yield GaugeMetricFamily(
            "announcer_exabgp_pending_commands",
            "Commands sent and not yet acknowledged.",
            value=self._pending(),
        )
        stalls = CounterMetricFamily(
            "announcer_stalls",
            "Times the plugin itself was found not running (a gap between events longer than "
            "the stall threshold); verdicts were kept, not aged.",
            value=snapshot.stalls,
        )
        yield stalls
        if self._bfd is not None and self._bfd.configured:
            bfd_up = GaugeMetricFamily(
                "announcer_bfd_peer_up",
                "1 while bfdd's BFD session to this router is up (0 down, or bfdd unreachable).",
                labels=["peer"],
            )
            for peer, bfd_state in self._bfd.peers.items():
                bfd_up.add_metric([peer], 1.0 if bfd_state == "up" else 0.0)
            yield bfd_up
            yield GaugeMetricFamily(
                "announcer_bfdd_reachable",
                "1 if the plugin could read the BFD state from bfdd at its last try.",
                value=1.0 if self._bfd.reachable else 0.0,
            )
        if snapshot.spec.bfd_gated:
            withheld = GaugeMetricFamily(
                "announcer_neighbor_withheld",
                "1 while this router gets no route from this host (reason bfd_down: the BFD "
                "session to it is not up, so it could not see this host die).",
                labels=["neighbor", "reason"],
            )
            held_back = snapshot.withheld
            for peer in sorted(snapshot.spec.bfd_gated):
                withheld.add_metric([peer, "bfd_down"], 1.0 if peer in held_back else 0.0)
            yield withheld
        if snapshot.spec.fleet is not None:
            yield from _fleet_metrics(snapshot)
        if snapshot.spec.path_ids:
            yield from _slot_metrics(snapshot)


def _slot_metrics(snapshot: State) -> Iterator[GaugeMetricFamily]:
    """Stable next hops: which slots this host holds, whether it may hold any, keepalived."""
    held = GaugeMetricFamily(
        "announcer_slot_held",
        "1 if this host holds the slot (its address is assigned here).",
        labels=["slot"],
    )
    addresses = snapshot.addresses or frozenset()
    slots = sorted({slot for vip in snapshot.spec.vips for _, slot in vip.route.paths})
    for slot in slots:
        held.add_metric([slot], 1.0 if slot in addresses else 0.0)
    yield held
    yield GaugeMetricFamily(
        "announcer_slots_may_hold",
        "1 while this host may hold slots (every slotted VIP serving, a session up).",
        value=1.0 if may_hold_slots(snapshot) else 0.0,
    )
    if snapshot.keepalived is not None:
        yield GaugeMetricFamily(
            "announcer_keepalived_running",
            "1 while keepalived runs (stable_next_hops.keepalived_pid_file).",
            value=1.0 if snapshot.keepalived else 0.0,
        )


def _fleet_metrics(snapshot: State) -> Iterator[GaugeMetricFamily]:
    """What the routers report of the fleet: per router, whether its view is known; per VIP
    and router, how many hosts announce it in each mark; per VIP, the fewest others serving
    it normally on any router (absent while no router's view is known)."""
    fleet = snapshot.spec.fleet
    assert fleet is not None
    known = GaugeMetricFamily(
        "announcer_fleet_view_known",
        "1 if this router's paths for the family are known (session up, ADD-PATH, all sent).",
        labels=["neighbor", "family"],
    )
    hosts = GaugeMetricFamily(
        "announcer_fleet_hosts",
        "Hosts announcing the VIP as this router reports it, by mark (this host included).",
        labels=["vip", "neighbor", "mark"],
    )
    serving = GaugeMetricFamily(
        "announcer_fleet_others_serving",
        "Other hosts serving the VIP normally, on the router where they are fewest.",
        labels=["vip"],
    )
    neighbors = snapshot.spec.neighbors
    for peer, views in fleet_views(snapshot).items():
        for family, view_state in views.items():
            known.add_metric([peer, family], 1.0 if view_state == "known" else 0.0)
    for vip in snapshot.spec.vips:
        family = family_of(vip.prefix)
        for peer in neighbors:
            view = snapshot.fleet.get(peer)
            if view is None or not carries(view, family) or view_problem(view, family):
                continue
            marks = collections.Counter(
                seen.mark for seen in view.paths.get(vip.prefix, {}).values()
            )
            # the marks seen, and normal always (a VIP nobody serves normally shows 0)
            for mark in Mark:
                if mark is Mark.NORMAL or mark in marks:
                    hosts.add_metric([vip.prefix, peer, mark.value], float(marks.get(mark, 0)))
        count = count_fleet(snapshot.fleet, neighbors, vip.prefix, fleet.host_id)
        if count is not None:
            serving.add_metric([vip.prefix], float(count.normal))
    yield from (known, hosts, serving)


class _ProbeCollector(Collector):
    """Probe counts and durations: a thousand a second, so plain numbers in dicts, turned into
    metric families only at scrape time (a prometheus_client child takes a lock for every
    increment, three per probe, which cost more than the probe's own bookkeeping)."""

    def __init__(self) -> None:
        # check -> [count in each bucket (not cumulative), the +Inf one last], and the sum
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        self._reasons: dict[tuple[str, str], int] = {}

    def observe(self, check: str, reason: str, duration_s: float) -> None:
        buckets = self._buckets.get(check)
        if buckets is None:
            buckets = self._buckets[check] = [0] * (len(PROBE_BUCKETS) + 1)
            self._sums[check] = 0.0
        # the first bound >= the duration: Prometheus buckets count values <= `le`
        buckets[bisect_left(PROBE_BUCKETS, duration_s)] += 1
        self._sums[check] += duration_s
        key = (check, reason)
        self._reasons[key] = self._reasons.get(key, 0) + 1

    def collect(self) -> Iterator[HistogramMetricFamily | CounterMetricFamily]:
        durations = HistogramMetricFamily(
            "announcer_probe_duration_seconds", "Probe duration.", labels=["check"]
        )
        for check, buckets in self._buckets.items():
            cumulative = list(accumulate(buckets))
            durations.add_metric(
                [check],
                [*zip(_BUCKET_LABELS, cumulative, strict=True)],
                sum_value=self._sums[check],
            )
        yield durations
        probes = CounterMetricFamily(
            "announcer_probes", "Probes run, by result reason.", labels=["check", "reason"]
        )
        for (check, reason), count in self._reasons.items():
            probes.add_metric([check, reason], count)
        yield probes


_BUCKET_LABELS = (
    *(floatToGoString(bound) for bound in PROBE_BUCKETS),  # type: ignore[no-untyped-call]
    "+Inf",
)


def ack_state(acked: Mapping[str, object], prefix: str) -> str:
    """What ExaBGP acknowledged for a prefix (over every router, or one router's ledger)."""
    if prefix not in acked:
        return "unknown"
    return "announced" if acked[prefix] is not None else "withdrawn"


class Metrics:
    def __init__(self) -> None:
        # no `*_created` series next to every counter: noise on every scrape
        disable_created_metrics()  # type: ignore[no-untyped-call]
        # no auto_describe: it would collect every collector once to learn its names when it
        # is registered, a whole scrape of ten thousand VIPs' series at start-up
        self.registry = CollectorRegistry(auto_describe=False)
        self._probes = _ProbeCollector()
        self.registry.register(self._probes)
        self.transitions = Counter(
            "announcer_vip_transitions",
            "Changes of a VIP's desired state, by reason.",
            ["vip", "state", "reason"],
            registry=self.registry,
        )
        self.commands = Counter(
            "announcer_exabgp_commands",
            "Commands sent to ExaBGP, by kind and answer.",
            ["kind", "result"],
            registry=self.registry,
        )
        self.reload_ok = Gauge(
            "announcer_config_last_reload_successful",
            "1 if the last reload succeeded (1 at start).",
            registry=self.registry,
        )
        self.reload_ok.set(1)
        self.reload_at = Gauge(
            "announcer_config_last_reload_timestamp_seconds",
            "When the configuration was last loaded.",
            registry=self.registry,
        )
        self.reload_at.set_to_current_time()
        self.drains_saved = Gauge(
            "announcer_drain_state_saved",
            "0 when the drains could not be written to drain.state_file: they are kept in "
            "memory only and a restart would forget them (1 otherwise).",
            registry=self.registry,
        )
        self.drains_saved.set(1)
        self.lines = Counter(
            "announcer_exabgp_lines",
            "Lines read from ExaBGP, by kind.",
            ["kind"],
            registry=self.registry,
        )

        self.loop_lag = Gauge(
            "announcer_event_loop_lag_seconds",
            "How late the last 0.25 s tick ran: the event loop's own lag.",
            registry=self.registry,
        )

    def attach(
        self,
        owner: StateSource,
        reconciler: AckSource,
        pending: Callable[[], int],
        bfd: BfdSource | None = None,
    ) -> None:
        self.registry.register(_StateCollector(owner, reconciler, pending, bfd))

    def prepare_vips(self, prefixes: list[str]) -> None:
        """Start each VIP's withdraw counters at 0: `increase()` misses the first step of a
        counter whose series only appears with it, and the alert for "every host withdrew"
        must see the first withdrawal of each host."""
        for prefix in prefixes:
            for reason in (Reason.CHECKS_DOWN, Reason.ADDRESS_MISSING):
                self.transitions.labels(prefix, Verdict.WITHDRAW.value, reason.value)

    def observe_loop_lag(self, seconds: float) -> None:
        self.loop_lag.set(seconds)

    def observe_probe(self, check: str, result: ProbeResult) -> None:
        self._probes.observe(check, result.reason, result.duration_s)

    def observe_transition(self, vip: str, old: Decision, new: Decision) -> None:
        self.transitions.labels(vip, new.verdict.value, new.reason.value).inc()

    def observe_command(self, kind: str, result: str) -> None:
        self.commands.labels(kind, str(result)).inc()

    def observe_reload(self, ok: bool) -> None:
        self.reload_ok.set(1 if ok else 0)
        if ok:
            self.reload_at.set_to_current_time()

    def observe_drains_saved(self, ok: bool) -> None:
        self.drains_saved.set(1 if ok else 0)

    def observe_line(self, kind: str, line: str) -> None:
        self.lines.labels(kind).inc()
