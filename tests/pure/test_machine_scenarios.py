"""Scenario tables with golden ExaBGP command streams (MetalLB's style): each row is an event,
the time since the previous one, and exactly the commands the plugin sends after it."""

from __future__ import annotations

import pytest

from announcer.core import (
    Addresses,
    AddressGuard,
    BfdPeers,
    Drain,
    DrainFile,
    Neighbor,
    ProbeAgain,
    ProbeDone,
    Reload,
    RestoredDrain,
    RestoreDrains,
    RibReported,
    SaveDrains,
    Stop,
    Tick,
    Undrain,
)
from tests.machine_harness import VIP, VIP2, Harness, make_spec

A = f"announce route {VIP} next-hop self med 100 origin igp"
A_GSHUT = f"announce route {VIP} next-hop self med 100 origin igp community [ 65535:0 ]"
W = f"withdraw route {VIP}"
A2 = f"announce route {VIP2} next-hop self med 100 origin igp"
W2 = f"withdraw route {VIP2}"
OK, FAIL = ProbeDone("web", True), ProbeDone("web", False)

SCENARIOS = {
    "cold start, healthy: announced after rise": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.25, Tick(), []),
    ],
    "cold start, unhealthy: withdrawn after fall (a predecessor's route goes)": [
        (0.1, FAIL, []),
        (0.1, FAIL, [W]),
    ],
    "failover: one failure changes nothing, fall failures withdraw once": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.1, FAIL, []),
        (0.1, OK, []),
        (0.1, FAIL, []),
        (0.1, FAIL, [W]),
        (0.1, FAIL, []),
    ],
    "a refusal while the watcher says the listener is gone withdraws at once": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (1.0, ProbeDone("web", False, reason="connection_refused", listener_gone=True), [W]),
        (0.05, OK, []),
        (0.05, OK, [A]),
    ],
    "a timeout is never certain, whatever the watcher says": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (1.0, ProbeDone("web", False, reason="timeout", listener_gone=True), []),
        (0.05, ProbeDone("web", False, reason="connection_refused"), [W]),
    ],
    "a verdict past its TTL counts as down": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        *[(0.25, Tick(), []) for _ in range(13)],
        (0.25, Tick(), [W]),
        (0.1, OK, [A]),
    ],
    "an unknown check expires too": [
        (0.1, OK, []),
        (0.1, FAIL, []),
        *[(0.25, Tick(), []) for _ in range(12)],
        (0.25, Tick(), [W]),
    ],
    "a stall of the plugin itself (5 s without events) withdraws nothing": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (5.0, Tick(), []),
        (0.0, ProbeDone("web", False, reason="timeout", started_at=0.15), []),
        (0.1, FAIL, []),
        (0.1, OK, []),
        (0.25, Tick(), []),
    ],
    "staged drain: graceful shutdown, withdraw after gshut_period, undrain": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.1, Drain(None, "rma"), [A_GSHUT]),
        *[(0.25, Tick(), []) for _ in range(7)],
        (0.25, Tick(), [W]),
        (0.1, Undrain(None), [A]),
    ],
    "the drain file drains everything while it exists": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.1, DrainFile(True), [A_GSHUT]),
        *[(0.25, Tick(), []) for _ in range(7)],
        (0.25, Tick(), [W]),
        (0.1, DrainFile(False), [A]),
    ],
    "stop withdraws, and nothing comes back after it": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.1, Stop("SIGTERM"), [W]),
        (0.1, OK, []),
        (0.1, Drain(None), []),
        (0.25, Tick(), []),
    ],
    "a neighbor coming up re-states the desired set": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.1, Neighbor("198.51.100.1", "up"), [A]),
        (0.1, Neighbor("198.51.100.1", "down"), []),
    ],
    "ExaBGP holds a route this config does not want: withdrawn": [
        (0.1, RibReported(frozenset({VIP, "192.0.2.99/32"})), ["withdraw route 192.0.2.99/32"]),
        (0.1, OK, []),
        (0.1, OK, [A]),
    ],
    # suppressed: announced as a last resort only (GRACEFUL_SHUTDOWN), never withdrawn for it,
    # so that a whole fleet suppressed at once still serves; back to normal once decayed
    "flapping: the third quick withdrawal de-prefers": [
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.1, FAIL, []),
        (0.1, FAIL, [W]),
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.1, FAIL, []),
        (0.1, FAIL, [W]),
        (0.1, OK, []),
        (0.1, OK, [A]),
        (0.1, FAIL, []),
        (0.1, FAIL, [W]),
        (0.1, OK, []),
        (0.1, OK, [A_GSHUT]),
        (0.1, Tick(), []),
        (30.0, Tick(), [A]),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name):
    harness = Harness(make_spec())
    for index, (dt, event, expected) in enumerate(SCENARIOS[name]):
        sent = harness.run(event, dt)
        assert sent == expected, f"step {index} ({event}): sent {sent}, want {expected}"


