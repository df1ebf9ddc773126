"""Long-lived connections through ECMP: how many break on hosts whose state did not change (the
*survivor break ratio*) when one host fails, returns, drains, dies, comes back, leaves or
joins; with plain ECMP and with stable next hops, in one run.

    python -m bench.long_lived [--connections 240] [--interval 0.5] [--mode both|plain|stable]

Three nginx LB hosts, r1 hashing on L4 (`fib_multipath_hash_policy=1`); the client keeps that
many HTTP/1.1 connections open to the VIP, each sending a request every `interval`
(`announcer.lab.survivors`). A connection breaks on a reset, an EOF, no answer within 1.5 s, or
an answer from another host than the one it started on. Each event is counted from the moment
it is made until 3 s after the change settled. Needs root and the lab's tools
(scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from typing import Any

from announcer.lab.long_lived import Breaks
from announcer.lab.survivors import measure_survivors, write_rows
from announcer.lab.workspace import wait_until

from .run import log, make_lab
from .systems import ANNOUNCER

MODES = ("plain", "stable")
COMMAND = "python -m bench.long_lived --connections 240 --interval 0.5"


def bench_mode(mode: str, connections: int, interval_s: float) -> dict[str, Any]:
    lab = make_lab(ANNOUNCER, hosts=3, stable=mode == "stable")
    try:
        lab.up()
        if mode == "plain":
            lab.fib.wait(["lb1", "lb2", "lb3"])
        else:
            slots = lab.slot_addresses()
            wait_until(lambda: set(lab.fib.next_hops()) == slots, 30, "r1 has not every slot")
        lab.frr.wait_bfd()
        rows, fib = measure_survivors(lab, connections, interval_s, log)
        return {
            "rows": [asdict(row) for row in rows],
            # r1's route for the VIP: how many different (nexthop group, next hops) it had
            "fib_changes": len(fib.seen) - 1,
        }
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def bench_long_lived(
    connections: int, interval_s: float, modes: tuple[str, ...] = MODES
) -> dict[str, Any]:
    results: dict[str, Any] = {"connections": connections, "interval_s": interval_s}
    for mode in modes:
        log(f"long-lived connections, {mode} next hops")
        results[mode] = bench_mode(mode, connections, interval_s)
    results["command"] = COMMAND
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=240)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--mode", choices=("both", *MODES), default="both")
    args = parser.parse_args(argv)
    modes = MODES if args.mode == "both" else (args.mode,)
    results = bench_long_lived(args.connections, args.interval, modes)
    for mode in modes:
        log(f"{mode} next hops (r1's route changed {results[mode]['fib_changes']} times):")
        write_rows([Breaks(**row) for row in results[mode]["rows"]], log)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
