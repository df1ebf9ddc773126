"""Benchmarks: this plugin side by side with ExaBGP's bundled healthcheck, in the FRR lab.

    python -m bench.run            # the full run (about 25 minutes); writes docs/benchmarks.md
    python -m bench.run --quick    # a reduced run in under 5 minutes

Needs root and the lab's tools (scripts/setup.sh), plus matplotlib for the plots.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from announcer.lab.lab import Lab
from announcer.lab.topology import LAB_BGP_SECRET, ROUTERS, LbHost

from .measure import (
    cpu_seconds,
    failover_rounds,
    lost_between,
    phases,
    read_client,
    sample_usage,
    tree,
    unhealthy_rounds,
    wait_gone,
    wait_present,
)
from .systems import (
    ANNOUNCER,
    HEALTHCHECK_DEFAULT,
    HEALTHCHECK_TUNED,
    SYSTEMS,
    System,
    configure_lab_host,
    healthcheck_exabgp_config,
)

ROOT = Path(__file__).resolve().parents[1]
ALL = ["lb1", "lb2", "lb3"]


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="announcer-bench-"))


def make_lab(
    system: System,
    hosts: int = 3,
    vips: list[str] | None = None,
    plugin: dict[str, Any] | None = None,
    stable: bool = False,
    exabgp_env: dict[str, str] | None = None,
) -> Lab:
    def override(host: LbHost, config: dict[str, Any]) -> None:
        configure_lab_host(lab, system, host, config, vips)
        if plugin and host.name in plugin:
            plugin[host.name](config)

    exabgp_config = None
    if not system.is_ours:
        vip_list = vips or ["192.0.2.10/32"]
        urls = (
            [f"http://127.0.0.1/health?v={i}" for i in range(len(vip_list))]
            if vips
            else ["http://127.0.0.1/health"]
        )

        def exabgp_config(host: LbHost, folder: Path) -> str:
            processes = healthcheck_exabgp_config(system, vip_list, urls, folder)
            names = " ".join(f"hc{i}" for i in range(len(vip_list)))
            # the same two routers, the same password; no BFD (ExaBGP has none)
            return processes + "".join(
                f"neighbor {router.v4} {{\n    router-id {host.v4};\n"
                f"    local-address {host.v4};\n    local-as {host.asn};\n    peer-as 65000;\n"
                f'    hold-time 3;\n    md5-password "{LAB_BGP_SECRET}";\n'
                f"    family {{ ipv4 unicast; }}\n"
                f"    api {{ processes [ {names} ]; }}\n}}\n"
                for router in ROUTERS
            )

    lab = Lab(
        _workdir(),
        hosts=hosts,
        plugin_overrides=override,
        haproxy_hosts=0,
        exabgp_config=exabgp_config,
        bfd=system.is_ours,
        stable=stable,
        exabgp_env=exabgp_env,
    )
    return lab


def _keep_log(lab: Lab, system: System, host: str) -> None:
    """The host's ExaBGP and plugin log, beside the raw results, for a look after the run."""
    log_file = lab.dir(host) / "exabgp.log"
    if log_file.exists():
        shutil.copy(log_file, ROOT / "bench" / "results" / f"{system.name}-{host}.log")


