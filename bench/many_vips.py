"""Many VIPs on one host: how long the *last* of them takes to leave r1's FIB when the host's
nginx stops, and to come back when it starts again, with the phases from the plugin's log.

    python -m bench.many_vips [--vips 1000] [--rounds 3]

Two LB hosts, each announcing the same N VIPs (198.18.0.0/15), each VIP with its own HTTP check
at the product's defaults. nginx on lb1 is stopped, then started; r1's kernel routes are read
every few milliseconds (`ip -j route show proto bgp`), and each VIP's moment is when lb1 leaves
(or rejoins) its next hops. Needs root and the lab's tools (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import time
from typing import Any

from announcer.lab.lab import Lab
from announcer.lab.netns import ip_json

from .run import log, make_lab
from .systems import ANNOUNCER

PREFIX = "198.18.0.0/15"


def vip_prefixes(count: int) -> list[str]:
    return [f"198.18.{i // 256}.{i % 256}/32" for i in range(count)]


def _holders(router: str = "r1") -> dict[str, set[str]]:
    """Every BGP route of the router's kernel: destination -> next hops."""
    out: dict[str, set[str]] = {}
    for route in ip_json("-n", router, "-4", "route", "show", "proto", "bgp"):
        hops = {h["gateway"] for h in route.get("nexthops", [])}
        if "gateway" in route:
            hops.add(route["gateway"])
        out[route["dst"].removesuffix("/32")] = hops  # a host route is shown without its /32
    return out


def _until(
    dsts: list[str], address: str, present: bool, timeout: float = 30.0
) -> tuple[dict[str, float], int]:
    """Poll until `address` is (or is not) a next hop of every destination; when each got
    there (wall time), and how many polls it took."""
    pending = {dst.removesuffix("/32") for dst in dsts}
    seen: dict[str, float] = {}
    polls = 0
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        holders = _holders()
        now = time.time()
        polls += 1
        for dst in list(pending):
            if (address in holders.get(dst, set())) == present:
                seen[dst] = now
                pending.discard(dst)
    if pending:
        raise TimeoutError(f"{len(pending)} of {len(dsts)} VIPs did not change in {timeout}s")
    return seen, polls


def _events(lab: Lab, start: float, end: float) -> list[dict[str, Any]]:
    out = []
    for line in (lab.dir("lb1") / "exabgp.log").read_text().splitlines():
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if start <= event.get("ts", 0) <= end:
                out.append(event)
    return out


def phases_of(events: list[dict[str, Any]], t0: float, health: str) -> dict[str, Any]:
    """When the checks changed, and when ExaBGP acknowledged the routes, from t0."""
    changed = [
        e["ts"] - t0
        for e in events
        if e.get("event") == "check_changed" and e.get("health") == health
    ]
    key = "withdrawn" if health == "down" else "announced"
    synced = [e for e in events if e.get("event") == "routes_synced" and e.get(key)]
    return {
        "checks_changed": len(changed),
        "first_check_s": min(changed, default=None),
        "last_check_s": max(changed, default=None),
        "batches": len(synced),
        "routes_in_batches": sum(int(e.get(key) or 0) for e in synced),
        "first_ack_s": min((e["ts"] - t0 for e in synced), default=None),
        "last_ack_s": max((e["ts"] - t0 for e in synced), default=None),
        # per batch: routes, and seconds from sending it to ExaBGP's last answer
        "batches_routes_seconds": [(int(e.get(key) or 0), e.get("seconds")) for e in synced],
    }


def bench_many_vips(
    count: int, rounds: int, exabgp_env: dict[str, str] | None = None
) -> dict[str, Any]:
    vips = vip_prefixes(count)
    lab = make_lab(ANNOUNCER, hosts=2, vips=vips, exabgp_env=exabgp_env)
    lb1 = lab.host("lb1").v4
    rows: list[dict[str, Any]] = []
    try:
        lab.up()
        _until(vips, lb1, present=True, timeout=120)
        for number in range(rounds):
            time.sleep(2.0)
            t0 = time.time()
            lab.services.stop("lb1", signal.SIGTERM)
            gone, polls_out = _until(vips, lb1, present=False)
            time.sleep(1.0)
            t2 = time.time()
            lab.services.start("lb1")
            back, polls_in = _until(vips, lb1, present=True)
            t3 = time.time()
            row = {
                "first_out_s": min(gone.values()) - t0,
                "last_out_s": max(gone.values()) - t0,
                "first_back_s": min(back.values()) - t2,
                "last_back_s": max(back.values()) - t2,
                "polls": [polls_out, polls_in],
                "out": phases_of(_events(lab, t0, t2), t0, "down"),
                "back": phases_of(_events(lab, t2, t3 + 1), t2, "up"),
            }
            log(
                f"{count} VIPs round {number}: last out {row['last_out_s']:.3f}s "
                f"(first {row['first_out_s']:.3f}s), last back {row['last_back_s']:.3f}s"
            )
            rows.append(row)
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)
    return {
        "vips": count,
        "rounds": rows,
        "last_out_median_s": statistics.median(r["last_out_s"] for r in rows),
        "last_back_median_s": statistics.median(r["last_back_s"] for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vips", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--exabgp-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an ExaBGP setting for this run (exabgp.reactor.speed=5.0)",
    )
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.exabgp_env)
    print(json.dumps(bench_many_vips(args.vips, args.rounds, env), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