def test_a_ttl_runs_out_again_after_the_check_came_back():
    """The tick looks at the checks' TTLs only once the earliest could have run out (ten
    thousand checks take 50 ms to look at): a result that makes a check up again must bring
    that moment forward. Without dampening, nothing else decides the VIP on a tick."""
    harness = Harness(make_spec(dampening=False))
    script = [
        (0.1, OK, []),
        (0.1, OK, [A]),
        *[(0.25, Tick(), []) for _ in range(13)],
        (0.25, Tick(), [W]),
        (0.1, OK, [A]),  # still up: a fresh result is all it needs
        *[(0.25, Tick(), []) for _ in range(13)],
        (0.25, Tick(), [W]),
    ]
    for index, (dt, event, expected) in enumerate(script):
        assert harness.run(event, dt) == expected, f"step {index} ({event})"


def test_reload_removes_and_adds_vips_and_keeps_unchanged_ones_quiet():
    two = make_spec({VIP: ("web",), VIP2: ("web",)})
    one = make_spec({VIP: ("web",)})
    harness = Harness(two)
    assert harness.run(OK) == []
    assert sorted(harness.run(OK)) == sorted(
        [f"announce attributes next-hop self med 100 origin igp nlri {VIP} {VIP2}"]
    )
    assert harness.run(Reload(one)) == [W2]
    assert harness.run(Reload(two)) == [A2]  # same check, same verdict: at once
    assert harness.run(Reload(two)) == []


def test_reload_that_changes_a_check_restarts_it_from_unknown():
    harness = Harness(make_spec())
    harness.run(OK)
    harness.run(OK)
    assert harness.run(Reload(make_spec(), frozenset({"web"}))) == []  # undecided: left alone
    assert harness.state.checks["web"].state.health.value == "unknown"
    assert harness.run(OK) == []
    assert harness.run(OK) == []  # ExaBGP already has the same route


def test_failed_commands_are_sent_again_until_acknowledged():
    harness = Harness(make_spec())
    harness.step(OK)
    harness.step(OK)
    assert harness.sync(fail=True) == [A]
    assert harness.sync(fail=True) == [A]
    assert harness.sync() == [A]
    assert harness.sync() == []


def test_require_any_and_at_least_n():
    spec = make_spec(
        {VIP: ("a", "b", "c"), VIP2: ("a", "b", "c")}, required={VIP: 1, VIP2: 2}, rise=1, fall=1
    )
    harness = Harness(spec)
    for name in ("a", "b", "c"):
        harness.step(ProbeDone(name, True))
    harness.sync()
    assert set(harness.rib) == {VIP, VIP2}
    assert harness.run(ProbeDone("a", False)) == []
    assert harness.run(ProbeDone("b", False)) == [W2]
    assert harness.run(ProbeDone("c", False)) == [W]


