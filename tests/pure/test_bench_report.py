"""The benchmark report renders from raw results (the lab run itself is bench/, not a test)."""

import pytest

from bench.report import render


def rounds(seconds: float, n: int = 4):
    return [
        {
            "signal": "SIGTERM" if i % 2 == 0 else "SIGKILL",
            "failover_s": seconds + i / 100,
            "recovery_s": 0.5,
            "lost": 3,
            "t0": 0.0,
            "t1": 1.0,
        }
        for i in range(n)
    ]


RESULTS = {
    "machine": "2 x test CPU",
    "command": "./scripts/bench.sh --quick",
    "quick": True,
    "started": "2026-01-01 00:00 UTC",
    "failover": {
        "announcer": {
            "rounds": rounds(0.07),
            "unhealthy": [
                {"failover_s": 0.3 + i / 10, "recovery_s": 0.2, "t0": 0.0, "t1": 1.0}
                for i in range(6)
            ],
            "drains": [{"fib_s": 0.4, "lost": 0}],
            "breakdown": {
                "detect": 0.006,
                "confirm": 0.0,
                "exabgp": 0.003,
                "router": 0.052,
                "evidence": {"certain": 4},
            },
        },
        "healthcheck-tuned": {
            "rounds": rounds(2.6),
            "drains": [{"fib_s": 0.1, "lost": 0}],
            "breakdown": None,
        },
        "healthcheck-default": {"rounds": rounds(6.5), "drains": [], "breakdown": None},
    },
    "scale": {
        "announcer": [
            {
                "vips": 1000,
                "all_in_fib_s": 3.0,
                "cpu": 0.133,
                "rss_mib": 69.0,
                "exabgp_cpu": 0.015,
                "host_cpu": 0.2,
                "updates_per_min": 0.0,
                "processes": 1,
            },
            {"vips": 10000, "error": "only 521 of 10000 in the FIB after 120s"},
        ],
        "healthcheck-tuned": [{"vips": 1000, "error": "not run"}],
    },
    "cold_start": {
        "announcer": {"rounds": [{"seconds": 1.2}, {"seconds": 1.4}, {"error": "x"}]},
        "healthcheck-tuned": {"rounds": [{"seconds": 2.0}]},
    },
    "many_vips": {
        "vips": 1000,
        "last_out_median_s": 0.55,
        "last_back_median_s": 0.8,
        "rounds": [
            {
                "first_out_s": 0.14,
                "last_out_s": 0.55,
                "first_back_s": 0.25,
                "last_back_s": 0.8,
                "out": {
                    "first_check_s": 0.05,
                    "last_check_s": 0.26,
                    "batches_routes_seconds": [[100, 0.05], [600, 0.21], [300, 0.12]],
                },
            }
        ],
    },
    "config_check": {
        "rounds": 11,
        "command": "announcer check -c FILE",
        "rows": [
            {
                "vips": 1000,
                "bytes": 103378,
                "check": {"min_s": 0.25, "median_s": 0.29, "max_s": 0.4},
                "parse": {"min_s": 0.06, "median_s": 0.07, "max_s": 0.09},
            }
        ],
    },
    "long_lived": {
        "connections": 240,
        "interval_s": 0.5,
        "command": "python -m bench.long_lived --connections 240 --interval 0.5",
        "plain": {
            "rows": [
                {
                    "event": "nginx stopped",
                    "host": "lb1",
                    "survivors": 160,
                    "survivors_broken": 48,
                    "on_host": 80,
                    "on_host_broken": 80,
                    "settled_s": 0.071,
                }
            ],
            "fib_changes": 12,
        },
        "stable": {
            "rows": [
                {
                    "event": "nginx stopped",
                    "host": "lb1",
                    "survivors": 158,
                    "survivors_broken": 0,
                    "on_host": 82,
                    "on_host_broken": 82,
                }
            ],
            "fib_changes": 0,
        },
    },
    "jitter": {
        "seconds": 30.0,
        "reloads": 3,
        "updates": 0,
        "fib_samples_missing": 0,
        "max_delay_s": 0.25,
        "timeout_s": 0.5,
    },
}


