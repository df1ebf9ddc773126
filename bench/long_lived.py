"""Long-lived connections through ECMP: how many break on hosts whose state did not change (the
*survivor break ratio*) when one host fails, drains, dies or comes back.

    python -m bench.long_lived [--connections 240] [--interval 0.5]

Three LB hosts, r1 hashing on L4 (`fib_multipath_hash_policy=1`); the client keeps that many
HTTP/1.1 connections open to the VIP (`announcer.lab.long_lived`), each sending a request every
`interval`. A connection breaks on a reset, an EOF, no answer within 1.5 s, or an answer from
another host than the one it started on. Each event is counted from the moment it is made until
3 s after the router's FIB settles. Needs root and the lab's tools (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from announcer.lab.topology import CLIENT, VIP_V4

from .run import log, make_lab
from .systems import ANNOUNCER

ALL = ["lb1", "lb2", "lb3"]
SETTLE_S = 3.0


@dataclass(frozen=True, slots=True)
class Breaks:
    event: str
    host: str  # the host whose state changed
    survivors: int  # connections on the other hosts when the event was made
    survivors_broken: int
    on_host: int  # connections on the host itself
    on_host_broken: int

    @property
    def survivor_ratio(self) -> float:
        return self.survivors_broken / self.survivors if self.survivors else 0.0


def homes_at(events: list[dict[str, Any]], t: float) -> dict[int, str]:
    """Each connection's host at time t (its latest `home` before t, unless it broke since)."""
    homes: dict[int, str] = {}
    for e in events:
        if e["t"] > t:
            break
        if e["event"] == "home":
            homes[e["conn"]] = e["server"]
        elif e["event"] == "break":
            homes.pop(e["conn"], None)
    return homes


def breaks_in(
    events: list[dict[str, Any]], event: str, host: str, start: float, end: float
) -> Breaks:
    """Which of the connections open at `start` broke before `end`, on `host` and elsewhere."""
    homes = homes_at(events, start)
    broken = {e["conn"] for e in events if e["event"] == "break" and start <= e["t"] <= end}
    survivors = {conn for conn, home in homes.items() if home != host}
    mine = {conn for conn, home in homes.items() if home == host}
    return Breaks(
        event, host, len(survivors), len(survivors & broken), len(mine), len(mine & broken)
    )


def _read(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return sorted(out, key=lambda e: e["t"])


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the FIB did not settle")
        time.sleep(0.01)


def bench_long_lived(connections: int, interval_s: float) -> list[Breaks]:
    lab = make_lab(ANNOUNCER, hosts=3)
    marks: list[tuple[str, str, float, float]] = []
    log_path = lab.workdir / "long-lived.jsonl"
    try:
        lab.up()
        lab.fib.wait(ALL)
        lab.frr.wait_bfd()
        seconds = 120.0
        argv = [sys.executable, "-m", "announcer.lab.long_lived", "--host", VIP_V4.split("/")[0]]
        argv += ["--connections", str(connections), "--interval", str(interval_s)]
        client = lab.space.start_process(CLIENT, [*argv, "--seconds", str(seconds)], log_path)
        time.sleep(SETTLE_S + interval_s)  # every connection has its home

        def event(name: str, host: str, make: Callable[[], None], settled: list[str]) -> None:
            started = time.time()
            make()
            lab.fib.wait(settled, routers=("r1",))
            time.sleep(SETTLE_S)
            marks.append((name, host, started, time.time()))
            log(f"{name}: done")

        rest = ["lb2", "lb3"]
        event("nginx stopped", "lb1", lambda: lab.services.stop("lb1", signal.SIGTERM), rest)
        event("nginx started again", "lb1", lambda: lab.services.start("lb1"), ALL)
        event(
            "drain (middle host)", "lb2", lambda: lab.announcers.cli("lb2", "drain"), ["lb1", "lb3"]
        )
        event("undrain", "lb2", lambda: lab.announcers.cli("lb2", "undrain"), ALL)
        event("host death", "lb3", lambda: lab.net.kill_host("lb3", True), ["lb1", "lb2"])
        event("host back", "lb3", lambda: lab.net.kill_host("lb3", False), ALL)
        client.terminate()
        client.wait(10)
        events = _read(log_path)
        return [breaks_in(events, name, host, start, end) for name, host, start, end in marks]
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=240)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    rows = bench_long_lived(args.connections, args.interval)
    for row in rows:
        log(
            f"{row.event} ({row.host}): survivors broken {row.survivors_broken} of "
            f"{row.survivors} ({row.survivor_ratio:.1%}); on {row.host} "
            f"{row.on_host_broken} of {row.on_host}"
        )
    print(json.dumps([asdict(row) for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