def test_weight_follows_live_capacity_in_steps():
    spec = make_spec(weighted={VIP: "web"}, rise=1, fall=1)
    harness = Harness(spec)
    full = "extended-community [ bandwidth:65001:1000000 ]"
    half = "extended-community [ bandwidth:65001:500000 ]"
    assert harness.run(ProbeDone("web", True, capacity=1.0)) == [f"{A} {full}"]
    assert harness.run(ProbeDone("web", True, capacity=0.9)) == []  # within the hysteresis
    assert harness.run(ProbeDone("web", True, capacity=0.5)) == [f"{A} {half}"]


def test_hold_down_de_prefers_a_quick_comeback_and_never_withdraws():
    harness = Harness(make_spec(min_announce_interval_s=1.0, dampening=False, rise=1, fall=1))
    assert harness.run(OK) == [A]
    assert harness.run(FAIL) == [W]
    assert harness.run(OK) == [A_GSHUT]  # a last resort until the interval is over
    assert harness.run(Tick(), 0.25) == []
    assert [harness.run(Tick(), 0.25) for _ in range(3)][-1] == [A]


def test_restored_drain_is_timed_from_now_and_a_finished_one_stays_finished():
    harness = Harness(make_spec({VIP: ("web",), VIP2: ("web",)}))
    restored = RestoreDrains(
        (
            RestoredDrain(VIP, "rma", "api", since_wall=1e9, completed=False),
            RestoredDrain(VIP2, "rma", "api", since_wall=-1e9, completed=True),
        )
    )
    harness.step(restored)
    harness.step(OK)
    assert sorted(harness.run(OK)) == sorted([A_GSHUT, W2])


def test_drain_effects_persist_only_operator_drains_and_drop_removed_vips():
    harness = Harness(make_spec({VIP: ("web",), VIP2: ("web",)}))
    harness.step(Drain((VIP2,), "rma", persist=True))
    harness.step(DrainFile(True))
    saved = [e for e in harness.effects if isinstance(e, SaveDrains)]
    assert [prefix for prefix, _ in saved[-1].drains] == [VIP2]
    harness.step(Reload(make_spec({VIP: ("web",)})))
    saved = [e for e in harness.effects if isinstance(e, SaveDrains)]
    assert saved[-1].drains == ()


def test_a_stall_asks_for_fresh_probes():
    harness = Harness(make_spec())
    harness.step(Tick(), 0.25)
    harness.step(Tick(), 3.0)
    assert ProbeAgain(("web",)) in harness.effects
    assert harness.state.stalls == 1


def test_the_drain_state_file_is_written_durably(tmp_path, monkeypatch):
    """Written to a temporary file, fsynced, renamed over, and the folder fsynced: a crash or
    power loss leaves the old drains or the new ones, never an empty file."""
    import os

    from announcer.app.drain_store import DrainStore
    from announcer.core import DrainEntry

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "drains.json"
    store = DrainStore(str(path))
    store.save(SaveDrains(((VIP, DrainEntry("rma", "api", 1.0, 0.0, True, True)),)))
    assert synced[-1] == str(tmp_path), synced  # the folder, after the rename
    assert any(name.startswith(str(tmp_path) + "/tmp") for name in synced[:-1]), synced
    (restored,) = store.load()
    assert (restored.prefix, restored.reason, restored.completed) == (VIP, "rma", True)


def test_a_slow_start_up_is_not_a_stall():
    from announcer.core import Started

    harness = Harness(make_spec())
    harness.step(Started(), 4.0)  # the state task began 4 s after the state was made
    harness.step(Tick(), 0.25)
    assert harness.state.stalls == 0


HERE = Addresses(frozenset({"192.0.2.10", "198.51.100.11"}))
GONE = Addresses(frozenset({"198.51.100.11"}))


@pytest.mark.parametrize("guard", [AddressGuard.REQUIRE, AddressGuard.MANAGE])
def test_the_address_guard_announces_only_while_the_vip_is_on_the_host(guard):
    harness = Harness(make_spec(guards={VIP: guard}))
    assert harness.run(OK) == []
    assert harness.run(OK) == []  # healthy, but the host's addresses are not known yet
    assert harness.run(HERE) == [A]
    assert harness.run(GONE) == [W]  # at once, not at the next probe or tick
    assert harness.state.vips[VIP].decision.reason.value == "address_missing"
    assert harness.run(OK) == []
    assert harness.run(Tick(), 0.25) == []
    assert harness.run(HERE) == [A]  # added back: the checks announce again


