"""Announced only while the routers can see the host die: each host announces to a router only
while its BFD session to it is up. Asserted on both routers' FIBs."""

from __future__ import annotations

import json
import time

from announcer.lab.lab import Lab

from .conftest import ALL

LB1_V4 = "198.51.100.11"
LB1_ROUTER = "198.51.100.1"  # r1, as lb1 names it


def _in_both(lab: Lab, address: str) -> bool:
    return all(address in hops for hops in lab.fib.every_router().values())


def _in_any(lab: Lab, address: str) -> bool:
    return any(address in hops for hops in lab.fib.every_router().values())


def _until(predicate, timeout: float, what: str, poll: float = 0.005) -> float:
    """Seconds until `predicate()` holds (fails the test after `timeout`)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - started


def test_a_host_that_dies_just_after_it_came_back_leaves_both_fibs_at_bfd_speed(lab: Lab):
    """lb1 dies, comes back, and dies again 0.5 s after it is back in both FIBs, six times:
    each time it leaves both FIBs in BFD's time (100 ms x 3), never the BGP hold time (3 s),
    because it was announced only once BFD protected it."""
    lab.frr.wait_bfd()
    out_after: list[float] = []
    for _ in range(6):
        lab.net.kill_host("lb1", True)
        _until(lambda: not _in_any(lab, LB1_V4), 10, "lb1 out of both FIBs")
        lab.net.kill_host("lb1", False)
        _until(lambda: _in_both(lab, LB1_V4), 30, "lb1 back in both FIBs")
        time.sleep(0.5)
        lab.net.kill_host("lb1", True)
        out_after.append(_until(lambda: not _in_any(lab, LB1_V4), 10, "lb1 out again"))
        lab.net.kill_host("lb1", False)
    lab.fib.wait(ALL, timeout=30)
    # BFD's detection is 0.3 s; the hold timer would be 3 s. A margin for a busy CI machine.
    assert max(out_after) < 1.0, out_after


def test_a_host_whose_bfdd_restarts_is_withdrawn_until_bfd_is_up_again(lab: Lab):
    """FRR 8.4 re-establishes BGP with a host whose BFD went down (no strict mode): the plugin
    itself keeps lb1 out of both routers while its bfdd is gone, and back once BFD is up."""
    lab.frr.wait_bfd()
    lab.announcers.stop_bfdd("lb1")
    _until(lambda: not _in_any(lab, LB1_V4), 5, "lb1 out of both FIBs")
    deadline = time.monotonic() + 6  # long enough for the routers to bring BGP back up
    while time.monotonic() < deadline:
        assert not _in_any(lab, LB1_V4), lab.fib.every_router()
        time.sleep(0.05)
    # the routers did take lb1's sessions back: it is the plugin that keeps lb1 out, and says so
    assert all(_established(lab, router) for router in ("r1", "r2"))
    status = json.loads(lab.announcers.cli("lb1", "status", "--json"))
    assert set(status["withheld"].values()) == {"bfd_down"} and len(status["withheld"]) == 4
    assert {v["routers"][LB1_ROUTER] for v in status["vips"]} == {"withdrawn"}, status["vips"]
    lab.announcers.start_bfdd("lb1")
    _until(lambda: _in_both(lab, LB1_V4), 30, "lb1 back in both FIBs")
    lab.frr.wait_bfd(["lb1"])


def _established(lab: Lab, router: str) -> bool:
    neighbor = lab.frr.vtysh_json(f"show bgp neighbors {LB1_V4} json", router).get(LB1_V4, {})
    return neighbor.get("bgpState") == "Established"


def _reset_within(lab: Lab, router: str, seconds: float) -> bool:
    """The router's BGP session with lb1 is down, or came up less than `seconds` ago."""
    neighbor = lab.frr.vtysh_json(f"show bgp neighbors {LB1_V4} json", router).get(LB1_V4, {})
    if neighbor.get("bgpState") != "Established":
        return True
    return int(neighbor.get("bgpTimerUpMsec", 0)) < seconds * 1000


def test_with_the_gate_off_a_host_without_bfd_is_announced_as_before(lab_factory):
    """`bfd: {gate: false}` (for routers with a strict mode of their own): the plugin
    announces whatever BFD says, so with lb1's bfdd gone the routers carry lb1 again once BGP
    is back up (FRR 8.4 has no strict mode)."""
    lab = lab_factory(bfd_gate=False)
    lab.fib.wait(ALL)
    lab.frr.wait_bfd()
    time.sleep(2)  # sessions older than what a reset would leave
    stopped = time.monotonic()
    lab.announcers.stop_bfdd("lb1")
    _until(
        lambda: all(_reset_within(lab, r, time.monotonic() - stopped) for r in ("r1", "r2")),
        5,
        "both routers to reset lb1's session on BFD down",
    )
    _until(lambda: _in_both(lab, LB1_V4), 30, "lb1 back in both FIBs without BFD")
    assert lab.frr.bfd_peers("r1").get(LB1_V4) != "up"
