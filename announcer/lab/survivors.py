"""Long-lived connections across the events that change one host, and what the router's FIB
did meanwhile: the survivor break ratio, for the benchmark (bench/long_lived.py) and the lab
test of stable next hops (tests/lab/test_stable_next_hops.py).

A client behind r1 keeps `connections` HTTP/1.1 connections open to the VIP
(`announcer.lab.long_lived`); one host at a time fails, returns, is drained, dies, comes back,
leaves and joins. Each event counts from the moment it is made until SETTLE_S after the change
settled: r1's next hops (plain ECMP), or the slots' holders (stable next hops: the next hops
do not change). Meanwhile r1's route for the VIP is sampled every 20 ms.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .lab import Lab
from .long_lived import Breaks, breaks_in, read_events
from .netns import ip_json
from .topology import CLIENT, ROUTER, VIP_V4
from .workspace import wait_until

__all__ = ["FibSamples", "measure_survivors"]

SETTLE_S = 3.0
SAMPLE_S = 0.02


@dataclass
class FibSamples:
    """r1's route for the VIP, sampled: each distinct (nexthop group id, next hops) seen."""

    seen: list[tuple[int | None, tuple[str, ...]]] = field(default_factory=list)
    samples: int = 0

    def take(self) -> None:
        routes = ip_json("-n", ROUTER, "-4", "route", "show", VIP_V4.split("/")[0])
        route: dict[str, Any] = routes[0] if routes else {}
        hops = tuple(sorted(hop["gateway"] for hop in route.get("nexthops", [])))
        if not hops and "gateway" in route:
            hops = (route["gateway"],)
        value = (route.get("nhid"), hops)
        self.samples += 1
        if not self.seen or self.seen[-1] != value:
            self.seen.append(value)


def _sample(samples: FibSamples, stop: threading.Event) -> None:
    while not stop.wait(SAMPLE_S):
        samples.take()


def _settled_slots(lab: Lab, away: str | None) -> Callable[[], bool]:
    """Every slot held by one host other than `away` (a dead host, frozen behind its cut
    cable, still has the addresses it held: nobody can reach it)."""

    def settled() -> bool:
        holders = lab.slot_holders()
        return all(len([n for n in h if n != away]) == 1 for h in holders.values())

    return settled


def measure_survivors(
    lab: Lab,
    connections: int = 240,
    interval_s: float = 0.5,
    log: Callable[[str], None] = print,
    settle_s: float = SETTLE_S,
) -> tuple[list[Breaks], FibSamples]:
    """Run the events on a lab that is up (three hosts); the breaks per event, and r1's FIB.
    Each event is counted until `settle_s` after its change settled: longer than a
    connection's interval and its 1.5 s timeout, so that a connection the change broke has
    noticed by then."""
    stable = bool(lab.slots)
    all_hosts = [h.name for h in lab.hosts]
    log_path = lab.workdir / "long-lived.jsonl"
    argv = [sys.executable, "-m", "announcer.lab.long_lived", "--host", VIP_V4.split("/")[0]]
    argv += ["--connections", str(connections), "--interval", str(interval_s)]
    client = lab.space.start_process(CLIENT, [*argv, "--seconds", "300"], log_path)
    samples, stop = FibSamples(), threading.Event()
    sampler = threading.Thread(target=_sample, args=(samples, stop), daemon=True)
    marks: list[tuple[str, str, float, float, float]] = []
    try:
        time.sleep(settle_s + interval_s)  # every connection has its home
        sampler.start()

        def event(name: str, host: str, make: Callable[[], object], settled: list[str]) -> None:
            started, began = time.time(), time.monotonic()
            make()
            if stable:
                away = None if host in settled else host
                message = lambda: str(lab.slot_holders())  # noqa: E731
                wait_until(_settled_slots(lab, away), 30, message, poll_s=0.01)
            else:
                lab.fib.wait(settled, routers=(ROUTER,))
            took = time.monotonic() - began
            time.sleep(settle_s)
            marks.append((name, host, started, time.time(), took))
            log(f"{name}: done")

        def back(name: str) -> None:
            """A dead host comes back as after a reboot: its processes run before its cable
            is in (a frozen keepalived would otherwise wake up as the master of its old
            slots), then the cable."""
            lab.net.freeze_host(name, False)
            if stable:
                health = lab.dir(name) / "slots"
                wait_until(lambda: health.read_text().strip() == "1", 15, "still holds slots")
            else:
                time.sleep(1.0)
            lab.net.cut_link(name, False)

        def leave(name: str) -> None:
            lab.announcers.stop_exabgp(name)  # its plugin withdraws on the way out
            if stable:
                lab.announcers.stop_keepalived(name, signal.SIGTERM)

        def join(name: str) -> None:
            if stable:
                lab.announcers.start_keepalived(name)
            lab.announcers.start_exabgp(name)

        rest = [n for n in all_hosts if n != "lb1"]
        event("nginx stopped", "lb1", lambda: lab.services.stop("lb1", signal.SIGTERM), rest)
        event("nginx started again", "lb1", lambda: lab.services.start("lb1"), all_hosts)
        others = [n for n in all_hosts if n != "lb2"]
        event("drain (middle host)", "lb2", lambda: lab.announcers.cli("lb2", "drain"), others)
        event("undrain", "lb2", lambda: lab.announcers.cli("lb2", "undrain"), all_hosts)
        others = [n for n in all_hosts if n != "lb3"]
        event("host death", "lb3", lambda: lab.net.kill_host("lb3", True), others)
        event("host back", "lb3", lambda: back("lb3"), all_hosts)
        event("host leaves", "lb3", lambda: leave("lb3"), others)
        event("host joins", "lb3", lambda: join("lb3"), all_hosts)
    finally:
        stop.set()
        client.terminate()
        client.wait(10)
    events = read_events(log_path)
    return [
        replace(breaks_in(events, name, host, start, end), settled_s=round(took, 3))
        for name, host, start, end, took in marks
    ], samples


def write_rows(rows: list[Breaks], log: Callable[[str], None]) -> None:
    for row in rows:
        log(
            f"{row.event} ({row.host}): survivors broken {row.survivors_broken} of "
            f"{row.survivors} ({row.survivor_ratio:.1%}); on {row.host} "
            f"{row.on_host_broken} of {row.on_host}; settled after {row.settled_s} s"
        )
