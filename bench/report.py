"""docs/benchmarks.md from the raw results, with PNG plots."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .measure import summary
from .systems import SYSTEMS


def _fmt(seconds: float) -> str:
    return f"{seconds:.3f}"


def _plots(results: dict[str, Any], folder: Path) -> list[str]:
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    fig, ax = plt.subplots(figsize=(7, 3.5))
    data, labels = [], []
    for system in SYSTEMS:
        rounds = results["failover"].get(system.name, {}).get("rounds", [])
        if rounds:
            data.append([r["failover_s"] for r in rounds])
            labels.append(system.name)
    ax.boxplot(data, orientation="horizontal", tick_labels=labels, showfliers=True)
    for row, values in enumerate(data, start=1):
        ax.scatter(values, [row] * len(values), s=10, alpha=0.6)
    ax.set_xlabel("seconds from nginx stopping to the router's FIB dropping the host")
    ax.set_xscale("log")
    ticks = [0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title("Failover time (FRR lab)")
    fig.tight_layout()
    fig.savefig(folder / "failover.png", dpi=110)
    plt.close(fig)
    names.append("failover.png")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for system in SYSTEMS:
        rows = [r for r in results["scale"].get(system.name, []) if "cpu" in r]
        if rows:
            ax.plot(
                [r["vips"] for r in rows],
                [100 * r["cpu"] for r in rows],
                marker="o",
                label=system.name,
            )
    ax.set_xscale("log")
    ax.set_xlabel("VIPs per host, each with its own HTTP check at 1 s")
    ax.set_ylabel("CPU, % of one core")
    ax.set_title("Announcer CPU (whole process tree) vs VIPs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "cpu-vs-vips.png", dpi=110)
    plt.close(fig)
    names.append("cpu-vs-vips.png")
    return names


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _rounds(results: dict[str, Any], section: str, system: str = "announcer") -> list[Any]:
    data = results.get("failover", {}).get(system, {})
    return list(data.get(section) or [])


def _goals(results: dict[str, Any]) -> list[str]:
    """The targets from the issue, checked against this run."""
    rows: list[tuple[str, bool | None, str]] = []

    def at_most(goal: str, value: float, limit: float, text: str) -> None:
        rows.append((goal, value <= limit, text))

    ours = _rounds(results, "rounds")
    if ours:
        fo = summary([r["failover_s"] for r in ours])
        at_most(
            "failover, nginx stopped: median <= 0.12 s", fo["median"], 0.12, f"{fo['median']:.3f} s"
        )
        at_most("failover, nginx stopped: max <= 0.2 s", fo["max"], 0.2, f"{fo['max']:.3f} s")
    sick = _rounds(results, "unhealthy")
    if sick:
        un = summary([r["failover_s"] for r in sick])
        at_most(
            "failover, /health answers 500: median <= 0.65 s",
            un["median"],
            0.65,
            f"{un['median']:.3f} s",
        )
        at_most("failover, /health answers 500: max <= 1.2 s", un["max"], 1.2, f"{un['max']:.3f} s")
        mean = statistics.mean(r["failover_s"] for r in sick)
        at_most("failover, /health answers 500: mean <= 0.62 s", mean, 0.62, f"{mean:.3f} s")
    if ours:
        rec = summary([r["recovery_s"] for r in ours])
        at_most(
            "recovery, nginx started: median <= 0.3 s", rec["median"], 0.3, f"{rec['median']:.3f} s"
        )
    cold = [
        r["seconds"]
        for r in results.get("cold_start", {}).get("announcer", {}).get("rounds", [])
        if "seconds" in r
    ]
    if cold:
        median = summary(cold)["median"]
        at_most("cold start, 3 hosts: median <= 1.5 s", median, 1.5, f"{median:.3f} s")
    death = [
        r["both_s"]
        for r in results.get("host_death", {}).get("announcer", {}).get("rounds", [])
        if "both_s" in r
    ]
    if death:
        hd = summary(death)
        at_most(
            "host death, both FIBs: median <= 0.4 s", hd["median"], 0.4, f"{hd['median']:.3f} s"
        )
        at_most("host death, both FIBs: max <= 0.6 s", hd["max"], 0.6, f"{hd['max']:.3f} s")
    big = [r for r in results["scale"].get("announcer", []) if r.get("vips") == 1000 and "cpu" in r]
    if big:
        r = big[0]
        at_most(
            "1000 VIPs all in the FIB within 10 s",
            r["all_in_fib_s"],
            10,
            f"{r['all_in_fib_s']:.1f} s",
        )
        at_most("1000 checks/s: CPU <= 8% of one core", r["cpu"], 0.08, f"{100 * r['cpu']:.1f}%")
        at_most(
            "1000 VIPs: RSS <= 150 MB",
            r["rss_mib"] * 1.048576,
            150,
            f"{r['rss_mib'] * 1.048576:.0f} MB",
        )
        at_most(
            "steady state: 0 UPDATEs/min", r["updates_per_min"], 0, f"{r['updates_per_min']:.0f}"
        )
        if "host_cpu" in r:
            at_most(
                "1000 checks/s: the whole host (ExaBGP, plugin, bfdd) <= 5% of one core",
                r["host_cpu"],
                0.05,
                f"{100 * r['host_cpu']:.1f}%",
            )
    for r in results["scale"].get("announcer", []):
        if r.get("vips") == 10000:
            goal = "10,000 VIPs all in the FIB within 3 s (counted from the lab's start)"
            if "error" in r:
                rows.append((goal, False, r["error"]))
            else:
                at_most(goal, r["all_in_fib_s"], 3, f"{r['all_in_fib_s']:.1f} s")
    many = results.get("many_vips")
    if many and many.get("rounds"):
        out_s, back_s = many["last_out_median_s"], many["last_back_median_s"]
        at_most("1000 VIPs, nginx stopped: last out <= 0.15 s", out_s, 0.15, f"{out_s:.3f} s")
        at_most("1000 VIPs, nginx started: last back <= 0.5 s", back_s, 0.5, f"{back_s:.3f} s")
    for row in (results.get("config_check") or {}).get("rows", []):
        if row["vips"] == 1000:
            check_s = row["check"]["median_s"]
            at_most("`announcer check`, 1000 VIPs <= 0.2 s", check_s, 0.2, f"{check_s:.3f} s")
    jitter = results.get("jitter")
    if jitter:
        clean = jitter["updates"] == 0 and jitter["fib_samples_missing"] == 0
        reloads = jitter.get("reloads", 0)
        rows.append(
            (
                f"no false withdrawal: {_duration(jitter['seconds'])} of jitter"
                + (f" and {reloads} nginx reloads" if reloads else ""),
                clean,
                f"{jitter['updates']} UPDATEs",
            )
        )
    if not rows:
        return []
    out = ["## Goals", "", "| goal | this run | met |", "|---|---|---|"]
    out += [f"| {goal} | {value} | {'yes' if ok else 'NO'} |" for goal, ok, value in rows]
    return [*out, ""]


def render(results: dict[str, Any], img: Path, img_link: str = "img") -> str:
    out = [
        "# Benchmarks",
        "",
        "This plugin side by side with ExaBGP's bundled healthcheck (`exabgp healthcheck`, "
        "one process and one `curl` per check, `--withdraw-on-down`), in the same run of the FRR "
        "namespace lab: r1 and r2 (FRR bgpd + bfdd, behind a switch), three nginx LB hosts "
        "peering with both over TCP MD5, a client behind r1 opening a new connection per "
        "request at 50 requests/s.",
        "",
        f"- Machine: {results['machine']}",
        f"- Run: {results['started']}, as root, with `{results['command']}` "
        "(`./scripts/bench.sh` installs what it needs, then runs it; `--quick` is a reduced "
        "run in under 5 minutes)",
        "- Raw results: `bench/results/full.json`; `python -m bench.report "
        "bench/results/full.json docs/benchmarks.md` renders this page again from them",
        "",
        *_goals(results),
        "## Failover and recovery",
        "",
        "nginx on one host is stopped (SIGTERM and SIGKILL in turn) at a random point of the "
        "probe cycle (stratified: each round in its own slice of the cycle, shuffled); failover "
        "is the time until the router's kernel FIB no longer has the host "
        "as a next hop (`ip -n r1 -j route`, polled every 2 ms). Recovery is from nginx starting "
        "again until the host is back. Lost requests are the client's failed requests between "
        "the stop and the FIB change.",
        "",
        "| system | rounds | failover median | p95 | max | recovery median "
        "| lost per failover (mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for system in SYSTEMS:
        if system.name not in results["failover"]:
            continue
        data = results["failover"][system.name]
        rounds = data["rounds"]
        fo = summary([r["failover_s"] for r in rounds])
        rec = summary([r["recovery_s"] for r in rounds])
        lost = sum(r["lost"] for r in rounds) / len(rounds)
        out.append(
            f"| {system.label} | {len(rounds)} | {_fmt(fo['median'])} s | {_fmt(fo['p95'])} s | "
            f"{_fmt(fo['max'])} s | {_fmt(rec['median'])} s | {lost:.1f} |"
        )
    for sig in ("SIGTERM", "SIGKILL"):
        cells = []
        for system in SYSTEMS:
            values = [
                r["failover_s"]
                for r in results["failover"][system.name]["rounds"]
                if r["signal"] == sig
            ]
            if values:
                s = summary(values)
                cells.append(f"{system.name} {_fmt(s['median'])}/{_fmt(s['max'])} s")
        out.append(f"\n{sig} only (median/max): " + "; ".join(cells) + ".")
    ours = results["failover"]["announcer"].get("breakdown")
    if ours:
        times = {k: v for k, v in ours.items() if isinstance(v, float | int)}
        evidence = ours.get("evidence") or {}
        out += [
            "",
            "Where this plugin's failover time goes (medians, from its own log and the FIB): "
            + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in times.items())
            + ". *detect*: stop to the first failed probe (the watched connection closes at "
            "once); *confirm*: from there to the check's verdict, which depends on the evidence "
            "(a refusal right after the watched connection ended is certain: no more probes; a "
            "refusal or bad status alone: `fall - 1` more at `confirm_interval`; a timeout: at "
            "`fast_interval`); *exabgp*: until ExaBGP acknowledged the withdraw; *router*: "
            "until the route left r1's kernel: bgpd batches received routes for 50 ms before "
            "handing them to zebra (built in), and the lab's zebra has `zebra work-queue 0` "
            "(see docs/router.md).",
        ]
        if evidence:
            out.append(
                "\nThe deciding evidence, rounds per kind: "
                + ", ".join(f"{k} {v}" for k, v in sorted(evidence.items()))
                + "."
            )
    sick_rows = [
        (system, _rounds(results, "unhealthy", system.name))
        for system in SYSTEMS
        if _rounds(results, "unhealthy", system.name)
    ]
    if sick_rows:
        out += [
            "",
            "### The health endpoint answers 500 while nginx listens",
            "",
            "Nothing closes, so only the next probe can see it: at `interval` 1 s the failure is "
            "noticed half an interval later on average. Failover is until r1's FIB drops the "
            "host; recovery from /health answering 200 again until it is back.",
            "",
            "| system | rounds | failover median | p95 | max | recovery median |",
            "|---|---|---|---|---|---|",
        ]
        for system, rows in sick_rows:
            fo = summary([r["failover_s"] for r in rows])
            rec = summary([r["recovery_s"] for r in rows])
            out.append(
                f"| {system.label} | {len(rows)} | {_fmt(fo['median'])} s | {_fmt(fo['p95'])} s "
                f"| {_fmt(fo['max'])} s | {_fmt(rec['median'])} s |"
            )
        sick_parts = results["failover"]["announcer"].get("unhealthy_breakdown")
        if sick_parts:
            times = {k: v for k, v in sick_parts.items() if isinstance(v, float | int)}
            out.append(
                "\nWhere this plugin's time goes here (medians): "
                + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in times.items())
                + ". *detect* is the wait for the next probe (half an interval on average); a "
                "bad status is a stated failure, so the other `fall - 1` probes follow at "
                "`confirm_interval`."
            )
    cold = results.get("cold_start", {})
    if cold:
        out += [
            "",
            "## Cold start",
            "",
            "nginx runs and the routers wait; every host's ExaBGP (which starts its announcer) "
            "is started at once. Measured: until both routers' FIBs hold all three hosts. The "
            "three hosts share the lab machine's two cores, so their start-ups compete for CPU.",
            "",
            "| system | rounds | median | max |",
            "|---|---|---|---|",
        ]
        for system in SYSTEMS:
            rows = [
                r["seconds"] for r in cold.get(system.name, {}).get("rounds", []) if "seconds" in r
            ]
            if rows:
                c = summary(rows)
                out.append(
                    f"| {system.label} | {len(rows)} | {_fmt(c['median'])} s | {_fmt(c['max'])} s |"
                )
    deaths = results.get("host_death", {})
    if deaths:
        out += [
            "",
            "## Host death",
            "",
            "lb1 dies: every process of its namespace is frozen (SIGSTOP) and its cable is cut "
            "on the switch side, so the routers' own ports stay up and nothing on the host can "
            "withdraw. Measured: until lb1 is gone from the kernel FIB of *both* routers (r1 and "
            "r2, polled in turn). This plugin's hosts run FRR's bfdd beside ExaBGP (`announcer "
            "bfd-config`, 100 ms x 3) and the routers `neighbor LB bfd`; ExaBGP's healthcheck "
            "has no BFD, so its host leaves when the BGP hold timer (3 s in the lab) expires.",
            "",
            "| system | rounds | both FIBs median | p95 | max | r1 median | r2 median |",
            "|---|---|---|---|---|---|---|",
        ]
        for system in SYSTEMS:
            rows = [r for r in deaths.get(system.name, {}).get("rounds", []) if "both_s" in r]
            if not rows:
                continue
            both = summary([r["both_s"] for r in rows])
            r1 = summary([r["r1_s"] for r in rows])["median"]
            r2 = summary([r["r2_s"] for r in rows])["median"]
            out.append(
                f"| {system.label} | {len(rows)} | {_fmt(both['median'])} s | "
                f"{_fmt(both['p95'])} s | {_fmt(both['max'])} s | {_fmt(r1)} s | {_fmt(r2)} s |"
            )
        bfd = [
            r["bfd_down_s"]
            for r in deaths.get("announcer", {}).get("rounds", [])
            if r.get("bfd_down_s") is not None
        ]
        if bfd:
            out += [
                "",
                f"Phases (this plugin, medians): r1's BFD declares lb1 down after "
                f"{summary(bfd)['median'] * 1000:.0f} ms (3 missed 100 ms packets, plus up to one "
                "interval of phase and the poll of `show bfd peers`); bgpd then tears the session "
                "down and zebra removes the next hop, which shows as the rest of the FIB time.",
            ]
        back = [r for r in deaths.get("announcer", {}).get("rounds", []) if "back_s" in r]
        if back:
            back_s = summary([r["back_s"] for r in back])
            bfd_up = [r["bfd_up_s"] for r in back if r.get("bfd_up_s") is not None]
            up_part = (
                f"; r1's BFD session with it was up after {summary(bfd_up)['median']:.2f} s"
                if bfd_up
                else ""
            )
            out += [
                "",
                f"The host's return (this plugin, {len(back)} rounds): thawed and reconnected, lb1 "
                f"was back in both FIBs after {back_s['median']:.2f} s (median; max "
                f"{back_s['max']:.2f} s){up_part}. It is announced to a router only once its BFD "
                "session to it is up (the gate), so this includes BFD's slow start (one packet "
                "a second until up) and BGP's re-establishment; a host that dies again right "
                "after it is back is then caught by BFD, not by the hold timer.",
            ]
    out += [
        "",
        "## Drain",
        "",
        "lb2 is drained under the same traffic: this plugin with `announcer drain` (graceful "
        "shutdown community for `gshut_period` = 2 s in the lab, then withdraw), the "
        "healthcheck with its `--disable` file (an immediate withdraw with "
        "`--withdraw-on-down`; without it only the MED changes, which routers ignore across "
        "ASes).",
        "",
        "| system | drains | host out of the FIB after (median) | requests lost per drain |",
        "|---|---|---|---|",
    ]
    for system in SYSTEMS:
        rows = results["failover"].get(system.name, {}).get("drains", [])
        if rows:
            fib = summary([r["fib_s"] for r in rows])["median"]
            lost = sum(r["lost"] for r in rows) / len(rows)
            out.append(f"| {system.name} | {len(rows)} | {_fmt(fib)} s | {lost:.1f} |")
    out += [
        "",
        "Requests this short survive an immediate withdraw as well: with stateless ECMP, "
        "connections are moved when the host leaves the FIB whichever way it leaves. What the "
        "graceful-shutdown phase adds is a last-resort path while the withdraw is pending (if "
        "every other host fails meanwhile, traffic still has somewhere to go), and an operator "
        "can watch the host empty before its route goes (`drain.connections_below`).",
        "",
        "## Scale and cost",
        "",
        "One host with N VIPs, each with its own HTTP check at 1 s. *All in FIB* counts from "
        "the start of the lab (network, FRR, nginx, ExaBGP) until the router's kernel has every "
        "VIP. CPU is the announcer's whole process tree (for the healthcheck: every healthcheck "
        "process and the curl it forks) over a steady-state window, as a share of one core; RSS "
        "is the peak sum over the tree. *ExaBGP alone* is ExaBGP's own process; *the host* is "
        "everything the host spends on announcing, in the same window: ExaBGP, the processes it "
        "runs (the announcer, or every healthcheck and its curls) and bfdd. Updates are BGP "
        "UPDATEs the router received per minute in that window. CPU is sampled over 30 s (10 "
        "s with --quick) on a shared 2-core VM and "
        "moves by a point or two between runs (for 1000 VIPs in the lab, 3.8% to 6.8% across "
        "four runs of the same code on one day): compare systems within one run. The HTTP "
        "checks of one endpoint share its kept-alive connections (a few; before, one each: "
        "a thousand), so a probe is one request and one answer on an open connection, run on "
        "the connection's callbacks with no task; a new connection per probe "
        "(`reuse_connections: false`) cost about 19% of a core for the same thousand (measured "
        "before the callbacks). The plugin reads bfdd's state over "
        "its vty socket every 5 s, at a tenth of a millisecond each (vtysh cost about 20 ms). "
        "This plugin's *all in FIB* includes its BFD sessions coming up: a router gets a host's "
        "routes only once the host's BFD session to it is up (the gate, on by default), and a "
        "new session comes up in a few seconds (one packet a second until up); the healthcheck "
        "has no BFD.",
        "",
        "| system | VIPs | all in FIB | CPU | RSS | ExaBGP alone | the host | updates/min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system in SYSTEMS:
        for row in results["scale"].get(system.name, []):
            if "error" in row:
                out.append(f"| {system.name} | {row['vips']} | {row['error']} | | | | | |")
                continue
            # before host_cpu was measured, exabgp_cpu was ExaBGP's whole tree: the host
            host = row.get("host_cpu", row["exabgp_cpu"])
            alone = f"{100 * row['exabgp_cpu']:.1f}%" if "host_cpu" in row else "-"
            out.append(
                f"| {system.name} | {row['vips']} | {row['all_in_fib_s']:.1f} s | "
                f"{100 * row['cpu']:.1f}% | {row['rss_mib']:.0f} MiB | "
                f"{alone} | {100 * host:.1f}% | {row['updates_per_min']:.0f} |"
            )
    out += _many_vips(results.get("many_vips"))
    out += _config_check(results.get("config_check"))
    out += _long_lived(results.get("long_lived"))
    out += _fleet(results.get("fleet"))
    jitter = results["jitter"]
    out += [
        "",
        "## No false withdrawal under jitter",
        "",
        f"This plugin ran {_duration(jitter['seconds'])} against a health endpoint whose "
        f"latency is uniform between 0 and {jitter['max_delay_s']} s (half the "
        f"{jitter['timeout_s']} s timeout), while nginx (the other check's service) was "
        f"reloaded {jitter.get('reloads', 0)} times: the router received "
        f"{jitter['updates']} UPDATEs "
        f"from that host and its FIB was missing it in {jitter['fib_samples_missing']} of the "
        "samples taken every 200 ms.",
    ]
    plots = _plots(results, img)
    if plots:
        out += ["", "## Plots", ""] + [f"![{name}]({img_link}/{name})" for name in plots]
    out.append("")
    return "\n".join(out)


def _many_vips(many: dict[str, Any] | None) -> list[str]:
    """The many-VIPs failover (bench/many_vips.py; the full run only)."""
    if not many or not many.get("rounds"):
        return []
    rows = many["rounds"]
    out = [
        "",
        "## Many VIPs on one host",
        "",
        f"Two hosts announce the same {many['vips']} VIPs (198.18.0.0/15), each VIP with its own "
        "HTTP check at the defaults; nginx on lb1 is stopped, then started again, and r1's "
        "kernel routes are read every few milliseconds (`python -m bench.many_vips`). The "
        "phases come from lb1's log: when its checks changed, and each batch of commands with "
        "the time ExaBGP took to answer it.",
        "",
        "| round | first VIP out | last VIP out | checks down (first-last) | batches to ExaBGP "
        "(routes, seconds) | first VIP back | last VIP back |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, row in enumerate(rows):
        phases = row["out"]
        batches = ", ".join(f"{n} in {s:.2f} s" for n, s in phases["batches_routes_seconds"])
        out.append(
            f"| {number} | {_fmt(row['first_out_s'])} s | {_fmt(row['last_out_s'])} s | "
            f"{_fmt(phases['first_check_s'])}-{_fmt(phases['last_check_s'])} s | {batches} | "
            f"{_fmt(row['first_back_s'])} s | {_fmt(row['last_back_s'])} s |"
        )
    per_route = [s / n for row in rows for n, s in row["out"]["batches_routes_seconds"] if n >= 200]
    if per_route:
        out += [
            "",
            f"Medians: the last VIP out after {_fmt(many['last_out_median_s'])} s, back after "
            f"{_fmt(many['last_back_median_s'])} s. ExaBGP 5.0.15 answers a batch of withdraws "
            f"at {1000 * summary(per_route)['median']:.2f} ms per route (batches of 200 routes "
            "or more): it runs at most 50 route changes per turn of its reactor loop, and for "
            "each change and each neighbor deep-copies the route with its attributes "
            "(`Neighbor.remove_self`, about half of its time with two routers, profiled with "
            "py-spy) and formats it for a log line whether the line is logged or not, so a "
            "thousand routes cost it a third of a second or "
            "more whatever the plugin does. Sending them in one batch is no faster: tried (the "
            "endpoint's watcher failing every check of the stopped nginx in one step), the "
            "thousand withdraws went in one batch 0.04 s after the stop, and the last VIP left "
            "after 0.55-0.63 s, the first only after 0.19 s: several smaller batches let "
            "ExaBGP start sending sooner.",
        ]
    return out


def _config_check(results: dict[str, Any] | None) -> list[str]:
    """`announcer check` and the plugin's parse of many-VIP files (bench/config_check.py)."""
    if not results or not results.get("rows"):
        return []
    out = [
        "",
        "## Reading a configuration of many VIPs",
        "",
        "A host of the many-VIPs benchmark (one BGP session, each VIP with its own HTTP check), "
        f"checked {results['rounds']} times by `announcer check -c FILE` as an operator runs it "
        "(a new process: the imports count), and parsed as many times by the plugin's own "
        "`load_config`, what its start-up and each reload pay (`python -m bench.config_check`).",
        "",
        "| VIPs | file | `announcer check` median (min-max) | the plugin's parse median |",
        "|---|---|---|---|",
    ]
    for row in results["rows"]:
        check, parse = row["check"], row["parse"]
        out.append(
            f"| {row['vips']} | {row['bytes'] / 1024:.0f} KiB | {_fmt(check['median_s'])} s "
            f"({_fmt(check['min_s'])}-{_fmt(check['max_s'])}) | {_fmt(parse['median_s'])} s |"
        )
    out += [
        "",
        "What is left of `announcer check` beyond the parse is Python's start and the imports, "
        "most of them pydantic's (about 0.1 s on this machine); the event loop, the probes and "
        "the reducer are not imported by it.",
    ]
    return out


