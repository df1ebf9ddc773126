"""Whole-host faults with two upstream routers (r1, r2) behind a switch, BFD and passwords:
asserted on both routers' FIBs and on client traffic through each router."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from announcer.lab.lab import Lab
from announcer.lab.topology import CLIENT, CLIENT2

from .conftest import ALL

LB1_V4 = "198.51.100.11"


def failed(results: list[dict]) -> list[dict]:
    return [r for r in results if not r["ok"]]


def reset_since(lab: Lab, router: str, address: str, seconds: float) -> bool:
    """The router's session with `address` is down, or came up less than `seconds` ago."""
    neighbor = lab.frr.vtysh_json(f"show bgp neighbors {address} json", router).get(address, {})
    if neighbor.get("bgpState") != "Established":
        return True
    return int(neighbor.get("bgpTimerUpMsec", 0)) < seconds * 1000


def test_host_death_leaves_both_fibs_and_the_host_comes_back(lab: Lab):
    """Every process of lb1 frozen and its cable cut on the switch side (the routers' own
    ports stay up): BFD takes lb1 out of both FIBs, and clients through either router are
    served by the others; thawed and reconnected, lb1 is back in both."""
    lab.frr.wait_bfd()
    lab.net.kill_host("lb1", True)
    try:
        lab.fib.wait(["lb2", "lb3"], timeout=3)
        for client in (CLIENT, CLIENT2):
            results = lab.clients.requests(20, client=client)
            assert not failed(results), failed(results)
    finally:
        lab.net.kill_host("lb1", False)
    lab.fib.wait(ALL, timeout=30)


def test_a_host_whose_bfdd_dies_is_dropped_and_rejoins_with_bfd(lab: Lab):
    """The routers tear lb1's sessions down when its BFD goes; the plugin reports BFD down;
    with bfdd back, both routers see BFD up and carry lb1 again."""
    lab.frr.wait_bfd()
    # the plugin reads its own bfdd: both sessions up, as the routers see them
    deadline = time.monotonic() + 5
    status: dict = {}
    while time.monotonic() < deadline:
        status = json.loads(lab.announcers.cli("lb1", "status", "--json"))
        if status["bfd"]["bfdd_reachable"] and set(status["bfd"]["peers"].values()) == {"up"}:
            break
        time.sleep(0.2)
    assert status["bfd"]["bfdd_reachable"] is True, status["bfd"]
    assert status["bfd"]["via"] == "control", status["bfd"]  # pushed by bfdd, not polled
    peers = status["bfd"]["peers"]  # two routers, an IPv4 and an IPv6 session to each
    assert len(peers) == 4 and set(peers.values()) == {"up"}, peers
    time.sleep(2)  # sessions older than what a reset would leave
    killed = time.monotonic()
    lab.announcers.stop_bfdd("lb1")
    reset = set()
    while time.monotonic() < killed + 5 and len(reset) < 2:
        reset |= {r for r in ("r1", "r2") if reset_since(lab, r, LB1_V4, time.monotonic() - killed)}
        time.sleep(0.05)
    assert reset == {"r1", "r2"}, "a router kept lb1's session when its BFD went down"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = json.loads(lab.announcers.cli("lb1", "status", "--json"))
        if status["bfd"]["bfdd_reachable"] is False:
            break
        time.sleep(0.2)
    assert status["bfd"]["bfdd_reachable"] is False, status["bfd"]
    assert set(status["bfd"]["peers"].values()) == {"unknown"}
    lab.announcers.start_bfdd("lb1")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(lab.frr.bfd_peers(r).get(LB1_V4) == "up" for r in ("r1", "r2")):
            break
        time.sleep(0.1)
    assert all(lab.frr.bfd_peers(r).get(LB1_V4) == "up" for r in ("r1", "r2"))
    lab.fib.wait(ALL)


def test_one_router_restarting_leaves_the_other_with_full_ecmp(lab: Lab, tmp_path: Path):
    """r1's FRR stops and starts: r2 keeps every host throughout (clients behind r2 lose
    nothing), and r1 relearns every host."""
    log = tmp_path / "client2.jsonl"
    traffic = lab.clients.start("http://192.0.2.10/", 150, 0.02, log, client=CLIENT2)
    samples: list[set[str]] = []
    lab.frr.stop("r1")
    for _ in range(40):
        samples.append(set(lab.fib.next_hops("192.0.2.10/32", "r2")))
        time.sleep(0.05)
    lab.frr.start("r1")
    lab.fib.wait(ALL, routers=("r1",), timeout=30)
    traffic.wait(60)
    want = lab.fib.addresses(ALL)
    assert all(sample == want for sample in samples), samples
    results = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert len(results) == 150
    assert not failed(results), failed(results)


def test_a_rolling_restart_of_the_fleet_loses_no_request(lab: Lab, tmp_path: Path):
    """One host at a time, the way the systemd unit stops and starts it (drain --wait
    --no-persist, stop ExaBGP, start it), under traffic through both routers: 0 failures."""
    logs = {client: tmp_path / f"{client}.jsonl" for client in (CLIENT, CLIENT2)}
    clients = [
        lab.clients.start("http://192.0.2.10/", 600, 0.02, log, client=client)
        for client, log in logs.items()
    ]
    for name in ALL:
        others = [n for n in ALL if n != name]
        lab.announcers.cli(name, "drain", "--wait", "--no-persist", "--reason", "rolling restart")
        lab.fib.wait(others, timeout=10)
        lab.announcers.stop_exabgp(name)
        lab.announcers.start_exabgp(name)
        lab.fib.wait(ALL, timeout=30)
    for client in clients:
        client.wait(120)
    for log in logs.values():
        results = [
            json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")
        ]
        assert len(results) == 600
        assert not failed(results), failed(results)[:5]


def test_a_password_mismatch_keeps_that_host_out(lab_factory):
    """lb2's secret is wrong: its sessions never come up, on either router; the others'
    do; lb2's plugin shows its neighbors idle."""
    lab = lab_factory(wrong_password=frozenset({"lb2"}))
    lab.fib.wait(["lb1", "lb3"])
    unwanted = lab.host("lb2").v4
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert all(unwanted not in hops for hops in lab.fib.every_router().values())
        time.sleep(0.1)
    status = json.loads(lab.announcers.cli("lb2", "status", "--json"))
    assert set(status["neighbors"].values()) == {"idle"}, status["neighbors"]
    metrics = subprocess.run(
        ["ip", "netns", "exec", "lb2", "curl", "-s", "http://127.0.0.1:9180/metrics"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'announcer_bgp_neighbor_up{neighbor="198.51.100.1"} 0.0' in metrics