def test_a_missing_address_wins_over_drain_and_undecided_checks():
    harness = Harness(
        make_spec({VIP: ("web",), VIP2: ("web",)}, guards={VIP: AddressGuard.REQUIRE})
    )
    assert harness.run(GONE) == [W]  # the first report decides the guarded VIP, checks or not
    assert harness.run(OK) == []
    assert harness.run(OK) == [A2]  # the unguarded VIP does not care
    assert harness.run(Drain(None, "rma")) == [
        f"announce route {VIP2} next-hop self med 100 origin igp community [ 65535:0 ]"
    ]
    assert harness.run(HERE) == [A_GSHUT]  # back, and still draining
    assert harness.run(GONE) == [W]


def test_an_unguarded_vip_ignores_the_addresses():
    harness = Harness(make_spec())
    assert harness.run(GONE) == []
    assert harness.run(OK) == []
    assert harness.run(OK) == [A]
    assert harness.run(Addresses(frozenset())) == []


R1, R2 = "198.51.100.1", "198.51.100.2"


def test_a_bfd_gated_router_gets_routes_only_while_its_bfd_session_is_up():
    h = Harness(make_spec(neighbors=(R1, R2), bfd_gated=frozenset({R1})))
    on = {
        peer: f"neighbor {peer} announce route {VIP} next-hop self med 100 origin igp"
        for peer in (R1, R2)
    }
    off = {peer: f"neighbor {peer} withdraw route {VIP}" for peer in (R1, R2)}
    # cold start: the checks pass before BFD is up; R1 (gated) gets nothing, R2 (not) the route
    h.step(OK)
    assert h.run(OK) == [off[R1], on[R2]]
    assert h.run(BfdPeers(frozenset({R1}))) == [on[R1]]
    # BFD to R1 goes down while BGP stays up: withdrawn from R1 alone
    assert h.run(BfdPeers(frozenset())) == [off[R1]]
    assert h.run(Tick(), 0.25) == []
    # and back
    assert h.run(BfdPeers(frozenset({R1, R2}))) == [on[R1]]
    # health still decides for both; when both routers need the same, plain commands serve
    h.step(FAIL)
    assert h.run(FAIL) == [W]
    assert h.run(BfdPeers(frozenset({R2}))) == []
    assert h.run(BfdPeers(frozenset({R1, R2}))) == []
    h.step(OK)
    assert h.run(OK) == [A]
    # a session that comes up makes every peer's routes be sent again
    assert h.run(Neighbor(R1, "up")) == [A]
    assert h.run(Stop("bye")) == [W]
    assert not any(h.peer_ribs[peer] for peer in (R1, R2))
    assert h.state.withheld == frozenset()


def test_without_a_gated_router_the_commands_name_no_peer():
    h = Harness(make_spec(neighbors=(R1, R2)))
    h.step(OK)
    assert h.run(OK) == [A]
    assert h.run(BfdPeers(frozenset())) == []


def test_a_verdict_that_expires_while_another_vip_is_decided_reaches_every_vip_of_its_check():
    """The fail-open bug the simulation once found: a drain decides VIP at a moment when
    `web`'s UP has just outlived its TTL; VIP2, on the same check, must be withdrawn in that
    same step (no later tick sees the expiry again: it is already recorded)."""
    h = Harness(make_spec({VIP: ("web",), VIP2: ("web",)}))
    h.step(OK)
    h.run(OK)
    assert set(h.rib) == {VIP, VIP2}
    for _ in range(13):  # ticks up to 3.25 s after the last result: the TTL (3.4 s) holds
        assert h.run(Tick(), 0.25) == []
    # no tick between the expiry and the drain: the drain's decision is the first to see it
    h.run(Drain((VIP,), "maintenance"), 0.2)
    assert h.state.desired[VIP2] is None and h.rib == {}