def _long_lived(results: dict[str, Any] | list[dict[str, Any]] | None) -> list[str]:
    """The survivor break ratio of long-lived connections, plain ECMP and stable next hops
    side by side (bench/long_lived.py; full run). An older run's list: plain ECMP alone."""
    if not results:
        return []
    if isinstance(results, list):
        results = {"plain": {"rows": results}}
    modes = [mode for mode in ("plain", "stable") if mode in results]
    title = {"plain": "plain ECMP", "stable": "stable next hops"}
    command = results.get("command", "python -m bench.long_lived")
    connections = results.get("connections", 240)
    interval = results.get("interval_s", 0.5)
    out = [
        "",
        "## Long-lived connections through ECMP",
        "",
        f"Three nginx hosts, r1 hashing flows on L4; {connections} kept-alive HTTP connections "
        f"from the client, each sending a request every {interval:g} s (`{command}`). A "
        "connection breaks on a reset, an EOF, no answer within 1.5 s, or an answer from another "
        "host than its own. Counted from the event until 3 s after the change settled. "
        "*Survivors* are the connections on the hosts whose state did not change: with plain "
        "ECMP the kernel's hash-threshold groups move a share of them whenever the set of next "
        "hops changes; with stable next hops (`stable_next_hops:`, three slots moved by "
        "keepalived) the set does not change, and only the changed host's own connections "
        "move. A dead host comes back as after a reboot: its processes run before its cable is "
        "in. *Leaves*: ExaBGP (and keepalived) stopped on the host; *joins*: started again. "
        "*Settled after*: from the event, the action itself included (the CLI's start for a "
        "drain, ExaBGP's stop for leaves), until r1's next hops were the new set (plain ECMP), "
        "or every slot had its new holder (stable next hops: the failover, read every 10 ms or "
        "so from the hosts' addresses; where nothing moves, the time to see that). With stable "
        "next hops a host that returns takes no slot from a serving holder (`nopreempt`): it "
        "carries no connection until a slot moves to it (`announcer release-slot`), hence the "
        "concentration on fewer hosts as the events go on.",
        "",
    ]
    header = "| event | host |"
    rule = "|---|---|"
    for mode in modes:
        header += f" {title[mode]}: survivors broken | the host's own broken | settled after |"
        rule += "---|---|---|"
    out += [header, rule]
    rows = {mode: results[mode]["rows"] for mode in modes}
    for index, first in enumerate(rows[modes[0]]):
        line = f"| {first['event']} | {first['host']} |"
        for mode in modes:
            row = rows[mode][index] if index < len(rows[mode]) else None
            if row is None:
                line += " | | |"
                continue
            share = row["survivors_broken"] / row["survivors"] if row["survivors"] else 0.0
            settled = row.get("settled_s")
            line += (
                f" {row['survivors_broken']} of {row['survivors']} ({100 * share:.1f}%) |"
                f" {row['on_host_broken']} of {row['on_host']} |"
                f" {'' if settled is None else f'{settled:.2f} s'} |"
            )
        out.append(line)
    changes = [
        f"{title[mode]} {results[mode]['fib_changes']}"
        for mode in modes
        if "fib_changes" in results[mode]
    ]
    if changes:
        out += [
            "",
            "Times r1's route for the VIP changed (its nexthop group or next hops, sampled "
            "every 20 ms over all the events): " + ", ".join(changes) + ".",
        ]
    return out