def test_report_has_every_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    text = render(RESULTS, tmp_path)
    assert "| announcer (defaults" in text and "0.085 s" in text  # median of 0.07..0.10
    assert "| announcer | 1000 | 3.0 s | 13.3% | 69 MiB | 1.5% | 20.0% | 0 |" in text
    assert "| healthcheck-tuned | 1000 | not run |" in text
    assert "detect 6 ms" in text and "certain 4" in text
    assert "| failover, nginx stopped: median <= 0.12 s | 0.085 s | yes |" in text
    assert "| failover, nginx stopped: max <= 0.2 s | 0.100 s | yes |" in text
    # 0.3..0.8: median 0.55, max 0.8
    assert "| failover, /health answers 500: median <= 0.65 s | 0.550 s | yes |" in text
    assert "| recovery, nginx started: median <= 0.3 s | 0.500 s | NO |" in text
    assert "| cold start, 3 hosts: median <= 1.5 s | 1.300 s | yes |" in text
    assert "| 1000 checks/s: CPU <= 8% of one core | 13.3% | NO |" in text
    assert "| no false withdrawal: 30 s of jitter and 3 nginx reloads | 0 UPDATEs | yes |" in text
    assert "## Cold start" in text and "The health endpoint answers 500" in text
    assert "| 0 | 0.140 s | 0.550 s | 0.050-0.260 s | 100 in 0.05 s, 600 in 0.21 s" in text
    assert "at 0.38 ms per route" in text  # (0.21/600 + 0.12/300) / 2, batches of 200 or more
    assert (
        "| nginx stopped | lb1 | 48 of 160 (30.0%) | 80 of 80 | 0.07 s | 0 of 158 (0.0%) "
        "| 82 of 82 |  |" in text
    )
    assert "plain ECMP 12, stable next hops 0." in text
    # the many-VIPs goals: host CPU, last out and back, announcer check
    assert (
        "| 1000 checks/s: the whole host (ExaBGP, plugin, bfdd) <= 5% of one core | 20.0% | NO |"
        in text
    )
    assert "| 1000 VIPs, nginx stopped: last out <= 0.15 s | 0.550 s | NO |" in text
    assert (
        "| 10,000 VIPs all in the FIB within 3 s (counted from the lab's start) "
        "| only 521 of 10000 in the FIB after 120s | NO |" in text
    )
    assert "| 1000 VIPs, nginx started: last back <= 0.5 s | 0.800 s | NO |" in text
    assert "| `announcer check`, 1000 VIPs <= 0.2 s | 0.290 s | NO |" in text
    assert "| failover, /health answers 500: mean <= 0.62 s | 0.550 s | yes |" in text
    assert "| 1000 | 101 KiB | 0.290 s (0.250-0.400) | 0.070 s |" in text
    assert (tmp_path / "failover.png").stat().st_size > 1000
    assert (tmp_path / "cpu-vs-vips.png").stat().st_size > 1000


def test_the_many_vips_phases_are_read_from_the_log_fields():
    """bench.many_vips: when the checks changed and when ExaBGP acknowledged each batch,
    counted from the moment of the failure, from the plugin's JSON log lines."""
    from bench.many_vips import phases_of

    t0 = 100.0
    events = [
        {"ts": 100.05, "event": "check_changed", "health": "down"},
        {"ts": 100.07, "event": "check_changed", "health": "up"},  # another direction
        {"ts": 100.20, "event": "check_changed", "health": "down"},
        {"ts": 100.30, "event": "routes_synced", "withdrawn": 600, "seconds": 0.2},
        {"ts": 100.31, "event": "routes_synced", "announced": 5, "withdrawn": 0},
        {"ts": 100.50, "event": "routes_synced", "withdrawn": 400, "seconds": 0.19},
    ]
    out = phases_of(events, t0, "down")
    assert out["checks_changed"] == 2
    assert out["first_check_s"] == pytest.approx(0.05) and out["last_check_s"] == pytest.approx(0.2)
    assert out["batches"] == 2 and out["routes_in_batches"] == 1000
    assert out["first_ack_s"] == pytest.approx(0.3) and out["last_ack_s"] == pytest.approx(0.5)
    assert out["batches_routes_seconds"] == [(600, 0.2), (400, 0.19)]


def test_survivor_breaks_count_only_connections_open_when_the_event_was_made():
    """bench.long_lived: a connection is a survivor if, when the event is made, its home is
    another host; it counts as broken if it breaks within the window. One that broke and
    has not found a new home before the event is in neither count."""
    from announcer.lab.long_lived import breaks_in

    events = [
        {"t": 1.0, "conn": 0, "event": "home", "server": "lb1"},
        {"t": 1.0, "conn": 1, "event": "home", "server": "lb2"},
        {"t": 1.0, "conn": 2, "event": "home", "server": "lb3"},
        {"t": 1.1, "conn": 3, "event": "home", "server": "lb2"},
        {"t": 1.5, "conn": 3, "event": "break", "home": "lb2", "why": "reset"},  # before
        {"t": 2.1, "conn": 0, "event": "break", "home": "lb1", "why": "refused"},
        {"t": 2.2, "conn": 1, "event": "break", "home": "lb2", "why": "reset"},
        {"t": 2.3, "conn": 1, "event": "home", "server": "lb3"},
        {"t": 9.0, "conn": 2, "event": "break", "home": "lb3", "why": "eof"},  # after
    ]
    row = breaks_in(events, "nginx stopped", "lb1", 2.0, 5.0)
    assert (row.survivors, row.survivors_broken, row.on_host, row.on_host_broken) == (2, 1, 1, 1)
    assert row.survivor_ratio == 0.5
