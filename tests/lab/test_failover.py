"""End to end: the router's FIB has exactly the healthy hosts as next hops."""

from __future__ import annotations

import collections
import signal
import time

from announcer.lab.lab import Lab

from .conftest import ALL, VIP6


def fib_samples(lab: Lab, seconds: float, prefix: str = "192.0.2.10/32") -> list[set[str]]:
    samples, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(set(lab.fib.next_hops(prefix)))
        time.sleep(0.05)
    return samples


def test_cold_start_healthy_hosts_only(lab_factory):
    lab = lab_factory(failing_at_start=frozenset({"lb2"}))
    lab.fib.wait(["lb1", "lb3"])
    lab.fib.wait(["lb1", "lb3"], VIP6)
    unhealthy = lab.host("lb2").v4
    assert all(unhealthy not in hops for hops in fib_samples(lab, 3.0))
    lab.services.set_health_failing("lb2", False)
    lab.fib.wait(ALL)


def test_nginx_stopped_and_started(lab):
    lab.services.stop("lb1")
    lab.fib.wait(["lb2", "lb3"])
    lab.fib.wait(["lb2", "lb3"], VIP6)
    lab.services.start("lb1")
    lab.fib.wait(ALL)
    lab.fib.wait(ALL, VIP6)


def test_nginx_killed(lab):
    lab.services.stop("lb2", signal.SIGKILL)
    lab.fib.wait(["lb1", "lb3"])


def test_haproxy_with_every_backend_down(lab):
    lab.services.stop_backends("lb3")
    lab.fib.wait(["lb1", "lb2"])
    lab.services.start_backends("lb3")
    lab.fib.wait(ALL)


def test_haproxy_stopped(lab):
    lab.services.stop("lb3")
    lab.fib.wait(["lb1", "lb2"])


def test_health_endpoint_answering_500(lab):
    lab.services.set_health_failing("lb2", True)
    lab.fib.wait(["lb1", "lb3"])
    lab.services.set_health_failing("lb2", False)
    lab.fib.wait(ALL)


def test_a_hung_load_balancer(lab):
    """SIGSTOPped nginx still completes TCP handshakes (the kernel does) but never answers."""
    lab.services.freeze("lb1", True)
    try:
        lab.fib.wait(["lb2", "lb3"])
    finally:
        lab.services.freeze("lb1", False)
    lab.fib.wait(ALL)


def test_plugin_sigkill_is_respawned_and_keeps_the_route(lab):
    (old,) = lab.announcers.plugin_pids("lb1")
    import os

    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not [
        p for p in lab.announcers.plugin_pids("lb1") if p != old
    ]:
        time.sleep(0.1)
    assert [p for p in lab.announcers.plugin_pids("lb1") if p != old], (
        "ExaBGP did not respawn the plugin"
    )
    lab.fib.wait(ALL)
    # the new instance is in charge: a failure is still withdrawn
    lab.services.stop("lb1")
    lab.fib.wait(["lb2", "lb3"])


def test_plugin_sigterm_withdraws(lab):
    import os

    (pid,) = lab.announcers.plugin_pids("lb2")
    os.kill(pid, signal.SIGTERM)
    lab.fib.wait(["lb1", "lb3"], timeout=5)
    # ExaBGP starts a new plugin, which announces again once its checks pass
    lab.fib.wait(ALL)


def test_exabgp_stopped(lab):
    lab.announcers.stop_exabgp("lb1")
    lab.fib.wait(["lb2", "lb3"])
    lab.fib.wait(["lb2", "lb3"], VIP6)
    lab.announcers.start_exabgp("lb1")
    lab.fib.wait(ALL)


def test_exabgp_frozen_is_removed_after_the_hold_time(lab):
    pid = lab.announcers.exabgp_pid("lb3")
    assert pid is not None
    import os

    os.kill(pid, signal.SIGSTOP)
    try:
        waited = lab.fib.wait(["lb1", "lb2"], timeout=15)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert waited >= 1.0  # a silent host is noticed by the hold timer (3 s), not at once
    lab.fib.wait(ALL)


def test_frr_restarted_routes_come_back(lab):
    lab.frr.stop()
    assert lab.fib.next_hops() == {}
    lab.frr.start()
    lab.fib.wait(ALL)
    lab.fib.wait(ALL, VIP6)


def test_drain_and_undrain_through_the_cli(lab):
    out = lab.announcers.cli("lb2", "drain", "--reason", "maintenance", "--wait")
    assert "withdrawn: 192.0.2.10/32" in out
    assert lab.host("lb2").v4 not in lab.frr.bgp_paths()  # --wait returned after the withdraw
    lab.fib.wait(["lb1", "lb3"])
    lab.fib.wait(["lb1", "lb3"], VIP6)
    assert "maintenance" in lab.announcers.cli("lb2", "status")
    lab.announcers.cli("lb2", "undrain")
    lab.fib.wait(ALL)


def test_drain_file(lab):
    lab.announcers.drain_file("lb1").touch()
    lab.fib.wait(["lb2", "lb3"])
    lab.announcers.drain_file("lb1").unlink()
    lab.fib.wait(ALL)


def test_steady_traffic_all_succeeds_and_spreads(lab):
    for url in ("http://192.0.2.10/", "http://[2001:db8:100::10]/"):
        results = lab.clients.requests(150, url=url)
        failed = [r for r in results if not r["ok"]]
        assert len(results) == 150 and not failed, failed[:5]
        served = collections.Counter(r["server"].split("-")[0] for r in results)
        assert set(served) == set(ALL), served


def test_traffic_moves_away_from_a_failed_host(lab):
    lab.services.stop("lb1")
    lab.fib.wait(["lb2", "lb3"])
    results = lab.clients.requests(60)
    assert all(r["ok"] for r in results)
    assert "lb1" not in {r["server"] for r in results}