def _fleet(fleet: dict[str, Any] | None) -> list[str]:
    """The fleet-wide soft failure and the drain race (bench/fleet.py; full run)."""
    if not fleet:
        return []
    from .fleet import summary as fleet_summary

    hold = next(iter(fleet["unhealthy_everywhere"].values()))["hold_s"]
    return [
        "",
        "## The whole fleet failing softly at once",
        "",
        f"Three nginx hosts; `/health` answers 500 on all three at the same moment for {hold:g} "
        "s (nginx itself still serves), then recovers; both routers' FIBs are read every 20 ms "
        "and the clients behind them send a request every 20 ms "
        f"(`{fleet.get('command', 'python -m bench.fleet')}`). This plugin with "
        "`fleet: {min_serving: 1}` keeps every host announced in panic; without `fleet:`, and "
        "ExaBGP's healthcheck with `--withdraw-on-down`, every host withdraws once its checks "
        "have confirmed the failure, and the VIP stays out of every FIB until `/health` "
        f"recovers: here the rest of the {hold:g} s, in a real outage all of it. The requests "
        "counted are those sent during the failure (a failed one waits up to its 1 s timeout, "
        "so fewer are sent).",
        "",
        *fleet_summary(fleet),
    ]


def main() -> None:
    """Render again from saved results: python -m bench.report RESULTS.json [OUT.md]."""
    import json
    import sys

    results = json.loads(Path(sys.argv[1]).read_text())
    if len(sys.argv) > 2:
        out = Path(sys.argv[2])
        out.write_text(render(results, out.parent / "img"))
    else:
        print(render(results, Path(sys.argv[1]).parent, img_link=str(Path(sys.argv[1]).parent)))


if __name__ == "__main__":
    main()
