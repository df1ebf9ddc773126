"""Measurements on a running lab: FIB timing, client loss, CPU and memory of process trees."""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from announcer.lab.lab import Lab

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Round:
    signal: str
    failover_s: float
    recovery_s: float
    lost: int
    t0: float  # wall clock of the failure
    t1: float  # wall clock the FIB dropped the host


def wait_gone(lab: Lab, address: str, timeout: float = 60.0) -> float:
    """Poll the router's FIB until `address` is no next hop; the wall time it happened."""
    deadline = time.monotonic() + timeout
    while address in lab.fib.next_hops():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{address} still in the FIB after {timeout}s")
        time.sleep(0.002)
    return time.time()


def wait_present(lab: Lab, address: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while address not in lab.fib.next_hops():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{address} not back in the FIB after {timeout}s")
        time.sleep(0.002)
    return time.time()


def read_client(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def lost_between(results: list[dict[str, Any]], start: float, end: float) -> int:
    return sum(1 for r in results if not r["ok"] and start <= r["t"] <= end)


def phases(rounds: int) -> list[float]:
    """Where in the probe cycle each round's failure falls, as a share of the cycle: random,
    one in each of `rounds` equal slices, shuffled (stratified: the median of a few rounds then
    says what the system does, not how lucky the draw was)."""
    out = [(index + random.random()) / rounds for index in range(rounds)]
    random.shuffle(out)
    return out


def _break_and_mend(
    lab: Lab,
    address: str,
    delay_s: float,
    breaks: Callable[[], None],
    mends: Callable[[], None],
) -> tuple[float, float, float, float]:
    """Once `address` is a next hop: wait a second plus `delay_s`, break the host, wait until
    the FIB drops it, mend it 0.3 s later, wait until it is back. The four wall times."""
    wait_present(lab, address)
    time.sleep(1.0 + delay_s)
    t0 = time.time()
    breaks()
    t1 = wait_gone(lab, address)
    time.sleep(0.3)
    t2 = time.time()
    mends()
    t3 = wait_present(lab, address)
    return t0, t1, t2, t3


def failover_rounds(
    lab: Lab, host: str, rounds: int, cycle_s: float, client_log: Path
) -> list[Round]:
    """Stop the host's nginx at a random point of the probe cycle, SIGTERM and SIGKILL in turn;
    time until the router drops it, and until it is back once nginx starts again."""
    address = lab.host(host).v4
    out: list[Round] = []
    marks: list[tuple[str, float, float, float, float]] = []
    for index, phase in enumerate(phases(rounds)):
        signum = signal.SIGTERM if index % 2 == 0 else signal.SIGKILL
        t0, t1, t2, t3 = _break_and_mend(
            lab,
            address,
            phase * cycle_s,
            functools.partial(lab.services.stop, host, signum),
            functools.partial(lab.services.start, host),
        )
        marks.append((signal.Signals(signum).name, t0, t1, t2, t3))
    time.sleep(1.0)  # the client's last requests of the last round
    results = read_client(client_log)
    for name, t0, t1, t2, t3 in marks:
        out.append(Round(name, t1 - t0, t3 - t2, lost_between(results, t0, t1 + 0.05), t0, t1))
    return out


def unhealthy_rounds(lab: Lab, host: str, rounds: int, cycle_s: float) -> list[dict[str, float]]:
    """The health endpoint answers 500 while nginx keeps listening (nothing closes: only a probe
    can see it), at a random point of the probe cycle; time until the router drops the host,
    and until it is back once the endpoint answers 200 again."""
    address = lab.host(host).v4
    out = []
    for phase in phases(rounds):
        t0, t1, t2, t3 = _break_and_mend(
            lab,
            address,
            phase * cycle_s,
            lambda: lab.services.set_health_failing(host, True),
            lambda: lab.services.set_health_failing(host, False),
        )
        out.append({"failover_s": t1 - t0, "recovery_s": t3 - t2, "t0": t0, "t1": t1})
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "median": statistics.median(ordered),
        "p95": p95,
        "max": ordered[-1],
        "min": ordered[0],
        "n": float(len(ordered)),
    }


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone, or exiting while read (ESRCH)
        return []
    kids: list[int] = []
    for task in tasks:
        try:
            kids += [int(k) for k in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:  # gone, or exiting while read (ESRCH)
            continue
    return kids


def tree(pids: list[int]) -> list[int]:
    seen: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.append(pid)
            todo += _children(pid)
    return seen


def cpu_seconds(pid: int) -> float:
    """User + system time of the process and of its children it has waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone, or exiting while read (ESRCH)
        return 0.0
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:  # gone, or exiting while read (ESRCH)
        return 0


def sample_usage(roots: list[int], seconds: float) -> tuple[float, float]:
    """(CPU as a share of one core, peak RSS in MiB) of the process trees under `roots`.

    Short-lived children (curl) are counted through their parent's reaped-children time."""
    members = tree(roots)
    start = {pid: cpu_seconds(pid) for pid in members}
    began = time.monotonic()
    peak = 0
    while time.monotonic() - began < seconds:
        peak = max(peak, sum(rss_bytes(pid) for pid in tree(roots)))
        time.sleep(0.5)
    elapsed = time.monotonic() - began
    used = sum(cpu_seconds(pid) - start[pid] for pid in members)
    return used / elapsed, peak / 2**20
