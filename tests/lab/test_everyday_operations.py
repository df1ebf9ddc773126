"""What a network engineer meets in the first week, seen from the routers and the clients:
the VIP address guard, load-balancer reloads under traffic, and a fleet-wide restart."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

import yaml

from announcer.lab.lab import Lab
from announcer.lab.netns import ip, ip_json
from announcer.lab.topology import CLIENT2, LbHost

from .conftest import ALL, VIP6, wait_for

VIP = "192.0.2.10/32"


def on_lo(lab: Lab, name: str, address: str = "192.0.2.10") -> bool:
    addresses = ip_json("-n", name, "addr", "show", "dev", "lo")
    return any(a["local"] == address for link in addresses for a in link.get("addr_info", []))


def status(lab: Lab, name: str) -> dict[str, Any]:
    return {
        v["prefix"]: v for v in json.loads(lab.announcers.cli(name, "status", "--json"))["vips"]
    }


def test_require_withdraws_the_moment_the_vip_leaves_lo_and_announces_when_it_is_back(lab):
    netns_ip = ["-n", "lb1", "addr"]
    ip(*netns_ip, "del", VIP, "dev", "lo")
    # only the IPv4 VIP: lb1 leaves both routers' FIBs for it, and stays for the IPv6 one
    lab.fib.wait(["lb2", "lb3"], timeout=5)
    assert lab.host("lb1").v6 in lab.fib.next_hops(VIP6)
    vip = status(lab, "lb1")[VIP]
    assert (vip["desired"], vip["reason"]) == ("withdraw", "address_missing"), vip
    assert vip["address"] == {"guard": "require", "assigned": False}
    ip(*netns_ip, "add", VIP, "dev", "lo")
    lab.fib.wait(ALL, timeout=10)
    assert status(lab, "lb1")[VIP]["reason"] == "healthy"


def _manage_on_lb1(host: LbHost, config: dict[str, Any]) -> None:
    if host.name == "lb1":
        config["addresses"] = {"mode": "manage", "linger": "1s"}


def test_manage_assigns_before_announcing_and_removes_only_after_the_withdraw(lab_factory):
    lab = lab_factory(unassigned=frozenset({"lb1"}), plugin_overrides=_manage_on_lb1)
    lab.fib.wait(ALL)
    lab.fib.wait(ALL, VIP6)
    assert on_lo(lab, "lb1") and on_lo(lab, "lb1", "2001:db8:100::10")
    assert not on_lo(lab, "lb2", "192.0.2.99")

    # an operator removes it: withdrawn at once, and not put back behind the operator's back
    ip("-n", "lb1", "addr", "del", VIP, "dev", "lo")
    lab.fib.wait(["lb2", "lb3"], timeout=5)
    time.sleep(1)
    assert not on_lo(lab, "lb1")
    # a reload assigns it again
    lab.announcers.cli("lb1", "reload")
    lab.fib.wait(ALL, timeout=10)
    assert on_lo(lab, "lb1")

    # the VIP removed from the config: the address stays until the withdraw has reached the
    # routers, never the other way round (ExaBGP issue #993: packets refused on the way out)
    path = lab.dir("lb1") / "announcer.yaml"
    config = yaml.safe_load(path.read_text())
    config["vips"] = [v for v in config["vips"] if v["prefix"] != VIP]
    path.write_text(yaml.safe_dump(config))
    lb1 = lab.host("lb1").v4
    samples: list[tuple[bool, bool]] = []
    lab.announcers.cli("lb1", "reload")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        routed = any(lb1 in lab.fib.next_hops(VIP, r.name) for r in lab.routers)
        present = on_lo(lab, "lb1")
        samples.append((routed, present))
        if not routed and not present:
            break
    assert samples[-1] == (False, False), samples[-5:]
    assert not [s for s in samples if s == (True, False)], "address gone while still routed"
    assert on_lo(lab, "lb1", "2001:db8:100::10")  # the VIP still configured keeps its address


def _traffic(lab: Lab, count: int, interval: float) -> list[Any]:
    logs = []
    for client in ("client", CLIENT2):
        log = lab.workdir / f"{client}-reloads.jsonl"
        logs.append(
            (lab.clients.start("http://192.0.2.10/", count, interval, log, client=client), log)
        )
    return logs


def _failed(logs: list[Any]) -> tuple[int, list[dict[str, Any]]]:
    results = []
    for process, log in logs:
        process.wait(120)
        results += [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return len(results), [r for r in results if not r["ok"]]


def test_reloads_send_no_update_and_fail_no_request(lab):
    """20 `nginx -s reload` on lb1, nginx's binary upgrade on lb2, 20 HAProxy master-worker
    reloads on lb3, under client traffic through both routers."""
    before = {
        (n, r.name): lab.frr.updates_received(n, router=r.name) for n in ALL for r in lab.routers
    }
    logs = _traffic(lab, count=600, interval=0.02)
    time.sleep(0.5)
    for _ in range(20):
        lab.services.reload("lb1")
        lab.services.reload("lb3")
        time.sleep(0.1)
    lab.services.upgrade_nginx("lb2")
    total, failed = _failed(logs)
    time.sleep(1)  # an UPDATE on its way would have arrived
    after = {
        (n, r.name): lab.frr.updates_received(n, router=r.name) for n in ALL for r in lab.routers
    }
    updates = {key: after[key] - before[key] for key in before}
    print(f"reloads: {total} requests, {len(failed)} failed, UPDATEs {updates}", file=sys.stderr)
    assert total == 1200
    assert not failed, failed[:5]
    assert not any(updates.values()), updates
    assert set(lab.fib.next_hops()) == lab.fib.addresses(ALL)


RESTART_DOWN_S = 1.0  # how long each load balancer is down in a restart
RETRY_AFTER_S = 1.5  # the config push tool retries this soon


def _restart_fleet(lab: Lab, down_s: float) -> None:
    """`systemctl restart` of every load balancer at once (a config push), taking `down_s`."""
    threads = [
        threading.Thread(target=lab.services.stop, args=(name, signal.SIGTERM)) for name in ALL
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(down_s)
    for name in ALL:
        lab.services.start(name)


def _fib_gaps(lab: Lab, busy: threading.Thread, after_s: float) -> list[float]:
    """Each stretch of time r1 had no route to the VIP, sampled every 10 ms while `busy`
    runs and `after_s` longer."""
    gaps: list[float] = []
    empty_since: float | None = None
    until = float("inf")
    while time.monotonic() < until:
        now = time.monotonic()
        if not busy.is_alive() and until == float("inf"):
            until = now + after_s
        empty = not lab.fib.next_hops()
        if empty and empty_since is None:
            empty_since = now
        elif not empty and empty_since is not None:
            gaps.append(round(now - empty_since, 3))
            empty_since = None
        time.sleep(0.01)
    assert empty_since is None, f"still no route {after_s} s after the last restart"
    return gaps


def test_a_fleet_wide_restart_retried_twice_is_not_prolonged_by_dampening(lab_factory):
    """Three fleet-wide restarts in a row (a config push retried twice) with the default
    settings: every host is penalised alike, dampening de-prefers them all, and the routers
    keep serving from all of them: the VIP is back as soon as the load balancers are (had
    dampening withdrawn them, the penalty of three withdrawals 2 s apart would have kept the
    VIP off every router for about 28 s). Prometheus sees that every host withdrew."""
    lab = lab_factory(prometheus=True)
    lab.fib.wait(ALL)
    lab.frr.wait_bfd()
    started = time.monotonic()
    restarts = threading.Thread(
        target=lambda: [
            (_restart_fleet(lab, RESTART_DOWN_S), time.sleep(RETRY_AFTER_S)) for _ in range(3)
        ]
    )
    restarts.start()
    gaps = _fib_gaps(lab, restarts, after_s=3.0)
    took = time.monotonic() - started
    print(
        f"fleet-wide restart x3 in {took:.1f} s: VIP missing from r1's FIB for {gaps} s",
        file=sys.stderr,
    )
    assert len(gaps) == 3 and all(gap < 5.0 for gap in gaps), gaps
    reasons = {name: status(lab, name)[VIP]["reason"] for name in ALL}
    assert set(reasons.values()) == {"suppressed"}, reasons
    assert set(lab.fib.next_hops()) == lab.fib.addresses(ALL)  # all de-preferred alike: all in ECMP
    wait_for(
        lambda: (
            "firing" in lab.prometheus.alert_states("AnnouncerVipWithdrawnByEveryHost", vip=VIP)
        ),
        10,
        "the every-host-withdrew alert",
        poll=0.5,
    )