def bench_failover(system: System, rounds: int, drains: int, unhealthy: int = 0) -> dict[str, Any]:
    lab = make_lab(system)
    try:
        lab.up()
        lab.fib.wait(ALL, timeout=60)
        client_log = lab.workdir / "client.jsonl"
        requests = rounds * 12 * 50 + 1000
        client = lab.clients.start(
            "http://192.0.2.10/", count=requests, interval_s=0.02, log=client_log
        )
        cycle = 5.0 if system is HEALTHCHECK_DEFAULT else 1.0
        log(f"{system.name}: {rounds} failover rounds")
        results = failover_rounds(lab, "lb1", rounds, cycle, client_log)
        unhealthy_rows = []
        if unhealthy:
            log(f"{system.name}: {unhealthy} rounds of a health endpoint answering 500")
            unhealthy_rows = unhealthy_rounds(lab, "lb1", unhealthy, cycle)
        drain_rows = bench_drains(lab, system, drains, client_log)
        client.terminate()
        client.wait(5)
        all_requests = read_client(client_log)
        return {
            "rounds": [asdict(r) for r in results],
            "unhealthy": unhealthy_rows,
            "drains": drain_rows,
            "requests": len(all_requests),
            "breakdown": (
                breakdown(lab, [(r.t0, r.t1) for r in results]) if system.is_ours else None
            ),
            "unhealthy_breakdown": (
                breakdown(lab, [(r["t0"], r["t1"]) for r in unhealthy_rows])
                if system.is_ours and unhealthy_rows
                else None
            ),
        }
    finally:
        _keep_log(lab, system, "lb1")
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def bench_drains(lab: Lab, system: System, drains: int, client_log: Path) -> list[dict[str, Any]]:
    """Drain lb2 and undrain it again, under the same client traffic."""
    address = lab.host("lb2").v4
    rows = []
    for _ in range(drains):
        wait_present(lab, address)
        time.sleep(1.0)
        t0 = time.time()
        if system.is_ours:
            lab.announcers.cli("lb2", "drain", "--reason", "benchmark")
        else:
            lab.announcers.drain_file("lb2").touch()  # the healthcheck's --disable file
        t1 = wait_gone(lab, address)
        # until the route is really gone (ours keeps it, at local-pref 0, for gshut_period)
        deadline = time.monotonic() + 30
        while address in lab.frr.bgp_paths() and time.monotonic() < deadline:
            time.sleep(0.05)
        t2 = time.time()
        time.sleep(0.5)
        if system.is_ours:
            lab.announcers.cli("lb2", "undrain")
        else:
            lab.announcers.drain_file("lb2").unlink()
        wait_present(lab, address)
        rows.append({"t0": t0, "fib_s": t1 - t0, "withdrawn_s": t2 - t0, "end": t2 + 0.5})
    time.sleep(1.0)
    results = read_client(client_log)
    for row in rows:
        row["lost"] = lost_between(results, row["t0"], row["end"])
    return rows


def breakdown(lab: Lab, rounds: list[tuple[float, float]]) -> dict[str, Any]:
    """Where the time goes, from the plugin's log: first failed probe, verdict, ExaBGP ack,
    and the router's FIB."""
    events = []
    for line in (lab.dir("lb1") / "exabgp.log").read_text().splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return breakdown_of(events, rounds)


