"""The fleet, seen from both routers' FIBs and the clients: every host's /health answering 500
at once keeps the VIP served (panic), a recovered host carries it alone again, a stopped
nginx everywhere withdraws it everywhere; drains keep their budget and wait their turn;
`announcer fleet` shows what the routers hold; a router without ADD-PATH changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from announcer.lab.lab import Lab
from announcer.lab.topology import CLIENT2, LbHost

from .conftest import ALL, VIP6, wait_for

VIP = "192.0.2.10/32"
# host -> its tag's host field (the router id as a number)
HOST_IDS = {f"198.51.100.{10 + i}": 3325256704 + 10 + i for i in (1, 2, 3)}
MARKS = {1: "normal", 2: "failing", 3: "panic", 4: "drain_pending", 5: "draining", 6: "depreferred"}


def _fleet(host: LbHost, config: dict[str, Any]) -> None:
    config["fleet"] = {"min_serving": 1, "drain_min_serving": 2, "panic_exit": "2s"}


@pytest.fixture
def fleet_lab(lab_factory) -> Lab:
    """Three nginx hosts whose routers send them every path (the lab's routers do)."""
    lab = lab_factory(plugin_overrides=_fleet, haproxy_hosts=0)
    lab.fib.wait(ALL)
    lab.fib.wait(ALL, VIP6)
    wait_for(lambda: _views_known(lab, "lb3"), 15, "lb3's fleet view")
    return lab


def fleet(lab: Lab, name: str) -> dict[str, Any]:
    return json.loads(lab.announcers.cli(name, "fleet", "--json"))  # type: ignore[no-any-return]


def _views_known(lab: Lab, name: str) -> bool:
    routers = fleet(lab, name)["routers"]
    return all(view == "known" for r in routers.values() for view in r["view"].values())


def _both_fibs(lab: Lab) -> dict[str, set[str]]:
    return {r.name: set(lab.fib.next_hops(VIP, r.name)) for r in lab.routers}


def _traffic(lab: Lab, count: int, interval: float) -> list[Any]:
    logs = []
    for client in ("client", CLIENT2):
        log = lab.workdir / f"{client}-fleet.jsonl"
        logs.append((lab.clients.start("http://192.0.2.10/", count, interval, log, client), log))
    return logs


def _results(logs: list[Any]) -> list[dict[str, Any]]:
    out = []
    for process, log in logs:
        process.wait(120)
        out += [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return out


def test_health_failing_on_every_host_keeps_the_vip_served_until_one_recovers(fleet_lab):
    lab = fleet_lab
    logs = _traffic(lab, count=250, interval=0.02)
    time.sleep(0.3)
    for name in ALL:
        lab.services.set_health_failing(name, True)
    missing: list[tuple[float, str]] = []
    started = time.monotonic()
    while time.monotonic() - started < 4.0:
        for router, hops in _both_fibs(lab).items():
            if not hops:
                missing.append((round(time.monotonic() - started, 2), router))
        time.sleep(0.05)
    results = _results(logs)
    failed = [r for r in results if not r["ok"]]
    print(
        f"health 500 on every host: {len(results)} requests, {len(failed)} failed, "
        f"VIP missing from a FIB in {len(missing)} samples",
        file=sys.stderr,
    )
    assert not missing, missing
    assert len(results) == 500 and not failed, failed[:5]
    # every host is in panic: each still carries the VIP, marked so on both routers
    assert _both_fibs(lab) == {r.name: {h.v4 for h in lab.hosts} for r in lab.routers}
    for name in ALL:
        assert _status_reason(lab, name) == "panic"
    # lb1 recovers: once it has served for panic_exit, the others withdraw
    lab.services.set_health_failing("lb1", False)
    lab.fib.wait(["lb1"], timeout=15)
    assert all(r["ok"] for r in lab.clients.requests(20))
    # nginx stopped everywhere: a hard failure, withdrawn everywhere whatever the fleet
    for name in ALL:
        lab.services.stop(name)
    wait_for(lambda: _both_fibs(lab) == {"r1": set(), "r2": set()}, 10, "withdrawn everywhere")


def _status_reason(lab: Lab, name: str) -> str:
    status = json.loads(lab.announcers.cli(name, "status", "--json"))
    return next(v["reason"] for v in status["vips"] if v["prefix"] == VIP)  # type: ignore[no-any-return]


def test_drains_keep_their_budget_and_wait_their_turn(fleet_lab):
    lab = fleet_lab
    lab.announcers.cli("lb1", "drain", VIP)
    lab.fib.wait(["lb2", "lb3"], timeout=10)
    # lb2 may not go too: only lb3 would serve, and the budget keeps two others
    refused = _cli(lab, "lb2", "drain", VIP)
    assert refused.returncode != 0
    assert "drain refused" in refused.stderr and "1 other host(s) serve it" in refused.stderr
    assert _status_reason(lab, "lb2") == "healthy"
    # lb2 waits for its turn; it comes once lb1 is undrained and serves again
    waited: dict[str, Any] = {}

    def wait_turn() -> None:
        waited["result"] = _cli(lab, "lb2", "drain", "--wait-turn", "--timeout", "60", VIP)

    thread = threading.Thread(target=wait_turn)
    thread.start()
    time.sleep(2.0)
    assert thread.is_alive(), waited
    assert set(lab.fib.next_hops(VIP)) == {lab.host("lb2").v4, lab.host("lb3").v4}
    lab.announcers.cli("lb1", "undrain", VIP)
    thread.join(60)
    result = waited["result"]
    assert result.returncode == 0, result.stderr
    assert "waiting for a turn" in result.stderr
    lab.fib.wait(["lb1", "lb3"], timeout=10)


def _cli(lab: Lab, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI inside a host, its exit status and stderr kept (lab.announcers.cli raises)."""
    from announcer.lab.workspace import BIN

    argv = [
        *("ip", "netns", "exec", name, str(BIN / "announcer"), *args),
        *("--api", "http://127.0.0.1:9180", "--token-file", str(lab.dir(name) / "api-token")),
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=90)


def test_announcer_fleet_matches_what_both_routers_report(fleet_lab):
    lab = fleet_lab
    lab.announcers.cli("lb2", "drain", VIP)  # a mark other than normal, while it lasts
    time.sleep(0.5)
    shown = fleet(lab, "lb3")
    vip = next(v for v in shown["vips"] if v["prefix"] == VIP)
    for router in lab.routers:
        data = lab.frr.vtysh_json(f"show bgp ipv4 unicast {VIP} json", router.name)
        reported = set()
        for path in data.get("paths", []):
            large = path.get("largeCommunity", {}).get("string", "")
            _, host, mark = next(c for c in large.split() if c.startswith("65534:")).split(":")
            name = next(a for a, number in HOST_IDS.items() if number == int(host))
            reported.add((name, MARKS[int(mark)]))
        seen = {(h["host"], h["mark"]) for h in vip["routers"][router.v4]["hosts"]}
        assert seen == reported, (router.name, seen, reported)
        assert (lab.host("lb2").v4, "draining") in seen


def test_without_add_path_from_the_routers_the_fleet_view_is_unknown_and_nothing_changes(
    fleet_lab,
):
    lab = fleet_lab
    for router in lab.routers:
        for group, family in (("LB", "ipv4"), ("LB6", "ipv6")):
            lab.frr.vtysh(
                "configure terminal\nrouter bgp 65000\n"
                f"address-family {family} unicast\nno neighbor {group} addpath-tx-all-paths",
                router.name,
            )
    # the change resets every session; the hosts come back without ADD-PATH
    wait_for(
        lambda: all(
            "no ADD-PATH" in view
            for r in fleet(lab, "lb3")["routers"].values()
            for view in r["view"].values()
        ),
        30,
        "the fleet view unknown",
    )
    lab.fib.wait(ALL, timeout=30)
    for name in ALL:
        lab.services.set_health_failing(name, True)
    wait_for(lambda: _both_fibs(lab) == {"r1": set(), "r2": set()}, 10, "withdrawn as today")
