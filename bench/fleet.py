"""The fleet-wide soft failure and the drain race, side by side.

    python -m bench.fleet [--rounds 6] [--races 10]

Three nginx hosts, two routers, clients behind both. Each round, `/health` answers 500 on all
three hosts at once for `hold` seconds (nginx itself still serves), then recovers; both
routers' FIBs are read every 20 ms and the clients send a request every 20 ms. Measured for
this plugin with `fleet: {min_serving: 1}`, for this plugin without `fleet:` (as before) and
for ExaBGP's bundled healthcheck (tuned, `--withdraw-on-down`): the seconds the VIP was missing
from a router's FIB, and the requests that failed. Then the drain race, with the fleet: lb1 and
lb2 ask to drain at the same instant under `drain_min_serving: 2` (one of three may go); how
often exactly one was granted. Needs root and the lab's tools (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from announcer.lab.lab import Lab
from announcer.lab.topology import CLIENT, CLIENT2, VIP_V4
from announcer.lab.workspace import BIN

from .measure import read_client
from .run import ROOT, log, make_lab
from .systems import ANNOUNCER, HEALTHCHECK_TUNED, System

ALL = ["lb1", "lb2", "lb3"]
SAMPLE_S = 0.02


def _with_fleet(config: dict[str, Any]) -> None:
    config["fleet"] = {"min_serving": 1, "drain_min_serving": 2, "panic_exit": "2s"}


def _views_known(lab: Lab) -> bool:
    document = json.loads(lab.announcers.cli("lb3", "fleet", "--json"))
    return all(view == "known" for r in document["routers"].values() for view in r["view"].values())


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the lab did not settle")
        time.sleep(0.1)


def _lab(system: System, fleet: bool) -> Lab:
    lab = make_lab(system, plugin={name: _with_fleet for name in ALL} if fleet else None)
    lab.up()
    lab.fib.wait(ALL, timeout=60)
    if fleet:
        _wait(lambda: _views_known(lab), 30)
    return lab


def unhealthy_everywhere(system: System, fleet: bool, rounds: int, hold_s: float) -> dict[str, Any]:
    lab = _lab(system, fleet)
    try:
        logs = []
        count = int(rounds * (hold_s + 12) / 0.02)
        for client in (CLIENT, CLIENT2):
            path = lab.workdir / f"{client}.jsonl"
            logs.append(
                (lab.clients.start(f"http://{VIP_V4[:-3]}/", count, 0.02, path, client), path)
            )
        rows = []
        for _ in range(rounds):
            t0 = time.time()
            for name in ALL:
                lab.services.set_health_failing(name, True)
            missing = dict.fromkeys((r.name for r in lab.routers), 0.0)
            last = time.monotonic()
            end = last + hold_s
            while time.monotonic() < end:
                time.sleep(SAMPLE_S)
                now = time.monotonic()
                for router in lab.routers:
                    if not lab.fib.next_hops(VIP_V4, router.name):
                        missing[router.name] += now - last
                last = now
            t1 = time.time()
            for name in ALL:
                lab.services.set_health_failing(name, False)
            lab.fib.wait(ALL, timeout=60)
            time.sleep(2.0)
            rows.append(
                {"t0": t0, "t1": t1, "missing_s": {k: round(v, 3) for k, v in missing.items()}}
            )
        for process, _ in logs:
            process.terminate()
            process.wait(10)
        requests = [r for _, path in logs for r in read_client(path)]
        for row in rows:
            window = [r for r in requests if row["t0"] <= r["t"] <= row["t1"]]
            row["requests"] = len(window)
            row["failed"] = sum(1 for r in window if not r["ok"])
        return {"hold_s": hold_s, "rounds": rows}
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def _cli(lab: Lab, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        *("ip", "netns", "exec", name, str(BIN / "announcer"), *args),
        *("--api", "http://127.0.0.1:9180", "--token-file", str(lab.dir(name) / "api-token")),
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def drain_races(races: int) -> dict[str, Any]:
    lab = _lab(ANNOUNCER, fleet=True)
    try:
        rows = []
        for _ in range(races):
            barrier = threading.Barrier(2)
            answers: dict[str, int] = {}

            def ask(name: str, answers: dict[str, int] = answers, barrier: Any = barrier) -> None:
                barrier.wait()
                answers[name] = _cli(lab, name, "drain", "--no-persist", VIP_V4).returncode

            threads = [threading.Thread(target=ask, args=(name,)) for name in ("lb1", "lb2")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            granted = sorted(name for name, code in answers.items() if code == 0)
            time.sleep(3.0)  # the drain's graceful shutdown (2 s in the lab) and withdraw
            serving = sorted(lab.fib.next_hops(VIP_V4))
            rows.append({"granted": granted, "fib": serving})
            for name in ("lb1", "lb2"):
                _cli(lab, name, "undrain", VIP_V4)
            lab.fib.wait(ALL, timeout=30)
            time.sleep(1.0)
        return {"races": rows}
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def bench_fleet(rounds: int, races: int, hold_s: float = 5.0) -> dict[str, Any]:
    results: dict[str, Any] = {"unhealthy_everywhere": {}}
    for name, system, fleet in (
        ("announcer-fleet", ANNOUNCER, True),
        ("announcer", ANNOUNCER, False),
        ("healthcheck-tuned", HEALTHCHECK_TUNED, False),
    ):
        log(f"{name}: {rounds} rounds of /health 500 on every host")
        results["unhealthy_everywhere"][name] = unhealthy_everywhere(system, fleet, rounds, hold_s)
    log(f"announcer-fleet: {races} drain races")
    results["drain_races"] = drain_races(races)
    return results


def summary(results: dict[str, Any]) -> list[str]:
    """The report's lines (markdown) for these results."""
    out = []
    for name, data in results["unhealthy_everywhere"].items():
        rows = data["rounds"]
        missing = [max(r["missing_s"].values()) for r in rows]
        failed = sum(r["failed"] for r in rows)
        total = sum(r["requests"] for r in rows)
        out.append(
            f"| {name} | {len(rows)} | {statistics.median(missing):.2f} s "
            f"(max {max(missing):.2f}) | {failed} of {total} |"
        )
    races = results["drain_races"]["races"]
    one = sum(1 for r in races if len(r["granted"]) == 1)
    both = sum(1 for r in races if len(r["granted"]) == 2)
    return [
        "| announcer | rounds | VIP missing from a router's FIB during the failure, median per "
        "round | requests failed |",
        "|---|---|---|---|",
        *out,
        "",
        f"Drain race (lb1 and lb2 ask at the same instant, one of three may go): exactly one "
        f"granted in {one} of {len(races)} races, both in {both}.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--races", type=int, default=10)
    parser.add_argument("--hold", type=float, default=5.0, help="seconds of /health 500 a round")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "bench" / "results" / "fleet.json", help="raw results"
    )
    args = parser.parse_args(argv)
    results = bench_fleet(args.rounds, args.races, args.hold)
    results["command"] = "python -m bench.fleet " + " ".join(argv or sys.argv[1:])
    args.json.write_text(json.dumps(results, indent=2))
    print("\n".join(summary(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