def breakdown_of(events: list[dict[str, Any]], rounds: list[tuple[float, float]]) -> dict[str, Any]:
    """The failover breakdown from the plugin's JSON log lines, read by their `event` field
    and its fields (never the message text, which is for people)."""
    parts: dict[str, list[float]] = {"detect": [], "confirm": [], "exabgp": [], "router": []}
    evidence: dict[str, int] = {}
    for t0, t1 in rounds:
        window = [e for e in events if t0 <= e["ts"] <= t1 + 0.01]
        # the first failed probe: a check that failed and is being confirmed, or one that went
        # down at once (certain evidence)
        first = next(
            (
                e["ts"]
                for e in window
                if e.get("event") in ("check_failed", "check_changed")
                and e.get("reason") not in (None, "ok")
            ),
            None,
        )
        deciding = next(
            (e for e in window if e.get("event") == "check_changed" and e.get("health") == "down"),
            None,
        )
        if deciding is not None:
            kind = str(deciding.get("evidence", "weak"))
            evidence[kind] = evidence.get(kind, 0) + 1
        synced = next(
            (e["ts"] for e in window if e.get("event") == "routes_synced" and e.get("withdrawn")),
            None,
        )
        if first is None or deciding is None or synced is None:
            continue
        down = deciding["ts"]
        parts["detect"].append(first - t0)
        parts["confirm"].append(down - first)
        parts["exabgp"].append(synced - down)
        parts["router"].append(t1 - synced)
    out: dict[str, Any] = {k: sorted(v)[len(v) // 2] for k, v in parts.items() if v}
    out["evidence"] = evidence  # how the deciding results spoke, rounds per kind
    return out


def bench_cold_start(system: System, rounds: int) -> dict[str, Any]:
    """Every host's ExaBGP (and so its announcer) starts at once, with nginx up and the routers
    waiting: how long until both routers' FIBs hold all three hosts."""
    lab = make_lab(system)
    try:
        lab.up()
        lab.fib.wait(ALL, timeout=60)
        rows: list[dict[str, Any]] = []
        for number in range(rounds):
            for name in ALL:
                lab.announcers.stop_exabgp(name)
            deadline = time.monotonic() + 30
            while (
                any(lab.fib.next_hops(router=r.name) for r in ROUTERS)
                and time.monotonic() < deadline
            ):
                time.sleep(0.01)
            time.sleep(1.5)  # the routers have cleaned up and try to connect again
            t0 = time.monotonic()
            for name in ALL:
                lab.announcers.start_exabgp(name)
            try:
                lab.fib.wait(ALL, timeout=30)
                seconds = time.monotonic() - t0
            except Exception as exc:  # the lab's own timeout: reported, not fatal
                rows.append({"error": f"round {number}: {exc}"})
                continue
            rows.append({"seconds": seconds})
            log(f"{system.name}: cold start round {number}: {seconds:.3f}s")
        return {"rounds": rows}
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def bench_host_death(system: System, rounds: int) -> dict[str, Any]:
    """lb1 dies (every process frozen, its cable cut at the switch; the routers' ports stay
    up): how long both routers keep sending it traffic. Ours: BFD (bfdd beside ExaBGP, 100 ms
    x 3); the healthcheck: the BGP hold timer (3 s)."""
    lab = make_lab(system)
    address = "198.51.100.11"
    try:
        lab.up()
        lab.fib.wait(ALL, timeout=60)
        rows: list[dict[str, Any]] = []
        for number in range(rounds):
            if system.is_ours:
                lab.frr.wait_bfd()
            time.sleep(1.0)
            t0 = time.monotonic()
            lab.net.kill_host("lb1", True)
            gone: dict[str, float] = {}
            bfd_down: float | None = None
            polls = 0
            while len(gone) < len(ROUTERS) and time.monotonic() - t0 < 15:
                for router in ROUTERS:
                    if router.name not in gone and address not in lab.fib.next_hops(
                        router=router.name
                    ):
                        gone[router.name] = time.monotonic() - t0
                polls += 1
                bfd_due = system.is_ours and bfd_down is None and polls % 3 == 0
                if bfd_due and lab.frr.bfd_peers("r1").get(address) != "up":
                    bfd_down = time.monotonic() - t0
            # the host returns: with the BFD gate it is announced once BFD is up again
            t1 = time.monotonic()
            lab.net.kill_host("lb1", False)
            bfd_up: float | None = None
            while time.monotonic() - t1 < 60:
                if (
                    system.is_ours
                    and bfd_up is None
                    and lab.frr.bfd_peers("r1").get(address) == "up"
                ):
                    bfd_up = time.monotonic() - t1
                if all(address in lab.fib.next_hops(router=r.name) for r in ROUTERS):
                    break
                time.sleep(0.01)
            back = time.monotonic() - t1
            lab.fib.wait(ALL, timeout=60)
            if len(gone) < len(ROUTERS):
                rows.append({"error": f"round {number}: still in a FIB after 15 s: {gone}"})
                continue
            rows.append(
                {
                    **{f"{r}_s": v for r, v in gone.items()},
                    "both_s": max(gone.values()),
                    "bfd_down_s": bfd_down,
                    "back_s": back,
                    "bfd_up_s": bfd_up,
                }
            )
            log(
                f"{system.name}: host death round {number}: {max(gone.values()):.3f}s; "
                f"back in both FIBs {back:.3f}s after its return"
            )
        return {"rounds": rows}
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def _own_cpu(pids: list[int]) -> float:
    """CPU seconds of these processes themselves (not of the processes they run)."""
    return sum(cpu_seconds(pid) for pid in pids)


def _tree_cpu(roots: list[int]) -> float:
    """CPU seconds of these processes and every process under them, now."""
    return sum(cpu_seconds(pid) for pid in tree(roots))


def bench_scale(system: System, count: int, window_s: float) -> dict[str, Any]:
    vips = [f"198.18.{i // 256}.{i % 256}/32" for i in range(count)]
    lab = make_lab(system, hosts=1, vips=vips)
    try:
        started = time.monotonic()
        lab.up()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            routes = lab.fib.count("198.18.0.0/15")
            if routes >= count:
                break
            time.sleep(0.1)
        all_in = time.monotonic() - started
        if routes < count:
            return {"vips": count, "error": f"only {routes} of {count} in the FIB after 120s"}
        time.sleep(3.0)
        fragment = ("announcer", "run") if system.is_ours else ("exabgp", "healthcheck")
        pids = lab.space.pids("lb1", *fragment)
        exabgp_pid = lab.announcers.exabgp_pid("lb1")
        bfdd = lab.space.pids("lb1", "bfdd")
        updates_before = lab.frr.updates_received("lb1")
        # one window for all: the announcer (its tree), ExaBGP alone (without the processes it
        # runs, which are the announcer), and the whole host (ExaBGP's tree and bfdd)
        before = _own_cpu([exabgp_pid] if exabgp_pid else [])
        host_before = _tree_cpu([*([exabgp_pid] if exabgp_pid else []), *bfdd])
        began = time.monotonic()
        cpu, rss = sample_usage(pids, window_s)
        elapsed = time.monotonic() - began
        exabgp_cpu = (_own_cpu([exabgp_pid] if exabgp_pid else []) - before) / elapsed
        host_cpu = _tree_cpu([*([exabgp_pid] if exabgp_pid else []), *bfdd]) - host_before
        updates = lab.frr.updates_received("lb1") - updates_before
        return {
            "vips": count,
            "all_in_fib_s": all_in,
            "cpu": cpu,
            "rss_mib": rss,
            "exabgp_cpu": exabgp_cpu,
            "host_cpu": host_cpu / elapsed,
            "updates_per_min": updates * 60 / window_s,
            "processes": len(pids),
        }
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def bench_jitter(seconds: float, reloads: int) -> dict[str, Any]:
    """No false withdrawal while the health endpoint's latency jitters up to half the timeout,
    and nginx (the other check's service) is reloaded `reloads` times along the way."""
    timeout_s = 0.5

    def jittery(config: dict[str, Any]) -> None:
        config["checks"]["web"]["http"]["url"] = "http://127.0.0.1:8090/health"
        config["checks"]["web"]["timeout"] = f"{timeout_s}s"

    lab = make_lab(ANNOUNCER, plugin={"lb1": jittery})
    try:
        lab.up()
        lab.space.start_process(
            "lb1",
            [
                sys.executable,
                "-m",
                "bench.jitter_server",
                "--port",
                "8090",
                "--max-delay",
                str(timeout_s / 2),
            ],
            lab.dir("lb1") / "jitter.log",
        )
        lab.fib.wait(ALL, timeout=60)
        address = lab.host("lb1").v4
        before = lab.frr.updates_received("lb1")
        missing = 0
        began = time.monotonic()
        # the reloads, evenly spread, each at a random point of its slice
        due = [began + seconds * phase for phase in sorted(phases(reloads))]
        done = 0
        while time.monotonic() - began < seconds:
            if address not in lab.fib.next_hops():
                missing += 1
            if due and time.monotonic() >= due[0]:
                due.pop(0)
                lab.services.reload("lb1")
                done += 1
            time.sleep(0.2)
        updates = lab.frr.updates_received("lb1") - before
        return {
            "seconds": seconds,
            "reloads": done,
            "updates": updates,
            "fib_samples_missing": missing,
            "max_delay_s": timeout_s / 2,
            "timeout_s": timeout_s,
        }
    finally:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 2**20
    frr = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "frr"], capture_output=True, text=True, check=False
    ).stdout
    from importlib.metadata import version

    return (
        f"{os.cpu_count()} x {cpu}, {mem} GiB, {platform.platform()}, Python "
        f"{platform.python_version()}, ExaBGP {version('exabgp')}, FRR {frr}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a reduced run, under 5 minutes")
    parser.add_argument("--out", type=Path, default=None, help="write the report here")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="raw results (default bench/results/quick.json or full.json)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    # quick: under 5 minutes with set-up (it took 4 min 56 s with 2 default-healthcheck rounds
    # and 3 unhealthy tuned ones); the bundled healthcheck at its defaults is slow by nature
    rounds = (
        {"announcer": 4, "healthcheck-tuned": 4, "healthcheck-default": 1}
        if quick
        else {"announcer": 24, "healthcheck-tuned": 24, "healthcheck-default": 20}
    )
    drains = 1 if quick else 6
    unhealthy = (
        {"announcer": 4, "healthcheck-tuned": 2}
        if quick
        else {
            "announcer": 24,
            "healthcheck-tuned": 12,
        }
    )
    cold_rounds = 2 if quick else 12
    scales = {
        "announcer": (1, 100, 1000, 10000),
        "healthcheck-tuned": (1, 100),
        "healthcheck-default": (1, 100),
    }
    if quick:
        scales = {"announcer": (1000,), "healthcheck-tuned": (100,), "healthcheck-default": ()}
    window = 10.0 if quick else 30.0
    jitter_seconds = 20.0 if quick else 600.0
    command = "./scripts/bench.sh" + (" --quick" if quick else "")
    results: dict[str, Any] = {
        "machine": machine(),
        "command": command,
        "quick": quick,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "failover": {},
        "scale": {},
    }
    raw = args.json or ROOT / "bench" / "results" / ("quick.json" if quick else "full.json")
    raw.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every step: a crash later loses nothing measured
        raw.write_text(json.dumps(results, indent=2))

    for system in SYSTEMS:
        results["failover"][system.name] = bench_failover(
            system, rounds[system.name], drains, unhealthy.get(system.name, 0)
        )
        save()
    results["cold_start"] = {}
    for system in (ANNOUNCER, HEALTHCHECK_TUNED):
        log(f"{system.name}: {cold_rounds} cold starts")
        results["cold_start"][system.name] = bench_cold_start(system, cold_rounds)
        save()
    death_rounds = 2 if quick else 12
    results["host_death"] = {}
    for system in (ANNOUNCER, HEALTHCHECK_TUNED):
        log(f"{system.name}: {death_rounds} host deaths")
        results["host_death"][system.name] = bench_host_death(system, death_rounds)
        save()
    for system in SYSTEMS:
        for count in scales[system.name]:
            log(f"{system.name}: {count} VIPs")
            results["scale"].setdefault(system.name, []).append(bench_scale(system, count, window))
            save()
        if not system.is_ours and not quick:
            results["scale"].setdefault(system.name, []).append(
                {
                    "vips": 1000,
                    "error": "not run: one Python process per VIP (1000 processes, about 20 GB)",
                }
            )
    from .config_check import bench_config_check

    log("announcer check: many-VIP configurations")
    results["config_check"] = bench_config_check(
        (1000,) if quick else (1000, 10000), 5 if quick else 11
    )
    save()
    if not quick:
        from .long_lived import bench_long_lived
        from .many_vips import bench_many_vips

        log("announcer: 1000 VIPs, nginx stopped and started")
        results["many_vips"] = bench_many_vips(1000, 3)
        save()
        log("announcer: 240 long-lived connections, plain ECMP and stable next hops")
        results["long_lived"] = bench_long_lived(240, 0.5)
        save()
        from .fleet import bench_fleet

        results["fleet"] = bench_fleet(6, 10)
        results["fleet"]["command"] = "python -m bench.fleet --rounds 6 --races 10"
        save()
    log(f"announcer: {jitter_seconds:.0f}s with a jittery health endpoint")
    results["jitter"] = bench_jitter(jitter_seconds, 3 if quick else 20)
    save()
    from .report import render

    if args.out:
        text = render(results, args.out.parent / "img")
        args.out.write_text(text)
        log(f"wrote {args.out}")
    else:
        text = render(results, raw.parent, img_link=str(raw.parent))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
