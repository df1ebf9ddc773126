"""Stable next hops in the lab: three hosts, three slots moved by keepalived, r1 hashing flows
on L4. While one host at a time fails, returns, is drained, dies, comes back, leaves and
joins, r1's FIB keeps the same next hops in the same nexthop group, and the long-lived
connections on the other hosts (the survivors) do not break; a killed keepalived does not leave
two hosts answering for its slot."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from announcer.lab.lab import Lab
from announcer.lab.netns import LabError, ip_json
from announcer.lab.survivors import measure_survivors
from announcer.lab.topology import LbHost, slot_address

from .conftest import wait_for

SLOTS = {slot_address(n) for n in (1, 2, 3)}


@pytest.fixture
def stable_lab(lab_factory) -> Lab:
    lab = lab_factory(stable=True, haproxy_hosts=0)
    wait_for(lambda: set(lab.fib.next_hops()) == SLOTS, 30, "r1 routes the VIP over the slots")
    return lab


@pytest.mark.timeout(300)
def test_no_survivor_connection_breaks_while_hosts_fail_drain_die_and_return(stable_lab):
    rows, fib = measure_survivors(
        stable_lab, connections=200, interval_s=0.2, log=lambda _: None, settle_s=2.0
    )
    # the routers' set of next hops never changed: one nexthop group, the three slots
    assert len(fib.seen) == 1 and set(fib.seen[0][1]) == SLOTS, fib.seen
    assert fib.samples > 100
    for row in rows:
        assert row.survivors >= 20, row  # the survivors carry a share of the connections
        assert row.survivors_broken <= max(1, row.survivors // 100), row
    # the changed host's own connections do break where it stops serving
    stopped = next(r for r in rows if r.event == "nginx stopped")
    assert stopped.on_host and stopped.on_host_broken == stopped.on_host


def test_a_plugin_respawned_keeps_its_slot_and_a_killed_keepalived_leaves_no_second_holder(
    stable_lab,
):
    """ExaBGP respawns a killed plugin; the new one leaves keepalived's file as it was until
    it has decided, so lb1 keeps its slot (and its connections) throughout. Then lb1's
    keepalived is killed: its backup takes the slot, the plugin removes the address keepalived
    left behind and withdraws lb1's paths, and clients are served."""
    lab = stable_lab
    slot = slot_address(1)
    assert lab.slot_holders()[slot] == ["lb1"]
    before = lab.announcers.plugin_pids("lb1")
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: bool(set(lab.announcers.plugin_pids("lb1")) - set(before)), 15, "a new plugin")
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        assert lab.slot_holders()[slot] == ["lb1"]
        time.sleep(0.05)
    assert set(lab.fib.next_hops()) == SLOTS

    lab.announcers.stop_keepalived("lb1", signal.SIGKILL)
    wait_for(lambda: lab.slot_holders()[slot] == ["lb2"], 5, "slot 1 with lb2 alone")
    # no slot could move to lb1 now: its paths are withdrawn, r1 keeps every slot
    paths = lambda: lab.frr.vtysh("show bgp ipv4 unicast 192.0.2.10/32")  # noqa: E731
    wait_for(lambda: "from 198.51.100.11" not in paths(), 5, "lb1's paths withdrawn")
    assert set(lab.fib.next_hops()) == SLOTS
    answers = lab.clients.requests(30, interval_s=0.02)
    assert len(answers) == 30 and all(r["ok"] for r in answers), answers


def _with_fleet(host: LbHost, config: dict[str, Any]) -> None:
    config["fleet"] = {}  # the routers' view: who announces through which slot


def test_a_returned_host_takes_nothing_until_a_slot_is_handed_back_to_it(lab_factory):
    """nopreempt: lb1 comes back and gets no slot; `announcer release-slot` on the holder
    hands slot 1 back (refused where no other host backs the slot), r1's FIB unchanged."""
    lab = lab_factory(stable=True, haproxy_hosts=0, plugin_overrides=_with_fleet)
    wait_for(lambda: set(lab.fib.next_hops()) == SLOTS, 30, "r1 routes the VIP over the slots")
    first, third = slot_address(1), slot_address(3)
    nhid = _nhid(lab)
    lab.services.stop("lb1")
    wait_for(lambda: lab.slot_holders()[first] == ["lb2"], 5, "slot 1 with its backup")
    lab.services.start("lb1")
    time.sleep(2.0)  # lb1 serves again, and still holds nothing
    assert lab.slot_holders()[first] == ["lb2"]
    # slot 3 is lb3's; its other backer is lb1: stop lb1's nginx, and lb3 may not let it go
    lab.services.stop("lb1")
    assert "no other host is seen to back" in _release(lab, "lb3", third)
    assert lab.slot_holders()[third] == ["lb3"]
    lab.services.start("lb1")
    # lb1 serves: the routers show it announcing through slot 1, so lb2 may hand it back
    wait_for(
        lambda: "handed over" in _release(lab, "lb2", first),
        15,
        "slot 1 handed back",
        poll=0.5,
    )
    wait_for(lambda: lab.slot_holders()[first] == ["lb1"], 5, "slot 1 back with lb1")
    # what the routers show lb2: every host's path through each slot it backs
    fleet = json.loads(lab.announcers.cli("lb2", "fleet", "--json"))
    paths = fleet["vips"][0]["routers"]["198.51.100.1"]["hosts"]
    assert {(p["host"], p["next_hop"]) for p in paths} == {
        ("198.51.100.11", first),
        ("198.51.100.11", third),
        ("198.51.100.12", first),
        ("198.51.100.12", slot_address(2)),
        ("198.51.100.13", slot_address(2)),
        ("198.51.100.13", third),
    }
    assert _nhid(lab) == nhid and set(lab.fib.next_hops()) == SLOTS
    answers = lab.clients.requests(60, interval_s=0.01)
    assert all(a["ok"] for a in answers), answers


def _nhid(lab: Lab) -> object:
    routes = ip_json("-n", "r1", "-4", "route", "show", "192.0.2.10")
    return routes[0].get("nhid") if routes else None


def _release(lab: Lab, name: str, slot: str) -> str:
    """`announcer release-slot` on a host: what it printed, or its error."""
    try:
        return lab.announcers.cli(name, "release-slot", slot)
    except LabError as exc:
        return str(exc)


def test_a_drain_under_short_request_traffic_loses_nothing(stable_lab):
    """The drained host hands its slots over at once (its routes follow after gshut_period);
    requests keep landing on whoever holds each slot, and none fails."""
    lab = stable_lab
    log = lab.workdir / "traffic.jsonl"
    client = lab.clients.start("http://192.0.2.10/", count=120, interval_s=0.05, log=log)
    time.sleep(1.5)
    lab.announcers.cli("lb2", "drain", "--reason", "maintenance")
    wait_for(lambda: not _holds(lab, "lb2"), 5, "lb2's slots moved")
    paths = lambda: lab.frr.vtysh("show bgp ipv4 unicast 192.0.2.10/32")  # noqa: E731
    wait_for(lambda: "from 198.51.100.12" not in paths(), 10, "lb2's paths withdrawn")
    assert set(lab.fib.next_hops()) == SLOTS
    client.wait(30)
    results = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    failed = [r for r in results if not r["ok"]]
    assert len(results) == 120 and not failed, failed
    servers = [r["server"] for r in results]
    assert "lb2" in servers  # it served before the drain
    assert "lb2" not in servers[-20:]  # and not after


def _holds(lab: Lab, name: str) -> bool:
    return any(name in holders for holders in lab.slot_holders().values())
