"""Probe metrics are counted in plain numbers (a thousand probes a second) and exported at
scrape time: what a scrape shows must be exactly what prometheus_client's own Histogram and
Counter would show for the same probes, bucket edges included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from announcer.api.metrics import PROBE_BUCKETS, Metrics
from healthchecks import ProbeResult

probes = st.lists(
    st.tuples(
        st.sampled_from(["web", "lb", "api"]),
        st.sampled_from(["ok", "timeout", "connection_refused", "bad_status"]),
        # the bucket edges themselves, and values around them
        st.one_of(
            st.sampled_from(PROBE_BUCKETS),
            st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
        ),
    ),
    max_size=40,
)


def probe_lines(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "announcer_probe" in line]


@given(probes)
def test_probe_metrics_match_prometheus_clients_own_histogram_and_counter(observed):
    ours = Metrics()
    reference = CollectorRegistry()
    durations = Histogram(
        "announcer_probe_duration_seconds",
        "Probe duration.",
        ["check"],
        buckets=PROBE_BUCKETS,
        registry=reference,
    )
    counts = Counter(
        "announcer_probes", "Probes run, by result reason.", ["check", "reason"], registry=reference
    )
    for check, reason, duration in observed:
        ours.observe_probe(check, ProbeResult(reason == "ok", reason, duration))
        durations.labels(check).observe(duration)
        counts.labels(check, reason).inc()
    assert probe_lines(ours.registry) == probe_lines(reference)
