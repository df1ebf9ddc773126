"""`announcer lab demo`: the lab, live. Up, traffic, a failure, a host death, a drain, a
summary, down."""

from __future__ import annotations

import collections
import json
import sys
import time
from pathlib import Path
from typing import Any

from .lab import Lab
from .topology import CLIENT, CLIENT2, ROUTERS, VIP_V4, VIP_V6

__all__ = ["run_demo"]

_TTY = sys.stdout.isatty()


def _style(code: str, text: str) -> str:
    return f"\033[{code}m{text}\033[0m" if _TTY else text


class Narrator:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        print(f"\n{_style('1;36', '==>')} {_style('1', text)}", flush=True)

    def say(self, text: str) -> None:
        print(f"    [{time.monotonic() - self.started:6.2f}s] {text}", flush=True)


def _names(lab: Lab, prefix: str, router: str) -> list[str]:
    hops = lab.fib.next_hops(prefix, router)
    return [h.name for h in lab.hosts if h.v4 in hops or h.v6 in hops]


def _show_fib(lab: Lab, n: Narrator) -> None:
    for router in ROUTERS:
        for prefix in (VIP_V4, VIP_V6):
            names = _names(lab, prefix, router.name)
            n.say(f"{router.name} FIB {prefix:<22} next hops: {', '.join(names) or 'none'}")


def _spread(results: list[dict[str, Any]], n: Narrator) -> None:
    served = collections.Counter(str(r.get("server", "")).split("-")[0] for r in results if r["ok"])
    total = len(results)
    for name, count in sorted(served.items()):
        bar = "#" * round(40 * count / max(total, 1))
        n.say(f"  {name:<4} {count:>4} requests {bar}")
    failed = total - sum(served.values())
    n.say(f"  {total} requests, {failed} failed")


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


ALERT = "AnnouncerVipWithdrawn"


def _follow_alert(lab: Lab, n: Narrator, host: str, states: tuple[str, ...]) -> None:
    """Show the lab Prometheus's alert for `host` moving through `states` (resolved: gone)."""
    assert lab.prometheus is not None
    started = time.monotonic()
    seen = ""
    deadline = started + 30
    while time.monotonic() < deadline:
        current = lab.prometheus.alert_states(ALERT, instance=host, vip=VIP_V4)
        state = "firing" if "firing" in current else "pending" if current else "resolved"
        if state != seen:
            seen = state
            if state in states:
                n.say(
                    f"Prometheus: {ALERT} for {host} {state} (+{time.monotonic() - started:.1f}s)"
                )
            if state == states[-1]:
                return
        time.sleep(0.25)
    n.say(f"Prometheus: {ALERT} for {host} did not reach {states[-1]} within 30 s")


def run_demo(lab: Lab) -> int:
    n = Narrator()
    summary: dict[str, str] = {}
    try:
        n.step(
            "Building the lab: r1 and r2 (FRR bgpd + bfdd, a ToR pair behind a switch), "
            f"{', '.join(h.name for h in lab.hosts)} (nginx/HAProxy + ExaBGP + announcer + "
            f"bfdd), {CLIENT} behind r1, {CLIENT2} behind r2"
        )
        lab.up()
        names = [h.name for h in lab.hosts]
        for host in lab.hosts:
            n.say(f"{host.name}: {host.kind:<7} AS{host.asn}  {host.v4}  {host.v6}")
        waited = lab.fib.wait(names)
        lab.fib.wait(names, VIP_V6)
        n.say(f"every host announced {VIP_V4} and {VIP_V6} within {waited:.2f}s")
        for router in ROUTERS:
            n.say(
                f"{router.name}: {lab.frr.sessions_up(router.name)} BGP sessions (TCP MD5), "
                f"{sum(s == 'up' for s in lab.frr.bfd_peers(router.name).values())} BFD sessions up"
            )
        _show_fib(lab, n)
        if lab.prometheus:
            n.say(f"Prometheus scrapes every host: {lab.prometheus.url} (alerts: /alerts)")

        n.step("Client traffic: a new connection per request, spread by the router's ECMP")
        _spread(lab.clients.requests(90), n)

        traffic_log = lab.workdir / "client-traffic.jsonl"
        background = lab.clients.start(
            "http://192.0.2.10/", count=400, interval_s=0.05, log=traffic_log
        )
        n.say("background traffic: 20 requests/s until the end of the demo")
        time.sleep(1.0)

        victim = lab.hosts[0].name
        n.step(f"Failure: stopping nginx on {victim}")
        stopped = time.monotonic()
        lab.services.stop(victim)
        rest = [name for name in names if name != victim]
        lab.fib.wait(rest)
        failover = time.monotonic() - stopped
        n.say(f"both routers dropped {victim} {failover:.3f}s after nginx stopped")
        _show_fib(lab, n)
        summary["failover (nginx stop -> FIB)"] = f"{failover:.3f}s"
        if lab.prometheus:
            _follow_alert(lab, n, victim, ("pending", "firing"))

        n.step(f"Recovery: starting nginx on {victim}")
        started = time.monotonic()
        lab.services.start(victim)
        lab.fib.wait(names)
        recovery = time.monotonic() - started
        n.say(f"{victim} back in the FIB after {recovery:.3f}s (rise 3 checks)")
        time.sleep(1.0)
        summary["recovery (nginx start -> FIB)"] = f"{recovery:.3f}s"
        if lab.prometheus:
            _follow_alert(lab, n, victim, ("resolved",))

        dead = lab.hosts[-1].name
        lab.frr.wait_bfd()
        n.step(f"Host death: every process of {dead} frozen, its cable cut at the switch")
        died = time.monotonic()
        lab.net.kill_host(dead, True)
        lab.fib.wait([name for name in names if name != dead], timeout=10)
        death = time.monotonic() - died
        n.say(f"BFD took {dead} out of both routers' FIBs {death:.3f}s after it died")
        n.say("(it could not withdraw anything: without BFD, the hold timer would take 3 s)")
        _show_fib(lab, n)
        summary["host death -> both FIBs (BFD)"] = f"{death:.3f}s"
        lab.net.kill_host(dead, False)
        lab.fib.wait(names)
        n.say(f"{dead} thawed and reconnected: back in both FIBs")

        drained = lab.hosts[1].name
        n.step(f"Drain: `announcer drain` on {drained} (operator maintenance)")
        n.say(lab.announcers.cli(drained, "drain", "--reason", "demo maintenance").strip())
        lab.fib.wait([name for name in names if name != drained])
        n.say(f"{drained} left the FIB; its nginx keeps running")
        _show_fib(lab, n)
        n.say(lab.announcers.cli(drained, "undrain").strip())
        lab.fib.wait(names)
        n.say(f"{drained} is back")
        _show_fib(lab, n)

        background.terminate()
        background.wait(5)
        results = _read_log(traffic_log)
        failed = [r for r in results if not r["ok"]]
        n.step("Background traffic (through r1) during the failure, the host death and the drain")
        _spread(results, n)
        if failed:
            n.say(
                f"the failed requests went to {victim} while it was leaving (a stopped nginx "
                f"refuses connections until the route is gone) or to {dead} before BFD noticed "
                "it was dead; none failed during the drain"
            )
        summary["requests during the faults"] = f"{len(results)} sent, {len(failed)} failed"

        n.step("Summary")
        for key, value in summary.items():
            n.say(f"{key:<34} {value}")
        return 0
    finally:
        n.step("Tearing the lab down")
        lab.down()
        n.say("namespaces, links and processes removed")
